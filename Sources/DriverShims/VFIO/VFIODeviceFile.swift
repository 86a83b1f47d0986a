import IOMMUCore
import IOMMUFD

/// One open of a VFIO device (`struct vfio_device_file`): a cdev file
/// (`/dev/vfio/devices/vfioX`) or a file from the legacy group path.
///
/// ``ioctl(_:_:)`` takes the exact bytes a C caller passes (a pointer into the opener's
/// memory). The typed API (``bindIOMMUFD(_:)``, ``attach(ptID:)``…) encodes the same
/// structure and runs the same path, so the two always agree.
public final class VFIODeviceFile: @unchecked Sendable {
    /// The device this file opened.
    public let device: any VFIODevice
    /// `df->group`: opened through the legacy group path.
    public let isGroupFile: Bool
    let user: any UserMemory
    let files: FileDescriptorTable
    /// `df->access_granted`.
    public internal(set) var accessGranted: Bool
    /// `df->iommufd`.
    var ictx: IOMMUFD?
    /// `df->devid`: the object ID the bind returned.
    public internal(set) var devid: AnyIOMMUFDObjectID?
    /// Set once ``close()`` ran.
    public internal(set) var isClosed = false

    init(device: any VFIODevice, group: Bool, user: any UserMemory, files: FileDescriptorTable) {
        self.device = device
        isGroupFile = group
        self.user = user
        self.files = files
        accessGranted = group
    }

    deinit { close() }

    /// `vfio_device_fops_unl_ioctl` for the iommufd commands of a device file.
    ///
    /// `VFIO_DEVICE_BIND_IOMMUFD` is always reachable; everything else needs access
    /// (`EINVAL` before bind). `ATTACH_IOMMUFD_PT` and `DETACH_IOMMUFD_PT` exist only on
    /// cdev files; other commands are the driver's and answer `ENOTTY` here.
    /// - Returns: 0, or the kernel's negative errno (`-22` for `EINVAL`); `-EBADF`
    ///   after ``close()``.
    public func ioctl(_ cmd: UInt32, _ arg: UInt64) -> Int32 { ioctl(cmd, arg, memory: user) }

    func ioctl(_ cmd: UInt32, _ arg: UInt64, memory: any UserMemory) -> Int32 {
        device.vfio.devSetLock.withLock {
            guard !isClosed else { return -Errno.badFileDescriptor.rawValue }
            do throws(Errno) {
                if cmd == VFIODeviceCommand.bindIOMMUFD { return try bindIOMMUFD(arg, memory) }
                guard accessGranted else { throw .invalidArgument }
                if !isGroupFile {
                    switch cmd {
                    case VFIODeviceCommand.attachIOMMUFDPT: return try attachPT(arg, memory)
                    case VFIODeviceCommand.detachIOMMUFDPT: return try detachPT(arg, memory)
                    default: break
                    }
                }
                throw .notTTY
            } catch {
                return -error.rawValue
            }
        }
    }

    /// `vfio_device_fops_release`: closing a bound cdev file unbinds it
    /// (`vfio_df_unbind_iommufd`: the driver detaches every PASID, then the RID, then
    /// releases DMA ownership); closing a group file unblocks cdev binding.
    public func close() {
        device.vfio.devSetLock.withLock {
            guard !isClosed else { return }
            isClosed = true
            if isGroupFile {
                device.vfio.groupOpens -= 1
            } else if accessGranted {
                unbindLocked()
            }
        }
    }

    /// `vfio_df_close` + the rest of `vfio_df_unbind_iommufd`.
    func unbindLocked() {
        device.unbindIOMMUFD()
        device.vfio.openCount -= 1
        device.vfio.cdevOpened = false
        accessGranted = false
        ictx = nil
        devid = nil
    }
}
