import IOMMUCore

/// The Qualcomm implementation for the SMMU in front of an Adreno GPU
/// (`qcom_adreno_smmu_500_impl` in `arm-smmu-qcom.c`):
/// - the GPU is the master with stream ID 0 (`QCOM_ADRENO_SMMU_GPU_SID`) and gets context
///   bank 0, so that its command processor can reprogram it; other masters start at 1;
/// - the GPU's context uses the TTBR1 split (`IO_PGTABLE_QUIRK_ARM_TTBR1`) when it is an
///   AArch64 stage-1 context and the SoC can (not msm8996);
/// - walk flushes prefer TLBIASID (`flush_walk_prefer_tlbiasid`);
/// - SCTLR gets HUPCF (keep serving transactions after a fault) and, for banks with stall
///   enabled, CFCFG;
/// - the display, GPU and modem clients default to identity domains;
/// - the GPU's driver data (``AdrenoSMMUPriv``) is filled at context initialisation.
public final class QcomAdrenoSMMU: ARMSMMUv2Impl, @unchecked Sendable {
    /// `QCOM_ADRENO_SMMU_GPU_SID`.
    public static let gpuStreamID: UInt16 = 0
    /// `qcom_smmu_client_of_match`: the compatible strings whose devices default to an
    /// identity domain.
    public static let identityClients: Set<String> = [
        "qcom,adreno", "qcom,adreno-gmu", "qcom,mdp4", "qcom,mdss", "qcom,sc7180-mdss", "qcom,sc7280-mdss",
        "qcom,sdm845-mdss", "qcom,sdm845-mss-pil", "qcom,sm8250-mdss",
    ]

    /// Whether the SoC's SMMU can use the TTBR1 split (`qcom_adreno_can_do_ttbr1`: false
    /// on msm8996).
    public let canDoTTBR1: Bool

    /// The implementation; `canDoTTBR1` false models an msm8996.
    public init(canDoTTBR1: Bool = true) { self.canDoTTBR1 = canDoTTBR1 }

    /// `qcom_adreno_smmu_is_gpu_device`: any of its stream IDs is 0.
    public static func isGPUDevice(_ dev: PCIDevice) -> Bool {
        guard let master = dev.driverPrivate as? ARMSMMUv2Master else { return false }
        return master.streamIDs.contains { $0.id & 0xFFFF == gpuStreamID }
    }

    /// `qcom_adreno_smmu_alloc_context_bank`: bank 0 for the GPU, the others from 1.
    public func allocContextBank(_ domain: ARMSMMUv2Domain, on unit: ARMSMMUv2, dev: PCIDevice,
                                 start: Int) throws(Errno) -> Int {
        if Self.isGPUDevice(dev) { return try unit.allocContextBank(from: 0, count: 1) }
        return try unit.allocContextBank(from: 1, count: unit.numContextBanks)
    }

    /// `qcom_adreno_smmu_init_context`: prefer TLBIASID for walk flushes; for the GPU,
    /// the TTBR1 quirk and the private interface.
    public func initContext(_ domain: ARMSMMUv2Domain, cfg: inout IOPgtableCfg, dev: PCIDevice) throws(Errno) {
        domain.preferTLBIASIDForWalks()
        guard Self.isGPUDevice(dev), let master = dev.driverPrivate as? ARMSMMUv2Master else { return }
        // The model's contexts are all AArch64 stage 1.
        if canDoTTBR1 { cfg.quirks.insert(.armTTBR1) }
        let unit = master.unit
        master.adrenoSMMU.fill(cookie: domain, ops: AdrenoSMMUPriv.Ops(
            getTTBR1Cfg: { d in d.ioPgtable?.cfg },
            setTTBR0Cfg: { d, c throws(Errno) in try d.setTTBR0Table(c) },
            getFaultInfo: { d in Self.faultInfo(d) },
            setStall: { [unowned self] d, on in self.setStall(d, on, unit: unit) },
            resumeTranslation: { d, terminate in Self.resume(d, terminate: terminate) }))
    }

    /// `qcom_adreno_smmu_write_sctlr`: HUPCF always, CFCFG if stall is enabled.
    public func writeSCTLR(_ unit: ARMSMMUv2, contextBank: Int, _ reg: UInt32) {
        var r = reg | SMMUv2Field.sctlrHUPCF
        if unit.stallEnabled.contains(contextBank) { r |= SMMUv2Field.sctlrCFCFG }
        unit.smmu.write32(.contextBank(contextBank), SMMUv2Reg.sctlr, r)
    }

    /// `qcom_smmu_def_domain_type`: identity for the listed clients.
    public func defDomainType(_ unit: ARMSMMUv2, dev: PCIDevice) -> DomainType? {
        guard let compatible = (dev.driverPrivate as? ARMSMMUv2Master)?.firmware.compatible,
              Self.identityClients.contains(compatible) else { return nil }
        return .identity
    }

    // MARK: the adreno_smmu_priv callbacks

    /// `qcom_adreno_smmu_get_fault_info`.
    static func faultInfo(_ domain: ARMSMMUv2Domain) -> AdrenoSMMUFaultInfo? {
        guard let (unit, idx) = domain.smmuDriver.lock.withLock({ () -> (ARMSMMUv2, Int)? in
            domain.finalisedUnit.map { ($0, domain.cfg.contextBank) }
        }) else { return nil }
        let page = SMMUv2Page.contextBank(idx)
        let s = unit.smmu
        return unit.hardwareLock.withLock {
            AdrenoSMMUFaultInfo(far: IOVA(rawValue: s.read64(page, SMMUv2Reg.far)), ttbr0: s.read64(page, SMMUv2Reg.ttbr0),
                                contextIDR: s.read32(page, SMMUv2Reg.contextIDR), fsr: s.read32(page, SMMUv2Reg.fsr),
                                fsynr0: s.read32(page, SMMUv2Reg.fsynr0), fsynr1: s.read32(page, SMMUv2Reg.fsynr1),
                                cbfrsynra: s.read32(.global1, SMMUv2Reg.cbfrsynra(idx)))
        }
    }

    /// `qcom_adreno_smmu_set_stall`: remember the setting for the bank and, when it
    /// changes on a programmed bank, rewrite SCTLR (CFCFG is resampled after a fault, so
    /// no TLB maintenance is needed).
    func setStall(_ domain: ARMSMMUv2Domain, _ enabled: Bool, unit: ARMSMMUv2) {
        domain.smmuDriver.lock.withLock {
            guard domain.finalisedUnit === unit else { return }
            let idx = domain.cfg.contextBank
            let changed = unit.stallEnabled.contains(idx) != enabled
            if enabled { unit.stallEnabled.insert(idx) } else { unit.stallEnabled.remove(idx) }
            guard changed else { return }
            unit.hardwareLock.withLock {
                var reg = unit.smmu.read32(.contextBank(idx), SMMUv2Reg.sctlr)
                if enabled { reg |= SMMUv2Field.sctlrCFCFG } else { reg &= ~SMMUv2Field.sctlrCFCFG }
                unit.smmu.write32(.contextBank(idx), SMMUv2Reg.sctlr, reg)
            }
        }
    }

    /// `qcom_adreno_smmu_resume_translation`.
    static func resume(_ domain: ARMSMMUv2Domain, terminate: Bool) {
        guard let (unit, idx) = domain.smmuDriver.lock.withLock({ () -> (ARMSMMUv2, Int)? in
            domain.finalisedUnit.map { ($0, domain.cfg.contextBank) }
        }) else { return }
        unit.hardwareLock.withLock {
            unit.smmu.write32(.contextBank(idx), SMMUv2Reg.resume, terminate ? SMMUv2Field.resumeTerminate : 0)
        }
    }
}
