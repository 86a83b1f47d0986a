import IOMMUCore
import XCTest

// Shared virtual addressing: the global PASID of an mm and the bind rules (checks 36-41).

extension ConformanceSuite {
    static let svaChecks: [ConformanceCheck] = [
        .svaBindDMAReachesTheProcessMemory, .check36MMPasidComesFromTheGlobalAllocator,
        .check37BindTwiceSharesTheHandle, .check38BindOverflowWhenMMPasidBeyondDeviceWidth,
        .check39BindBusyOnNonSVADomainOrAnotherMMsDomain, .check40OneSVADomainPerMMPerIOMMU,
        .check40CompatibleUnitsOfOneDriverShareTheDomain, .check41MMPasidOutlivesUnbindAndIsFreedAtTeardown,
        .svaBindErrnos, .svaUnbindMoreThanBoundWarnsAndChangesNothing, .svaBindUnbindCycleLeavesNothingBehind,
    ]
}

extension ConformanceVendor {
    /// A PASID device that can take part in SVA on this vendor: with ATS, and with PRI
    /// where the vendor has page requests (so page faults can be served).
    var svaDevice: DeviceSpec { has(.pageRequests) ? .pri : DeviceSpec(ats: true) }

    /// A rig with the checker on and `count` SVA devices.
    func svaRig(_ count: Int = 1) throws -> Rig {
        let rig = try makeRig(Array(repeating: svaDevice, count: count))
        rig.machine.checker.isEnabled = true
        return rig
    }
}

extension ConformanceCheck {
    /// `iommu_sva_bind_device`: the device reaches the process's memory through the mm's
    /// PASID (`iommu_sva_get_pasid`), translated by the process's own page table: it
    /// reads what the process wrote and the process reads what it wrote. After the last
    /// unbind the PASID faults.
    public static var svaBindDMAReachesTheProcessMemory: ConformanceCheck {
        ConformanceCheck(requires: [.pasid, .sva]) { vendor in
            let rig = try vendor.svaRig()
            let dev = rig.devices[0]
            let mm = try rig.process()
            let va = try mm.mmap(length: 2 * 4096, prot: [.read, .write], populate: true)
            try mm.writeMemory(address: va, bytes: [1, 2, 3])
            let bond = try rig.iommu.svaBindDevice(dev, mm: mm)
            let pasid = rig.iommu.svaGetPasid(bond)
            XCTAssertEqual(pasid, mm.enqcmdPasid)
            XCTAssertEqual(try dev.dmaRead(at: IOVA(sva: va), count: 3, pasid: pasid), [1, 2, 3])
            try dev.dmaWrite(at: IOVA(sva: va + 4096 + 5), bytes: [9, 8], pasid: pasid)
            XCTAssertEqual(try mm.readMemory(address: va + 4096 + 5, count: 2), [9, 8])
            rig.iommu.svaUnbindDevice(bond)
            XCTAssertThrowsError(try dev.dmaRead(at: IOVA(sva: va), count: 1, pasid: pasid))
            assertNoViolations(rig.machine)
        }
    }

    /// Check 36: an mm's PASID comes from the same global allocator as
    /// `iommu_alloc_global_pasid`, in [1, `max_pasids` - 1] of the device and unique.
    public static var check36MMPasidComesFromTheGlobalAllocator: ConformanceCheck {
        ConformanceCheck(requires: [.pasid, .sva]) { vendor in
            let rig = try vendor.svaRig()
            let wide = rig.devices[0]
            var narrowSpec = vendor.svaDevice
            narrowSpec.pasidWidth = 2
            let narrow = try rig.addDevice(narrowSpec)
            var seen: Set<PASID> = []
            for _ in 0..<3 {
                let p = try rig.iommu.allocGlobalPasid(for: narrow)
                XCTAssertTrue((1..<narrow.maxPasids).contains(p.rawValue), "\(p)")
                XCTAssertTrue(seen.insert(p).inserted)
            }
            assertErrno(.noSpace, "1...3 exhausted") { try rig.iommu.allocGlobalPasid(for: narrow) }
            for _ in 0..<5 {
                let p = try rig.iommu.allocGlobalPasid(for: wide)
                XCTAssertTrue((1..<wide.maxPasids).contains(p.rawValue))
                XCTAssertTrue(seen.insert(p).inserted, "unique across devices")
            }
            let mm = try rig.process()
            let bond = try rig.iommu.svaBindDevice(wide, mm: mm)
            let pasid = rig.iommu.svaGetPasid(bond)
            XCTAssertTrue((1..<wide.maxPasids).contains(pasid.rawValue))
            XCTAssertFalse(seen.contains(pasid), "the mm's PASID is not one handed out already")
            XCTAssertEqual(pasid, 9, "the lowest free value")
            rig.iommu.svaUnbindDevice(bond)
            assertNoViolations(rig.machine)
        }
    }

    /// Check 37: binding the same (device, mm) twice returns the same handle with two
    /// users and one SVA domain; the first unbind keeps it attached, the last one
    /// detaches the PASID, clears the hardware entry and frees the domain.
    public static var check37BindTwiceSharesTheHandle: ConformanceCheck {
        ConformanceCheck(requires: [.pasid, .sva]) { vendor in
            let rig = try vendor.svaRig()
            let dev = rig.devices[0]
            let mm = try rig.process()
            let va = try mm.mmap(length: 4096, prot: [.read, .write], populate: true)
            try mm.writeMemory(address: va, bytes: [7, 8, 9])
            let first = try rig.iommu.svaBindDevice(dev, mm: mm)
            let second = try rig.iommu.svaBindDevice(dev, mm: mm)
            XCTAssertTrue(first === second)
            XCTAssertEqual(first.users, 2)
            let pasid = rig.iommu.svaGetPasid(first)
            let domain = try XCTUnwrap(first.domain)
            XCTAssertEqual(domain.type, .sva)
            XCTAssertEqual(domain.users, 1, "one device")
            rig.iommu.svaUnbindDevice(second)
            XCTAssertEqual(first.users, 1)
            XCTAssertTrue(try rig.iommu.attachHandle(try XCTUnwrap(dev.group), pasid: pasid) === first, "still attached")
            XCTAssertEqual(try dev.dmaRead(at: IOVA(sva: va), count: 3, pasid: pasid), [7, 8, 9])
            rig.iommu.svaUnbindDevice(first)
            XCTAssertEqual(first.users, 0)
            XCTAssertNil(dev.group?.pasidArray[pasid])
            XCTAssertFalse(rig.live(dev, pasid), "hardware entry cleared")
            XCTAssertTrue(domain.isFreed)
            XCTAssertThrowsError(try dev.dmaRead(at: IOVA(sva: va), count: 3, pasid: pasid))
            assertNoViolations(rig.machine)
        }
    }

    /// Check 38: binding a device whose PASID width cannot hold the mm's PASID is
    /// `EOVERFLOW`; nothing is attached and the mm keeps its PASID.
    public static var check38BindOverflowWhenMMPasidBeyondDeviceWidth: ConformanceCheck {
        ConformanceCheck(requires: [.pasid, .sva]) { vendor in
            let rig = try vendor.svaRig()
            let wide = rig.devices[0]
            var narrowSpec = vendor.svaDevice
            narrowSpec.pasidWidth = 2
            let narrow = try rig.addDevice(narrowSpec)
            // Take PASIDs 1...4 so the mm gets 5, beyond the narrow device's [1, 3].
            let held = try (0..<4).map { _ in try rig.iommu.allocGlobalPasid(for: wide) }
            let mm = try rig.process()
            let bond = try rig.iommu.svaBindDevice(wide, mm: mm)
            XCTAssertEqual(mm.enqcmdPasid, 5)
            assertErrno(.overflow) { try rig.iommu.svaBindDevice(narrow, mm: mm) }
            XCTAssertEqual(narrow.group?.pasidArray.isEmpty, true, "nothing attached")
            XCTAssertEqual(mm.enqcmdPasid, 5, "the mm keeps its PASID")
            XCTAssertEqual(bond.users, 1)
            rig.iommu.svaUnbindDevice(bond)
            held.forEach(rig.iommu.freeGlobalPasid)
        }
    }

    /// Check 39: a bind is `EBUSY` when the mm's PASID of the device holds a non-SVA
    /// domain (with or without a handle) or another mm's SVA domain; the first
    /// attachment stays and no domain is left behind by the failed binds.
    public static var check39BindBusyOnNonSVADomainOrAnotherMMsDomain: ConformanceCheck {
        ConformanceCheck(requires: [.pasid, .sva]) { vendor in
            let rig = try vendor.svaRig(3)
            let (a, b, c) = (rig.devices[0], rig.devices[1], rig.devices[2])
            let mm = try rig.process()
            let bondA = try rig.iommu.svaBindDevice(a, mm: mm)
            let pasid = rig.iommu.svaGetPasid(bondA)
            let paging = try rig.iommu.allocPagingDomain(for: b, flags: [.pasid])
            try rig.iommu.attachDevicePasid(paging, to: b, pasid: pasid)
            assertErrno(.busy) { try rig.iommu.svaBindDevice(b, mm: mm) }
            XCTAssertTrue(b.group?.pasidArray[pasid]?.domain === paging, "first attachment intact")
            rig.iommu.detachDevicePasid(paging, from: b, pasid: pasid)
            try rig.iommu.attachDevicePasid(paging, to: b, pasid: pasid, handle: AttachHandle())
            assertErrno(.busy) { try rig.iommu.svaBindDevice(b, mm: mm) }
            rig.iommu.detachDevicePasid(paging, from: b, pasid: pasid)
            // Another mm's SVA domain at this mm's PASID (as iommufd user PASIDs could do).
            let other = try rig.process()
            let foreign = try rig.driver.domainAllocSVA(c, mm: other)
            try rig.iommu.attachDevicePasid(foreign, to: c, pasid: pasid, handle: AttachHandle())
            assertErrno(.busy) { try rig.iommu.svaBindDevice(c, mm: mm) }
            XCTAssertTrue(c.group?.pasidArray[pasid]?.domain === foreign)
            rig.iommu.detachDevicePasid(foreign, from: c, pasid: pasid)
            rig.iommu.freeDomain(foreign)
            XCTAssertEqual(bondA.users, 1)
            XCTAssertEqual(rig.iommu.svaDomains(of: mm).count, 1, "failed binds left no domain behind")
            rig.iommu.svaUnbindDevice(bondA)
            assertNoViolations(rig.machine)
        }
    }

    /// Check 40: devices behind units of one driver object share one SVA domain per mm
    /// (its `users` counts them); a device behind a unit of another driver object gets
    /// a second domain. Every device reads the process's memory; the domains go with
    /// their last unbind.
    public static var check40OneSVADomainPerMMPerIOMMU: ConformanceCheck {
        ConformanceCheck(requires: [.pasid, .sva]) { vendor in
            let rig = try vendor.svaRig(2)
            let (a, b) = (rig.devices[0], rig.devices[1])
            let c = try rig.addDevice(vendor.svaDevice, behind: rig.addUnit(sharingDriver: false))
            let mm = try rig.process()
            let va = try mm.mmap(length: 4096, prot: [.read, .write], populate: true)
            try mm.writeMemory(address: va, bytes: [42])
            let ba = try rig.iommu.svaBindDevice(a, mm: mm)
            let bb = try rig.iommu.svaBindDevice(b, mm: mm)
            XCTAssertFalse(ba === bb)
            XCTAssertTrue(ba.domain === bb.domain, "one SVA domain per mm per IOMMU")
            XCTAssertEqual(ba.domain?.users, 2)
            let bc = try rig.iommu.svaBindDevice(c, mm: mm)
            XCTAssertFalse(bc.domain === ba.domain, "another driver's IOMMU gets its own domain")
            XCTAssertEqual(bc.domain?.users, 1)
            XCTAssertEqual(rig.iommu.svaDomains(of: mm).count, 2)
            let pasid = mm.enqcmdPasid
            for dev in [a, b, c] { XCTAssertEqual(try dev.dmaRead(at: IOVA(sva: va), count: 1, pasid: pasid), [42]) }
            rig.iommu.svaUnbindDevice(ba)
            XCTAssertEqual(bb.domain?.users, 1)
            XCTAssertFalse(bb.domain?.isFreed ?? true)
            rig.iommu.svaUnbindDevice(bb)
            rig.iommu.svaUnbindDevice(bc)
            XCTAssertTrue(rig.iommu.svaDomains(of: mm).isEmpty)
            assertNoViolations(rig.machine)
        }
    }

    /// Check 40, one driver: devices behind two units of the same driver object share
    /// the mm's SVA domain, when the driver's domains span units.
    public static var check40CompatibleUnitsOfOneDriverShareTheDomain: ConformanceCheck {
        ConformanceCheck(requires: [.pasid, .sva, .domainsSpanUnits]) { vendor in
            let rig = try vendor.svaRig()
            let a = rig.devices[0]
            let c = try rig.addDevice(vendor.svaDevice, behind: rig.addUnit(sharingDriver: true))
            let mm = try rig.process()
            let ba = try rig.iommu.svaBindDevice(a, mm: mm)
            let bc = try rig.iommu.svaBindDevice(c, mm: mm)
            XCTAssertTrue(ba.domain === bc.domain)
            XCTAssertEqual(ba.domain?.users, 2)
            rig.iommu.svaUnbindDevice(ba)
            rig.iommu.svaUnbindDevice(bc)
            assertNoViolations(rig.machine)
        }
    }

    /// Check 41: the mm keeps its PASID after its last unbind (a new bind reuses it) and
    /// gives it back to the global allocator only when the mm is torn down.
    public static var check41MMPasidOutlivesUnbindAndIsFreedAtTeardown: ConformanceCheck {
        ConformanceCheck(requires: [.pasid, .sva]) { vendor in
            let rig = try vendor.svaRig()
            let dev = rig.devices[0]
            let mm = try rig.process()
            let bond = try rig.iommu.svaBindDevice(dev, mm: mm)
            let pasid = rig.iommu.svaGetPasid(bond)
            rig.iommu.svaUnbindDevice(bond)
            XCTAssertEqual(mm.enqcmdPasid, pasid, "still allocated after the last unbind")
            let other = try rig.iommu.allocGlobalPasid(for: dev)
            XCTAssertNotEqual(other, pasid)
            rig.iommu.freeGlobalPasid(other)
            let again = try rig.iommu.svaBindDevice(dev, mm: mm)
            XCTAssertEqual(rig.iommu.svaGetPasid(again), pasid)
            rig.iommu.svaUnbindDevice(again)
            mm.exit()
            XCTAssertNil(mm.enqcmdPasid)
            XCTAssertEqual(try rig.iommu.allocGlobalPasid(for: dev), pasid, "freed at mm teardown")
            assertNoWarnings(rig.machine)
            assertNoViolations(rig.machine)
        }
    }

    /// `iommu_sva_bind_device` refusals: `ENODEV` for a device without an IOMMU group,
    /// `ENOSPC` when no global PASID is left for a new mm, `EFAULT` for an exiting mm;
    /// none leaves a PASID or a domain behind.
    public static var svaBindErrnos: ConformanceCheck {
        ConformanceCheck(requires: [.pasid, .sva]) { vendor in
            let rig = try vendor.svaRig()
            let mm = try rig.process()
            let loose = try rig.machine.addDevice(PCIDevice(rid: RID(bus: 9, device: 1, function: 0)), behind: nil)
            assertErrno(.noDevice) { try rig.iommu.svaBindDevice(loose, mm: mm) }
            XCTAssertNil(mm.enqcmdPasid)
            var oneBit = vendor.svaDevice
            oneBit.pasidWidth = 1
            let narrow = try rig.addDevice(oneBit)
            XCTAssertEqual(try rig.iommu.allocGlobalPasid(for: narrow), 1, "the only PASID")
            assertErrno(.noSpace) { try rig.iommu.svaBindDevice(narrow, mm: mm) }
            XCTAssertNil(mm.enqcmdPasid)
            let dead = try rig.process()
            dead.exit()
            assertErrno(.badAddress) { try rig.iommu.svaBindDevice(rig.devices[0], mm: dead) }
            XCTAssertTrue(rig.iommu.svaDomains(of: dead).isEmpty)
            XCTAssertEqual(rig.iommu.globalPasidsInUse, 1, "only the PASID taken by hand")
        }
    }

    /// `iommu_sva_unbind_device` on a handle with no users left WARNs and does nothing.
    public static var svaUnbindMoreThanBoundWarnsAndChangesNothing: ConformanceCheck {
        ConformanceCheck(requires: [.pasid, .sva]) { vendor in
            let rig = try vendor.svaRig()
            let mm = try rig.process()
            let bond = try rig.iommu.svaBindDevice(rig.devices[0], mm: mm)
            rig.iommu.svaUnbindDevice(bond)
            rig.iommu.svaUnbindDevice(bond)
            XCTAssertEqual(rig.machine.warnings.map(\.function), ["iommu_sva_unbind_device"])
            XCTAssertEqual(bond.users, 0)
            XCTAssertTrue(rig.iommu.svaDomains(of: mm).isEmpty)
        }
    }

    /// Bind and unbind cycles on two devices, then the mm's teardown, return frames,
    /// pinned frames, global PASIDs and the vendor's hardware identifiers to their
    /// counts; no WARN, no invariant violation.
    public static var svaBindUnbindCycleLeavesNothingBehind: ConformanceCheck {
        ConformanceCheck(requires: [.pasid, .sva]) { vendor in
            let rig = try vendor.svaRig(2)
            let leaks = rig.leakCheck()
            let mm = try rig.process()
            let va = try mm.mmap(length: 4096, prot: [.read, .write], populate: true)
            for _ in 0..<3 {
                let bonds = try rig.devices.map { try rig.iommu.svaBindDevice($0, mm: mm) }
                for (dev, bond) in zip(rig.devices, bonds) {
                    try dev.dmaWrite(at: IOVA(sva: va), bytes: [5], pasid: rig.iommu.svaGetPasid(bond))
                }
                bonds.forEach(rig.iommu.svaUnbindDevice)
            }
            mm.exit()
            leaks.assertNoLeaks()
            assertNoWarnings(rig.machine)
            assertNoViolations(rig.machine)
        }
    }
}
