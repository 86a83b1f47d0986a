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

/// `struct vfio_device_bind_iommufd` (24 bytes): `argsz` @0, `flags` @4, `iommufd`
/// (s32) @8, `out_devid` @12, `token_uuid_ptr` @16. `minsz` is `offsetofend(out_devid)`.
public struct VFIODeviceBindIOMMUFD: UAPIStruct, Hashable {
    /// `sizeof(struct vfio_device_bind_iommufd)`.
    public static let size = 24
    /// `offsetofend(struct vfio_device_bind_iommufd, out_devid)`.
    public static let minSize = 16
    /// `argsz`.
    public var argsz: UInt32
    /// `flags`: `VFIO_DEVICE_BIND_FLAG_TOKEN` only.
    public var flags: UInt32
    /// `iommufd`: the iommufd file descriptor.
    public var iommufd: Int32
    /// `out_devid`: output, the iommufd DEVICE (or ACCESS) object ID.
    public var outDevid: UInt32
    /// `token_uuid_ptr`: user pointer to a 16-byte VF token.
    public var tokenUUIDPtr: UInt64
    /// A value; `argsz` defaults to `sizeof`.
    public init(argsz: UInt32 = 24, flags: UInt32 = 0, iommufd: Int32 = -1, outDevid: UInt32 = 0,
                tokenUUIDPtr: UInt64 = 0) {
        self.argsz = argsz
        self.flags = flags
        self.iommufd = iommufd
        self.outDevid = outDevid
        self.tokenUUIDPtr = tokenUUIDPtr
    }
    /// Decodes the fields at their offsets.
    public init(_ b: UAPIBytes) {
        argsz = b.u32(0); flags = b.u32(4); iommufd = b.s32(8); outDevid = b.u32(12); tokenUUIDPtr = b.u64(16)
    }
    /// Writes the fields at their offsets.
    public func encode(into b: inout UAPIBytes) {
        b.setU32(0, argsz); b.setU32(4, flags); b.setS32(8, iommufd); b.setU32(12, outDevid); b.setU64(16, tokenUUIDPtr)
    }
}

/// `struct vfio_device_attach_iommufd_pt` (16 bytes): `argsz` @0, `flags` @4, `pt_id`
/// @8, `pasid` @12. `minsz` is `offsetofend(pt_id)`; `pasid` is read only with
/// `VFIO_DEVICE_ATTACH_PASID`.
public struct VFIODeviceAttachIOMMUFDPT: UAPIStruct, Hashable {
    /// `sizeof(struct vfio_device_attach_iommufd_pt)`.
    public static let size = 16
    /// `offsetofend(struct vfio_device_attach_iommufd_pt, pt_id)`.
    public static let minSize = 12
    /// `argsz`.
    public var argsz: UInt32
    /// `flags`: `VFIO_DEVICE_ATTACH_PASID`.
    public var flags: UInt32
    /// `pt_id`: IOAS or HWPT on input; the attached HWPT on output.
    public var ptId: UInt32
    /// `pasid`.
    public var pasid: UInt32
    /// A value; `argsz` defaults to `sizeof`.
    public init(argsz: UInt32 = 16, flags: UInt32 = 0, ptId: UInt32 = 0, pasid: UInt32 = 0) {
        self.argsz = argsz
        self.flags = flags
        self.ptId = ptId
        self.pasid = pasid
    }
    /// Decodes the fields at their offsets.
    public init(_ b: UAPIBytes) { argsz = b.u32(0); flags = b.u32(4); ptId = b.u32(8); pasid = b.u32(12) }
    /// Writes the fields at their offsets.
    public func encode(into b: inout UAPIBytes) {
        b.setU32(0, argsz); b.setU32(4, flags); b.setU32(8, ptId); b.setU32(12, pasid)
    }
}

/// `struct vfio_device_detach_iommufd_pt` (12 bytes): `argsz` @0, `flags` @4, `pasid`
/// @8. `minsz` is `offsetofend(flags)`; `pasid` is read only with
/// `VFIO_DEVICE_DETACH_PASID`.
public struct VFIODeviceDetachIOMMUFDPT: UAPIStruct, Hashable {
    /// `sizeof(struct vfio_device_detach_iommufd_pt)`.
    public static let size = 12
    /// `offsetofend(struct vfio_device_detach_iommufd_pt, flags)`.
    public static let minSize = 8
    /// `argsz`.
    public var argsz: UInt32
    /// `flags`: `VFIO_DEVICE_DETACH_PASID`.
    public var flags: UInt32
    /// `pasid`.
    public var pasid: UInt32
    /// A value; `argsz` defaults to `sizeof`.
    public init(argsz: UInt32 = 12, flags: UInt32 = 0, pasid: UInt32 = 0) {
        self.argsz = argsz
        self.flags = flags
        self.pasid = pasid
    }
    /// Decodes the fields at their offsets.
    public init(_ b: UAPIBytes) { argsz = b.u32(0); flags = b.u32(4); pasid = b.u32(8) }
    /// Writes the fields at their offsets.
    public func encode(into b: inout UAPIBytes) { b.setU32(0, argsz); b.setU32(4, flags); b.setU32(8, pasid) }
}
