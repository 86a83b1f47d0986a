import IOMMUCore

/// The capability (`DMAR_CAP_REG`, `cap_*`) and extended capability (`DMAR_ECAP_REG`,
/// `ecap_*`) bits of one VT-d unit that the model uses, decoded into fields.
public struct VTdCapabilities: Hashable, Sendable {
    /// Number of domain IDs the unit supports (`cap_ndoms`): DIDs are `0 ..< ndoms`.
    public var ndoms: Int
    /// Supported second-stage table depths (`cap_sagaw`): bit 1 = 3 levels (39-bit),
    /// bit 2 = 4 levels (48-bit), bit 3 = 5 levels (57-bit).
    public var sagaw: UInt8
    /// Maximum guest address width in bits (`cap_mgaw`).
    public var mgaw: Int
    /// Caching mode (`cap_caching_mode`): the hardware may cache not-present and invalid
    /// entries, so software must invalidate after making an entry present.
    public var cachingMode: Bool
    /// Write-buffer flushing required (`cap_rwbf`).
    public var rwbf: Bool
    /// Page-selective IOTLB invalidation supported (`cap_pgsel_inv`).
    public var pageSelectiveInvalidation: Bool
    /// Largest address mask a page-selective invalidation accepts (`cap_max_amask_val`).
    public var maxAddressMask: Int
    /// Second-stage large pages (`cap_super_page_val`): bit 0 = 2 MiB, bit 1 = 1 GiB.
    public var secondStageLargePages: UInt8
    /// First-stage 1 GiB pages (`cap_fl1gp_support`).
    public var firstStage1G: Bool
    /// First-stage 5-level paging (`cap_fl5lp_support`).
    public var firstStage5Level: Bool
    /// Scalable-mode translation (`ecap_smts`).
    public var scalableMode: Bool
    /// First-stage translation (`ecap_flts`).
    public var firstStage: Bool
    /// Second-stage translation (`ecap_slts`).
    public var secondStage: Bool
    /// Nested translation (`ecap_nest`).
    public var nesting: Bool
    /// PASID support (`ecap_pasid`).
    public var pasid: Bool
    /// PASID width in bits (`ecap_pss` + 1); 20 on every unit the model builds.
    public var pasidBits: Int
    /// Page requests (`ecap_prs`).
    public var pageRequests: Bool
    /// Device-TLB (ATS) support (`ecap_dev_iotlb_support`).
    public var deviceTLB: Bool
    /// Coherent page walks (`ecap_coherent`): no clflush needed after table writes.
    public var coherent: Bool
    /// Snoop control (`ecap_sc_support`).
    public var snoopControl: Bool
    /// Second-stage access/dirty bits (`ecap_slads`).
    public var secondStageAD: Bool
    /// The unit can run SVA (`VTD_FLAG_SVM_CAPABLE`: PASID, PRS, FLTS, 1 GiB FL pages).
    public var svmCapable: Bool

    /// A modern scalable-mode unit: 64 Ki DIDs, 4- and 5-level second stage, every
    /// feature on, caching mode off.
    public init(ndoms: Int = 1 << 16, sagaw: UInt8 = 0b0110, mgaw: Int = 57, cachingMode: Bool = false,
                rwbf: Bool = false, pageSelectiveInvalidation: Bool = true, maxAddressMask: Int = 18,
                secondStageLargePages: UInt8 = 0b11, firstStage1G: Bool = true, firstStage5Level: Bool = true,
                scalableMode: Bool = true, firstStage: Bool = true, secondStage: Bool = true, nesting: Bool = true,
                pasid: Bool = true, pasidBits: Int = 20, pageRequests: Bool = true, deviceTLB: Bool = true,
                coherent: Bool = true, snoopControl: Bool = true, secondStageAD: Bool = true, svmCapable: Bool = true) {
        self.ndoms = ndoms
        self.sagaw = sagaw
        self.mgaw = mgaw
        self.cachingMode = cachingMode
        self.rwbf = rwbf
        self.pageSelectiveInvalidation = pageSelectiveInvalidation
        self.maxAddressMask = maxAddressMask
        self.secondStageLargePages = secondStageLargePages
        self.firstStage1G = firstStage1G
        self.firstStage5Level = firstStage5Level
        self.scalableMode = scalableMode
        self.firstStage = firstStage
        self.secondStage = secondStage
        self.nesting = nesting
        self.pasid = pasid
        self.pasidBits = pasidBits
        self.pageRequests = pageRequests
        self.deviceTLB = deviceTLB
        self.coherent = coherent
        self.snoopControl = snoopControl
        self.secondStageAD = secondStageAD
        self.svmCapable = svmCapable
    }

    /// The PASID space of the unit (`iommu_device.max_pasids`): `1 << pasidBits`, or 0.
    public var maxPasids: UInt32 { pasid ? UInt32(1) << UInt32(pasidBits) : 0 }

    /// The deepest second-stage table the unit walks that fits MGAW (`iommu->agaw`):
    /// 3, 4 or 5 levels, or nil when SAGAW offers none.
    public var secondStageLevels: Int? {
        for levels in stride(from: 5, through: 3, by: -1)
        where sagaw & (1 << UInt8(levels - 2)) != 0 && 12 + 9 * levels <= max(mgaw, 39) {
            return levels
        }
        return nil
    }
}
