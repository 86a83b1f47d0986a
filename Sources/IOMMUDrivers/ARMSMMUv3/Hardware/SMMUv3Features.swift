import IOMMUCore

/// The features an SMMUv3 implements, as the driver records them from the ID registers
/// (`ARM_SMMU_FEAT_*` in `arm-smmu-v3.h`, set by `arm_smmu_device_hw_probe`).
public struct SMMUv3Features: OptionSet, Hashable, Sendable {
    /// The raw bits (the kernel's values).
    public let rawValue: UInt32
    /// Wraps raw bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `ARM_SMMU_FEAT_2_LVL_STRTAB`: two-level stream tables (IDR0.ST_LEVEL).
    public static let twoLevelStreamTable = SMMUv3Features(rawValue: 1 << 0)
    /// `ARM_SMMU_FEAT_2_LVL_CDTAB`: two-level CD tables (IDR0.CD2L).
    public static let twoLevelCDTable = SMMUv3Features(rawValue: 1 << 1)
    /// `ARM_SMMU_FEAT_PRI`: a PRI queue for PCIe page requests (IDR0.PRI).
    public static let pri = SMMUv3Features(rawValue: 1 << 4)
    /// `ARM_SMMU_FEAT_ATS`: ATS translation requests (IDR0.ATS).
    public static let ats = SMMUv3Features(rawValue: 1 << 5)
    /// `ARM_SMMU_FEAT_COHERENCY`: coherent table walks and queue accesses (IDR0.COHACC).
    public static let coherency = SMMUv3Features(rawValue: 1 << 8)
    /// `ARM_SMMU_FEAT_TRANS_S1` (IDR0.S1P).
    public static let stage1 = SMMUv3Features(rawValue: 1 << 9)
    /// `ARM_SMMU_FEAT_TRANS_S2` (IDR0.S2P).
    public static let stage2 = SMMUv3Features(rawValue: 1 << 10)
    /// `ARM_SMMU_FEAT_STALLS`: faults may stall transactions (IDR0.STALL_MODEL 0).
    public static let stalls = SMMUv3Features(rawValue: 1 << 11)
    /// `ARM_SMMU_FEAT_STALL_FORCE`: every fault stalls (IDR0.STALL_MODEL 2).
    public static let stallForce = SMMUv3Features(rawValue: 1 << 13)
    /// `ARM_SMMU_FEAT_VAX`: 52-bit input addresses (IDR5.VAX).
    public static let vax = SMMUv3Features(rawValue: 1 << 14)
    /// `ARM_SMMU_FEAT_RANGE_INV`: range invalidation (IDR3.RIL).
    public static let rangeInvalidation = SMMUv3Features(rawValue: 1 << 15)
    /// `ARM_SMMU_FEAT_SVA`: the driver found the SMMU fit to share CPU page tables
    /// (`arm_smmu_sva_supported`); not an ID-register bit.
    public static let sva = SMMUv3Features(rawValue: 1 << 17)
    /// `ARM_SMMU_FEAT_E2H`: EL2-E2H stream world (not modelled: the driver runs at EL1).
    public static let e2h = SMMUv3Features(rawValue: 1 << 18)
    /// `ARM_SMMU_FEAT_NESTING`: stage 1 and stage 2 both present, so nesting parents and
    /// nested domains can be built.
    public static let nesting = SMMUv3Features(rawValue: 1 << 19)
    /// `ARM_SMMU_FEAT_ATTR_TYPES_OVR`: STE SHCFG may override incoming attributes (IDR1).
    public static let attrTypesOverride = SMMUv3Features(rawValue: 1 << 20)
    /// `ARM_SMMU_FEAT_HA`: hardware access-flag update (IDR0.HTTU).
    public static let hardwareAccessFlag = SMMUv3Features(rawValue: 1 << 21)
    /// `ARM_SMMU_FEAT_HD`: hardware dirty-state update (IDR0.HTTU).
    public static let hardwareDirty = SMMUv3Features(rawValue: 1 << 22)
    /// `ARM_SMMU_FEAT_S2FWB`: stage-2 forced write-back (IDR3.FWB).
    public static let s2fwb = SMMUv3Features(rawValue: 1 << 23)
}

/// How an SMMUv3 is built: the hardware parameters the ID registers report. The default is
/// a full-featured coherent SMMU with ATS, PRI, stalls, both stages, 16-bit ASIDs and
/// VMIDs, 20-bit SubstreamIDs, 16-bit StreamIDs, 48-bit output addresses, 4K and 64K
/// granules.
public struct SMMUv3Configuration: Hashable, Sendable {
    /// Hardware features (``SMMUv3Features/sva`` and ``SMMUv3Features/nesting`` are the
    /// driver's conclusions and are ignored here).
    public var features: SMMUv3Features
    /// IDR1.SIDSIZE: StreamID bits (0-32).
    public var sidBits: Int
    /// IDR1.SSIDSIZE: SubstreamID (PASID) bits (0-20).
    public var ssidBits: Int
    /// IDR0.ASID16: 16-bit ASIDs, else 8.
    public var asid16: Bool
    /// IDR0.VMID16: 16-bit VMIDs, else 8.
    public var vmid16: Bool
    /// IDR5.OAS: output address bits (32, 36, 40, 42, 44, 48 or 52).
    public var outputAddressBits: Int
    /// IDR5.GRAN4K, GRAN16K, GRAN64K: the translation granules, as a page-size bitmap of
    /// 4 KiB, 16 KiB and 64 KiB.
    public var granules: UInt64
    /// log2 of the command queue's entries (IDR1.CMDQS).
    public var commandQueueShift: Int
    /// log2 of the event queue's entries (IDR1.EVTQS).
    public var eventQueueShift: Int
    /// log2 of the PRI queue's entries (IDR1.PRIQS).
    public var priQueueShift: Int
    /// How many transactions may be stalled at once (IDR5.STALL_MAX).
    public var stallMax: Int
    /// IIDR: implementer, revision, variant and product.
    public var iidr: UInt32

    /// A configuration; the defaults describe a full-featured SMMU.
    public init(features: SMMUv3Features = SMMUv3Configuration.fullFeatures, sidBits: Int = 16, ssidBits: Int = 20,
                asid16: Bool = true, vmid16: Bool = true, outputAddressBits: Int = 48,
                granules: UInt64 = 1 << 12 | 1 << 16, commandQueueShift: Int = 8, eventQueueShift: Int = 7,
                priQueueShift: Int = 7, stallMax: Int = 64, iidr: UInt32 = 0x43B) {
        self.features = features
        self.sidBits = sidBits
        self.ssidBits = ssidBits
        self.asid16 = asid16
        self.vmid16 = vmid16
        self.outputAddressBits = outputAddressBits
        self.granules = granules
        self.commandQueueShift = commandQueueShift
        self.eventQueueShift = eventQueueShift
        self.priQueueShift = priQueueShift
        self.stallMax = stallMax
        self.iidr = iidr
    }

    /// Both stages, two-level tables, ATS, PRI, stalls, coherency, range invalidation,
    /// attribute override, hardware access flag and dirty state.
    public static let fullFeatures: SMMUv3Features = [
        .twoLevelStreamTable, .twoLevelCDTable, .pri, .ats, .coherency, .stage1, .stage2, .stalls,
        .rangeInvalidation, .attrTypesOverride, .hardwareAccessFlag, .hardwareDirty,
    ]

    /// ASID bits: 16 or 8.
    public var asidBits: Int { asid16 ? 16 : 8 }
    /// VMID bits: 16 or 8.
    public var vmidBits: Int { vmid16 ? 16 : 8 }

    /// The IDR5.OAS encoding of ``outputAddressBits``.
    var oasEncoding: UInt32 {
        switch outputAddressBits {
        case ...32: 0
        case ...36: 1
        case ...40: 2
        case ...42: 3
        case ...44: 4
        case ...48: 5
        default: 6
        }
    }

    /// The ID registers (`ARM_SMMU_IDR0`...`IDR5`, `IIDR`, `AIDR`) as the hardware
    /// reports them: what `arm_smmu_device_hw_probe` reads and what `IOMMU_GET_HW_INFO`
    /// copies to user space.
    public var idRegisters: SMMUv3IDRegisters {
        let f = features
        var idr0: UInt32 = 0
        if f.contains(.stage2) { idr0 |= 1 << 0 }
        if f.contains(.stage1) { idr0 |= 1 << 1 }
        idr0 |= 2 << 2                               // TTF: AArch64 tables
        if f.contains(.coherency) { idr0 |= 1 << 4 }
        if f.contains(.hardwareDirty) { idr0 |= 2 << 6 } else if f.contains(.hardwareAccessFlag) { idr0 |= 1 << 6 }
        if f.contains(.ats) { idr0 |= 1 << 10 }
        if asid16 { idr0 |= 1 << 12 }
        idr0 |= 1 << 13                              // MSI
        if f.contains(.pri) { idr0 |= 1 << 16 }
        if vmid16 { idr0 |= 1 << 18 }
        if f.contains(.twoLevelCDTable) { idr0 |= 1 << 19 }
        idr0 |= 2 << 21                              // TTENDIAN: little-endian
        if f.contains(.stallForce) { idr0 |= 2 << 24 } else if !f.contains(.stalls) { idr0 |= 1 << 24 }
        if f.contains(.twoLevelStreamTable) { idr0 |= 1 << 27 }
        var idr1 = UInt32(sidBits & 0x3F) | UInt32(ssidBits & 0x1F) << 6
        idr1 |= UInt32(priQueueShift & 0x1F) << 11 | UInt32(eventQueueShift & 0x1F) << 16
            | UInt32(commandQueueShift & 0x1F) << 21
        if f.contains(.attrTypesOverride) { idr1 |= 1 << 27 }
        var idr3: UInt32 = 0
        if f.contains(.s2fwb) { idr3 |= 1 << 8 }
        if f.contains(.rangeInvalidation) { idr3 |= 1 << 10 }
        var idr5 = oasEncoding
        if granules & (1 << 12) != 0 { idr5 |= 1 << 4 }
        if granules & (1 << 14) != 0 { idr5 |= 1 << 5 }
        if granules & (1 << 16) != 0 { idr5 |= 1 << 6 }
        if f.contains(.vax) { idr5 |= 1 << 10 }
        idr5 |= UInt32(stallMax & 0xFFFF) << 16
        return SMMUv3IDRegisters(idr: [idr0, idr1, 0, idr3, 0, idr5], iidr: iidr, aidr: 0x2)
    }
}

/// The SMMUv3 ID registers: IDR0-IDR5, IIDR and AIDR (SMMUv3.2: AIDR 0x2), in the order
/// of `struct iommu_hw_info_arm_smmuv3`.
public struct SMMUv3IDRegisters: Hashable, Sendable {
    /// IDR0 ... IDR5 (IDR2 and IDR4 read as zero).
    public let idr: [UInt32]
    /// IIDR.
    public let iidr: UInt32
    /// AIDR.
    public let aidr: UInt32
}
