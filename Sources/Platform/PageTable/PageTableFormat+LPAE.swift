/// The ARM LPAE (VMSAv8-64) formats of io-pgtable-arm (`drivers/iommu/io-pgtable-arm.c`):
/// stage 1 and stage 2, 4K, 16K and 64K granules, IAS/OAS limits, the TTBR1 upper range
/// and the concatenated stage-2 root.
///
/// Two ways to get a format value:
/// - ``PageTableFormat/armLPAE(_:pageSizes:ias:oas:quirks:)`` is the driver's: what
///   `alloc_io_pgtable_ops(ARM_64_LPAE_S1/S2, cfg)` makes of an `io_pgtable_cfg`. It
///   picks the granule from the page sizes, clamps IAS/OAS, computes the levels and
///   concatenates a stage-2 root where the architecture requires it.
/// - ``PageTableFormat/armLPAE(_:granule:ias:oas:startLevel:quirks:)`` is the
///   hardware's: the geometry a context descriptor or stream table entry spells out
///   (TG0, T0SZ, IPS; or S2TG, S2T0SZ, S2SL0, S2PS), for a hardware model's walk.
extension PageTableFormat {
    /// The driver's LPAE format: `alloc_io_pgtable_ops(ARM_64_LPAE_S1 or S2, cfg)` with
    /// `cfg.pgsize_bitmap = pageSizes`, `cfg.ias`, `cfg.oas` and `cfg.quirks`.
    ///
    /// As `arm_lpae_restrict_pgsizes`: the granule is 4 KiB (the machine's `PAGE_SIZE`)
    /// if `pageSizes` has it, else the smallest larger size in it; the page sizes become
    /// those of the granule present in `pageSizes` (4K: 4K, 2M, 1G; 16K: 16K, 32M; 64K:
    /// 64K, 512M and 4T when OAS > 48) and IAS/OAS are clamped to 48 bits (52 with a 64K
    /// granule). As `arm_lpae_alloc_pgtable`: levels = ⌈(IAS - page shift) / (page
    /// shift - 3)⌉ and the root may be smaller than a page. As
    /// `arm_64_lpae_alloc_pgtable_s2`: a stage-2 root is concatenated (one level fewer,
    /// up to 16 root tables side by side) where `arm_lpae_concat_mandatory` says the
    /// architecture requires it: 4K granule starting at level 0 with a 40 or 42-bit OAS,
    /// 16K starting at level 0 with a 48-bit IAS or OAS, 16K starting at level 1 with a
    /// 40-bit OAS.
    /// - Throws: `EINVAL` where the kernel's allocator returns NULL: a quirk the stage
    ///   does not take (stage 1: ``IOPageTableQuirks/armNS``, ``IOPageTableQuirks/armTTBR1``,
    ///   ``IOPageTableQuirks/armHD``, ``IOPageTableQuirks/noWarn``; stage 2:
    ///   ``IOPageTableQuirks/armS2FWB``, ``IOPageTableQuirks/noWarn``), no 4K, 16K or 64K
    ///   granule in `pageSizes`, an OAS the TCR cannot encode (32, 36, 40, 42, 44, 48,
    ///   52), an IAS not above the page shift, or a mandatory concatenation of more than
    ///   16 tables.
    public static func armLPAE(_ stage: LPAEStage, pageSizes: UInt64, ias: Int, oas: Int,
                               quirks: IOPageTableQuirks = []) throws(Errno) -> PageTableFormat {
        guard quirks.isSubset(of: stage.allowedQuirks) else {
            throw .invalidArgument.from("arm_lpae_alloc_pgtable", "quirk bits 0x\(String(quirks.subtracting(stage.allowedQuirks).rawValue, radix: 16)) are not for \(stage)")
        }
        // arm_lpae_restrict_pgsizes
        let pageSize: UInt64 = 4096
        let granuleSize: UInt64
        if pageSizes & pageSize != 0 {
            granuleSize = pageSize
        } else if pageSizes & (pageSize - 1) != 0 {
            granuleSize = 1 << UInt64(63 - (pageSizes & (pageSize - 1)).leadingZeroBitCount)
        } else if pageSizes != 0 {
            granuleSize = 1 << UInt64(pageSizes.trailingZeroBitCount)
        } else {
            granuleSize = 0
        }
        guard let granule = LPAEGranule(rawValue: Int(truncatingIfNeeded: granuleSize)) else {
            throw .invalidArgument.from("arm_lpae_restrict_pgsizes",
                                        "page sizes 0x\(String(pageSizes, radix: 16)) hold no 4K, 16K or 64K granule")
        }
        let maxBits = granule == .size64K ? 52 : 48
        let ias = min(ias, maxBits), oas = min(oas, maxBits)
        let sizes = pageSizes & granule.leafSizes(oas: oas)
        guard ias > 0, oas > 0 else {
            throw .invalidArgument.from("arm_lpae_alloc_pgtable", "IAS \(ias) and OAS \(oas) must be positive")
        }
        // arm_lpae_alloc_pgtable
        let shift = granule.shift, bpl = granule.shift - 3
        let vaBits = ias - shift
        guard vaBits > 0 else {
            throw .invalidArgument.from("arm_lpae_alloc_pgtable", "IAS \(ias) is not above the page shift \(shift)")
        }
        let levels = (vaBits + bpl - 1) / bpl
        var startLevel = 4 - levels
        if stage == .stage2 && Self.lpaeConcatenationMandatory(granule: granule, startLevel: startLevel, ias: ias, oas: oas) {
            let pgdBits = vaBits - bpl * (levels - 1)
            // More than 16 root tables is not a configuration the architecture allows.
            guard pgdBits <= 4 else {
                throw .invalidArgument.from("arm_64_lpae_alloc_pgtable_s2", "IAS \(ias) would concatenate more than 16 root tables")
            }
            startLevel += 1
        }
        return try makeLPAE(stage, granule: granule, ias: ias, oas: oas, startLevel: startLevel, quirks: quirks,
                            pageSizes: sizes)
    }

    /// The hardware's LPAE format: the geometry a translation-table walker derives from
    /// its registers (SMMUv3 CD: TG0, T0SZ, IPS; STE: S2TG, S2T0SZ, S2SL0, S2PS; SMMUv2
    /// context bank TCR/TCR2), for ``IOPageTable/walk(memory:format:root:iova:access:setAccessedDirty:)``.
    /// `startLevel` is the ARM level of the root (0 to 3); nil derives the stage-1 rule
    /// (the lowest level the input size needs). A stage-2 root may index more bits than
    /// a page holds: 2^n tables concatenated, n ≤ 4. Page sizes are every leaf size the
    /// hardware accepts for the granule. No kernel function corresponds; this is the
    /// hardware the kernel programs (the inverse of ``LPAEConfig``'s register fields).
    /// - Throws: `EINVAL` for an IAS that the levels from `startLevel` cannot cover
    ///   (or cover with more than 16 concatenated tables, or a stage-1 root wider than a
    ///   page), an IAS or OAS above 48 bits (52 with a 64K granule), an OAS the IPS/PS
    ///   field cannot encode, or quirks the stage does not take.
    public static func armLPAE(_ stage: LPAEStage, granule: LPAEGranule, ias: Int, oas: Int, startLevel: Int? = nil,
                               quirks: IOPageTableQuirks = []) throws(Errno) -> PageTableFormat {
        let maxBits = granule == .size64K ? 52 : 48
        guard ias > 0, oas > 0, ias <= maxBits, oas <= maxBits else {
            throw .invalidArgument.from("PageTableFormat.armLPAE", "IAS \(ias) and OAS \(oas) must be 1...\(maxBits)")
        }
        let bpl = granule.shift - 3
        let vaBits = ias - granule.shift
        guard vaBits > 0 else {
            throw .invalidArgument.from("PageTableFormat.armLPAE", "IAS \(ias) is not above the page shift \(granule.shift)")
        }
        let level = startLevel ?? 4 - (vaBits + bpl - 1) / bpl
        return try makeLPAE(stage, granule: granule, ias: ias, oas: oas, startLevel: level, quirks: quirks,
                            pageSizes: granule.leafSizes(oas: oas))
    }

    /// Checks the geometry and builds the value.
    private static func makeLPAE(_ stage: LPAEStage, granule: LPAEGranule, ias: Int, oas: Int, startLevel: Int,
                                 quirks: IOPageTableQuirks, pageSizes: UInt64) throws(Errno) -> PageTableFormat {
        guard quirks.isSubset(of: stage.allowedQuirks) else {
            throw .invalidArgument.from("PageTableFormat.armLPAE", "quirk bits 0x\(String(quirks.subtracting(stage.allowedQuirks).rawValue, radix: 16)) are not for \(stage)")
        }
        guard LPAEConfig.physicalSizeField(bits: oas) != nil else {
            throw .invalidArgument.from("PageTableFormat.armLPAE", "OAS \(oas) has no IPS/PS encoding")
        }
        guard (0...3).contains(startLevel) else {
            throw .invalidArgument.from("PageTableFormat.armLPAE", "start level \(startLevel) is not 0...3")
        }
        let bpl = granule.shift - 3
        let rootBits = ias - (granule.shift + bpl * (3 - startLevel))
        guard rootBits > 0, rootBits <= bpl + (stage == .stage2 ? 4 : 0) else {
            throw .invalidArgument.from("PageTableFormat.armLPAE",
                                        "IAS \(ias) does not fit the levels from start level \(startLevel)")
        }
        let config = LPAEConfig(granule: granule, ias: ias, oas: oas, startLevel: startLevel,
                                concatenatedTables: rootBits > bpl ? 1 << (rootBits - bpl) : 1, quirks: quirks)
        // A leaf size whose level is above the root cannot be mapped.
        let levels = 4 - startLevel
        var sizes: UInt64 = 0
        for level in 1...min(levels, 3) { sizes |= 1 << UInt64(granule.shift + bpl * (level - 1)) }
        return PageTableFormat(lpaeKind: stage == .stage1 ? .armLPAEStage1 : .armLPAEStage2, config: config,
                               pageSizes: pageSizes & sizes)
    }

    /// `arm_lpae_concat_mandatory`: the stage-2 configurations where the architecture
    /// requires the root to be concatenated tables one level down.
    static func lpaeConcatenationMandatory(granule: LPAEGranule, startLevel: Int, ias: Int, oas: Int) -> Bool {
        switch (granule, startLevel) {
        case (.size16K, 0): oas == 48 || ias == 48
        case (.size4K, 0): oas == 40 || oas == 42
        case (.size16K, 1): oas == 40
        default: false
        }
    }

    /// The arm64 CPU's page table as the machine's processes use it: stage 1, 4K
    /// granule, 48-bit VA (TTBR0, four levels from level 0), 48-bit PA. It is the CPU's
    /// own table, not an io-pgtable, so it never WARNs (``IOPageTableQuirks/noWarn``).
    public static let arm64CPU: PageTableFormat = {
        do {
            return try armLPAE(.stage1, pageSizes: 1 << 12 | 1 << 21 | 1 << 30, ias: 48, oas: 48, quirks: .noWarn)
        } catch {
            preconditionFailure("the arm64 CPU format is a valid LPAE configuration")
        }
    }()
}

/// The translation stage of an LPAE table (`ARM_64_LPAE_S1` / `ARM_64_LPAE_S2`).
public enum LPAEStage: Hashable, Sendable {
    /// Stage 1: VA to IPA/PA, with AP/UXN/PXN permissions and MAIR attribute indices.
    case stage1
    /// Stage 2: IPA to PA, with S2AP (HAP) permissions and MemAttr.
    case stage2

    /// The quirks `arm_64_lpae_alloc_pgtable_s1` / `_s2` accept.
    var allowedQuirks: IOPageTableQuirks {
        switch self {
        case .stage1: [.armNS, .armTTBR1, .armOuterWBWA, .armHD, .noWarn]
        case .stage2: [.armS2FWB, .noWarn]
        }
    }
}

/// An LPAE translation granule: the page size and table size.
public enum LPAEGranule: Int, Hashable, Sendable, CaseIterable {
    /// 4 KiB pages, 512-entry tables; blocks of 2 MiB and 1 GiB.
    case size4K = 4096
    /// 16 KiB pages, 2048-entry tables; blocks of 32 MiB.
    case size16K = 16384
    /// 64 KiB pages, 8192-entry tables; blocks of 512 MiB (and 4 TiB with a 52-bit OAS).
    case size64K = 65536

    /// The granule in bytes.
    public var size: Int { rawValue }
    /// log2 of the granule: 12, 14 or 16.
    public var shift: Int { rawValue.trailingZeroBitCount }

    /// The leaf sizes io-pgtable-arm allows for this granule (`arm_lpae_restrict_pgsizes`).
    public func leafSizes(oas: Int) -> UInt64 {
        switch self {
        case .size4K: 1 << 12 | 1 << 21 | 1 << 30
        case .size16K: 1 << 14 | 1 << 25
        case .size64K: 1 << 16 | 1 << 29 | (oas > 48 ? 1 << 42 : 0)
        }
    }

    /// The TCR.TG0 / CD.TG0 / VTCR.TG0 encoding (`ARM_LPAE_TCR_TG0_*`): 4K 0, 64K 1, 16K 2.
    public var tg0: UInt64 {
        switch self {
        case .size4K: 0
        case .size64K: 1
        case .size16K: 2
        }
    }

    /// The TCR.TG1 encoding (`ARM_LPAE_TCR_TG1_*`): 16K 1, 4K 2, 64K 3.
    public var tg1: UInt64 {
        switch self {
        case .size16K: 1
        case .size4K: 2
        case .size64K: 3
        }
    }

    /// The granule a TG0 field selects, nil for the reserved value 3.
    public init?(tg0: UInt64) {
        switch tg0 {
        case 0: self = .size4K
        case 1: self = .size64K
        case 2: self = .size16K
        default: return nil
        }
    }

    /// The granule a TG1 field selects, nil for the reserved value 0.
    public init?(tg1: UInt64) {
        switch tg1 {
        case 1: self = .size16K
        case 2: self = .size4K
        case 3: self = .size64K
        default: return nil
        }
    }
}

/// Page-table quirks, the kernel's `io_pgtable_cfg.quirks` (`IO_PGTABLE_QUIRK_*`, bit for
/// bit), those the LPAE formats take.
public struct IOPageTableQuirks: OptionSet, Hashable, Sendable {
    /// The raw flag word.
    public let rawValue: UInt32
    /// Wraps a raw flag word.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `IO_PGTABLE_QUIRK_ARM_NS`: set NS in stage-1 leaves and NSTable in table entries.
    public static let armNS = IOPageTableQuirks(rawValue: 1 << 0)
    /// `IO_PGTABLE_QUIRK_ARM_TTBR1`: the table serves the upper half of a split address
    /// space (TTBR1): its input addresses are the sign-extended range
    /// [2^64 - 2^IAS, 2^64), and the TCR granule field is TG1's encoding.
    public static let armTTBR1 = IOPageTableQuirks(rawValue: 1 << 5)
    /// `IO_PGTABLE_QUIRK_ARM_OUTER_WBWA`: outer write-back walks for a non-coherent
    /// walker (a TCR setting; no entry changes).
    public static let armOuterWBWA = IOPageTableQuirks(rawValue: 1 << 6)
    /// `IO_PGTABLE_QUIRK_ARM_HD`: stage-1 dirty tracking: writable leaves get DBM, and
    /// hardware dirty management marks a write by clearing AP[2].
    public static let armHD = IOPageTableQuirks(rawValue: 1 << 7)
    /// `IO_PGTABLE_QUIRK_ARM_S2FWB`: stage-2 MemAttr in the FWB encoding.
    public static let armS2FWB = IOPageTableQuirks(rawValue: 1 << 8)
    /// `IO_PGTABLE_QUIRK_NO_WARN`: a map over an existing mapping, or an unmap of a hole,
    /// fails quietly instead of with a WARN (for GPU drivers whose user space controls
    /// the addresses).
    public static let noWarn = IOPageTableQuirks(rawValue: 1 << 9)
}

/// An LPAE table's configuration, the LPAE part of `io_pgtable_cfg` after
/// `alloc_io_pgtable_ops`: what the driver programs into a context descriptor, a stream
/// table entry or a context bank.
public struct LPAEConfig: Hashable, Sendable {
    /// The translation granule.
    public let granule: LPAEGranule
    /// Input address bits (`cfg->ias`, clamped).
    public let ias: Int
    /// Output address bits (`cfg->oas`, clamped).
    public let oas: Int
    /// The ARM level of the root table, 0 to 3 (`data->start_level`).
    public let startLevel: Int
    /// Tables concatenated at the stage-2 root (2 to 16), or 1.
    public let concatenatedTables: Int
    /// The quirks the table was built with.
    public let quirks: IOPageTableQuirks

    /// TCR.T0SZ / T1SZ, CD.T0SZ, VTCR.T0SZ (STE S2T0SZ): 64 - IAS (`tcr.tsz`).
    public var tsz: UInt64 { UInt64(64 - ias) }
    /// The TCR granule field: TG1's encoding for a TTBR1 table, else TG0's (`tcr.tg`).
    public var tg: UInt64 { quirks.contains(.armTTBR1) ? granule.tg1 : granule.tg0 }
    /// TCR.IPS / VTCR.PS (CD IPS, STE S2PS): the OAS encoding (`tcr.ips`, `vtcr.ps`).
    public var ps: UInt64 { LPAEConfig.physicalSizeField(bits: oas)! }
    /// VTCR.SL0 (STE S2SL0): the stage-2 start level, encoded per granule (`vtcr.sl`):
    /// with 4K, 2 - start level; with 16K and 64K, 3 - start level.
    public var sl0: UInt64 { ~UInt64(startLevel + (granule == .size4K ? 1 : 0)) & 3 }

    /// The MAIR value io-pgtable programs for stage 1 (`arm_lpae_s1_cfg.mair`): index 0
    /// normal non-cacheable (0x44), 1 normal write-back (0xff), 2 device nGnRE (0x04),
    /// 3 inner non-cacheable outer write-back (0xf4). Leaves select 0, 1 or 2 by
    /// `IOMMU_CACHE` / `IOMMU_MMIO`.
    public static let mair: UInt64 = 0x44 | 0xFF << 8 | 0x04 << 16 | 0xF4 << 24

    /// The IPS/PS field for an output size (`ARM_LPAE_TCR_PS_*`), nil if not encodable.
    public static func physicalSizeField(bits: Int) -> UInt64? {
        switch bits {
        case 32: 0
        case 36: 1
        case 40: 2
        case 42: 3
        case 44: 4
        case 48: 5
        case 52: 6
        default: nil
        }
    }

    /// The output size an IPS/PS field selects, nil for reserved encodings.
    public static func physicalSize(field: UInt64) -> Int? {
        switch field {
        case 0: 32
        case 1: 36
        case 2: 40
        case 3: 42
        case 4: 44
        case 5: 48
        case 6: 52
        default: nil
        }
    }
}

/// LPAE descriptor bits (Arm ARM D8.3; io-pgtable-arm's `ARM_LPAE_PTE_*`).
@usableFromInline enum LPAE {
    /// Bit 0: the descriptor is valid.
    @inlinable static var valid: UInt64 { 1 << 0 }
    /// Bit 1: table (above the last level) or page (at the last level); clear = block.
    @inlinable static var typeTableBit: UInt64 { 1 << 1 }
    /// Table / page descriptor type, bits 1:0 = 0b11.
    @inlinable static var typeTable: UInt64 { 3 }
    /// Block descriptor type, bits 1:0 = 0b01.
    @inlinable static var typeBlock: UInt64 { 1 }
    /// Stage 1 AttrIndx, bits 4:2: the MAIR index.
    @inlinable static var attrIndexShift: UInt64 { 2 }
    @inlinable static var attrIndexMask: UInt64 { 7 << 2 }
    /// Stage 1 NS, bit 5.
    @inlinable static var ns: UInt64 { 1 << 5 }
    /// Stage 1 AP[1], bit 6: unprivileged (EL0) access allowed.
    @inlinable static var apUnprivileged: UInt64 { 1 << 6 }
    /// Stage 1 AP[2], bit 7: read-only.
    @inlinable static var apReadOnly: UInt64 { 1 << 7 }
    /// Stage 2 S2AP[0], bit 6: reads allowed.
    @inlinable static var hapRead: UInt64 { 1 << 6 }
    /// Stage 2 S2AP[1], bit 7: writes allowed.
    @inlinable static var hapWrite: UInt64 { 1 << 7 }
    /// Stage 2 MemAttr, bits 5:2.
    @inlinable static var memAttrMask: UInt64 { 0xF << 2 }
    @inlinable static var memAttrDevice: UInt64 { 0x1 << 2 }
    @inlinable static var memAttrNonCacheable: UInt64 { 0x5 << 2 }
    @inlinable static var memAttrWriteBackFWB: UInt64 { 0x6 << 2 }
    @inlinable static var memAttrWriteBack: UInt64 { 0xF << 2 }
    /// SH[1:0], bits 9:8: outer shareable (0b10) or inner shareable (0b11).
    @inlinable static var shareableOuter: UInt64 { 2 << 8 }
    @inlinable static var shareableInner: UInt64 { 3 << 8 }
    /// AF, bit 10: the access flag.
    @inlinable static var accessFlag: UInt64 { 1 << 10 }
    /// nG, bit 11: not global (ASID-tagged).
    @inlinable static var notGlobal: UInt64 { 1 << 11 }
    /// Output address bits 47:12 (bits 15:12 carry PA 51:48 with a 64K granule).
    @inlinable static var addressMask: UInt64 { 0x0000_FFFF_FFFF_F000 }
    /// DBM, bit 51: dirty bit modifier (hardware dirty management may clear AP[2]).
    @inlinable static var dbm: UInt64 { 1 << 51 }
    /// PXN, bit 53, and UXN / XN, bit 54 (stage 2: XN[1:0]).
    @inlinable static var pxn: UInt64 { 1 << 53 }
    @inlinable static var uxn: UInt64 { 1 << 54 }
    /// Table descriptors' hierarchical attributes (stage 1): PXNTable 59, UXNTable 60,
    /// APTable[0] 61 (no EL0 access below), APTable[1] 62 (no writes below), NSTable 63.
    @inlinable static var pxnTable: UInt64 { 1 << 59 }
    @inlinable static var uxnTable: UInt64 { 1 << 60 }
    @inlinable static var apTableNoUnprivileged: UInt64 { 1 << 61 }
    @inlinable static var apTableReadOnly: UInt64 { 1 << 62 }
    @inlinable static var nsTable: UInt64 { 1 << 63 }
}

extension PageTableFormat {
    /// `arm_lpae_prot_to_pte` plus the descriptor type (`__arm_lpae_init_pte`): stage 1
    /// sets nG, AP[2] for read-only (else DBM under ``IOPageTableQuirks/armHD``), AP[1]
    /// unless `IOMMU_PRIV`, and the MAIR index (device for `IOMMU_MMIO`, write-back for
    /// `IOMMU_CACHE`, else non-cacheable); stage 2 sets S2AP read/write and MemAttr
    /// (device, write-back or FWB write-back, non-cacheable). Both: SH inner for
    /// `IOMMU_CACHE` else outer, XN for `IOMMU_NOEXEC`, NS under the quirk, AF.
    @inlinable @inline(__always)
    func lpaeLeafBits(prot: IOMMUProt, level: Int) -> UInt64 {
        var pte: UInt64 = level == 1 ? LPAE.typeTable : LPAE.typeBlock
        if kind == .armLPAEStage1 {
            pte |= LPAE.notGlobal
            if prot.contains(.read) && !prot.contains(.write) {
                pte |= LPAE.apReadOnly
            } else if quirks.contains(.armHD) {
                pte |= LPAE.dbm
            }
            if !prot.contains(.priv) { pte |= LPAE.apUnprivileged }
            if prot.contains(.mmio) {
                pte |= 2 << LPAE.attrIndexShift
            } else if prot.contains(.cache) {
                pte |= 1 << LPAE.attrIndexShift
            }
        } else {
            if prot.contains(.read) { pte |= LPAE.hapRead }
            if prot.contains(.write) { pte |= LPAE.hapWrite }
            if prot.contains(.mmio) {
                pte |= LPAE.memAttrDevice
            } else if prot.contains(.cache) {
                pte |= quirks.contains(.armS2FWB) ? LPAE.memAttrWriteBackFWB : LPAE.memAttrWriteBack
            } else {
                pte |= LPAE.memAttrNonCacheable
            }
        }
        pte |= prot.contains(.cache) ? LPAE.shareableInner : LPAE.shareableOuter
        if prot.contains(.noexec) { pte |= LPAE.pxn | LPAE.uxn }
        if quirks.contains(.armNS) { pte |= LPAE.ns }
        return pte | LPAE.accessFlag
    }

    /// The leaf checks of an LPAE walk, in the architecture's fault priority: a
    /// descriptor invalid at its level (a last-level entry must be a page descriptor;
    /// blocks exist only at some levels) is a translation fault; AF clear is an access
    /// flag fault unless the walker manages AF (then it sets it); then the permission
    /// check; a permitted write through a dirty-managing walker clears AP[2] of a stage-1
    /// leaf (the leaf passed the check, so AP[2] was clear or DBM set). Nil = allowed.
    @inlinable @inline(__always)
    func lpaeCheckLeaf(_ pte: UInt64, at slot: UnsafeMutableRawPointer, level: Int, access: WalkAccess,
                       setAccessedDirty: Bool, tablesAny: UInt64) -> PageWalkResult? {
        let valid = level == 1 ? pte & LPAE.typeTableBit != 0
                               : blockLevels &>> UInt64(truncatingIfNeeded: level) & 1 != 0
        guard valid else { return .notPresent(level: level) }
        // Flag updates are compare-and-swaps of the entry the walk read (see `walk`).
        let entry = PageTableEntrySlot(slot)
        var current = pte
        if pte & LPAE.accessFlag == 0 {
            guard setAccessedDirty else { return .accessFlag(level: level) }
            if entry.compareExchange(expected: pte, desired: pte | LPAE.accessFlag).exchanged {
                current = pte | LPAE.accessFlag
            }
        }
        guard lpaePermits(access, tablesAny: tablesAny, leaf: pte, hardwareDirty: setAccessedDirty) else {
            return .permission(level: level)
        }
        if setAccessedDirty && access.contains(.write) && kind == .armLPAEStage1 && current & LPAE.apReadOnly != 0 {
            _ = entry.compareExchange(expected: current, desired: current & ~LPAE.apReadOnly)
        }
        return nil
    }

    /// The LPAE permission check of a walk. Stage 1: a write needs AP[2] clear, or DBM
    /// set when the walker manages dirty state, and no APTable[1] above; an unprivileged
    /// request needs AP[1] and no APTable[0] above; a fetch needs UXN (unprivileged) or
    /// PXN (privileged) clear in the leaf and the table bits above, and a privileged
    /// fetch is never allowed from memory unprivileged code may write. Stage 2: reads
    /// need S2AP[0], writes S2AP[1], fetches XN clear; there is no privilege level.
    @inlinable @inline(__always)
    func lpaePermits(_ access: WalkAccess, tablesAny: UInt64, leaf: UInt64, hardwareDirty: Bool) -> Bool {
        if kind == .armLPAEStage2 {
            if access.contains(.read) && leaf & LPAE.hapRead == 0 { return false }
            if access.contains(.write) && leaf & LPAE.hapWrite == 0 { return false }
            if access.contains(.execute) && leaf & (LPAE.pxn | LPAE.uxn) != 0 { return false }
            return true
        }
        let user = access.contains(.user)
        if user && (leaf & LPAE.apUnprivileged == 0 || tablesAny & LPAE.apTableNoUnprivileged != 0) { return false }
        let writable = lpaeWritable(tablesAny: tablesAny, leaf: leaf, hardwareDirty: hardwareDirty)
        if access.contains(.write) && !writable { return false }
        if access.contains(.execute) {
            if user {
                if (leaf & LPAE.uxn) | (tablesAny & LPAE.uxnTable) != 0 { return false }
            } else {
                if (leaf & LPAE.pxn) | (tablesAny & LPAE.pxnTable) != 0 { return false }
                if writable && leaf & LPAE.apUnprivileged != 0 { return false }
            }
        }
        return true
    }

    /// Whether a stage-1 leaf allows writes (AP[2] clear, or DBM under hardware dirty
    /// management) and no table above forbids them.
    @inlinable @inline(__always)
    func lpaeWritable(tablesAny: UInt64, leaf: UInt64, hardwareDirty: Bool) -> Bool {
        (leaf & LPAE.apReadOnly == 0 || (hardwareDirty && leaf & LPAE.dbm != 0))
            && tablesAny & LPAE.apTableReadOnly == 0
    }

    /// The LPAE effective permissions: stage 1 read always, write as the walk allows it,
    /// priv without AP[1] (or under APTable[0]), noexec with UXN (or UXNTable), cache for
    /// MAIR index 1, mmio for index 2; stage 2 read and write from S2AP, noexec from XN,
    /// cache for write-back MemAttr, mmio for device.
    @inlinable @inline(__always)
    func lpaeEffectivePermissions(tablesAny: UInt64, leaf: UInt64, hardwareDirty: Bool) -> IOMMUProt {
        var p: IOMMUProt = []
        if kind == .armLPAEStage2 {
            if leaf & LPAE.hapRead != 0 { p.insert(.read) }
            if leaf & LPAE.hapWrite != 0 { p.insert(.write) }
            if leaf & (LPAE.pxn | LPAE.uxn) != 0 { p.insert(.noexec) }
            switch leaf & LPAE.memAttrMask {
            case LPAE.memAttrDevice: p.insert(.mmio)
            case LPAE.memAttrWriteBack, LPAE.memAttrWriteBackFWB: p.insert(.cache)
            default: break
            }
            return p
        }
        p.insert(.read)
        if lpaeWritable(tablesAny: tablesAny, leaf: leaf, hardwareDirty: hardwareDirty) { p.insert(.write) }
        if leaf & LPAE.apUnprivileged == 0 || tablesAny & LPAE.apTableNoUnprivileged != 0 { p.insert(.priv) }
        if (leaf & LPAE.uxn) | (tablesAny & LPAE.uxnTable) != 0 { p.insert(.noexec) }
        switch (leaf & LPAE.attrIndexMask) >> LPAE.attrIndexShift {
        case 1: p.insert(.cache)
        case 2: p.insert(.mmio)
        default: break
        }
        return p
    }
}
