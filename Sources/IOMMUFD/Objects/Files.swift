import IOMMUCore

/// A file a context handed out: a fault queue fd (`IOMMU_FAULT_QUEUE_ALLOC`), a vEVENTQ fd
/// (`IOMMU_VEVENTQ_ALLOC`) or a selftest access fd (`IOMMU_TEST_OP_CREATE_ACCESS`). The
/// model keeps its own small file table per context; numbers start at 1000 so they never
/// look like stdio.
package enum IOMMUFDFile {
    case fault(FaultObject)
    case veventq(VEventQueueObject)
    case access(any IOMMUFDTestFile)

    var kind: IOMMUFDFileKind {
        switch self {
        case .fault: .faultQueue
        case .veventq: .veventQueue
        case .access: .selftestAccess
        }
    }
}

/// The kind of an anonymous file a context hands out (`anon_inode_getfd` callers).
public enum IOMMUFDFileKind: UInt32, Sendable {
    /// `IOMMU_FAULT_QUEUE_ALLOC`'s `[iommufd-pgfault]` file.
    case faultQueue = 1
    /// `IOMMU_TEST_OP_CREATE_ACCESS`'s `[iommufd_test_staccess]` file.
    case selftestAccess = 2
    /// `IOMMU_VEVENTQ_ALLOC`'s `[iommufd-viommu-event]` file.
    case veventQueue = 3
}

/// `get_unused_fd_flags(O_CLOEXEC)` + `fd_install` in the calling task's file table:
/// given the kind of file, returns the fd number the caller now holds, or an errno
/// (`EMFILE`). Installed on a context by a host that hands out real descriptors (the
/// model as a service); without one the context numbers its files itself from 1000.
public typealias IOMMUFDFileInstaller = @Sendable (IOMMUFDFileKind) -> Result<Int32, Errno>

extension IOMMUFD {
    /// Gives `f` an fd number: the ``fileInstaller``'s, or the lowest free one from 1000.
    /// - Throws: the installer's errno (`EMFILE`).
    package func installFile(_ f: IOMMUFDFile) throws(Errno) -> Int32 {
        if let installer = _fileInstaller {
            let fd = try installer(f.kind).get()
            guard files[fd] == nil else { throw .tooManyOpenFiles.from("get_unused_fd_flags", "fd \(fd) is still in use by the context") }
            files[fd] = f
            return fd
        }
        var fd: Int32 = 1000
        while files[fd] != nil { fd += 1 }
        files[fd] = f
        return fd
    }

    /// The fd numbers of this context's open files (fault queues, selftest accesses).
    public var fileNumbers: [Int32] { lock.withLock { files.keys.sorted() } }

    /// `close(fd)` on a file of this context: a fault queue or vEVENTQ fd drops its
    /// reference on its object (`iommufd_eventq_fops_release`); an access fd destroys the
    /// selftest access (unpinning everything).
    /// - Returns: 0, or `-EBADF` for an unknown fd.
    public func closeFile(_ fd: Int32) -> Int32 {
        lock.withLock { closeFileLocked(fd) }
    }

    package func closeFileLocked(_ fd: Int32) -> Int32 {
        guard let f = files.removeValue(forKey: fd) else { return -Errno.badFileDescriptor.rawValue }
        switch f {
        case .fault(let fault): fault.fdClosed(self)
        case .veventq(let q): q.fdClosed(self)
        case .access(let a): a.close(self)
        }
        return 0
    }

    /// `poll(fd)` on an event queue fd (`iommufd_eventq_fops_poll`): a fault queue is
    /// always writable (`POLLOUT`, 0x4) and readable (`POLLIN`, 0x1) while fault groups
    /// wait; a vEVENTQ is readable (`POLLIN | POLLRDNORM`, 0x41) while events wait.
    /// - Returns: the event mask, or `-EBADF` / `-EINVAL` for an unknown fd or an access fd.
    public func pollFile(_ fd: Int32) -> Int32 {
        lock.withLock {
            switch files[fd] {
            case nil: -Errno.badFileDescriptor.rawValue
            case .fault(let fault)?: 0x4 | (fault.pendingCount == 0 ? 0 : 0x1)
            case .veventq(let q)?: q.pollMask
            case .access?: -Errno.invalidArgument.rawValue
            }
        }
    }

    /// `read(fd, buf, count)` on an event queue fd: whole `iommu_hwpt_pgfault` records
    /// from a fault queue, whole events (header and record) from a vEVENTQ.
    /// - Returns: bytes read, or a negative errno (`-EBADF` unknown fd, `-EINVAL` an
    ///   access fd, `-ESPIPE` a fault-queue count that is not a multiple of 40,
    ///   `-EFAULT`).
    public func readFile(_ fd: Int32, buffer: UInt64, count: Int) -> Int {
        lock.withLock {
            let result: Result<Int, Errno>
            switch files[fd] {
            case nil: return -Int(Errno.badFileDescriptor.rawValue)
            case .fault(let fault)?: result = fault.read(self, buffer: buffer, count: count)
            case .veventq(let q)?: result = q.read(self, buffer: buffer, count: count)
            case .access?: return -Int(Errno.invalidArgument.rawValue)
            }
            switch result {
            case .success(let n): return n
            case .failure(let e): return -Int(e.rawValue)
            }
        }
    }

    /// `write(fd, buf, count)` on a fault queue fd: `iommu_hwpt_page_response` records.
    /// - Returns: bytes consumed, or a negative errno (`-ESPIPE` a count that is not a
    ///   multiple of 8, `-EINVAL` an unknown cookie or a bad code, or a file that cannot be
    ///   written (a vEVENTQ or access fd); `-EFAULT`).
    public func writeFile(_ fd: Int32, buffer: UInt64, count: Int) -> Int {
        lock.withLock {
            guard let f = files[fd] else { return -Int(Errno.badFileDescriptor.rawValue) }
            guard case .fault(let fault) = f else { return -Int(Errno.invalidArgument.rawValue) }
            switch fault.write(self, buffer: buffer, count: count) {
            case .success(let n): return n
            case .failure(let e): return -Int(e.rawValue)
            }
        }
    }
}

extension Errno {
    /// `EMFILE` (24): the caller's file table has no room for a new file, or the number
    /// it gave is still in use by another file of the context.
    public static let tooManyOpenFiles = Errno(rawValue: 24)
}
