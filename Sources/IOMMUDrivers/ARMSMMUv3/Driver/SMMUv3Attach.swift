import IOMMUCore

/// `struct arm_smmu_attach_state`: one attach in progress, from `arm_smmu_attach_prepare`
/// to `arm_smmu_attach_commit`.
struct SMMUv3AttachState {
    let master: SMMUv3Master
    let oldDomain: IOMMUDomain?
    let ssid: UInt32
    /// Whether the STE being installed has EATS=TRANS (and PCI ATS will be on).
    var atsEnabled = false
    /// A nested domain whose vSTE does not ask for ATS.
    var disableATS = false
    /// An identity or blocking attach that keeps a CD table (PASIDs in use).
    var cdNeedsATS = false
    /// The new domain's merged invalidation array, installed before the STE changes.
    var newDomain: SMMUv3Domain?
    var newInvs = SMMUv3Invs()
    /// The old domain and the targets to drop from it after the STE changed.
    var oldSMMUDomain: SMMUv3Domain?
    var oldBuild = SMMUv3Invs()
    /// The device as its vSMMU sees it, for a nested domain made on a vSMMU
    /// (`arm_smmu_attach_prepare_vmaster`); installed by commit.
    var vmaster: SMMUv3VMaster?
}

/// `to_smmu_domain_devices`: the SMMUv3 domain whose `devices` list and invalidations an
/// attachment of `domain` joins: a paging or SVA domain itself, a nested domain's stage-2
/// parent; nil for identity and blocking domains (they use no TLB).
func devicesDomain(_ domain: IOMMUDomain?) -> SMMUv3Domain? {
    if let d = domain as? SMMUv3Domain { return d }
    if let n = domain as? SMMUv3NestedDomain { return n.parent }
    return nil
}

/// `arm_smmu_master_build_invs`: the targets one attachment of `master` at `ssid` adds to
/// `domain`: its ASID or VMID, a nesting parent's stage-1 clear, and with ATS one ATC
/// target per StreamID (the whole ATC for a nesting parent).
func buildInvs(_ master: SMMUv3Master, ats: Bool, ssid: UInt32, _ domain: SMMUv3Domain) -> SMMUv3Invs {
    let unit = master.unit.index
    var out: [SMMUv3Inv] = []
    switch domain.stage {
    case .s1, .sva: out.append(SMMUv3Inv(unit: unit, type: .s1ASID, id: UInt32(domain.asid)))
    case .s2: out.append(SMMUv3Inv(unit: unit, type: .s2VMID, id: UInt32(domain.vmid)))
    }
    if domain.nestParent { out.append(SMMUv3Inv(unit: unit, type: .s2VMIDS1Clear, id: UInt32(domain.vmid))) }
    if ats {
        for sid in master.streams {
            out.append(SMMUv3Inv(unit: unit, type: domain.nestParent ? .atsFull : .ats, id: sid, ssid: ssid))
        }
    }
    return SMMUv3Invs(out, rangeInvalidation: master.unit.features.contains(.rangeInvalidation))
}

/// `arm_smmu_install_ste_for_dev`: records what the STE says (CD table in the STE, EATS)
/// and writes it for every StreamID of the master with the hitless writer.
func installSTE(_ master: SMMUv3Master, _ target: SMMUv3STE) {
    master.cdTable.inSTE = target.config == .stage1
    master.steATSEnabled = target.rawEATS == SMMUv3STE.EATS.translate.rawValue
    for sid in master.streams { master.unit.writeSTE(sid: sid, target) }
}

/// `arm_smmu_attach_prepare`: decide ATS (never for a plain bypass or abort STE; SMMUv3
/// refuses ATS there), prepare both invalidation arrays, add the master to the new
/// domain's `devices` and install the new domain's array, so that both domains
/// invalidate the master until commit; disable PRI and PCI ATS first if the new STE will
/// not allow ATS. Driver lock held.
/// - Throws: the iopf queue's errno (nothing changed then).
func prepareAttach(_ state: inout SMMUv3AttachState, newDomain: IOMMUDomain) throws(Errno) {
    let master = state.master
    let smmuDomain = devicesDomain(newDomain)
    let buggy = master.unit.smmuDriver.bugs.contains(.atsOnBypassSTE)
    if smmuDomain != nil || state.cdNeedsATS || buggy {
        state.atsEnabled = !state.disableATS && master.atsSupported
    }
    prepareInvs(&state, newDomain: newDomain)
    if let smmuDomain {
        let nestedATS = (newDomain as? SMMUv3NestedDomain)?.enableATS ?? false
        let md = SMMUv3MasterDomain(master: master, domain: newDomain, ssid: state.ssid, nestedATSFlush: nestedATS)
        if newDomain.iopfHandler != nil { try enableIOPF(master, md) }
        if state.atsEnabled { smmuDomain.atsMasters += 1 }
        smmuDomain.devices.append(md)
        smmuDomain.invs = state.newInvs
    }
    master.unit.smmuDriver.attachObserver?(.prepared, master.rid)
    if !state.atsEnabled && master.atsEnabled, let dev = master.dev {
        // PRI, then pci_disable_ats, before an STE without EATS is written.
        disablePRI(master)
        dev.atsEnabled = false
    }
}

/// `arm_smmu_attach_prepare_invs`.
private func prepareInvs(_ state: inout SMMUv3AttachState, newDomain: IOMMUDomain?) {
    let master = state.master
    if let new = devicesDomain(newDomain) {
        state.newDomain = new
        state.newInvs = new.invs.merging(buildInvs(master, ats: state.atsEnabled, ssid: state.ssid, new))
    }
    if let old = devicesDomain(state.oldDomain) {
        state.oldSMMUDomain = old
        state.oldBuild = buildInvs(master, ats: master.atsEnabled, ssid: state.ssid, old)
    }
}

/// `arm_smmu_attach_commit`: after the STE/CD are written, record the vSMMU view
/// (`vmaster`), finish ATS (enable it after flushing the whole ATC, then PRI with it;
/// flush the SubstreamID if it stays on; flush everything if it goes off), remove the
/// master from the old domain, then drop its targets from the old domain's array
/// (flushing a tag that lost its last user). Driver lock held.
func commitAttach(_ state: inout SMMUv3AttachState) {
    let master = state.master
    master.unit.smmuDriver.attachObserver?(.installed, master.rid)
    // `arm_smmu_attach_commit_vmaster`: the new attachment's vSMMU view, or none.
    master.vmaster = state.vmaster
    if state.atsEnabled && !master.atsEnabled {
        atcInvalidateMaster(master, ssid: 0)
        master.dev?.atsEnabled = true
        enablePRI(master)
    } else if state.atsEnabled && master.atsEnabled {
        atcInvalidateMaster(master, ssid: state.ssid)
    } else if !state.atsEnabled && master.atsEnabled {
        atcInvalidateMaster(master, ssid: 0)
    }
    removeMasterDomain(master, domain: state.oldDomain, ssid: state.ssid)
    installOldDomainInvs(&state)
    master.atsEnabled = state.atsEnabled
    auditATS(master)
}

/// `arm_smmu_install_old_domain_invs`: one user fewer for each of the master's targets in
/// the old domain; a tag (ASID or VMID) left unused is flushed at once (an ASID or VMID
/// no array holds must be clean in the TLB); trash is purged.
private func installOldDomainInvs(_ state: inout SMMUv3AttachState) {
    guard let old = state.oldSMMUDomain else { return }
    let missing = old.invs.unref(&state.oldBuild)
    if !missing.isEmpty {
        state.master.unit.warn(state.master.dev, "arm_smmu_invs_unref", "\(old): targets not in the array: \(missing)")
    }
    if let tag = state.oldBuild.entries.first, tag.users == 0 { flushTag(tag, unit: state.master.unit) }
    if let purged = old.invs.purged() { old.invs = purged }
}

/// `arm_smmu_inv_flush_iotlb_tag`: TLBI_NH_ASID or TLBI_S12_VMALL with CMD_SYNC.
func flushTag(_ inv: SMMUv3Inv, unit: ArmSMMUv3) {
    switch inv.type {
    case .s1ASID: unit.issueWithSync(.tlbi(inv.nsizeOpcode, asid: UInt16(truncatingIfNeeded: inv.id), vmid: 0))
    case .s2VMID: unit.issueWithSync(.tlbi(inv.nsizeOpcode, asid: 0, vmid: UInt16(truncatingIfNeeded: inv.id)))
    default: break
    }
}

/// `arm_smmu_remove_master_domain`: removes one matching attachment from the domain's
/// `devices` (the oldest, so a re-attach of the same domain keeps one) and drops its iopf
/// reference. With the `freeASIDWhileCDUsesIt` bug, the domain's ASID is released as
/// soon as any attachment goes.
func removeMasterDomain(_ master: SMMUv3Master, domain: IOMMUDomain?, ssid: UInt32) {
    guard let domain, let smmuDomain = devicesDomain(domain) else { return }
    let nestedATS = (domain as? SMMUv3NestedDomain)?.enableATS ?? false
    guard let i = smmuDomain.devices.firstIndex(where: {
        $0.master === master && $0.domain === domain && $0.ssid == ssid && $0.nestedATSFlush == nestedATS
    }) else { return }
    let md = smmuDomain.devices.remove(at: i)
    if master.atsEnabled { smmuDomain.atsMasters -= 1 }
    disableIOPF(master, md)
    let driver = master.unit.smmuDriver
    if driver.bugs.contains(.freeASIDWhileCDUsesIt), smmuDomain.stage != .s2,
       driver.asids[smmuDomain.asid] == ObjectIdentifier(smmuDomain) {
        driver.releaseASID(smmuDomain.asid)
    }
}

/// `arm_smmu_attach_dev_ste`: the RID attach of the identity or blocking domain: the
/// given plain STE, or, while PASIDs are in use (or ATS must stay on), a CD-table STE
/// with `s1dss` so the PASIDs keep working and ATS may stay on; then CD 0 is cleared.
func attachDevSTE(_ domain: IOMMUDomain, old: IOMMUDomain?, master: SMMUv3Master, ste: SMMUv3STE,
                  s1dss: SMMUv3STE.S1DSS) {
    var state = SMMUv3AttachState(master: master, oldDomain: old, ssid: 0)
    let atsAlwaysOn = master.atsAlwaysOn && s1dss != .terminate
    var target = ste
    if atsAlwaysOn || master.cdTable.usedSSIDs > 0 {
        state.cdNeedsATS = true
        try? prepareAttach(&state, newDomain: domain)
        target = .cdTable(master.cdTable.config, s1dss: s1dss, ats: state.atsEnabled, stallEnabled: master.stallEnabled,
                          features: master.unit.features)
    } else {
        try? prepareAttach(&state, newDomain: domain)
    }
    installSTE(master, target)
    commitAttach(&state)
    master.clearCD(ssid: 0)
}

extension SMMUv3Domain {
    /// `arm_smmu_set_pasid`: CD `pasid` = `cd` (with the domain's ASID), then the STE
    /// becomes a CD-table STE if it was not one (S1DSS from the RID's identity or blocking
    /// domain), all inside the attach sequence. On error nothing changed.
    /// - Throws: the errno injected with ``ArmSMMUv3Driver/failSetDevPasid(_:on:)``, first;
    ///   `EINVAL` when the RID is on a domain that leaves no room for PASIDs (a stage-2 or
    ///   nested STE); `ENOMEM`; the iopf queue's errno.
    func setPasid(_ master: SMMUv3Master, pasid: UInt32, cd: SMMUv3CD, old: IOMMUDomain?) throws(Errno) {
        if let injected = master.failSetDevPasid { throw injected }
        guard let dev = master.dev, let machine = dev.machine else { throw .noDevice }
        let sidDomain = machine.iommu.driverDomainForDevice(dev)
        let sidType = sidDomain?.type ?? .blocked
        if !master.cdTable.inSTE && sidType != .identity && sidType != .blocked { throw .invalidArgument }
        let address = try master.allocCD(ssid: pasid)
        var state = SMMUv3AttachState(master: master, oldDomain: old, ssid: pasid)
        try prepareAttach(&state, newDomain: self)
        var target = cd
        target.words[0] = (target.words[0] & ~SMMUv3CD.asidMask) | UInt64(asid) << 48
        master.writeCD(ssid: pasid, at: address, target)
        updateSTE(master, sidType: sidType, ats: state.atsEnabled)
        commitAttach(&state)
    }
}

/// `arm_smmu_update_ste`: a CD-table STE for PASIDs with S1DSS from the RID's domain
/// (BYPASS for identity, TERMINATE for blocked); nothing when the CD table is already in
/// the STE with the same EATS.
private func updateSTE(_ master: SMMUv3Master, sidType: DomainType, ats: Bool) {
    if master.cdTable.inSTE && master.steATSEnabled == ats { return }
    var s1dss = SMMUv3STE.S1DSS.terminate
    if sidType == .identity {
        s1dss = .bypass
    } else if sidType != .blocked {
        master.unit.warn(master.dev, "arm_smmu_update_ste", "RID domain of type \(sidType) under a PASID's CD table")
    }
    installSTE(master, .cdTable(master.cdTable.config, s1dss: s1dss, ats: ats, stallEnabled: master.stallEnabled,
                                features: master.unit.features))
}

extension SMMUv3BlockedDomain {
    /// The body of `arm_smmu_blocking_set_dev_pasid`.
    func removePasid(_ master: SMMUv3Master, pasid: UInt32, old: IOMMUDomain?) {
        var state = SMMUv3AttachState(master: master, oldDomain: old, ssid: pasid)
        if let oldDomain = devicesDomain(old) {
            state.oldSMMUDomain = oldDomain
            state.oldBuild = buildInvs(master, ats: master.atsEnabled, ssid: pasid, oldDomain)
        }
        master.clearCD(ssid: pasid)
        if master.atsEnabled { atcInvalidateMaster(master, ssid: pasid) }
        removeMasterDomain(master, domain: old, ssid: pasid)
        installOldDomainInvs(&state)
        // The last PASID gone: downgrade the STE by re-attaching the RID's domain.
        guard master.cdTable.usedSSIDs == 0, let dev = master.dev, let machine = dev.machine,
              let sidDomain = machine.iommu.driverDomainForDevice(dev) else { return }
        let atsAlwaysOn = master.atsAlwaysOn && sidDomain.type != .blocked
        if !atsAlwaysOn && (sidDomain.type == .identity || sidDomain.type == .blocked) {
            try? sidDomain.attachDev(dev, old: sidDomain)
        }
    }
}

/// The model's ATS audit after an attach: PCI ATS may be on only while the device's STE
/// lets the SMMU answer ATS translation requests (EATS=TRANS on a translating STE); a
/// plain bypass or abort STE never does.
private func auditATS(_ master: SMMUv3Master) {
    guard let dev = master.dev, dev.atsEnabled, let machine = dev.machine, machine.checker.isEnabled else { return }
    for sid in master.streams {
        guard let ste = master.unit.ste(RID(raw: UInt16(truncatingIfNeeded: sid))) else { continue }
        let translating = ste.config == .stage1 || ste.config == .stage2 || ste.config == .nested
        if !ste.isValid || !translating || ste.rawEATS != SMMUv3STE.EATS.translate.rawValue {
            machine.checker.report(Violation(.atsSequencing, device: master.rid, event: "attach commit",
                                             message: "PCI ATS enabled while the STE (\(ste)) refuses ATS translation requests"))
        }
    }
}
