import IOMMUCore

/// An implementation's hooks into the arm-smmu driver (`struct arm_smmu_impl`): every
/// requirement has the generic behaviour as its default, so an implementation overrides
/// only what it changes.
public protocol ARMSMMUv2Impl: AnyObject, Sendable {
    /// `alloc_context_bank`: the bank for `domain`'s context on `dev`, from `start` up by
    /// default (`__arm_smmu_alloc_bitmap`).
    /// - Throws: `ENOSPC` when no bank is free.
    func allocContextBank(_ domain: ARMSMMUv2Domain, on unit: ARMSMMUv2, dev: PCIDevice, start: Int) throws(Errno) -> Int

    /// `init_context`: adjust the io-pgtable configuration (quirks) and the context
    /// (`flush_walk_prefer_tlbiasid`) before the table is allocated.
    /// - Throws: an errno that fails the attach.
    func initContext(_ domain: ARMSMMUv2Domain, cfg: inout IOPgtableCfg, dev: PCIDevice) throws(Errno)

    /// `write_sctlr`: write a context bank's SCTLR (the generic driver writes `reg`).
    func writeSCTLR(_ unit: ARMSMMUv2, contextBank: Int, _ reg: UInt32)

    /// `def_domain_type`: the default domain type the implementation forces for `dev`.
    func defDomainType(_ unit: ARMSMMUv2, dev: PCIDevice) -> DomainType?

    /// `context_fault`: a context-fault handler replacing `arm_smmu_context_fault`, nil
    /// for the generic one.
    var contextFault: (@Sendable (ARMSMMUv2Domain) -> Void)? { get }
}

extension ARMSMMUv2Impl {
    /// The first free bank from `start`.
    public func allocContextBank(_ domain: ARMSMMUv2Domain, on unit: ARMSMMUv2, dev: PCIDevice,
                                 start: Int) throws(Errno) -> Int {
        try unit.allocContextBank(from: start, count: unit.numContextBanks - start)
    }
    /// No change.
    public func initContext(_ domain: ARMSMMUv2Domain, cfg: inout IOPgtableCfg, dev: PCIDevice) throws(Errno) {}
    /// Writes `reg` unchanged.
    public func writeSCTLR(_ unit: ARMSMMUv2, contextBank: Int, _ reg: UInt32) {
        unit.smmu.write32(.contextBank(contextBank), SMMUv2Reg.sctlr, reg)
    }
    /// No preference.
    public func defDomainType(_ unit: ARMSMMUv2, dev: PCIDevice) -> DomainType? { nil }
    /// The generic handler.
    public var contextFault: (@Sendable (ARMSMMUv2Domain) -> Void)? { nil }
}

extension ARMSMMUv2 {
    /// `__arm_smmu_alloc_bitmap(context_map, start, start + count)`: the first free bank
    /// in the window, marked used. The caller holds the driver lock.
    /// - Throws: `ENOSPC` when every bank in the window is taken.
    public func allocContextBank(from start: Int, count: Int) throws(Errno) -> Int {
        let end = min(start + count, numContextBanks)
        guard start >= 0, start < end else { throw .noSpace }
        for i in start..<end where !contextMap[i] {
            contextMap[i] = true
            return i
        }
        throw .noSpace
    }
}
