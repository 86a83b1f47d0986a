import IOMMUConformance
import XCTest
import IOMMUCore
import IOMMUDrivers

/// End-to-end SVA on VT-d: page fault → serve → retry, isolation between processes,
/// mm-notifier invalidation, mm exit, unbind, PASID reuse.
final class SVAScenarioTests: XCTestCase {
    func testDMAPageFaultServedAndRetriedMovesTheRightBytes() throws {
        let rig = try SVARig()
        let dev = try rig.device(2)
        let mm = try rig.process()
        let va = try mm.mmap(length: 2 * 4096, prot: [.read, .write])
        let bond = try rig.iommu.svaBindDevice(dev, mm: mm)
        let pasid = rig.iommu.svaGetPasid(bond)
        let payload: [UInt8] = (0..<6000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        // The write spans two untouched pages: two page requests, each served and retried.
        let faults = try rig.dmaWriteRetrying(dev, at: va + 100, bytes: payload, pasid: pasid)
        XCTAssertEqual(faults, 2)
        XCTAssertEqual(try mm.readMemory(address: va + 100, count: payload.count), payload)
        XCTAssertEqual(try dev.dmaRead(at: IOVA(sva: va + 100), count: payload.count, pasid: pasid), payload)
        XCTAssertEqual(rig.unit.vtd.pageResponses.map(\.code), [.success, .success])
        XCTAssertEqual(rig.iommu.faultLog.counters.groups, 2)
        XCTAssertEqual(rig.unit.vtd.faultRecords.count, 0, "page requests are not recorded faults")
        // A read of a page the CPU never touched: served as a zero page.
        let fresh = try mm.mmap(length: 4096, prot: [.read])
        XCTAssertEqual(try rig.dmaReadRetrying(dev, at: fresh, count: 16, pasid: pasid), [UInt8](repeating: 0, count: 16))
        rig.iommu.svaUnbindDevice(bond)
        XCTAssertTrue(rig.unit.iopfQueue.isIdle)
        XCTAssertTrue(rig.violations.isEmpty, "\(rig.violations)")
    }

    func testInlineQueueAnswersInsideThePRQPass() throws {
        let rig = try SVARig()
        let dev = try rig.device(2)
        let mm = try rig.process()
        let va = try mm.mmap(length: 4096, prot: [.read, .write])
        let bond = try rig.iommu.svaBindDevice(dev, mm: mm)
        rig.unit.iopfQueue.mode = .inline
        XCTAssertThrowsError(try dev.dmaWrite(at: IOVA(sva: va), bytes: [5], pasid: bond.mm.enqcmdPasid))
        rig.unit.processPageRequests()
        XCTAssertEqual(rig.unit.vtd.pageResponses.last?.code, .success)
        XCTAssertEqual(rig.unit.iopfQueue.pendingWorkCount, 0)
        try dev.dmaWrite(at: IOVA(sva: va), bytes: [5], pasid: bond.mm.enqcmdPasid)
        XCTAssertEqual(try mm.readMemory(address: va, count: 1), [5])
        rig.iommu.svaUnbindDevice(bond)
    }

    func testTwoProcessesOnOneDeviceCannotReachEachOthersMemory() throws {
        let rig = try SVARig()
        let dev = try rig.device(2)
        let a = try rig.process()
        let b = try rig.process()
        let vaA = try a.mmap(length: 4096, prot: [.read, .write], at: 0x1000_0000, populate: true)
        let vaB = try b.mmap(length: 4096, prot: [.read, .write], at: 0x2000_0000, populate: true)
        let shared = try a.mmap(length: 4096, prot: [.read, .write], at: 0x3000_0000, populate: true)
        _ = try b.mmap(length: 4096, prot: [.read, .write], at: 0x3000_0000, populate: true)
        try a.writeMemory(address: shared, bytes: [0xAA])
        try b.writeMemory(address: shared, bytes: [0xBB])
        try b.writeMemory(address: vaB, bytes: [1, 2, 3])
        let bondA = try rig.iommu.svaBindDevice(dev, mm: a)
        let bondB = try rig.iommu.svaBindDevice(dev, mm: b)
        let pa = rig.iommu.svaGetPasid(bondA), pb = rig.iommu.svaGetPasid(bondB)
        XCTAssertNotEqual(pa, pb)
        XCTAssertFalse(bondA.domain === bondB.domain)
        // The same VA means each process's own page.
        XCTAssertEqual(try dev.dmaRead(at: IOVA(sva: shared), count: 1, pasid: pa), [0xAA])
        XCTAssertEqual(try dev.dmaRead(at: IOVA(sva: shared), count: 1, pasid: pb), [0xBB])
        // B's buffer is not in A's address space: the page request is refused.
        XCTAssertThrowsError(try rig.dmaReadRetrying(dev, at: vaB, count: 3, pasid: pa))
        XCTAssertEqual(rig.unit.vtd.pageResponses.last?.code, .invalid)
        XCTAssertThrowsError(try rig.dmaWriteRetrying(dev, at: vaB, bytes: [9, 9, 9], pasid: pa))
        XCTAssertEqual(try b.readMemory(address: vaB, count: 3), [1, 2, 3])
        try dev.dmaWrite(at: IOVA(sva: vaA), bytes: [4], pasid: pa)
        XCTAssertEqual(try a.readMemory(address: vaA, count: 1), [4])
        XCTAssertNil(b.physicalAddress(of: vaA), "A's write did not create a page in B")
        rig.iommu.svaUnbindDevice(bondA)
        XCTAssertEqual(try dev.dmaRead(at: IOVA(sva: shared), count: 1, pasid: pb), [0xBB], "B unaffected by A's unbind")
        rig.iommu.svaUnbindDevice(bondB)
        XCTAssertTrue(rig.violations.isEmpty, "\(rig.violations)")
    }

    func testAfterUnbindNoDMAOrFaultReachesTheOldMM() throws {
        let rig = try SVARig()
        let dev = try rig.device(2)
        let mm = try rig.process()
        let va = try mm.mmap(length: 2 * 4096, prot: [.read, .write], populate: true)
        try mm.writeMemory(address: va, bytes: [1, 2, 3])
        let bond = try rig.iommu.svaBindDevice(dev, mm: mm)
        let pasid = rig.iommu.svaGetPasid(bond)
        XCTAssertEqual(try dev.dmaRead(at: IOVA(sva: va), count: 3, pasid: pasid), [1, 2, 3], "IOTLB and ATC now hold it")
        try mm.munmap(address: va + 4096, length: 4096)
        rig.iommu.svaUnbindDevice(bond)
        // DMA: the entry is gone, caches were invalidated: a recorded fault, no page request.
        let recorded = rig.unit.vtd.faultRecords.count
        XCTAssertThrowsError(try dev.dmaRead(at: IOVA(sva: va), count: 3, pasid: pasid)) { e in
            XCTAssertNotEqual((e as? DMAFault)?.reason, VTdFault.firstStagePageRequest)
        }
        XCTAssertThrowsError(try dev.dmaWrite(at: IOVA(sva: va), bytes: [9], pasid: pasid))
        XCTAssertEqual(rig.unit.vtd.faultRecords.count, recorded + 2)
        XCTAssertTrue(rig.unit.vtd.pendingPageRequests.isEmpty)
        // A page request that still arrives is answered INVALID and reaches no handler.
        rig.unit.vtd.receivePageRequest(prq(dev, pasid: pasid, group: 1, address: va + 4096, write: true))
        rig.unit.processPageRequests()
        XCTAssertEqual(rig.unit.iopfQueue.runPending(), 0)
        XCTAssertEqual(rig.responses.last?.code, .invalid)
        XCTAssertNil(mm.physicalAddress(of: va + 4096), "no fault was served in the old mm")
        XCTAssertEqual(try mm.readMemory(address: va, count: 3), [1, 2, 3])
        XCTAssertTrue(rig.violations.isEmpty, "\(rig.violations)")
    }

    func testFreedPasidReusedByAnotherProcessNeverSeesTheOldFaults() throws {
        let rig = try SVARig()
        let dev = try rig.device(2)
        let old = try rig.process()
        let va = try old.mmap(length: 4096, prot: [.read, .write], at: 0x1000_0000)
        let bondOld = try rig.iommu.svaBindDevice(dev, mm: old)
        let pasid = rig.iommu.svaGetPasid(bondOld)
        // The old process's device faults; the request is still queued when it unbinds.
        XCTAssertThrowsError(try dev.dmaWrite(at: IOVA(sva: va), bytes: [1], pasid: pasid))
        rig.iommu.svaUnbindDevice(bondOld)
        old.exit()
        let new = try rig.process()
        _ = try new.mmap(length: 4096, prot: [.read, .write], at: 0x1000_0000)
        let bondNew = try rig.iommu.svaBindDevice(dev, mm: new)
        XCTAssertEqual(rig.iommu.svaGetPasid(bondNew), pasid, "the PASID is reused")
        rig.servePageRequests(for: dev)
        XCTAssertNil(new.physicalAddress(of: va), "the old fault was not served in the new mm")
        XCTAssertEqual(rig.iommu.faultLog.counters.groups, 1, "only the old process's group, handled before unbind")
        rig.iommu.svaUnbindDevice(bondNew)
        XCTAssertTrue(rig.violations.isEmpty, "\(rig.violations)")
    }

    func testWithoutPRQDrainTheReusedPasidServesTheOldFaultInTheNewMM() throws {
        let rig = try SVARig(bugs: [.skipPRQDrainOnTeardown])
        let dev = try rig.device(2)
        let old = try rig.process()
        let va = try old.mmap(length: 4096, prot: [.read, .write], at: 0x1000_0000)
        let bondOld = try rig.iommu.svaBindDevice(dev, mm: old)
        let pasid = rig.iommu.svaGetPasid(bondOld)
        XCTAssertThrowsError(try dev.dmaWrite(at: IOVA(sva: va), bytes: [1], pasid: pasid))
        rig.iommu.svaUnbindDevice(bondOld)
        old.exit()
        let new = try rig.process()
        _ = try new.mmap(length: 4096, prot: [.read, .write], at: 0x1000_0000)
        let bondNew = try rig.iommu.svaBindDevice(dev, mm: new)
        XCTAssertEqual(rig.iommu.svaGetPasid(bondNew), pasid)
        XCTAssertFalse(rig.machine.checker.violations(of: .pasidLifetime).isEmpty, "PASID reused before teardown")
        XCTAssertFalse(rig.machine.checker.violations(of: .teardownOrder).isEmpty, "PASID teardown out of order")
        rig.servePageRequests(for: dev)
        XCTAssertNotNil(new.physicalAddress(of: va), "the stale request faulted a page into the next owner")
        rig.iommu.svaUnbindDevice(bondNew)
    }

    func testMunmapInvalidatesIOTLBAndDevTLBAndDMAThenPageRequests() throws {
        let rig = try SVARig()
        let dev = try rig.device(2)
        let mm = try rig.process()
        let va = try mm.mmap(length: 4096, prot: [.read, .write], populate: true)
        try mm.writeMemory(address: va, bytes: [3])
        let bond = try rig.iommu.svaBindDevice(dev, mm: mm)
        let pasid = rig.iommu.svaGetPasid(bond)
        XCTAssertEqual(try dev.dmaRead(at: IOVA(sva: va), count: 1, pasid: pasid), [3])
        XCTAssertEqual(try dev.dmaRead(at: IOVA(sva: va), count: 1, pasid: pasid), [3], "served from the ATC")
        rig.unit.vtd.clearLog()
        try mm.munmap(address: va, length: 4096)
        XCTAssertEqual(rig.unit.vtd.executed, [
            .piotlb(did: IntelIOMMU.defaultDID, pasid: pasid.rawValue, address: IOVA(sva: va), npages: 1, ih: false),
            .devTLBPasid(rid: dev.rid, pasid: pasid, address: IOVA(sva: va), size: 4096),
        ])
        XCTAssertThrowsError(try dev.dmaRead(at: IOVA(sva: va), count: 1, pasid: pasid)) { e in
            XCTAssertEqual((e as? DMAFault)?.reason, VTdFault.firstStagePageRequest, "a walk, not a stale hit")
        }
        XCTAssertEqual(rig.servePageRequests(for: dev)?.code, .invalid, "no VMA any more")
        rig.iommu.svaUnbindDevice(bond)
        XCTAssertTrue(rig.violations.isEmpty, "\(rig.violations)")
    }

    func testMprotectReadOnlyInvalidatesAndDMAWriteIsRefused() throws {
        let rig = try SVARig()
        let dev = try rig.device(2)
        let mm = try rig.process()
        let va = try mm.mmap(length: 4096, prot: [.read, .write], populate: true)
        let bond = try rig.iommu.svaBindDevice(dev, mm: mm)
        let pasid = rig.iommu.svaGetPasid(bond)
        try dev.dmaWrite(at: IOVA(sva: va), bytes: [1], pasid: pasid)
        let before = rig.machine.counters.hardware.invalidations["devtlb-pasid", default: 0]
        try mm.mprotect(address: va, length: 4096, prot: [.read])
        XCTAssertEqual(rig.machine.counters.hardware.invalidations["devtlb-pasid", default: 0], before + 1)
        XCTAssertThrowsError(try dev.dmaWrite(at: IOVA(sva: va), bytes: [2], pasid: pasid)) { e in
            XCTAssertEqual((e as? DMAFault)?.reason, VTdFault.noWrite)
        }
        XCTAssertEqual(try dev.dmaRead(at: IOVA(sva: va), count: 1, pasid: pasid), [1])
        XCTAssertEqual(try mm.readMemory(address: va, count: 1), [1])
        rig.iommu.svaUnbindDevice(bond)
        XCTAssertTrue(rig.violations.isEmpty, "\(rig.violations)")
    }

    func testMMExitWhileBoundSuppressesFaultsUntilUnbindThenFreesThePasid() throws {
        let rig = try SVARig()
        let dev = try rig.device(2)
        let mm = try rig.process()
        let va = try mm.mmap(length: 4096, prot: [.read, .write], populate: true)
        let bond = try rig.iommu.svaBindDevice(dev, mm: mm)
        let pasid = rig.iommu.svaGetPasid(bond)
        XCTAssertEqual(try dev.dmaRead(at: IOVA(sva: va), count: 1, pasid: pasid), [0])
        mm.exit()
        let entry = try XCTUnwrap(rig.unit.pasidEntry(rid: dev.rid, pasid: pasid))
        XCTAssertFalse(entry.present)
        XCTAssertTrue(entry.fpd, "fault-suppressing until unbind")
        XCTAssertTrue(try rig.iommu.attachHandle(try XCTUnwrap(dev.group), pasid: pasid) === bond, "handle stays")
        XCTAssertEqual(mm.enqcmdPasid, pasid, "the SVA domain still holds the mm: the PASID is not reusable yet")
        XCTAssertThrowsError(try dev.dmaRead(at: IOVA(sva: va), count: 1, pasid: pasid))
        XCTAssertEqual(rig.unit.vtd.suppressedFaults, 1)
        XCTAssertTrue(rig.unit.vtd.pendingPageRequests.isEmpty, "FPD: no page request either")
        let probe = try rig.iommu.allocGlobalPasid(for: dev)
        XCTAssertNotEqual(probe, pasid)
        rig.iommu.freeGlobalPasid(probe)
        rig.iommu.svaUnbindDevice(bond)
        XCTAssertEqual(rig.unit.pasidEntry(rid: dev.rid, pasid: pasid)?.isZero, true)
        XCTAssertNil(mm.enqcmdPasid, "dropped with the last SVA domain")
        XCTAssertEqual(try rig.iommu.allocGlobalPasid(for: dev), pasid)
        XCTAssertTrue(rig.machine.warnings.isEmpty, "\(rig.machine.warnings)")
        XCTAssertTrue(rig.violations.isEmpty, "\(rig.violations)")
    }

    func testSVAEntryPointsAtTheProcessPageTable() throws {
        let rig = try SVARig()
        let dev = try rig.device(2)
        let mm = try rig.process()
        let bond = try rig.iommu.svaBindDevice(dev, mm: mm)
        let entry = try XCTUnwrap(rig.unit.pasidEntry(rid: dev.rid, pasid: rig.iommu.svaGetPasid(bond)))
        XCTAssertTrue(entry.present)
        XCTAssertEqual(entry.pgtt, .firstStage)
        XCTAssertEqual(entry.flptptr, mm.pgdPhysical)
        XCTAssertEqual(entry.did, IntelIOMMU.defaultDID)
        XCTAssertFalse(entry.sre, "user SVA: no supervisor requests")
        XCTAssertEqual(rig.driverInfo(dev).iopfRefcount, 1)
        XCTAssertEqual(rig.unit.iopfQueue.attachedDevices.map(\.rid), [dev.rid])
        rig.iommu.svaUnbindDevice(bond)
        XCTAssertEqual(rig.driverInfo(dev).iopfRefcount, 0)
        XCTAssertTrue(rig.unit.iopfQueue.attachedDevices.isEmpty)
    }
}

extension SVARig {
    func driverInfo(_ dev: PCIDevice) -> VTdDeviceInfo { drivers[0].deviceInfo(dev)! }
}
