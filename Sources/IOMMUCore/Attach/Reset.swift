extension IOMMUSubsystem {
    /// `pci_dev_reset_iommu_prepare(pdev)`: before a PCI reset of an ATS-capable device,
    /// park its RID on the blocking domain (keeping `group->domain`) and remove every PASID
    /// (keeping the PASID array), so no translation or ATS request is served during reset.
    /// Attach and replace on the group fail with `EBUSY` until
    /// ``resetDone(_:)``. Nested calls only count.
    /// - Throws: the blocked domain's attach errno; the device is then left as it was.
    public func resetPrepare(_ dev: PCIDevice) throws(Errno) {
        try entry("pci_dev_reset_iommu_prepare") { () throws(Errno) in
            guard dev.caps.ats, let group = dev.group, let driver = dev.iommu?.driver else { return }
            if let depth = group.resetDepth[dev.rid] {
                group.resetDepth[dev.rid] = depth + 1
                return
            }
            let blocked = try resetBlockingDomain(group, driver)
            try blocked.attachDev(dev, old: group.domain)
            if dev.maxPasids > 0, let remover = driver.blockedDomain, remover.ops.contains(.setDevPasid) {
                for (pasid, slot) in group.pasidArray {
                    if let d = slot.domain { try? remover.setDevPasid(dev, pasid: pasid, old: d) }
                }
            }
            group.resetDepth[dev.rid] = 1
        }
    }

    /// `pci_dev_reset_iommu_done(pdev)`: re-attach the group's RID domain and every PASID
    /// domain from the PASID array, then allow attach again.
    public func resetDone(_ dev: PCIDevice) {
        lock.withLock {
            guard let group = dev.group, let depth = group.resetDepth[dev.rid] else { return }
            if depth > 1 {
                group.resetDepth[dev.rid] = depth - 1
                return
            }
            let blocked = group.blockingDomain ?? dev.iommu?.driver.blockedDomain
            if let d = group.domain {
                do { try d.attachDev(dev, old: blocked) } catch {
                    warn("pci_dev_reset_iommu_done", "re-attaching \(d) to \(dev.rid) failed: \(error)")
                }
            }
            if dev.maxPasids > 0 {
                for (pasid, slot) in group.pasidArray.sorted(by: { $0.key < $1.key }) {
                    guard let d = slot.domain else { continue }
                    do { try d.setDevPasid(dev, pasid: pasid, old: nil) } catch {
                        warn("pci_dev_reset_iommu_done", "re-attaching pasid \(pasid) of \(dev.rid) failed: \(error)")
                    }
                }
            }
            group.resetDepth[dev.rid] = nil
        }
    }

    private func resetBlockingDomain(_ group: IOMMUGroup, _ driver: any IOMMUDriver) throws(Errno) -> IOMMUDomain {
        if let b = driver.blockedDomain { return b }
        if let b = group.blockingDomain { return b }
        guard let dev = group.devices.first else { throw .noDevice.from("pci_dev_reset_iommu_prepare", "\(group) has no device") }
        let b = try driver.domainAllocPaging(dev, flags: [], userData: nil)
        b.type = .unmanaged
        group.blockingDomain = b
        return b
    }
}
