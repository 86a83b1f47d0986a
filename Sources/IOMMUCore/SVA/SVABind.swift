extension IOMMUSubsystem {
    /// `iommu_sva_bind_device(dev, mm)`: share the address space of `mm` with `dev`.
    /// The device then reaches the process's memory through the mm's PASID
    /// (``svaGetPasid(_:)``), translated by the process's own CPU page table.
    ///
    /// The mm gets its PASID from the global allocator at its first bind and keeps it
    /// until it is torn down. Binding a (device, mm) pair already bound returns the same
    /// ``SVABond`` with one more user. Otherwise the mm's existing SVA domains are tried
    /// first (devices behind compatible IOMMUs share one domain, whose `users` counts
    /// them), then the driver allocates a new one (`domain_alloc_sva`), which the core
    /// marks SVA and gives the SVA fault handler (``SVAIOPFHandler``).
    /// - Throws: `ENODEV` the device has no IOMMU group; `EOVERFLOW` the mm's PASID is
    ///   not below the device's `max_pasids`; `ENOSPC` no global PASID is free; `EBUSY`
    ///   the PASID slot holds a non-SVA domain or another mm's SVA domain;
    ///   `EOPNOTSUPP` the driver has no `domain_alloc_sva`; `EFAULT` the mm is exiting
    ///   (the kernel requires the caller to hold `mm_users`; the model refuses a dead mm
    ///   with the errno of VT-d's notifier registration); the driver's errno from
    ///   `domain_alloc_sva` or `set_dev_pasid`. A failed bind changes nothing (the
    ///   kernel would keep a PASID it allocated for the mm in that call; no device ever
    ///   saw it, so the model returns it).
    public func svaBindDevice(_ dev: PCIDevice, mm: Process) throws(Errno) -> SVABond {
        try entry("iommu_sva_bind_device") { () throws(Errno) -> SVABond in
            guard let group = dev.group, dev.iommu != nil else {
                throw .noDevice.from("iommu_sva_bind_device", "\(dev.rid) has no IOMMU group")
            }
            guard !mm.isExiting else { throw .badAddress.from("iommu_sva_bind_device", "process \(mm.pid) is exiting") }
            let (data, fresh) = try mmData(mm, for: dev)
            do throws(Errno) {
                let bond = try bind(dev, group: group, mm: mm, data: data)
                machine.events.record(.model("sva_bind_device", device: dev.rid, pasid: data.pasid,
                                             [.init("device", dev.rid.devName), .init("pid", "\(mm.pid)"),
                                              .init("pasid", "\(data.pasid)"), .init("users", "\(bond._users)")]))
                return bond
            } catch {
                if fresh {
                    mm.lock.withLock { mm.iommuMM = nil }
                    freeGlobalPasid(data.pasid)
                }
                throw error
            }
        }
    }

    /// `iommu_alloc_mm_data`: the mm's IOMMU data, allocating its PASID on first use.
    /// Returns whether it was created by this call.
    private func mmData(_ mm: Process, for dev: PCIDevice) throws(Errno) -> (IOMMUMMData, Bool) {
        if let data = mm.lock.withLock({ mm.iommuMM as? IOMMUMMData }), !data.dropped {
            guard data.pasid.rawValue < dev.maxPasids else {
                throw .overflow.from("iommu_sva_bind_device",
                                     "the mm's PASID \(data.pasid) is beyond \(dev.rid)'s max_pasids \(dev.maxPasids)")
            }
            return (data, false)
        }
        // The kernel turns every IOMMU_PASID_INVALID from the allocator into ENOSPC here.
        let pasid: PASID
        do { pasid = try allocGlobalPasid(for: dev) } catch {
            throw .noSpace.from("iommu_sva_bind_device", "no PASID for the mm: \(error)")
        }
        let data = IOMMUMMData(pasid: pasid, iommu: self)
        mm.lock.withLock { mm.iommuMM = data }
        return (data, true)
    }

    private func bind(_ dev: PCIDevice, group: IOMMUGroup, mm: Process, data: IOMMUMMData) throws(Errno) -> SVABond {
        let pasid = data.pasid
        do throws(Errno) {
            let existing = try attachHandle(group, pasid: pasid, type: .sva)
            guard let bond = existing as? SVABond, existing.domain?.mm === mm else {
                throw .busy.from("iommu_sva_bind_device", "PASID \(pasid) of \(dev.rid) is bound to another mm")
            }
            bond._users += 1
            return bond
        } catch {
            if error != .noEntry { throw error }
        }
        let bond = SVABond(device: dev, mm: mm, pasid: pasid)
        for domain in data.svaDomains {
            do throws(Errno) {
                try attachDevicePasid(domain, to: dev, pasid: pasid, handle: bond)
                domain.users += 1
                bond._users = 1
                return bond
            } catch {
                continue
            }
        }
        let domain = try svaDomainAlloc(dev, mm: mm)
        do throws(Errno) {
            try attachDevicePasid(domain, to: dev, pasid: pasid, handle: bond)
        } catch {
            freeDomain(domain)
            throw error
        }
        domain.users = 1
        data.svaDomains.append(domain)
        bond._users = 1
        return bond
    }

    /// `iommu_sva_domain_alloc`: the driver's SVA domain, typed SVA, holding `mm`, with
    /// the SVA fault handler.
    /// - Throws: `EOPNOTSUPP` without `domain_alloc_sva`; the driver's errno.
    private func svaDomainAlloc(_ dev: PCIDevice, mm: Process) throws(Errno) -> IOMMUDomain {
        guard let driver = dev.iommu?.driver else { throw .noDevice.from("iommu_sva_domain_alloc", "\(dev.rid) has no IOMMU") }
        let domain = try driver.domainAllocSVA(dev, mm: mm)
        domain.type = .sva
        domain.mm = mm
        domain.iopfHandler = SVAIOPFHandler.shared
        return domain
    }

    /// `iommu_sva_unbind_device(handle)`: undo one bind. The last one detaches the
    /// mm's PASID from the device (entry cleared, caches invalidated, page requests
    /// drained, handle removed) and drops the device from the SVA domain, which is
    /// freed when no device uses it. The mm keeps its PASID.
    ///
    /// The caller must have stopped the device's DMA and page requests for the PASID.
    /// An unbind of a bond with no users left is a WARN and does nothing.
    public func svaUnbindDevice(_ bond: SVABond) {
        lock.withLock {
            guard bond._users > 0 else {
                warn("iommu_sva_unbind_device", "\(bond) unbound more often than bound")
                return
            }
            bond._users -= 1
            machine.events.record(.model("sva_unbind_device", device: bond.device.rid, pasid: bond.pasid,
                                         [.init("device", bond.device.rid.devName), .init("pid", "\(bond.mm.pid)"),
                                          .init("pasid", "\(bond.pasid)"), .init("users", "\(bond._users)")]))
            guard bond._users == 0, let domain = bond.domain else { return }
            detachDevicePasid(domain, from: bond.device, pasid: bond.pasid)
            domain.users -= 1
            guard domain.users == 0 else { return }
            freeDomain(domain)
            let data = bond.mm.lock.withLock { bond.mm.iommuMM as? IOMMUMMData }
            data?.domainFreed(domain)
        }
    }

    /// `iommu_sva_get_pasid(handle)`: the PASID the device uses for the bound mm
    /// (`mm_get_enqcmd_pasid(domain->mm)`). The bond's SVA domain holds the mm, so the
    /// mm keeps this PASID as long as the bond is bound; the kernel's
    /// `IOMMU_PASID_INVALID` (a PASID already dropped) cannot be returned here.
    public func svaGetPasid(_ bond: SVABond) -> PASID { bond.pasid }

    /// The SVA domains of `mm` (`iommu_mm->sva_domains`), empty if it was never bound.
    public func svaDomains(of mm: Process) -> [IOMMUDomain] {
        lock.withLock { (mm.lock.withLock { mm.iommuMM } as? IOMMUMMData)?.svaDomains ?? [] }
    }
}
