import IOMMUCore

/// The driver's static blocking domain (`blocking_domain`): RID attach blocks the
/// device; `set_dev_pasid` is how the core removes a PASID.
public final class VTdBlockedDomain: VTdDomain, @unchecked Sendable {
    /// The blocking domain; without `set_dev_pasid` when `setsPasid` is false (a driver
    /// variant built for the conformance suite).
    init(driver: IntelIOMMUDriver, setsPasid: Bool) {
        super.init(type: .blocked, owner: driver, ops: setsPasid ? [.attachDev, .setDevPasid] : [.attachDev])
    }

    /// `blocking_domain_attach_dev` → `device_block_translation`. On a copied context
    /// the previous kernel's entry is replaced first.
    /// - Throws: `ENODEV` for a device the driver did not probe; `ENOMEM`.
    public override func attachDev(_ dev: PCIDevice, old: IOMMUDomain?) throws(Errno) {
        try intelDriver.callback(.attachDev, self, dev, old: old) { () throws(Errno) in
            guard let info = dev.driverPrivate as? VTdDeviceInfo else { throw .noDevice.from("blocking_domain_attach_dev", "\(dev.rid) was not probed by VT-d") }
            try info.unit.replaceCopiedContext(info)
            info.unit.blockTranslation(info)
        }
    }

    /// `blocking_domain_set_dev_pasid`: `intel_pasid_tear_down_entry(fault_ignore:
    /// false)` (entry cleared, caches invalidated, PRQ drained and iopf queue flushed),
    /// then the old domain's DID reference and cache tags are dropped, then, if the old
    /// domain had a fault handler, its iopf reference (`iopf_for_domain_remove`).
    /// - Throws: `EOPNOTSUPP` for the blocking domain of a driver built without it (a
    ///   test variant); `ENODEV` for a device the driver did not probe.
    public override func setDevPasid(_ dev: PCIDevice, pasid: PASID, old: IOMMUDomain?) throws(Errno) {
        guard ops.contains(.setDevPasid) else { throw .notSupported.from("blocking_domain_set_dev_pasid", "this driver's blocking domain has no set_dev_pasid") }
        try intelDriver.callback(.setDevPasid, self, dev, pasid: pasid, old: old) { () throws(Errno) in
            let pasid = pasid.rawValue
            guard let info = dev.driverPrivate as? VTdDeviceInfo else { throw .noDevice.from("blocking_domain_set_dev_pasid", "\(dev.rid) was not probed by VT-d") }
            info.unit.tearDown(info, pasid: pasid, faultIgnore: false)
            (old as? VTdDomain)?.removeAttachment(info, pasid: pasid)
            info.unit.disableIOPF(info, for: old)
        }
    }
}

/// The driver's static identity domain (`identity_domain`): pass-through entries with
/// `FLPT_DEFAULT_DID`, for the RID and for PASIDs.
public final class VTdIdentityDomain: VTdDomain, @unchecked Sendable {
    init(driver: IntelIOMMUDriver) {
        super.init(type: .identity, owner: driver, ops: [.attachDev, .setDevPasid])
    }

    override var usesDefaultDID: Bool { true }
    override var entryKind: VTdPGTT? { .passThrough }

    override func makeEntry(unit: IntelIOMMU, did: UInt16) -> VTdPASIDEntry {
        var e = VTdPASIDEntry()
        e.pgtt = .passThrough
        e.did = did
        e.aw = UInt8((unit.caps.secondStageLevels ?? 4) - 2)
        e.pwsnp = unit.caps.coherent
        return e
    }

    /// `identity_domain_attach_dev`: block, then a pass-through entry at RID_PASID.
    /// - Throws: `ENODEV` unknown device; `ENOMEM`.
    public override func attachDev(_ dev: PCIDevice, old: IOMMUDomain?) throws(Errno) {
        try intelDriver.callback(.attachDev, self, dev, old: old) { () throws(Errno) in
            guard let info = dev.driverPrivate as? VTdDeviceInfo else { throw .noDevice.from("identity_domain_attach_dev", "\(dev.rid) was not probed by VT-d") }
            if info.unit.copied[info.rid] != nil && old == nil {
                info.deferredDomain = self
                return
            }
            info.unit.blockTranslation(info)
            try info.unit.replaceCopiedContext(info)
            try install(info, pasid: IntelIOMMU.ridPasid, replacing: nil)
            info.ridDomain = self
        }
    }

    /// `identity_domain_set_dev_pasid`: a pass-through entry at `pasid` (DID 1, no DID
    /// reference).
    /// - Throws: `ENODEV` unknown device; the errno injected with the
    ///   `failSetDevPasid(_:on:)` test hook; `EOPNOTSUPP` unit without PASID; `EBUSY`
    ///   copied context or present entry with no `old`; `ENOMEM`.
    public override func setDevPasid(_ dev: PCIDevice, pasid: PASID, old: IOMMUDomain?) throws(Errno) {
        try intelDriver.callback(.setDevPasid, self, dev, pasid: pasid, old: old) { () throws(Errno) in
            let info = try pasidPreconditions(dev)
            try install(info, pasid: pasid.rawValue, replacing: old as? VTdDomain)
        }
    }
}
