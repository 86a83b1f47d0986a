extension IOMMUSubsystem {
    /// `iommu_device_use_default_domain(dev)`: a kernel DMA-API driver is about to bind.
    /// - Throws: `EPROBE_DEFER` before the default domain exists; `EBUSY` when a user owns
    ///   the group, the group is not on its default domain, or PASIDs are attached.
    public func deviceUseDefaultDomain(_ dev: PCIDevice) throws(Errno) {
        try entry("iommu_device_use_default_domain") { () throws(Errno) in
            guard let group = dev.group else { return }
            let f = "iommu_device_use_default_domain"
            guard group.defaultDomain != nil else { throw .probeDefer.from(f, "\(group) has no default domain yet") }
            if group.ownerCount != 0 {
                if group.ownerCookie != nil { throw .busy.from(f, "a user owns \(group) (iommu_group_claim_dma_owner)") }
                if group.domain !== group.defaultDomain { throw .busy.from(f, "\(group) is not on its default domain") }
                if group.hasPasidArrayEntries { throw .busy.from(f, "\(group) has PASIDs attached") }
            }
            group.ownerCount += 1
        }
    }

    /// `iommu_device_unuse_default_domain(dev)`: the DMA-API driver unbound. WARNs and
    /// changes nothing if the count is already 0 or the driver left PASIDs attached.
    public func deviceUnuseDefaultDomain(_ dev: PCIDevice) {
        lock.withLock {
            guard let group = dev.group else { return }
            guard group.ownerCount > 0, !group.hasPasidArrayEntries else {
                warn("iommu_device_unuse_default_domain",
                     group.ownerCount == 0 ? "owner count is already 0" : "\(dev.rid) unbinds with \(group.pasidArray.count + (group.ridSlot == nil ? 0 : 1)) PASID array entries still attached")
                return
            }
            group.ownerCount -= 1
        }
    }

    /// `iommu_group_claim_dma_owner(group, owner)`: take exclusive user ownership.
    /// - Throws: `EPERM` if anyone uses the group; `EBUSY` when the group is not on its
    ///   default domain or PASIDs are attached; `EINVAL` when the blocking domain cannot be
    ///   attached (a device requires direct mappings).
    public func groupClaimDMAOwner(_ group: IOMMUGroup, owner: AnyObject) throws(Errno) {
        try entry("iommu_group_claim_dma_owner") { () throws(Errno) in
            guard group.ownerCount == 0 else {
                throw .notPermitted.from("iommu_group_claim_dma_owner", "\(group) is in use (\(group.ownerCount) owner(s))")
            }
            try takeOwnership(group, owner)
        }
    }

    /// `iommu_device_claim_dma_owner(dev, owner)`: per-device variant; a second device of
    /// the group may claim with the same owner cookie.
    /// - Throws: `ENODEV` no group; `EPERM` a DMA-API driver or a different owner holds the
    ///   group; `EBUSY`/`EINVAL` as ``groupClaimDMAOwner(_:owner:)``.
    public func deviceClaimDMAOwner(_ dev: PCIDevice, owner: AnyObject) throws(Errno) {
        try entry("iommu_device_claim_dma_owner") { () throws(Errno) in
            guard let group = dev.group else { throw .noDevice.from("iommu_device_claim_dma_owner", "\(dev.rid) has no IOMMU group") }
            if group.ownerCount != 0 {
                guard group.ownerCookie == ObjectIdentifier(owner) else {
                    throw .notPermitted.from("iommu_device_claim_dma_owner", group.ownerCookie == nil
                        ? "a kernel driver uses \(group) through the DMA API"
                        : "another owner holds \(group)")
                }
                group.ownerCount += 1
                return
            }
            try takeOwnership(group, owner)
        }
    }

    private func takeOwnership(_ group: IOMMUGroup, _ owner: AnyObject) throws(Errno) {
        if group.domain != nil && group.domain !== group.defaultDomain {
            throw .busy.from("__iommu_take_dma_ownership", "\(group) is not on its default domain")
        }
        if group.hasPasidArrayEntries { throw .busy.from("__iommu_take_dma_ownership", "\(group) has PASIDs attached") }
        let blocking = try blockingDomain(for: group)
        try setGroupDomain(group, blocking)
        group.owner = owner
        group.ownerCookie = ObjectIdentifier(owner)
        group.ownerCount += 1
    }

    /// The driver's static blocked domain, or (for drivers without one) an empty paging
    /// domain, which blocks just as well.
    private func blockingDomain(for group: IOMMUGroup) throws(Errno) -> IOMMUDomain {
        if let b = group.blockingDomain { return b }
        guard let dev = group.devices.first, let driver = dev.iommu?.driver else {
            throw .noDevice.from("__iommu_group_alloc_blocking_domain", "\(group) has no device behind an IOMMU")
        }
        let b: IOMMUDomain
        if let blocked = driver.blockedDomain {
            b = blocked
        } else {
            b = try driver.domainAllocPaging(dev, flags: [], userData: nil)
            b.type = .unmanaged
        }
        group.blockingDomain = b
        return b
    }

    /// `iommu_group_release_dma_owner(group)`: give the group back to the kernel.
    /// WARNs and does nothing if the group is not owned or PASIDs are attached.
    public func groupReleaseDMAOwner(_ group: IOMMUGroup) {
        lock.withLock {
            guard group.ownerCount > 0, group.ownerCookie != nil, !group.hasPasidArrayEntries else {
                warn("iommu_group_release_dma_owner", "group is not user-owned, or PASIDs are attached")
                return
            }
            releaseOwnership(group)
        }
    }

    /// `iommu_device_release_dma_owner(dev)`: drop one claim; the last one returns the
    /// group to its default domain.
    public func deviceReleaseDMAOwner(_ dev: PCIDevice) {
        lock.withLock {
            guard let group = dev.group else { return }
            guard group.ownerCount > 0, group.ownerCookie != nil, !group.hasPasidArrayEntries else {
                warn("iommu_device_release_dma_owner", "group is not user-owned, or PASIDs are attached")
                return
            }
            if group.ownerCount > 1 {
                group.ownerCount -= 1
                return
            }
            releaseOwnership(group)
        }
    }

    private func releaseOwnership(_ group: IOMMUGroup) {
        group.ownerCount = 0
        group.owner = nil
        group.ownerCookie = nil
        if let def = group.defaultDomain {
            do { try setGroupDomain(group, def) } catch {
                warn("__iommu_release_dma_ownership", "returning to the default domain failed: \(error)")
            }
        }
    }
}
