import IOMMUCore

/// `struct adreno_smmu_fault_info`: the context bank's fault syndrome as the GPU driver
/// reads it.
public struct AdrenoSMMUFaultInfo: Hashable, Sendable {
    /// `far`: the faulting GPU address.
    public var far: IOVA
    /// `ttbr0`: TTBR0 at the time of the fault (the table of the process that faulted,
    /// with its ASID in bits 63:48).
    public var ttbr0: UInt64
    /// `contextidr`.
    public var contextIDR: UInt32
    /// `fsr`.
    public var fsr: UInt32
    /// `fsynr0`.
    public var fsynr0: UInt32
    /// `fsynr1`.
    public var fsynr1: UInt32
    /// `cbfrsynra`: the stream ID.
    public var cbfrsynra: UInt32

    /// A fault record.
    public init(far: IOVA, ttbr0: UInt64, contextIDR: UInt32, fsr: UInt32, fsynr0: UInt32, fsynr1: UInt32,
                cbfrsynra: UInt32) {
        self.far = far
        self.ttbr0 = ttbr0
        self.contextIDR = contextIDR
        self.fsr = fsr
        self.fsynr0 = fsynr0
        self.fsynr1 = fsynr1
        self.cbfrsynra = cbfrsynra
    }

    /// The table base in ``ttbr0`` (without the ASID).
    public var ttbr0Table: PhysicalAddress { PhysicalAddress(rawValue: ttbr0 & SMMUv2Field.ttbrAddressMask) }
}

/// The private interface between arm-smmu-qcom and the Adreno GPU driver
/// (`struct adreno_smmu_priv`, `include/linux/adreno-smmu-priv.h`): the GPU device's
/// driver data, which the SMMU driver fills when it initialises the GPU's context
/// (`qcom_adreno_smmu_init_context`). Until then ``cookie`` is nil and the callbacks
/// are not set, as a GPU on an SMMU without the Qualcomm implementation sees it.
///
/// Every callback takes the cookie back, as the kernel's function pointers do.
public final class AdrenoSMMUPriv: @unchecked Sendable {
    private let lock = Lock()
    private weak var _cookie: ARMSMMUv2Domain?
    private var _ops: Ops?

    /// The callbacks the SMMU side fills in.
    struct Ops {
        let getTTBR1Cfg: @Sendable (ARMSMMUv2Domain) -> IOPgtableCfg?
        let setTTBR0Cfg: @Sendable (ARMSMMUv2Domain, IOPgtableCfg?) throws(Errno) -> Void
        let getFaultInfo: @Sendable (ARMSMMUv2Domain) -> AdrenoSMMUFaultInfo?
        let setStall: @Sendable (ARMSMMUv2Domain, Bool) -> Void
        let resumeTranslation: @Sendable (ARMSMMUv2Domain, Bool) -> Void
    }

    init() {}

    func fill(cookie: ARMSMMUv2Domain, ops: Ops) {
        lock.withLock {
            _cookie = cookie
            _ops = ops
        }
    }

    /// `cookie`: the GPU's `arm_smmu_domain`, nil until the SMMU driver filled the
    /// interface.
    public var cookie: ARMSMMUv2Domain? { lock.withLock { _cookie } }

    private var ops: Ops? { lock.withLock { _ops } }

    /// Whether the SMMU driver filled the callbacks.
    public var isFilled: Bool { ops != nil }

    /// `get_ttbr1_cfg(cookie)`: the configuration of the domain's TTBR1 ("global") table,
    /// nil when the interface is not filled.
    public func getTTBR1Cfg(_ cookie: ARMSMMUv2Domain) -> IOPgtableCfg? { ops?.getTTBR1Cfg(cookie) }

    /// `set_ttbr0_cfg(cookie, cfg)`: a non-nil `cfg` enables TTBR0 walks with that table
    /// (its base and the context's ASID in TTBR0, its TCR fields merged, EPD0 and EPD1
    /// cleared); nil disables them again (the TTBR1-only TCR, TTBR0 = the ASID alone).
    /// Rewrites the context bank.
    /// - Throws: `EINVAL` when the domain has no TTBR1 split (EPD1 set), when enabling
    ///   while TTBR0 is already enabled, or disabling while it is disabled; `ENODEV` when
    ///   the interface is not filled. Nothing changes on error.
    public func setTTBR0Cfg(_ cookie: ARMSMMUv2Domain, _ cfg: IOPgtableCfg?) throws(Errno) {
        guard let ops else { throw .noDevice }
        try ops.setTTBR0Cfg(cookie, cfg)
    }

    /// `get_fault_info(cookie, info)`: FSR, FSYNR0/1, FAR, CBFRSYNRA, TTBR0 and
    /// CONTEXTIDR of the GPU's context bank; nil when the interface is not filled.
    public func getFaultInfo(_ cookie: ARMSMMUv2Domain) -> AdrenoSMMUFaultInfo? { ops?.getFaultInfo(cookie) }

    /// `set_stall(cookie, enabled)`: stall-on-fault (SCTLR.CFCFG) for the GPU's context
    /// bank; a change is written to SCTLR at once.
    public func setStall(_ cookie: ARMSMMUv2Domain, _ enabled: Bool) { ops?.setStall(cookie, enabled) }

    /// `resume_translation(cookie, terminate)`: writes CB_RESUME: retry or terminate the
    /// stalled transaction.
    public func resumeTranslation(_ cookie: ARMSMMUv2Domain, terminate: Bool) {
        ops?.resumeTranslation(cookie, terminate)
    }

    /// `dev_get_drvdata(dev)` of a device behind an arm-smmu: the interface the SMMU
    /// driver fills for it, nil for a device the arm-smmu driver did not probe.
    public static func of(_ dev: PCIDevice) -> AdrenoSMMUPriv? { (dev.driverPrivate as? ARMSMMUv2Master)?.adrenoSMMU }
}
