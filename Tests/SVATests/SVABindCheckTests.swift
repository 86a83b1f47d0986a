import XCTest
import IOMMUCore
import IOMMUDrivers

/// Checks 36–41 of spec §5: the global PASID allocator and the SVA bind rules.
final class SVABindCheckTests: XCTestCase {
    func testCheck36GlobalPasidAllocation() throws {
        let rig = try SVARig()
        let noPasid = try rig.device(1, pasidWidth: nil, ats: false, pri: false)
        XCTAssertEqual(noPasid.maxPasids, 0)
        XCTAssertEqual(rig.iommu.allocGlobalPasid(for: noPasid), IOMMUSubsystem.invalidPasid)
        let narrow = try rig.device(2, pasidWidth: 2)
        let wide = try rig.device(3)
        var seen: Set<UInt32> = []
        for _ in 0..<3 {
            let p = rig.iommu.allocGlobalPasid(for: narrow)
            XCTAssertTrue((1..<narrow.maxPasids).contains(p), "\(p)")
            XCTAssertTrue(seen.insert(p).inserted)
        }
        XCTAssertEqual(rig.iommu.allocGlobalPasid(for: narrow), IOMMUSubsystem.invalidPasid, "[1, 3] exhausted")
        for _ in 0..<5 {
            let p = rig.iommu.allocGlobalPasid(for: wide)
            XCTAssertTrue((1..<wide.maxPasids).contains(p))
            XCTAssertTrue(seen.insert(p).inserted, "unique across devices")
        }
        // An mm's PASID comes from the same allocator.
        let mm = try rig.process()
        let bond = try rig.iommu.svaBindDevice(wide, mm: mm)
        XCTAssertFalse(seen.contains(rig.iommu.svaGetPasid(bond)))
        rig.iommu.svaUnbindDevice(bond)
        XCTAssertTrue(rig.violations.isEmpty, "\(rig.violations)")
    }

    func testCheck37BindTwiceSameHandleUsers2() throws {
        let rig = try SVARig()
        let dev = try rig.device(2)
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
        XCTAssertEqual(try dev.dmaRead(at: va, count: 3, pasid: pasid), [7, 8, 9])
        rig.iommu.svaUnbindDevice(first)
        XCTAssertEqual(first.users, 0)
        XCTAssertNil(dev.group?.pasidArray[pasid])
        XCTAssertEqual(rig.unit.pasidEntry(rid: dev.rid, pasid: pasid)?.isZero, true)
        XCTAssertTrue(domain.isFreed)
        XCTAssertThrowsError(try dev.dmaRead(at: va, count: 3, pasid: pasid))
        XCTAssertTrue(rig.violations.isEmpty, "\(rig.violations)")
    }

    func testCheck38BindOverflowWhenMMPasidBeyondDeviceWidth() throws {
        let rig = try SVARig()
        let wide = try rig.device(2)
        let narrow = try rig.device(3, pasidWidth: 2)
        // Take PASIDs 1...4 so the mm gets 5, beyond the narrow device's [1, 3].
        let held = (0..<4).map { _ in rig.iommu.allocGlobalPasid(for: wide) }
        let mm = try rig.process()
        let bond = try rig.iommu.svaBindDevice(wide, mm: mm)
        XCTAssertEqual(mm.enqcmdPasid, 5)
        assertErrno(.overflow) { () throws(Errno) in try rig.iommu.svaBindDevice(narrow, mm: mm) }
        XCTAssertEqual(narrow.group?.pasidArray.isEmpty, true, "nothing attached")
        XCTAssertEqual(mm.enqcmdPasid, 5, "the mm keeps its PASID")
        XCTAssertEqual(bond.users, 1)
        rig.iommu.svaUnbindDevice(bond)
        held.forEach(rig.iommu.freeGlobalPasid)
    }

    func testCheck39BindBusyOnNonSVADomainOrAnotherMMsDomain() throws {
        let rig = try SVARig()
        let a = try rig.device(2)
        let b = try rig.device(3)
        let c = try rig.device(4)
        let mm = try rig.process()
        let bondA = try rig.iommu.svaBindDevice(a, mm: mm)
        let pasid = rig.iommu.svaGetPasid(bondA)
        // A bare paging domain at the mm's PASID of b.
        let paging = try rig.iommu.allocPagingDomain(for: b, flags: [.pasid])
        try rig.iommu.attachDevicePasid(paging, to: b, pasid: pasid)
        assertErrno(.busy) { () throws(Errno) in try rig.iommu.svaBindDevice(b, mm: mm) }
        XCTAssertTrue(b.group?.pasidArray[pasid]?.domain === paging, "first attachment intact")
        // The same through a handle (iommu_attach_handle_get sees a non-SVA type).
        rig.iommu.detachDevicePasid(paging, from: b, pasid: pasid)
        try rig.iommu.attachDevicePasid(paging, to: b, pasid: pasid, handle: AttachHandle())
        assertErrno(.busy) { () throws(Errno) in try rig.iommu.svaBindDevice(b, mm: mm) }
        rig.iommu.detachDevicePasid(paging, from: b, pasid: pasid)
        // Another mm's SVA domain at this mm's PASID (as iommufd user PASIDs could do).
        let other = try rig.process()
        let foreign = try rig.drivers[0].domainAllocSVA(c, mm: other)
        try rig.iommu.attachDevicePasid(foreign, to: c, pasid: pasid, handle: AttachHandle())
        assertErrno(.busy) { () throws(Errno) in try rig.iommu.svaBindDevice(c, mm: mm) }
        XCTAssertTrue(c.group?.pasidArray[pasid]?.domain === foreign)
        rig.iommu.detachDevicePasid(foreign, from: c, pasid: pasid)
        rig.iommu.freeDomain(foreign)
        XCTAssertEqual(bondA.users, 1)
        XCTAssertEqual(rig.iommu.svaDomains(of: mm).count, 1, "failed binds left no domain behind")
        rig.iommu.svaUnbindDevice(bondA)
        XCTAssertTrue(rig.violations.isEmpty, "\(rig.violations)")
    }

    func testCheck40SharedDomainOnOneIOMMUSecondDomainOnIncompatibleIOMMU() throws {
        let rig = try SVARig(units: 2, separateDrivers: true)
        let a = try rig.device(2)
        let b = try rig.device(3)
        let c = try rig.device(2, unit: 1)
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
        for dev in [a, b, c] { XCTAssertEqual(try dev.dmaRead(at: va, count: 1, pasid: pasid), [42]) }
        rig.iommu.svaUnbindDevice(ba)
        XCTAssertEqual(bb.domain?.users, 1)
        XCTAssertFalse(bb.domain?.isFreed ?? true)
        rig.iommu.svaUnbindDevice(bb)
        rig.iommu.svaUnbindDevice(bc)
        XCTAssertTrue(rig.iommu.svaDomains(of: mm).isEmpty)
        XCTAssertTrue(rig.violations.isEmpty, "\(rig.violations)")
    }

    func testCheck40CompatibleUnitsOfOneDriverShareTheDomain() throws {
        let rig = try SVARig(units: 2)
        let a = try rig.device(2)
        let c = try rig.device(2, unit: 1)
        let mm = try rig.process()
        let ba = try rig.iommu.svaBindDevice(a, mm: mm)
        let bc = try rig.iommu.svaBindDevice(c, mm: mm)
        XCTAssertTrue(ba.domain === bc.domain)
        XCTAssertEqual(ba.domain?.users, 2)
        rig.iommu.svaUnbindDevice(ba)
        rig.iommu.svaUnbindDevice(bc)
    }

    func testCheck41MMPasidOutlivesUnbindAndIsFreedAtTeardown() throws {
        let rig = try SVARig()
        let dev = try rig.device(2)
        let mm = try rig.process()
        let bond = try rig.iommu.svaBindDevice(dev, mm: mm)
        let pasid = rig.iommu.svaGetPasid(bond)
        rig.iommu.svaUnbindDevice(bond)
        XCTAssertEqual(mm.enqcmdPasid, pasid, "still allocated after the last unbind")
        let other = rig.iommu.allocGlobalPasid(for: dev)
        XCTAssertNotEqual(other, pasid)
        rig.iommu.freeGlobalPasid(other)
        // A new bind reuses the mm's PASID.
        let again = try rig.iommu.svaBindDevice(dev, mm: mm)
        XCTAssertEqual(rig.iommu.svaGetPasid(again), pasid)
        rig.iommu.svaUnbindDevice(again)
        mm.exit()
        XCTAssertEqual(mm.enqcmdPasid, IOMMUSubsystem.invalidPasid)
        XCTAssertEqual(rig.iommu.allocGlobalPasid(for: dev), pasid, "freed at mm teardown")
        XCTAssertTrue(rig.machine.warnings.isEmpty, "\(rig.machine.warnings)")
        XCTAssertTrue(rig.violations.isEmpty, "\(rig.violations)")
    }

    func testBindErrnos() throws {
        let rig = try SVARig(caps: VTdCapabilities(svmCapable: false))
        let dev = try rig.device(2)
        let mm = try rig.process()
        // The driver refuses (not SVM capable): nothing is left behind.
        assertErrno(.noDevice) { () throws(Errno) in try rig.iommu.svaBindDevice(dev, mm: mm) }
        XCTAssertEqual(mm.enqcmdPasid, IOMMUSubsystem.invalidPasid)
        XCTAssertEqual(rig.iommu.allocGlobalPasid(for: dev), 1, "the PASID went back")
        // No group.
        let loose = PCIDevice(rid: RID(bus: 9, device: 1, function: 0))
        try rig.machine.addDevice(loose, behind: nil)
        assertErrno(.noDevice) { () throws(Errno) in try rig.iommu.svaBindDevice(loose, mm: mm) }
        // A driver without domain_alloc_sva.
        let machine = Machine(memory: 1 << 28)
        let mock = MockIOMMU(driver: MockIOMMUDriver())
        machine.addIOMMU(mock)
        let mdev = try mock.makeDevice(on: machine, flags: [.pasid])
        let mmm = try Process(memory: machine.memory, pid: 1)
        assertErrno(.notSupported) { () throws(Errno) in try machine.iommu.svaBindDevice(mdev, mm: mmm) }
        XCTAssertEqual(mmm.enqcmdPasid, IOMMUSubsystem.invalidPasid)
        // No PASID left.
        let rig2 = try SVARig()
        let narrow = try rig2.device(2, pasidWidth: 1)
        let only = rig2.iommu.allocGlobalPasid(for: narrow)
        XCTAssertEqual(only, 1)
        let fresh = try rig2.process()
        assertErrno(.noSpace) { () throws(Errno) in try rig2.iommu.svaBindDevice(narrow, mm: fresh) }
        // An exiting mm.
        let dead = try rig2.process()
        let wide = try rig2.device(3)
        dead.exit()
        assertErrno(.badAddress) { () throws(Errno) in try rig2.iommu.svaBindDevice(wide, mm: dead) }
    }

    func testUnbindMoreThanBoundWarnsAndChangesNothing() throws {
        let rig = try SVARig()
        let dev = try rig.device(2)
        let mm = try rig.process()
        let bond = try rig.iommu.svaBindDevice(dev, mm: mm)
        rig.iommu.svaUnbindDevice(bond)
        rig.iommu.svaUnbindDevice(bond)
        XCTAssertEqual(rig.machine.warnings.map(\.function), ["iommu_sva_unbind_device"])
        XCTAssertEqual(bond.users, 0)
    }
}
