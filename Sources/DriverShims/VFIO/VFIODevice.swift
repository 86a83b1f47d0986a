import IOMMUCore
import IOMMUFD

/// The iommufd side of a VFIO device driver (`struct vfio_device_ops`: `bind_iommufd`,
/// `unbind_iommufd`, `attach_ioas`, `detach_ioas`). A physical driver
/// (``VFIOPCIDevice``) binds an iommufd DEVICE; an emulated one (``MdevDevice``) binds
/// an ACCESS. Drivers that can attach PASIDs also adopt ``VFIOPasidOps``.
///
/// The ``VFIODeviceFile`` calls these with `VFIODeviceCore.devSetLock` held.
public protocol VFIODevice: AnyObject, Sendable {
    /// The common `struct vfio_device` state.
    var vfio: VFIODeviceCore { get }
    /// `ops->bind_iommufd(vdev, ictx, &out_device_id)`: returns the object ID (a DEVICE
    /// for a physical driver, an ACCESS for an emulated one, hence of any kind).
    func bindIOMMUFD(_ ictx: IOMMUFD) throws(Errno) -> AnyIOMMUFDObjectID
    /// `ops->unbind_iommufd(vdev)`: detach everything and drop the binding.
    func unbindIOMMUFD()
    /// `ops->attach_ioas(vdev, &pt_id)`: attach, or replace when already attached.
    /// `ptID` comes in as the user's IOAS or HWPT and goes out as what is attached.
    func attachIOAS(_ ptID: inout PageTableObjectID) throws(Errno)
    /// `ops->detach_ioas(vdev)`: a no-op when not attached.
    func detachIOAS()
}

/// `ops->pasid_attach_ioas` / `ops->pasid_detach_ioas`: present only on drivers that
/// attach PASIDs (vfio-pci). Without them `VFIO_DEVICE_ATTACH_PASID` is `EOPNOTSUPP`.
public protocol VFIOPasidOps: VFIODevice {
    /// `ops->pasid_attach_ioas(vdev, pasid, &pt_id)`: attach, or replace when the PASID
    /// is already attached.
    func pasidAttachIOAS(_ pasid: PASID, _ ptID: inout PageTableObjectID) throws(Errno)
    /// `ops->pasid_detach_ioas(vdev, pasid)`: a no-op for a PASID never attached.
    func pasidDetachIOAS(_ pasid: PASID)
}

/// The model's third attach operation (seed 002: "attach page table to RID and all
/// PASIDs"), reached by ``VFIODeviceFlag/attachAllPasids``. Without it the flag is
/// `EOPNOTSUPP`.
public protocol VFIOAllPasidsOps: VFIODevice {
    /// Attach `ptID` (a nested HWPT) to the RID and every PASID, replacing the RID's
    /// current attachment.
    func allPasidsAttachIOAS(_ ptID: inout PageTableObjectID) throws(Errno)
}

/// The driver-independent part of `struct vfio_device`: the device-set lock, how many
/// files opened it through the legacy group path, and whether a cdev file bound it.
public final class VFIODeviceCore: @unchecked Sendable {
    /// The device's name (`dev_name`).
    public let name: String
    /// `dev_set->lock`: serialises bind, attach, detach and unbind of the device.
    let devSetLock = RecursiveLock()
    /// `device->open_count`.
    var openCount = 0
    /// Files opened through `VFIO_GROUP_GET_DEVICE_FD` still open (the group side of
    /// `vfio_device_block_group`).
    var groupOpens = 0
    /// `device->cdev_opened`.
    public internal(set) var cdevOpened = false

    /// State for the device called `name`.
    public init(name: String) { self.name = name }
}

extension VFIODevice {
    /// `vfio_device_fops_cdev_open`: open `/dev/vfio/devices/vfioX`. Access is not
    /// granted until `VFIO_DEVICE_BIND_IOMMUFD`.
    /// - Parameters:
    ///   - user: the opener's memory, where ioctl arguments live.
    ///   - files: the opener's descriptor table, where `iommufd` numbers resolve.
    public func openCdev(user: any UserMemory, files: FileDescriptorTable) -> VFIODeviceFile {
        VFIODeviceFile(device: self, group: false, user: user, files: files)
    }

    /// `VFIO_GROUP_GET_DEVICE_FD`: the legacy group path (its container is not
    /// modelled). The file has access at once, refuses `BIND_IOMMUFD` (`EINVAL`) and
    /// blocks cdev binding of the device (`EBUSY`) while open.
    /// - Throws: `EBUSY` a cdev file has the device bound.
    public func openViaGroup(user: any UserMemory, files: FileDescriptorTable) throws(Errno) -> VFIODeviceFile {
        try vfio.devSetLock.withLock { () throws(Errno) -> VFIODeviceFile in
            guard !vfio.cdevOpened else { throw .busy }
            vfio.groupOpens += 1
            return VFIODeviceFile(device: self, group: true, user: user, files: files)
        }
    }
}
