extension IOMMUSubsystem {
    /// The driver's blocked domain, if it can remove PASIDs (`set_dev_pasid` present).
    private func pasidRemover(_ driver: any IOMMUDriver) -> IOMMUDomain? {
        guard let b = driver.blockedDomain, b.ops.contains(.setDevPasid) else { return nil }
        return b
    }

    /// `iommu_attach_device_pasid(domain, dev, pasid, handle)`: attach `domain` to one
    /// PASID of every PASID-capable device in the group. The slot is reserved first and
    /// published only after every device's hardware entry is programmed.
    /// - Throws: `ENODEV` no group; `EOPNOTSUPP` the domain lacks `set_dev_pasid` or the
    ///   driver's blocked domain does; `EINVAL` for PASID 0, a freed domain (WARN), a
    ///   domain of another driver, a PASID beyond a member's `max_pasids`, or a RID that
    ///   owns the whole PASID table;
    ///   `EBUSY` PASID already attached or reset in progress; the driver's errno (devices
    ///   already programmed are rolled back to blocked and the slot is released).
    public func attachDevicePasid(_ domain: IOMMUDomain, to dev: PCIDevice, pasid: PASID,
                                  handle: AttachHandle? = nil) throws(Errno) {
        try entry("iommu_attach_device_pasid") { () throws(Errno) in
            let f = "iommu_attach_device_pasid"
            guard let group = dev.group, let driver = dev.iommu?.driver else {
                throw .noDevice.from(f, "\(dev.rid) has no IOMMU group")
            }
            guard domain.ops.contains(.setDevPasid) else { throw .notSupported.from(f, "\(domain) has no set_dev_pasid") }
            guard let blocked = pasidRemover(driver) else {
                throw .notSupported.from(f, "\(driver.name)'s blocked domain cannot remove a PASID")
            }
            try checkLive(domain, f)
            guard domain.owner === driver else { throw .invalidArgument.from(f, "\(domain) belongs to another driver") }
            guard pasid.rawValue != 0 else { throw .invalidArgument.from(f, "PASID 0 is the RID's (IOMMU_NO_PASID)") }
            guard group.recoveryCount == 0 else { throw .busy.from(f, "a device of \(group) is being reset") }
            let targets = group.pasidCapableDevices
            if let short = targets.first(where: { pasid.rawValue >= $0.maxPasids }) {
                throw .invalidArgument.from(f, "PASID \(pasid) is beyond \(short.rid)'s max_pasids \(short.maxPasids)")
            }
            // Model rule: while the RID's domain owns every PASID, single-PASID attach is
            // refused with SMMUv3's errno for the same situation.
            if group.ridOwnsAllPasids {
                throw .invalidArgument.from(f, "the RID of \(group) owns every PASID (a user PASID table)")
            }
            guard group.pasidArray[pasid] == nil else { throw .busy.from(f, "PASID \(pasid) of \(group) is already attached") }
            group.pasidArray[pasid] = .reserved
            var done: [PCIDevice] = []
            for target in targets {
                do throws(Errno) {
                    try domain.setDevPasid(target, pasid: pasid, old: nil)
                    done.append(target)
                } catch {
                    for d in done {
                        do { try blocked.setDevPasid(d, pasid: pasid, old: domain) } catch {
                            warn("__iommu_remove_group_pasid", "rollback of \(d.rid) pasid \(pasid) failed")
                        }
                    }
                    group.pasidArray[pasid] = nil
                    throw error
                }
            }
            publish(group, pasid, handle.map { h in h.domain = domain; return .handle(h) } ?? .domain(domain))
            machine.noteAttach()
            machine.events.record(.pasidEvent("attach_device_pasid", device: dev.rid, pasid: pasid, domain: domain))
        }
    }

    /// Stores a programmed entry; with the checker on, verifies that the hardware of every
    /// PASID-capable member is live first (never publish before programming:
    /// ``Invariant/entryVisibility``).
    private func publish(_ group: IOMMUGroup, _ pasid: PASID, _ slot: PasidSlot) {
        if machine.checker.isEnabled {
            for d in group.pasidCapableDevices where !(d.iommu?.hardware.hasLiveEntry(rid: d.rid, pasid: pasid) ?? true) {
                machine.checker.report(Violation(.entryVisibility, device: d.rid, pasid: pasid, event: "pasid publish",
                                                 message: "pasid_array entry published before the hardware entry is live"))
            }
        }
        group.pasidArray[pasid] = slot
    }

    /// `iommu_replace_device_pasid(domain, dev, pasid, handle)` (IOMMUFD_INTERNAL): move an
    /// attached PASID to `domain` with no window through blocked.
    /// - Throws: `ENODEV` no group; `EOPNOTSUPP` the domain lacks `set_dev_pasid`; `EINVAL`
    ///   PASID 0, another driver's domain, a nil `handle`, nothing attached at `pasid`, or
    ///   `handle` is the one already stored; `EBUSY` during reset; the driver's errno (the old domain
    ///   keeps translating and stays in the PASID array).
    public func replaceDevicePasid(_ domain: IOMMUDomain, on dev: PCIDevice, pasid: PASID,
                                   handle: AttachHandle?) throws(Errno) {
        try entry("iommu_replace_device_pasid") { () throws(Errno) in
            let f = "iommu_replace_device_pasid"
            guard let group = dev.group, let driver = dev.iommu?.driver else {
                throw .noDevice.from(f, "\(dev.rid) has no IOMMU group")
            }
            guard domain.ops.contains(.setDevPasid) else { throw .notSupported.from(f, "\(domain) has no set_dev_pasid") }
            try checkLive(domain, f)
            guard domain.owner === driver else { throw .invalidArgument.from(f, "\(domain) belongs to another driver") }
            guard pasid.rawValue != 0 else { throw .invalidArgument.from(f, "PASID 0 is the RID's (IOMMU_NO_PASID)") }
            guard let handle else { throw .invalidArgument.from(f, "no attach handle") }
            guard group.recoveryCount == 0 else { throw .busy.from(f, "a device of \(group) is being reset") }
            guard let slot = group.pasidArray[pasid], let old = slot.domain else {
                throw .invalidArgument.from(f, "nothing is attached at PASID \(pasid) of \(group)")
            }
            if case .handle(let current) = slot, current === handle {
                warn("iommu_replace_device_pasid", "the stored attach handle was passed again")
                throw .invalidArgument.from(f, "the handle passed is the one already stored")
            }
            if old !== domain {
                var done: [PCIDevice] = []
                for target in group.pasidCapableDevices {
                    do throws(Errno) {
                        try domain.setDevPasid(target, pasid: pasid, old: old)
                        done.append(target)
                    } catch {
                        for d in done { rollBack(d, pasid: pasid, to: old, from: domain) }
                        throw error
                    }
                }
            }
            handle.domain = domain
            publish(group, pasid, .handle(handle))
            machine.noteAttach()
            machine.events.record(.pasidEvent("replace_device_pasid", device: dev.rid, pasid: pasid, domain: domain))
        }
    }

    /// Puts a device back on `old` after a failed replace; a driver that cannot do even
    /// that (a bug) ends up blocked.
    private func rollBack(_ dev: PCIDevice, pasid: PASID, to old: IOMMUDomain, from new: IOMMUDomain) {
        do { try old.setDevPasid(dev, pasid: pasid, old: new) } catch {
            warn("iommu_replace_device_pasid", "driver could not restore \(old) on \(dev.rid) pasid \(pasid)")
            if let b = dev.iommu.flatMap({ pasidRemover($0.driver) }) { try? b.setDevPasid(dev, pasid: pasid, old: new) }
        }
    }

    /// `iommu_detach_device_pasid(domain, dev, pasid)`: the blocked domain's
    /// `set_dev_pasid(old: domain)` runs on each PASID-capable device, and only then is the
    /// entry erased (page requests in between still find the handle). WARNs if `domain` is
    /// not what is attached at `pasid`.
    public func detachDevicePasid(_ domain: IOMMUDomain, from dev: PCIDevice, pasid: PASID) {
        lock.withLock {
            guard let group = dev.group, let driver = dev.iommu?.driver else { return }
            guard let slot = group.pasidArray[pasid], slot.domain === domain else {
                warn("iommu_detach_device_pasid", "\(domain) is not attached at pasid \(pasid) of \(dev.rid)")
                return
            }
            if let blocked = pasidRemover(driver) {
                for target in group.pasidCapableDevices where !group.isBlockedForReset(target.rid) {
                    do { try blocked.setDevPasid(target, pasid: pasid, old: domain) } catch {
                        warn("iommu_remove_dev_pasid", "blocking pasid \(pasid) on \(target.rid) failed: \(error)")
                    }
                    machine.checker.noteDetach(rid: target.rid, pasid: pasid)
                }
            }
            group.pasidArray[pasid] = nil
            machine.events.record(.pasidEvent("detach_device_pasid", device: dev.rid, pasid: pasid, domain: domain))
        }
    }

    /// `iommu_attach_handle_get(group, pasid, type)`: the handle at `pasid`, or the RID's
    /// handle for `nil` (the kernel's `IOMMU_NO_PASID`).
    /// - Throws: `ENOENT` if nothing, or a bare domain without handle, is attached at
    ///   `pasid`; `EBUSY` if `type` is given and the attached domain's type differs.
    public func attachHandle(_ group: IOMMUGroup, pasid: PASID?, type: DomainType? = nil) throws(Errno) -> AttachHandle {
        try lock.withLock { () throws(Errno) -> AttachHandle in
            let at = pasid.map { "PASID \($0)" } ?? "the RID"
            guard case .handle(let h)? = group.slot(pasid), let d = h.domain else {
                throw .noEntry.from("iommu_attach_handle_get", "no attach handle at \(at) of \(group)")
            }
            if let type, d.type != type {
                throw .busy.from("iommu_attach_handle_get", "the domain at \(at) is \(d.type), not \(type)")
            }
            return h
        }
    }

    /// `iommu_attach_group_handle(domain, group, handle)` (iommufd): RID attach that also
    /// stores `handle` at `IOMMU_NO_PASID`, so RID faults reach the attacher.
    /// - Throws: `EBUSY` slot 0 occupied or the group on another domain; as
    ///   ``attachGroup(_:to:)`` otherwise (slot 0 is released on failure).
    public func attachGroupHandle(_ domain: IOMMUDomain, to group: IOMMUGroup, handle: AttachHandle) throws(Errno) {
        try entry("iommu_attach_group_handle") { () throws(Errno) in
            guard group.ridSlot == nil else {
                throw .busy.from("iommu_attach_group_handle", "the RID slot of \(group) is taken")
            }
            group.ridSlot = .reserved
            do throws(Errno) { try attachGroupLocked(domain, group) } catch {
                group.ridSlot = nil
                throw error
            }
            handle.domain = domain
            group.ridSlot = .handle(handle)
        }
    }

    /// `iommu_detach_group_handle(domain, group)`: back to the core domain; slot 0 erased.
    public func detachGroupHandle(_ domain: IOMMUDomain, from group: IOMMUGroup) {
        lock.withLock {
            if group.domain === domain { setCoreDomain(group) } else {
                warn("iommu_detach_group_handle", "\(domain) is not attached to \(group)")
            }
            group.ridSlot = nil
        }
    }

    /// `iommu_replace_group_handle(group, domain, handle)`: switch the RID domain and the
    /// handle at slot 0 together.
    /// - Throws: as ``replaceGroupDomain(_:of:)``; nothing changes on failure.
    public func replaceGroupHandle(_ domain: IOMMUDomain, of group: IOMMUGroup, handle: AttachHandle) throws(Errno) {
        try entry("iommu_replace_group_handle") { () throws(Errno) in
            try checkOwner(domain, group)
            try setGroupDomain(group, domain)
            handle.domain = domain
            group.ridSlot = .handle(handle)
        }
    }

    /// The third attach shape: give a domain the RID **and every PASID** of the device
    /// (a user-owned PASID table, e.g. an SMMUv3 CD table, as a nested domain). Requests
    /// with any PASID are then translated through that domain and their faults route to
    /// the RID's handle (`iommu_ops.user_pasid_table`).
    /// - Throws: `ENODEV` no group; `EOPNOTSUPP` the driver cannot hand over its PASID
    ///   table (VT-d attaches per PASID); `EINVAL` the domain is not a nested domain of
    ///   this driver; `EBUSY` PASIDs are attached individually, the group is on another
    ///   user's domain, or under reset; the driver's `attach_dev` errno.
    public func attachDeviceAllPasids(_ domain: IOMMUDomain, to dev: PCIDevice) throws(Errno) {
        try entry("iommu_attach_device_all_pasids") { () throws(Errno) in
            let f = "iommu_attach_device_all_pasids"
            guard let group = dev.group, let driver = dev.iommu?.driver else {
                throw .noDevice.from(f, "\(dev.rid) has no IOMMU group")
            }
            guard driver.userPasidTable else {
                throw .notSupported.from(f, "\(driver.name) attaches per PASID (no user PASID table)")
            }
            guard domain.type == .nested else { throw .invalidArgument.from(f, "\(domain) is not a nested domain") }
            guard group.pasidArray.isEmpty else { throw .busy.from(f, "PASIDs of \(group) are attached one by one") }
            if let current = group.domain, current !== group.defaultDomain, current !== group.blockingDomain,
               group.ownerCookie == nil {
                throw .busy.from(f, "\(group) is on \(current), another user's domain")
            }
            try checkOwner(domain, group)
            try setGroupDomain(group, domain)
            group.ridOwnsAllPasids = true
        }
    }

    // MARK: the global PASID allocator

    /// `iommu_alloc_global_pasid(dev)`: the lowest free PASID in
    /// [`IOMMU_FIRST_GLOBAL_PASID` (1), `max_pasids` - 1] from one system-wide allocator.
    /// With the checker on, reusing a value whose old entries are still live or whose
    /// page requests are still queued is reported (``Invariant/pasidLifetime``).
    ///
    /// Where the kernel returns `IOMMU_PASID_INVALID` this throws the errno its callers
    /// turn that into (`iommu_sva_bind_device`, idxd's `idxd_enable_system_pasid`).
    /// - Throws: `ENODEV` for a device with no PASID above `IOMMU_NO_PASID`
    ///   (`max_pasids` 0 or 1: no PASID capability, or the IOMMU gives it none);
    ///   `ENOSPC` when every PASID in the device's range is in use. Nothing is allocated.
    public func allocGlobalPasid(for dev: PCIDevice) throws(Errno) -> PASID {
        try entry("iommu_alloc_global_pasid") { () throws(Errno) -> PASID in
            guard dev.maxPasids > 1 else {
                throw .noDevice.from("iommu_alloc_global_pasid", "\(dev.rid) has no PASID above 0 (max_pasids \(dev.maxPasids))")
            }
            var p: UInt32 = 1
            while p < dev.maxPasids && globalPasids.contains(PASID(rawValue: p)) { p += 1 }
            guard p < dev.maxPasids else {
                throw .noSpace.from("iommu_alloc_global_pasid", "every PASID below \(dev.maxPasids) is in use")
            }
            let pasid = PASID(rawValue: p)
            globalPasids.insert(pasid)
            if machine.checker.isEnabled { checkReusable(pasid) }
            return pasid
        }
    }

    /// `iommu_free_global_pasid(pasid)`: WARNs on a value not allocated.
    public func freeGlobalPasid(_ pasid: PASID) {
        lock.withLock {
            guard globalPasids.remove(pasid) != nil else {
                warn("iommu_free_global_pasid", "freeing pasid \(pasid) that is not allocated")
                return
            }
        }
    }

    /// Global PASIDs currently allocated (`iommu_global_pasid_ida`), including the
    /// PASIDs of mms bound for SVA: what a leak check compares before and after.
    public var globalPasidsInUse: Int { lock.withLock { globalPasids.count } }

    private func checkReusable(_ pasid: PASID) {
        for dev in machine.allDevices {
            guard let unit = dev.iommu else { continue }
            if unit.hardware.hasLiveEntry(rid: dev.rid, pasid: pasid) {
                machine.checker.report(Violation(.pasidLifetime, device: dev.rid, pasid: pasid, event: "pasid alloc",
                                                 message: "pasid \(pasid) handed out again while a hardware entry for it is live"))
            }
        }
        for u in machine.iommus {
            if u.hardware.hasPendingPageRequests(pasid: pasid) {
                machine.checker.report(Violation(.pasidLifetime, pasid: pasid, event: "pasid alloc",
                                                 message: "pasid \(pasid) handed out again before its page requests were drained"))
            }
        }
    }
}
