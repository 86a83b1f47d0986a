import IOMMUCore
import IOMMUFD

/// The three attach shapes of seed 002 ("Attach page table to RID / to PASID / to RID
/// and all PASIDs"), as one typed call.
public enum VFIOAttachShape: Hashable, Sendable {
    /// `VFIO_DEVICE_ATTACH_IOMMUFD_PT` without flags: requests without a PASID.
    case rid
    /// `VFIO_DEVICE_ATTACH_IOMMUFD_PT` with `VFIO_DEVICE_ATTACH_PASID`: one PASID.
    case pasid(PASID)
    /// The model's ``VFIODeviceFlag/attachAllPasids``: the RID and every PASID, through
    /// a nested HWPT whose vendor owns the PASID table (`EOPNOTSUPP` on VT-d).
    case ridAndAllPasids
}

extension VFIODeviceFile {
    /// Runs `cmd` over `value` placed in an argument buffer, through the raw path.
    private func call<T: UAPIStruct>(_ cmd: UInt32, _ value: T) throws(Errno) -> T {
        let buffer = ArgumentBuffer(value.bytes)
        let rc = ioctl(cmd, ArgumentBuffer.base, memory: buffer)
        guard rc >= 0 else { throw Errno(rawValue: -rc) }
        return T(bytes: buffer.contents)
    }

    /// `VFIO_DEVICE_BIND_IOMMUFD` with `iommufd` (a descriptor of the opener's table).
    /// - Returns: `out_devid`, the DEVICE (vfio-pci) or ACCESS (mdev) object ID; narrow it
    ///   with ``/IOMMUFD/IOMMUFD/objectID(_:as:)`` (or take ``VFIOPCIDevice/iommufdDevice``'s `id`).
    /// - Throws: as the raw command: `EINVAL` negative fd, group file, bound twice, or a
    ///   second cdev bind of the device; `EBUSY` group path open; `EBADF`; `EBADFD`; the
    ///   driver's bind errno.
    public func bindIOMMUFD(_ iommufd: Int32) throws(Errno) -> AnyIOMMUFDObjectID {
        AnyIOMMUFDObjectID(rawValue: try call(VFIODeviceCommand.bindIOMMUFD, VFIODeviceBindIOMMUFD(iommufd: iommufd)).outDevid)
    }

    /// `VFIO_DEVICE_ATTACH_IOMMUFD_PT` in one of the three shapes; a second attach of
    /// the same target replaces.
    /// `ptID` is an ``/IOMMUFD/IOASObjectID``, a ``/IOMMUFD/HWPTObjectID`` or a
    /// ``/IOMMUFD/PageTableObjectID``.
    /// - Returns: `pt_id` out: the attached HWPT (the auto domain's for an IOAS), or for
    ///   an emulated device (mdev) the IOAS itself.
    /// - Throws: `EINVAL` not bound, or the iommufd attach errno (incompatible HWPT,
    ///   PASID compatibility); `EOPNOTSUPP` a shape the driver or vendor lacks;
    ///   `ENOENT` unknown `ptID`; `EBUSY`; `EADDRINUSE`.
    public func attach<PT: IOMMUFDPageTableKind>(_ shape: VFIOAttachShape,
                                                 ptID: IOMMUFDObjectID<PT>) throws(Errno) -> PageTableObjectID {
        switch shape {
        case .rid: try attach(ptID: ptID)
        case .pasid(let pasid): try attach(pasid: pasid, ptID: ptID)
        case .ridAndAllPasids: try attachAllPasids(ptID: ptID)
        }
    }

    /// `VFIO_DEVICE_ATTACH_IOMMUFD_PT` for the RID.
    /// - Returns: `pt_id` out. - Throws: as ``attach(_:ptID:)``.
    public func attach<PT: IOMMUFDPageTableKind>(ptID: IOMMUFDObjectID<PT>) throws(Errno) -> PageTableObjectID {
        PageTableObjectID(rawValue: try call(VFIODeviceCommand.attachIOMMUFDPT,
                                             VFIODeviceAttachIOMMUFDPT(ptId: ptID.rawValue)).ptId)
    }

    /// `VFIO_DEVICE_ATTACH_IOMMUFD_PT` with `VFIO_DEVICE_ATTACH_PASID`.
    /// - Returns: `pt_id` out. - Throws: as ``attach(_:ptID:)``.
    public func attach<PT: IOMMUFDPageTableKind>(pasid: PASID, ptID: IOMMUFDObjectID<PT>) throws(Errno) -> PageTableObjectID {
        PageTableObjectID(rawValue: try call(VFIODeviceCommand.attachIOMMUFDPT,
                                             VFIODeviceAttachIOMMUFDPT(flags: VFIODeviceFlag.attachPasid, ptId: ptID.rawValue,
                                                                       pasid: pasid.rawValue)).ptId)
    }

    /// `VFIO_DEVICE_ATTACH_IOMMUFD_PT` with the model's all-PASIDs flag.
    /// - Returns: `pt_id` out. - Throws: as ``attach(_:ptID:)``.
    public func attachAllPasids<PT: IOMMUFDPageTableKind>(ptID: IOMMUFDObjectID<PT>) throws(Errno) -> PageTableObjectID {
        PageTableObjectID(rawValue: try call(VFIODeviceCommand.attachIOMMUFDPT,
                                             VFIODeviceAttachIOMMUFDPT(flags: VFIODeviceFlag.attachAllPasids,
                                                                       ptId: ptID.rawValue)).ptId)
    }

    /// `VFIO_DEVICE_DETACH_IOMMUFD_PT` for the RID (which also ends an all-PASIDs
    /// attachment).
    /// - Throws: `EINVAL` not bound.
    public func detach() throws(Errno) {
        _ = try call(VFIODeviceCommand.detachIOMMUFDPT, VFIODeviceDetachIOMMUFDPT())
    }

    /// `VFIO_DEVICE_DETACH_IOMMUFD_PT` with `VFIO_DEVICE_DETACH_PASID`.
    /// - Throws: `EINVAL` not bound; `EOPNOTSUPP` driver without PASID support.
    public func detach(pasid: PASID) throws(Errno) {
        _ = try call(VFIODeviceCommand.detachIOMMUFDPT,
                     VFIODeviceDetachIOMMUFDPT(flags: VFIODeviceFlag.detachPasid, pasid: pasid.rawValue))
    }
}
