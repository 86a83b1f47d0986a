// The ARM SMMUv3 vendor structures of `include/uapi/linux/iommufd.h`: what
// `IOMMU_GET_HW_INFO` returns for an SMMUv3, the nested-domain data of
// `IOMMU_HWPT_ALLOC` and the vSMMU's invalidation entries of `IOMMU_HWPT_INVALIDATE`.
// Vendor data crosses iommufd as these byte images.

/// `struct iommu_hw_info_arm_smmuv3` (`IOMMU_HW_INFO_TYPE_ARM_SMMUV3`): the SMMU's ID
/// registers, which a VMM uses to build the guest's vSMMU.
public struct IOMMUHWInfoARMSMMUv3: UAPIRecord, Hashable {
    /// The kernel's name for the structure.
    public static let cName = "iommu_hw_info_arm_smmuv3"
    /// `sizeof(struct iommu_hw_info_arm_smmuv3)`.
    public static let size = 40
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.field("flags", 0, &v.flags)
        f.field("__reserved", 4, &v.reserved)
        f.array("idr", 8, count: 6, &v.idr)
        f.field("iidr", 32, &v.iidr)
        f.field("aidr", 36, &v.aidr)
    }

    /// `flags`: none defined.
    public var flags: UInt32 = 0
    /// `__reserved`: must be 0.
    public var reserved: UInt32 = 0
    /// `idr`: IDR0 ... IDR5.
    public var idr: [UInt32] = Array(repeating: 0, count: 6)
    /// `iidr`: implementation identification.
    public var iidr: UInt32 = 0
    /// `aidr`: architecture version.
    public var aidr: UInt32 = 0

    /// An all-zero structure.
    public init() {}
    /// The structure for these ID registers.
    public init(idr: [UInt32], iidr: UInt32, aidr: UInt32) {
        self.idr = idr
        self.iidr = iidr
        self.aidr = aidr
    }
}

/// `struct iommu_hwpt_arm_smmuv3` (`IOMMU_HWPT_DATA_ARM_SMMUV3`): the guest's virtual
/// STE for a nested domain, two little-endian words (`ste[0]`, `ste[1]`).
public struct IOMMUHWPTARMSMMUv3: UAPIRecord, Hashable {
    /// The kernel's name for the structure.
    public static let cName = "iommu_hwpt_arm_smmuv3"
    /// `sizeof(struct iommu_hwpt_arm_smmuv3)`.
    public static let size = 16
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.array("ste", 0, count: 2, &v.ste)
    }

    /// `ste`: words 0 and 1 of the vSTE.
    public var ste: [UInt64] = [0, 0]

    /// An all-zero structure.
    public init() {}
    /// The structure for a vSTE.
    public init(ste0: UInt64, ste1: UInt64) { ste = [ste0, ste1] }
}

/// `struct iommu_viommu_arm_smmuv3_invalidate` (`IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3`):
/// one entry of `IOMMU_HWPT_INVALIDATE` on a vSMMU, a guest's command-queue entry as the
/// guest wrote it: two little-endian words, the opcode in bits 7:0 of `cmd[0]`. The kernel
/// accepts only the guest-safe invalidations (`arm_vsmmu_convert_user_cmd`).
public struct IOMMUVIOMMUARMSMMUv3Invalidate: UAPIRecord, Hashable {
    /// The kernel's name for the structure.
    public static let cName = "iommu_viommu_arm_smmuv3_invalidate"
    /// `sizeof(struct iommu_viommu_arm_smmuv3_invalidate)`: the `entry_len` user space
    /// passes.
    public static let size = 16
    @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
        f.array("cmd", 0, count: 2, &v.cmd)
    }

    /// `cmd`: words 0 and 1 of the command.
    public var cmd: [UInt64] = [0, 0]

    /// An all-zero structure.
    public init() {}
    /// The entry for a command's two words.
    public init(cmd0: UInt64, cmd1: UInt64) { cmd = [cmd0, cmd1] }
}
