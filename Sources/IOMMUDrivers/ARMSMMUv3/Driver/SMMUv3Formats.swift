import IOMMUCore

/// The LPAE page tables of SMMUv3 domains and the context-descriptor and stream-table
/// fields that describe them: `arm_smmu_domain_finalise` asks io-pgtable-arm for an
/// `ARM_64_LPAE_S1` or `ARM_64_LPAE_S2` table (`alloc_io_pgtable_ops`) and copies its
/// `arm_lpae_s1_cfg.tcr` / `.mair` into the CD (`arm_smmu_make_s1_cd`) or its
/// `arm_lpae_s2_cfg.vtcr` into the STE (`arm_smmu_make_s2_domain_ste`).
enum SMMUv3Formats {
    /// A domain's table and the register fields for it.
    struct Table {
        let pageTable: IOPageTable
        /// Stage 1: CD.T0SZ, TG0, IRGN0, ORGN0, SH0, IPS.
        let tcr: SMMUv3TCR
        /// Stage 1: CD.MAIR.
        let mair: UInt64
        /// Stage 2: STE.S2T0SZ, S2SL0, S2IR0, S2OR0, S2SH0, S2TG, S2PS.
        let vtcr: SMMUv3STE.VTCR
    }

    /// `vabits_actual`: the arm64 CPU's VA size, the T0SZ an SVA CD gets.
    static var cpuVABits: Int { PageTableFormat.arm64CPU.lpae?.ias ?? 48 }

    /// io-pgtable-arm's walk attributes: a coherent walker uses write-back
    /// write-allocate, inner-shareable walks; another one non-cacheable, outer-shareable
    /// (`ARM_LPAE_TCR_RGN_WBWA` / `_NC`, `ARM_LPAE_TCR_SH_IS` / `_OS`).
    private static func walkAttributes(coherent: Bool) -> (rgn: UInt64, sh: UInt64) {
        coherent ? (1, 3) : (0, 2)
    }

    /// `arm_smmu_domain_finalise` for stage 1: `ARM_64_LPAE_S1` with the SMMU's page
    /// sizes, `ias` (the CPU's VA size, 52 with VAX) and `oas` (the SMMU's IAS); HD for a
    /// dirty-tracking domain (`IO_PGTABLE_QUIRK_ARM_HD`). The table's WARNs go to `warn`.
    /// - Throws: `EINVAL` when io-pgtable refuses the configuration; `ENOMEM`.
    static func stage1(ias: Int, oas: Int, pageSizes: UInt64, coherent: Bool, dirtyTracking: Bool,
                       memory: PhysicalMemory, warn: @escaping @Sendable (Warning) -> Void) throws(Errno) -> Table {
        let format = try PageTableFormat.armLPAE(.stage1, pageSizes: pageSizes, ias: ias, oas: oas,
                                                 quirks: dirtyTracking ? [.armHD] : [])
        guard let c = format.lpae else { throw .invalidArgument }
        let table = try IOPageTable(format: format, memory: memory, warn: warn)
        let (rgn, sh) = walkAttributes(coherent: coherent)
        return Table(pageTable: table, tcr: SMMUv3TCR(t0sz: c.tsz, tg: c.tg, irgn: rgn, orgn: rgn, sh: sh, ips: c.ps),
                     mair: LPAEConfig.mair, vtcr: SMMUv3STE.VTCR(rawValue: 0))
    }

    /// `arm_smmu_domain_finalise` for stage 2: `ARM_64_LPAE_S2` with the SMMU's page
    /// sizes, IAS and OAS; S2FWB for a nesting parent on an SMMU that has it
    /// (`IO_PGTABLE_QUIRK_ARM_S2FWB`).
    /// - Throws: `EINVAL` when io-pgtable refuses the configuration; `ENOMEM`.
    static func stage2(ias: Int, oas: Int, pageSizes: UInt64, coherent: Bool, forcedWriteBack: Bool,
                       memory: PhysicalMemory, warn: @escaping @Sendable (Warning) -> Void) throws(Errno) -> Table {
        let format = try PageTableFormat.armLPAE(.stage2, pageSizes: pageSizes, ias: ias, oas: oas,
                                                 quirks: forcedWriteBack ? [.armS2FWB] : [])
        guard let c = format.lpae else { throw .invalidArgument }
        let table = try IOPageTable(format: format, memory: memory, warn: warn)
        let (rgn, sh) = walkAttributes(coherent: coherent)
        return Table(pageTable: table, tcr: SMMUv3TCR(t0sz: 0, tg: 0, irgn: 0, orgn: 0, sh: 0, ips: 0), mair: 0,
                     vtcr: SMMUv3STE.VTCR(t0sz: c.tsz, sl0: c.sl0, irgn0: rgn, orgn0: rgn, sh0: sh, tg: c.tg, ps: c.ps))
    }

    /// Whether an SVA CD can point TTB0 at a table of `format`: the arm64 CPU's own.
    static func isArm64ProcessTable(_ format: PageTableFormat) -> Bool { format == .arm64CPU }
}

extension SMMUv3Hardware {
    /// The stage-1 format a CD describes (TG0, T0SZ, IPS; an IPS above the SMMU's OAS is
    /// the OAS), nil for a reserved granule or size (C_BAD_CD).
    func stage1Format(_ cd: SMMUv3CD) -> PageTableFormat? {
        guard let granule = LPAEGranule(tg0: cd.tg0), let ips = LPAEConfig.physicalSize(field: cd.ips) else { return nil }
        return try? PageTableFormat.armLPAE(.stage1, granule: granule, ias: 64 - Int(cd.t0sz),
                                            oas: min(ips, configuration.outputAddressBits))
    }

    /// The stage-2 format an STE's VTCR describes (S2TG, S2T0SZ, S2SL0, S2PS; the start
    /// level is 2 - SL0 with a 4K granule, 3 - SL0 with 16K or 64K), nil for a reserved
    /// or inconsistent one (C_BAD_STE).
    func stage2Format(_ vtcr: SMMUv3STE.VTCR) -> PageTableFormat? {
        guard let granule = LPAEGranule(tg0: vtcr.tg), let ps = LPAEConfig.physicalSize(field: vtcr.ps) else { return nil }
        let startLevel = (granule == .size4K ? 2 : 3) - Int(vtcr.sl0)
        guard startLevel >= 0 else { return nil }
        return try? PageTableFormat.armLPAE(.stage2, granule: granule, ias: 64 - Int(vtcr.t0sz),
                                            oas: min(ps, configuration.outputAddressBits), startLevel: startLevel)
    }

    /// The stage-2 translation of `ipa` through `ste`'s table, as the SMMU reads a NESTED
    /// STE's CD table and stage-1 tables: nil on any stage-2 fault.
    func stage2Fetch(ste: SMMUv3STE, ipa: IOVA) -> PhysicalAddress? {
        guard let format = stage2Format(ste.vtcr), walkable(root: ste.s2TableBase, format) else { return nil }
        if case .translated(let pa, _, _) = IOPageTable.walk(memory: memory, format: format, root: ste.s2TableBase,
                                                              iova: ipa, access: .read, setAccessedDirty: false) {
            return pa
        }
        return nil
    }
}
