import IOMMUCore
import IOMMUFD

/// The VFIO device-fd command numbers of `include/uapi/linux/vfio.h` for the cdev
/// (`/dev/vfio/devices/vfioX`) iommufd binding: `_IO(VFIO_TYPE, VFIO_BASE + n)` with
/// `VFIO_TYPE` = `';'` (0x3B) and `VFIO_BASE` = 100.
public enum VFIODeviceCommand {
    /// `VFIO_TYPE` (`';'`).
    public static let type: UInt32 = 0x3B
    /// `VFIO_BASE`.
    public static let base: UInt32 = 100
    /// `_IO(type, nr)`: no direction or size bits, as every VFIO ioctl.
    public static func io(_ nr: UInt32) -> UInt32 { (type << 8) | nr }
    /// `VFIO_DEVICE_BIND_IOMMUFD` (`VFIO_BASE + 18`).
    public static let bindIOMMUFD = io(base + 18)
    /// `VFIO_DEVICE_ATTACH_IOMMUFD_PT` (`VFIO_BASE + 19`).
    public static let attachIOMMUFDPT = io(base + 19)
    /// `VFIO_DEVICE_DETACH_IOMMUFD_PT` (`VFIO_BASE + 20`).
    public static let detachIOMMUFDPT = io(base + 20)
}

/// Flag values of the VFIO device iommufd ioctls.
public enum VFIODeviceFlag {
    /// `VFIO_DEVICE_BIND_FLAG_TOKEN`: `token_uuid_ptr` carries a VF token.
    public static let bindToken: UInt32 = 1 << 0
    /// `VFIO_DEVICE_ATTACH_PASID`: attach `pasid` instead of the RID.
    public static let attachPasid: UInt32 = 1 << 0
    /// Model extension, **not in mainline `vfio.h`**: the third operation of Jason
    /// Gunthorpe's 2021 proposal, "attach page table to RID and all PASIDs". `pt_id`
    /// must be a nested HWPT whose vendor owns the whole PASID table
    /// (`iommu_ops.user_pasid_table`). Mainline never sees this bit from a C program.
    public static let attachAllPasids: UInt32 = 1 << 1
    /// `VFIO_DEVICE_DETACH_PASID`: detach `pasid` instead of the RID.
    public static let detachPasid: UInt32 = 1 << 0
}

/// `struct vfio_device_bind_iommufd`: argument of `VFIO_DEVICE_BIND_IOMMUFD`.
public struct VFIODeviceBindIOMMUFD: UAPIStruct, Hashable {
    /// The C name: `struct vfio_device_bind_iommufd`.
    public static let cName = "vfio_device_bind_iommufd"
    /// `sizeof(struct vfio_device_bind_iommufd)`: 24 bytes.
    public static let size = 24
    /// `minsz` of `vfio_df_ioctl_bind_iommufd`: `offsetofend(out_devid)`.
    public static let minSize = offsetOfEnd("out_devid")
    /// The fields of `struct vfio_device_bind_iommufd` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("argsz", 0, &v.argsz)
        f.field("flags", 4, &v.flags)
        f.field("iommufd", 8, &v.iommufd)
        f.field("out_devid", 12, &v.outDevid)
        f.field("token_uuid_ptr", 16, &v.tokenUUIDPtr)
    }

    /// `argsz`.
    public var argsz: UInt32 = UInt32(Self.size)
    /// `flags`: `VFIO_DEVICE_BIND_FLAG_TOKEN` only.
    public var flags: UInt32 = 0
    /// `iommufd`: the iommufd file descriptor.
    public var iommufd: Int32 = -1
    /// `out_devid`: output, the iommufd DEVICE (or ACCESS) object ID.
    public var outDevid: UInt32 = 0
    /// `token_uuid_ptr`: user pointer to a 16-byte VF token.
    public var tokenUUIDPtr: UInt64 = 0

    /// An all-zero `struct vfio_device_bind_iommufd`.
    public init() {}
    /// A value; `argsz` defaults to `sizeof`.
    public init(argsz: UInt32 = 24, flags: UInt32 = 0, iommufd: Int32 = -1, outDevid: UInt32 = 0,
                tokenUUIDPtr: UInt64 = 0) {
        self.argsz = argsz
        self.flags = flags
        self.iommufd = iommufd
        self.outDevid = outDevid
        self.tokenUUIDPtr = tokenUUIDPtr
    }
}

/// `struct vfio_device_attach_iommufd_pt`: argument of `VFIO_DEVICE_ATTACH_IOMMUFD_PT`;
/// `pasid` is read only with `VFIO_DEVICE_ATTACH_PASID`.
public struct VFIODeviceAttachIOMMUFDPT: UAPIStruct, Hashable {
    /// The C name: `struct vfio_device_attach_iommufd_pt`.
    public static let cName = "vfio_device_attach_iommufd_pt"
    /// `sizeof(struct vfio_device_attach_iommufd_pt)`: 16 bytes.
    public static let size = 16
    /// `minsz` of `vfio_df_ioctl_attach_pt`: `offsetofend(pt_id)`.
    public static let minSize = offsetOfEnd("pt_id")
    /// The fields of `struct vfio_device_attach_iommufd_pt` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("argsz", 0, &v.argsz)
        f.field("flags", 4, &v.flags)
        f.field("pt_id", 8, &v.ptId)
        f.field("pasid", 12, &v.pasid)
    }

    /// `argsz`.
    public var argsz: UInt32 = UInt32(Self.size)
    /// `flags`: `VFIO_DEVICE_ATTACH_PASID`.
    public var flags: UInt32 = 0
    /// `pt_id`: IOAS or HWPT on input; the attached HWPT on output.
    public var ptId: UInt32 = 0
    /// `pasid`.
    public var pasid: UInt32 = 0

    /// An all-zero `struct vfio_device_attach_iommufd_pt`.
    public init() {}
    /// A value; `argsz` defaults to `sizeof`.
    public init(argsz: UInt32 = 16, flags: UInt32 = 0, ptId: UInt32 = 0, pasid: UInt32 = 0) {
        self.argsz = argsz
        self.flags = flags
        self.ptId = ptId
        self.pasid = pasid
    }
}

/// `struct vfio_device_detach_iommufd_pt`: argument of `VFIO_DEVICE_DETACH_IOMMUFD_PT`;
/// `pasid` is read only with `VFIO_DEVICE_DETACH_PASID`.
public struct VFIODeviceDetachIOMMUFDPT: UAPIStruct, Hashable {
    /// The C name: `struct vfio_device_detach_iommufd_pt`.
    public static let cName = "vfio_device_detach_iommufd_pt"
    /// `sizeof(struct vfio_device_detach_iommufd_pt)`: 12 bytes.
    public static let size = 12
    /// `minsz` of `vfio_df_ioctl_detach_pt`: `offsetofend(flags)`.
    public static let minSize = offsetOfEnd("flags")
    /// The fields of `struct vfio_device_detach_iommufd_pt` in layout order: C name, byte offset, storage.
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("argsz", 0, &v.argsz)
        f.field("flags", 4, &v.flags)
        f.field("pasid", 8, &v.pasid)
    }

    /// `argsz`.
    public var argsz: UInt32 = UInt32(Self.size)
    /// `flags`: `VFIO_DEVICE_DETACH_PASID`.
    public var flags: UInt32 = 0
    /// `pasid`.
    public var pasid: UInt32 = 0

    /// An all-zero `struct vfio_device_detach_iommufd_pt`.
    public init() {}
    /// A value; `argsz` defaults to `sizeof`.
    public init(argsz: UInt32 = 12, flags: UInt32 = 0, pasid: UInt32 = 0) {
        self.argsz = argsz
        self.flags = flags
        self.pasid = pasid
    }
}
