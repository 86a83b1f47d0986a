import IOMMUCore
import IOMMUFD

/// The open files of a model process as VFIO sees them (`current->files`): the file
/// descriptor numbers a C caller passes in `vfio_device_bind_iommufd.iommufd`, and what
/// each refers to. Only iommufd contexts matter to VFIO; anything else is "some other
/// file".
public final class FileDescriptorTable: @unchecked Sendable {
    private let lock = Lock()
    private var files: [Int32: AnyObject] = [:]

    /// An empty table (descriptors 0–2 are taken by stdio, so the first one is 3).
    public init() {}

    /// Installs `file` at the lowest free descriptor (`fd_install`) and returns it.
    public func install(_ file: AnyObject) -> Int32 {
        lock.withLock {
            var fd: Int32 = 3
            while files[fd] != nil { fd += 1 }
            files[fd] = file
            return fd
        }
    }

    /// Closes `fd` (`close(2)`).
    /// - Throws: `EBADF` when `fd` is not open.
    public func close(_ fd: Int32) throws(Errno) {
        try lock.withLock { () throws(Errno) in
            guard files.removeValue(forKey: fd) != nil else { throw .badFileDescriptor }
        }
    }

    /// `iommufd_ctx_from_fd(fd)`: the iommufd context behind `fd`.
    /// - Throws: `EBADF` `fd` is not open; `EBADFD` the file is not an iommufd (nor a
    ///   `/dev/vfio/vfio` container served by iommufd).
    public func iommufd(_ fd: Int32) throws(Errno) -> IOMMUFD {
        let file = lock.withLock { files[fd] }
        guard let file else { throw .badFileDescriptor }
        guard let ctx = file as? IOMMUFD, !ctx.isClosed else { throw .badFileDescriptorState }
        return ctx
    }
}
