extension IOMMUSubsystem {
    /// `iommu_attach_device(domain, dev)`: attach `domain` to the RID of a device that is
    /// alone in its group.
    /// - Throws: `ENODEV` no group; `EINVAL` the group has more than one device, the
    ///   domain belongs to another driver, or it was freed (WARN); `EBUSY` another
    ///   non-default domain is attached or a device is under reset; the driver's
    ///   `attach_dev` errno. A failure is logged as `iommukit:error`.
    public func attachDevice(_ domain: IOMMUDomain, to dev: PCIDevice) throws(Errno) {
        try entry("iommu_attach_device") { () throws(Errno) in
            guard let group = dev.group else { throw .noDevice.from("iommu_attach_device", "\(dev.rid) has no IOMMU group") }
            guard group.devices.count == 1 else {
                throw .invalidArgument.from("iommu_attach_device",
                                            "\(dev.rid) shares \(group) with \(group.devices.count - 1) other device(s): attach the group")
            }
            try attachGroupLocked(domain, group)
        }
    }

    /// `iommu_attach_group(domain, group)`: attach `domain` to every device of the group.
    /// - Throws: `EBUSY` when the group is on a domain other than its default or blocking
    ///   domain, or under reset; `EINVAL` for a domain of another driver or a device that
    ///   requires direct mappings and a blocking domain; the driver's errno.
    public func attachGroup(_ domain: IOMMUDomain, to group: IOMMUGroup) throws(Errno) {
        try entry("iommu_attach_group") { () throws(Errno) in try attachGroupLocked(domain, group) }
    }

    func attachGroupLocked(_ domain: IOMMUDomain, _ group: IOMMUGroup) throws(Errno) {
        if let current = group.domain, current !== group.defaultDomain, current !== group.blockingDomain {
            throw .busy.from("iommu_attach_group", "\(group) is on \(current), not its default or blocking domain")
        }
        try checkOwner(domain, group)
        try setGroupDomain(group, domain)
    }

    /// `domain->owner != ops` (static identity/blocked domains of the driver are its own),
    /// and the domain has not been freed (a use after `iommu_domain_free`: WARN, `EINVAL`).
    func checkOwner(_ domain: IOMMUDomain, _ group: IOMMUGroup) throws(Errno) {
        try checkLive(domain, "__iommu_attach_group")
        guard let first = group.devices.first, let unit = first.iommu else {
            throw .invalidArgument.from("__iommu_attach_group", "\(group) has no device behind an IOMMU")
        }
        guard domain.owner === unit.driver else {
            throw .invalidArgument.from("__iommu_attach_group", "\(domain) belongs to another driver than \(unit.name)'s")
        }
    }

    /// A freed domain is not used again: the kernel would use freed memory; the model
    /// records a WARN and refuses with `EINVAL`.
    func checkLive(_ domain: IOMMUDomain, _ function: String) throws(Errno) {
        guard domain.isFreed else { return }
        warn(function, "\(domain) was freed (iommu_domain_free)")
        throw .invalidArgument.from(function, "\(domain) was freed")
    }

    /// `iommu_group_replace_domain` (IOMMUFD_INTERNAL): switch an owned group to `domain`
    /// without passing through the blocking domain.
    /// - Throws: `EINVAL` for a domain of another driver; `EBUSY` under reset; the
    ///   driver's errno (the group stays on its old domain).
    public func replaceGroupDomain(_ domain: IOMMUDomain, of group: IOMMUGroup) throws(Errno) {
        try entry("iommu_group_replace_domain") { () throws(Errno) in
            try checkOwner(domain, group)
            try setGroupDomain(group, domain)
        }
    }

    /// `iommu_detach_device(domain, dev)`: return a single-device group to the core's
    /// domain: the blocking domain if a user owns the group, else the default domain.
    /// WARNs (and does nothing) if `domain` is not the attached one or the group has more
    /// than one device.
    public func detachDevice(_ domain: IOMMUDomain, from dev: PCIDevice) {
        lock.withLock {
            guard let group = dev.group else { return }
            guard group.domain === domain, group.devices.count == 1 else {
                warn("iommu_detach_device", "\(domain) is not the attached domain of \(dev.rid)'s group, or the group has several devices")
                return
            }
            setCoreDomain(group)
        }
    }

    /// `iommu_detach_group(domain, group)`: same rule as ``detachDevice(_:from:)``.
    public func detachGroup(_ domain: IOMMUDomain, from group: IOMMUGroup) {
        lock.withLock {
            guard group.domain === domain else {
                warn("iommu_detach_group", "\(domain) is not attached to \(group)")
                return
            }
            setCoreDomain(group)
        }
    }

    /// `__iommu_group_set_core_domain`: blocking if owned, default otherwise. Must succeed.
    func setCoreDomain(_ group: IOMMUGroup) {
        let target = group.ownerCookie != nil ? group.blockingDomain : group.defaultDomain
        guard let target else { return }
        do { try setGroupDomain(group, target) } catch {
            warn("__iommu_group_set_core_domain", "returning \(group) to \(target) failed: \(error)")
        }
    }

    /// `__iommu_group_set_domain_internal`: move every device of the group to `newDomain`.
    /// On a driver error the devices already moved go back to the old domain, so DMA only
    /// ever sees the old or the new translation.
    func setGroupDomain(_ group: IOMMUGroup, _ newDomain: IOMMUDomain) throws(Errno) {
        if group.domain === newDomain { return }
        guard group.recoveryCount == 0 else {
            throw .busy.from("__iommu_group_set_domain_internal", "a device of \(group) is being reset")
        }
        let isBlocking = newDomain.type == .blocked || newDomain === group.blockingDomain
        if isBlocking, group.devices.contains(where: { $0.requireDirect }) {
            warn("__iommu_group_set_domain_internal", "firmware requires direct mappings; refusing a blocking domain")
            throw .invalidArgument.from("__iommu_group_set_domain_internal",
                                        "a device of \(group) requires direct mappings (RMRR): no blocking domain")
        }
        let old = group.domain
        var moved: [PCIDevice] = []
        for dev in group.devices {
            do throws(Errno) {
                try newDomain.attachDev(dev, old: old)
                moved.append(dev)
            } catch {
                if let old {
                    for m in moved {
                        do { try old.attachDev(m, old: newDomain) } catch {
                            warn("__iommu_group_set_domain_internal", "rollback of \(m.rid) to \(old) failed")
                        }
                    }
                }
                throw error
            }
        }
        group.domain = newDomain
        group.ridOwnsAllPasids = false
        machine.noteAttach()
        for dev in group.devices {
            machine.events.record(.attachDeviceToDomain(device: dev.rid, domain: newDomain))
        }
    }
}
