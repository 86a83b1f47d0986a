import IOMMUCore

extension ARMSMMUv2 {
    /// `arm_smmu_init_context_bank`: the driver's copy of bank `idx` for `domain`'s
    /// stage-1 AArch64 context: TCR from the table (`arm_smmu_lpae_tcr`), TCR2 with the
    /// output size and 16-bit ASIDs, both TTBRs carrying the ASID and the table's base
    /// in TTBR1 (TTBR1 quirk) or TTBR0, MAIR. The caller holds the driver lock.
    func initContextBank(_ idx: Int, domain: ARMSMMUv2Domain, cfg: IOPgtableCfg) {
        var cb = ContextBankSoftware()
        cb.domain = domain
        cb.tcr = (Self.lpaeTCR(cfg), Self.lpaeTCR2(cfg) | SMMUv2Field.tcr2AS)
        let asid = UInt64(domain.cfg.asid) << SMMUv2Field.ttbrASIDShift
        cb.ttbr = (asid, asid)
        if cfg.quirks.contains(.armTTBR1) { cb.ttbr.1 |= cfg.ttbr.rawValue } else { cb.ttbr.0 |= cfg.ttbr.rawValue }
        cb.mair = (UInt32(truncatingIfNeeded: cfg.mair), UInt32(truncatingIfNeeded: cfg.mair >> 32))
        cbs[idx] = cb
    }

    /// `arm_smmu_lpae_tcr`: TG0, SH0, ORGN0, IRGN0 and T0SZ from the table; for a TTBR1
    /// table the fields move up to the TTBR1 half and TTBR0 walks are disabled (EPD0),
    /// otherwise TTBR1 walks are (EPD1).
    public static func lpaeTCR(_ cfg: IOPgtableCfg) -> UInt32 {
        var tcr = UInt32(truncatingIfNeeded: cfg.tcr.tg) << 14 | UInt32(truncatingIfNeeded: cfg.tcr.sh) << 12
            | UInt32(truncatingIfNeeded: cfg.tcr.orgn) << 10 | UInt32(truncatingIfNeeded: cfg.tcr.irgn) << 8
            | UInt32(truncatingIfNeeded: cfg.tcr.tsz) & 0x3F
        if cfg.quirks.contains(.armTTBR1) {
            tcr = (tcr << 16) & ~SMMUv2Field.tcrA1
            tcr |= SMMUv2Field.tcrEPD0
        } else {
            tcr |= SMMUv2Field.tcrEPD1
        }
        return tcr
    }

    /// `arm_smmu_lpae_tcr2`: the output size (PASIZE) and SEP.
    public static func lpaeTCR2(_ cfg: IOPgtableCfg) -> UInt32 {
        UInt32(truncatingIfNeeded: cfg.tcr.ips) & SMMUv2Field.tcr2PASizeMask | SMMUv2Field.tcr2SEPUpstream
    }

    /// `arm_smmu_write_context_bank`: program bank `idx` from the driver's copy: CBA2R
    /// (AArch64), CBAR (stage 1, stage 2 bypass), TCR2 and TCR before the TTBRs, MAIR,
    /// then SCTLR (translation, fault reporting and interrupt, access flag, TEX remap,
    /// private ASIDs), through the implementation's `write_sctlr`. An unassigned bank is
    /// only disabled. The caller holds the driver lock and the hardware lock.
    func writeContextBank(_ idx: Int) {
        let cb = cbs[idx]
        let page = SMMUv2Page.contextBank(idx)
        guard cb.domain != nil else {
            smmu.write32(page, SMMUv2Reg.sctlr, 0)
            return
        }
        smmu.write32(.global1, SMMUv2Reg.cba2r(idx), SMMUv2Field.cba2rVA64)
        smmu.write32(.global1, SMMUv2Reg.cbar(idx), SMMUv2Field.cbarTypeS1BypassS2 << 16 | 0xF << 12 | 3 << 8)
        smmu.write32(page, SMMUv2Reg.tcr2, cb.tcr.1)
        smmu.write32(page, SMMUv2Reg.tcr, cb.tcr.0)
        smmu.write64(page, SMMUv2Reg.ttbr0, cb.ttbr.0)
        smmu.write64(page, SMMUv2Reg.ttbr1, cb.ttbr.1)
        smmu.write32(page, SMMUv2Reg.mair0, cb.mair.0)
        smmu.write32(page, SMMUv2Reg.mair1, cb.mair.1)
        let reg = SMMUv2Field.sctlrCFIE | SMMUv2Field.sctlrCFRE | SMMUv2Field.sctlrAFE | SMMUv2Field.sctlrTRE
            | SMMUv2Field.sctlrM | SMMUv2Field.sctlrASIDPNE
        if let impl {
            impl.writeSCTLR(self, contextBank: idx, reg)
        } else {
            smmu.write32(page, SMMUv2Reg.sctlr, reg)
        }
    }

    /// The driver's copy of bank `idx`'s TCR and TTBR0 (`cbs[idx].tcr[0]`, `.ttbr[0]`),
    /// for tests that check what `set_ttbr0_cfg` changed.
    public func contextBankCopy(_ idx: Int) -> (tcr: UInt32, ttbr0: UInt64, ttbr1: UInt64)? {
        smmuDriver.lock.withLock {
            guard idx >= 0, idx < numContextBanks, cbs[idx].domain != nil else { return nil }
            return (cbs[idx].tcr.0, cbs[idx].ttbr.0, cbs[idx].ttbr.1)
        }
    }

}

extension ARMSMMUv2Domain {
    /// Enables or disables walks through TTBR0 on the domain's context bank, whose
    /// TTBR1 holds the domain's own table (`qcom_adreno_smmu_set_ttbr0_cfg`'s body): a
    /// non-nil `cfg` merges its TCR fields, clears EPD0 and EPD1 and puts its base with
    /// the context's ASID in TTBR0; nil restores the TTBR1-only TCR and leaves TTBR0 the
    /// ASID alone. Rewrites the context bank.
    /// - Throws: `EINVAL` when the context has no TTBR1 split (EPD1 set) or is not
    ///   finalised, when enabling while TTBR0 is enabled, or disabling while it is
    ///   disabled. Nothing changes on error.
    func setTTBR0Table(_ cfg: IOPgtableCfg?) throws(Errno) {
        try smmuDriver.lock.withLock { () throws(Errno) in
            guard let unit = finalisedUnit, let ttbr1 = pgtable?.cfg else { throw .invalidArgument }
            let idx = self.cfg.contextBank
            var cb = unit.cbs[idx]
            guard cb.tcr.0 & SMMUv2Field.tcrEPD1 == 0 else { throw .invalidArgument }
            let asid = UInt64(self.cfg.asid) << SMMUv2Field.ttbrASIDShift
            if let cfg {
                guard cb.tcr.0 & SMMUv2Field.tcrEPD0 != 0 else { throw .invalidArgument }
                cb.tcr.0 = (cb.tcr.0 | ARMSMMUv2.lpaeTCR(cfg)) & ~(SMMUv2Field.tcrEPD0 | SMMUv2Field.tcrEPD1)
                cb.ttbr.0 = cfg.ttbr.rawValue | asid
            } else {
                guard cb.tcr.0 & SMMUv2Field.tcrEPD0 == 0 else { throw .invalidArgument }
                cb.tcr.0 = ARMSMMUv2.lpaeTCR(ttbr1)
                cb.ttbr.0 = asid
            }
            unit.cbs[idx] = cb
            unit.hardwareLock.withLock { unit.writeContextBank(idx) }
        }
    }
}
