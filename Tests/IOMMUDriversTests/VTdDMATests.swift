import XCTest
import IOMMUCore
@testable import IOMMUDrivers

/// DMA through the VT-d model: bytes that arrive, faults, caches and counters.
final class VTdDMATests: XCTestCase {
    func testRIDFirstStageDMADeliversBytes() throws {
        let tb = try VTdTestbed()
        let a = try tb.device(2)
        let d = try tb.paging(a)
        try tb.iommu.attachDevice(d, to: a)
        let buf = try tb.buffer([0xde, 0xad, 0xbe, 0xef])
        try tb.iommu.map(d, iova: 0x200000, paddr: buf, size: 4096, prot: [.read, .write])
        XCTAssertEqual(try a.dmaRead(at: 0x200000, count: 4), [0xde, 0xad, 0xbe, 0xef])
        try a.dmaWrite(at: 0x200004, bytes: [1, 2])
        XCTAssertEqual(try tb.machine.memory.bytes(at: buf + 4, count: 2), [1, 2])
        XCTAssertTrue(tb.violations.isEmpty, "\(tb.violations)")
    }

    func testPASIDSecondStageDMADeliversBytes() throws {
        let tb = try VTdTestbed(caps: [secondStageOnly()])
        let a = try tb.device(2)
        let d = try tb.paging(a)
        try tb.iommu.attachDevicePasid(d, to: a, pasid: 12)
        let buf = try tb.buffer([7, 7, 7])
        try tb.iommu.map(d, iova: 0x3000, paddr: buf, size: 4096, prot: [.read])
        XCTAssertEqual(try a.dmaRead(at: 0x3000, count: 3, pasid: 12), [7, 7, 7])
        XCTAssertEqual(tb.unit.pasidEntry(rid: a.rid, pasid: 12)?.pgtt, .secondStage)
        XCTAssertThrowsError(try a.dmaWrite(at: 0x3000, bytes: [1], pasid: 12)) { e in
            XCTAssertEqual((e as? DMAFault)?.reason, VTdFault.noWrite)
        }
        XCTAssertTrue(tb.violations.isEmpty, "\(tb.violations)")
    }

    func testIdentityPassesThrough() throws {
        let tb = try VTdTestbed()
        let a = try tb.device(2, ats: false, pri: false)
        try tb.iommu.attachDevice(try XCTUnwrap(tb.driver.identityDomain), to: a)
        let buf = try tb.buffer([42, 43])
        XCTAssertEqual(try a.dmaRead(at: IOVA(identity: buf), count: 2), [42, 43])
        XCTAssertEqual(tb.unit.pasidEntry(rid: a.rid, pasid: nil)?.pgtt, .passThrough)
        XCTAssertEqual(tb.unit.pasidEntry(rid: a.rid, pasid: nil)?.did, 1)
        XCTAssertTrue(tb.violations.isEmpty, "\(tb.violations)")
    }

    func testBlockedDomainFaults() throws {
        let tb = try VTdTestbed()
        let a = try tb.device(2, ats: false, pri: false)
        try tb.iommu.attachDevice(try XCTUnwrap(tb.driver.blockedDomain), to: a)
        XCTAssertThrowsError(try a.dmaRead(at: 0x1000, count: 1)) { e in
            XCTAssertEqual((e as? DMAFault)?.reason, VTdFault.pasidEntryNotPresent)
        }
        XCTAssertEqual(tb.unit.vtd.faultRecords.last?.reason, VTdFault.pasidEntryNotPresent)
        XCTAssertTrue(tb.violations.isEmpty, "\(tb.violations)")
    }

    func testPrivilegedRequestWithoutSREFaults() throws {
        let tb = try VTdTestbed()
        let a = try tb.device(2, ats: false, pri: false)
        let d = try tb.paging(a)
        try tb.iommu.attachDevicePasid(d, to: a, pasid: 3)
        let buf = try tb.buffer([1])
        try tb.iommu.map(d, iova: 0x1000, paddr: buf, size: 4096, prot: [.read])
        XCTAssertEqual(try a.dmaRead(at: 0x1000, count: 1, pasid: 3), [1])
        XCTAssertThrowsError(try a.dmaRead(at: 0x1000, count: 1, pasid: 3, privileged: true)) { e in
            XCTAssertEqual((e as? DMAFault)?.reason, VTdFault.supervisorDisabled)
        }
    }

    func testUserRequestToSupervisorPageFaults() throws {
        let tb = try VTdTestbed()
        let a = try tb.device(2, ats: false, pri: false)
        let d = try tb.paging(a)
        try tb.iommu.attachDevice(d, to: a)
        let buf = try tb.buffer([1])
        try tb.iommu.map(d, iova: 0x1000, paddr: buf, size: 4096, prot: [.read, .priv])
        XCTAssertThrowsError(try a.dmaRead(at: 0x1000, count: 1)) { e in
            XCTAssertEqual((e as? DMAFault)?.reason, VTdFault.userToSupervisor)
        }
    }

    func testIOTLBHitAndMissCounters() throws {
        let tb = try VTdTestbed()
        let a = try tb.device(2, ats: false, pri: false)
        let d = try tb.paging(a)
        try tb.iommu.attachDevice(d, to: a)
        let buf = try tb.buffer([3])
        try tb.iommu.map(d, iova: 0x1000, paddr: buf, size: 4096, prot: [.read])
        let before = tb.unit.vtd.counters
        for _ in 0..<5 { _ = try a.dmaRead(at: 0x1000, count: 1) }
        let after = tb.unit.vtd.counters
        XCTAssertEqual(after.translations - before.translations, 5)
        XCTAssertEqual(after.iotlbMisses - before.iotlbMisses, 1)
        XCTAssertEqual(after.iotlbHits - before.iotlbHits, 4)
        XCTAssertEqual(after.walks - before.walks, 1)
    }

    func testCachingModeNegativeEntryStaysUntilInvalidated() throws {
        let tb = try VTdTestbed(caps: [secondStageOnly(cachingMode: true)])
        let a = try tb.device(2, ats: false, pri: false)
        let d = try tb.paging(a)
        try tb.iommu.attachDevice(d, to: a)
        XCTAssertThrowsError(try a.dmaRead(at: 0x8000, count: 1))
        let buf = try tb.buffer([6])
        // Writing the table behind the driver's back (no iotlb_sync_map): still faults.
        try d.pageTable.map(iova: 0x8000, paddr: buf, size: 4096, prot: [.read])
        XCTAssertThrowsError(try a.dmaRead(at: 0x8000, count: 1))
        try d.iotlbSyncMap(iova: 0x8000, size: 4096)
        XCTAssertEqual(try a.dmaRead(at: 0x8000, count: 1), [6])
    }

    func testPageRequestQueuedForPRIDevice() throws {
        let tb = try VTdTestbed()
        let a = try tb.device(2)
        let d = try tb.paging(a)
        try tb.iommu.attachDevicePasid(d, to: a, pasid: 4)
        XCTAssertThrowsError(try a.dmaWrite(at: 0x7123, bytes: [1], pasid: 4)) { e in
            XCTAssertEqual((e as? DMAFault)?.reason, VTdFault.firstStagePageRequest)
        }
        let req = try XCTUnwrap(tb.unit.vtd.pendingPageRequests.first)
        XCTAssertEqual(req.rid, a.rid)
        XCTAssertTrue(req.pasidPresent)
        XCTAssertEqual(req.pasid, 4)
        XCTAssertTrue(req.write)
        XCTAssertTrue(req.lastPage)
        XCTAssertEqual(req.address, 0x7000)
        XCTAssertTrue(tb.unit.vtd.faultRecords.isEmpty, "a page request is not a fault record")
        XCTAssertEqual(tb.unit.vtd.popPageRequest(), req)
        XCTAssertFalse(tb.unit.vtd.hasPendingPageRequests(pasid: 4))
    }

    func testSVADMAReadsProcessMemoryAndMunmapFlushes() throws {
        let tb = try VTdTestbed()
        let a = try tb.device(2)
        let mm = try Process(memory: tb.machine.memory, pid: 3)
        let va = try mm.mmap(length: 4096, prot: [.read, .write], populate: true)
        try mm.writeMemory(address: va, bytes: [11, 22, 33])
        let sva = try tb.driver.domainAllocSVA(a, mm: mm)
        try tb.iommu.attachDevicePasid(sva, to: a, pasid: 9)
        XCTAssertEqual(try a.dmaRead(at: IOVA(sva: va), count: 3, pasid: 9), [11, 22, 33])
        tb.unit.clearOperations()
        try mm.munmap(address: va, length: 4096)
        XCTAssertEqual(descriptors(tb.unit.operations), [
            .piotlb(did: 1, pasid: 9, address: IOVA(sva: va), npages: 1, ih: false),
            .devTLBPasid(rid: a.rid, pasid: 9, address: IOVA(sva: va), size: 4096),
        ])
        XCTAssertThrowsError(try a.dmaRead(at: IOVA(sva: va), count: 1, pasid: 9))
    }

    func testPASIDReplaceTearsDownThenSetsUp() throws {
        let tb = try VTdTestbed()
        let a = try tb.device(2, ats: false, pri: false)
        let d1 = try tb.paging(a)
        let d2 = try tb.paging(a)
        try tb.iommu.attachDevicePasid(d1, to: a, pasid: 5, handle: AttachHandle())
        let did1 = try XCTUnwrap(tb.unit.did(for: d1))
        tb.unit.clearOperations()
        try tb.iommu.replaceDevicePasid(d2, on: a, pasid: 5, handle: AttachHandle())
        let did2 = try XCTUnwrap(tb.unit.did(for: d2))
        let ops = tb.unit.operations
        XCTAssertEqual(ops.first, .pasidEntry(rid: a.rid, pasid: 5, .clearPresent))
        XCTAssertTrue(ops.contains(.pasidEntry(rid: a.rid, pasid: 5, .setup(.firstStage, did: did2))))
        XCTAssertEqual(tb.unit.didRefcount(for: d1), 0)
        XCTAssertNil(tb.unit.did(for: d1))
        XCTAssertNotEqual(did1, did2)
    }

    func testEntryBitLayoutsInMemory() throws {
        let tb = try VTdTestbed()
        let a = try tb.device(2)
        let d = try tb.paging(a)
        try tb.iommu.attachDevicePasid(d, to: a, pasid: 70)
        let mem = tb.machine.memory
        let root = mem.load64(tb.unit.rootTable)
        XCTAssertEqual(root & 1, 1)
        let ctx = PhysicalAddress(rawValue: root & ~0xFFF + UInt64(a.rid.devfn & 0x7f) * 32)
        let lo = mem.load64(ctx)
        XCTAssertEqual(lo & 0x1F, 0b11101, "present, DTE, PASIDE, PRE; FPD clear")
        XCTAssertEqual(mem.load64(ctx + 8) & 0xF_FFFF, 0, "RID_PASID 0")
        let dir = PhysicalAddress(rawValue: lo & ~0xFFF)
        let de = mem.load64(dir + 8)   // 70 >> 6 = 1
        XCTAssertEqual(de & 1, 1)
        let pe = PhysicalAddress(rawValue: de & ~0xFFF) + 6 * 64  // 70 & 63 = 6
        let did = try XCTUnwrap(tb.unit.did(for: d))
        XCTAssertEqual(mem.load64(pe) & 1, 1)
        XCTAssertEqual((mem.load64(pe) >> 6) & 7, 1, "PGTT first-stage only")
        XCTAssertEqual(mem.load64(pe + 8) & 0xFFFF, UInt64(did))
        XCTAssertEqual(mem.load64(pe + 16) & ~0xFFF, d.pageTable.root.rawValue, "FLPTPTR at bits 140-191")
        XCTAssertTrue(tb.unit.vtd.hasLiveEntry(rid: a.rid, pasid: 70))
    }

    func testDirtyTrackingSecondStage() throws {
        let tb = try VTdTestbed()
        let a = try tb.device(2, ats: false, pri: false)
        let d = try tb.paging(a, flags: [.dirtyTracking])
        XCTAssertEqual(d.stage, .second)
        try tb.iommu.attachDevice(d, to: a)
        let buf = try tb.buffer([0])
        try tb.iommu.map(d, iova: 0x5000, paddr: buf, size: 4096, prot: [.read, .write])
        try d.setDirtyTracking(true)
        XCTAssertEqual(tb.unit.pasidEntry(rid: a.rid, pasid: nil)?.ssade, true)
        _ = try a.dmaRead(at: 0x5000, count: 1)
        try a.dmaWrite(at: 0x5000, bytes: [1])
        var dirty: [IOVA] = []
        try d.readAndClearDirty(iova: 0, size: 1 << 20, clear: true) { iova, _ in dirty.append(iova) }
        XCTAssertEqual(dirty, [0x5000])
        try a.dmaWrite(at: 0x5000, bytes: [2])
        dirty = []
        try d.readAndClearDirty(iova: 0, size: 1 << 20, clear: false) { iova, _ in dirty.append(iova) }
        XCTAssertEqual(dirty, [0x5000], "write after clear sets D again")
    }

    func testReleaseDeviceClearsContext() throws {
        let tb = try VTdTestbed()
        let a = try tb.device(2)
        XCTAssertTrue(tb.unit.vtd.hasLiveEntry(rid: a.rid, pasid: nil))
        tb.iommu.releaseDevice(a)
        XCTAssertFalse(tb.unit.vtd.hasLiveEntry(rid: a.rid, pasid: nil))
        XCTAssertNil(tb.driver.deviceInfo(a))
        XCTAssertFalse(a.atsEnabled)
    }
}
