import IOMMUConformance
import XCTest
import IOMMUCore
@testable import IOMMUDrivers

/// The VT-d model's own rules: domain IDs, context and PASID entries, invalidation
/// descriptors and their order.
final class VTdChecksTests: XCTestCase {
    func testCheck48DistinctDIDsNeverZeroOrOne() throws {
        let tb = try VTdTestbed()
        let a = try tb.device(2)
        let b = try tb.device(3)
        let d1 = try tb.paging(a)
        let d2 = try tb.paging(b)
        try tb.iommu.attachDevice(d1, to: a)
        try tb.iommu.attachDevice(d2, to: b)
        let did1 = try XCTUnwrap(tb.unit.did(for: d1))
        let did2 = try XCTUnwrap(tb.unit.did(for: d2))
        XCTAssertNotEqual(did1, did2)
        XCTAssertGreaterThanOrEqual(did1, 2)
        XCTAssertGreaterThanOrEqual(did2, 2)
        XCTAssertFalse(tb.unit.allocatedDIDs.contains(0))
        XCTAssertFalse(tb.unit.allocatedDIDs.contains(1))
        XCTAssertEqual(tb.unit.pasidEntry(rid: a.rid, pasid: nil)?.did, did1)
        XCTAssertTrue(tb.violations.isEmpty, "\(tb.violations)")
    }

    func testCheck49OneDIDForRIDAndTwoPASIDsRefcount3() throws {
        let tb = try VTdTestbed()
        let a = try tb.device(2)
        let d = try tb.paging(a)
        try tb.iommu.attachDevice(d, to: a)
        try tb.iommu.attachDevicePasid(d, to: a, pasid: 5)
        try tb.iommu.attachDevicePasid(d, to: a, pasid: 9)
        let did = try XCTUnwrap(tb.unit.did(for: d))
        XCTAssertEqual(tb.unit.didRefcount(for: d), 3)
        for p: PASID? in [nil, 5, 9] { XCTAssertEqual(tb.unit.pasidEntry(rid: a.rid, pasid: p)?.did, did) }
        tb.iommu.detachDevicePasid(d, from: a, pasid: 5)
        XCTAssertEqual(tb.unit.didRefcount(for: d), 2)
        tb.iommu.detachDevicePasid(d, from: a, pasid: 9)
        tb.iommu.detachDevice(d, from: a)
        XCTAssertEqual(tb.unit.didRefcount(for: d), 0)
        XCTAssertNil(tb.unit.did(for: d))
        // Released, and reusable: the default domain the device went back to took it.
        XCTAssertEqual(tb.unit.did(for: try XCTUnwrap(tb.iommu.domainForDevice(a))), did)
        let e = try tb.paging(a)
        try tb.iommu.attachDevice(e, to: a)
        XCTAssertEqual(tb.unit.did(for: e), did, "released DID is reusable")
        XCTAssertTrue(tb.violations.isEmpty, "\(tb.violations)")
    }

    func testCheck50OneDomainTwoUnitsTwoDIDs() throws {
        let tb = try VTdTestbed(caps: [VTdCapabilities(), VTdCapabilities()])
        let a = try tb.device(2, unit: 0)
        let b = try tb.device(3, unit: 1, bus: 1)
        let d = try tb.paging(a)
        try tb.iommu.attachDevice(d, to: a)
        try tb.iommu.attachDevice(d, to: b)
        XCTAssertNotNil(tb.units[0].did(for: d))
        XCTAssertNotNil(tb.units[1].did(for: d))
        XCTAssertEqual(tb.units[0].didRefcount(for: d), 1)
        XCTAssertEqual(tb.units[1].didRefcount(for: d), 1)
        tb.iommu.detachDevice(d, from: b)
        XCTAssertNil(tb.units[1].did(for: d))
        XCTAssertEqual(tb.units[0].didRefcount(for: d), 1, "unit 0's DID is independent")
    }

    func testCheck51SVAAndIdentityUseDID1WithoutReference() throws {
        let tb = try VTdTestbed()
        let a = try tb.device(2)
        let before = tb.unit.allocatedDIDs
        let identity = try XCTUnwrap(tb.driver.identityDomain)
        try tb.iommu.attachDevicePasid(identity, to: a, pasid: 3)
        let e = try XCTUnwrap(tb.unit.pasidEntry(rid: a.rid, pasid: 3))
        XCTAssertEqual(e.did, 1)
        XCTAssertEqual(e.pgtt, .passThrough)
        XCTAssertEqual(tb.unit.didRefcount(for: identity), 0)
        let mm = try Process(memory: tb.machine.memory, pid: 10)
        let sva = try tb.driver.domainAllocSVA(a, mm: mm)
        try tb.iommu.attachDevicePasid(sva, to: a, pasid: 4)
        let s = try XCTUnwrap(tb.unit.pasidEntry(rid: a.rid, pasid: 4))
        XCTAssertEqual(s.did, 1)
        XCTAssertEqual(s.pgtt, .firstStage)
        XCTAssertEqual(s.flptptr, mm.pgdPhysical)
        XCTAssertEqual(tb.unit.didRefcount(for: sva), 0)
        XCTAssertEqual(tb.unit.allocatedDIDs, before)
    }

    func testCheck52SetupOnPresentEntryIsEBUSYAndUnchanged() throws {
        let tb = try VTdTestbed()
        let a = try tb.device(2)
        let d1 = try tb.paging(a)
        let d2 = try tb.paging(a)
        try d1.setDevPasid(a, pasid: 7, old: nil)
        let before = try XCTUnwrap(tb.unit.pasidEntry(rid: a.rid, pasid: 7))
        let allocated = tb.unit.allocatedDIDs
        assertErrno(.busy) { () throws(Errno) in try d2.setDevPasid(a, pasid: 7, old: nil) }
        XCTAssertEqual(tb.unit.pasidEntry(rid: a.rid, pasid: 7), before)
        XCTAssertEqual(tb.unit.didRefcount(for: d2), 0)
        XCTAssertEqual(tb.unit.allocatedDIDs, allocated)
    }

    func testCheck53TeardownOrder() throws {
        let tb = try VTdTestbed()
        let a = try tb.device(2)
        let d = try tb.paging(a)
        try tb.iommu.attachDevicePasid(d, to: a, pasid: 5)
        let did = try XCTUnwrap(tb.unit.did(for: d))
        // A page request is queued for the PASID: the drain must answer it.
        XCTAssertThrowsError(try a.dmaRead(at: 0x5000, count: 8, pasid: 5))
        XCTAssertTrue(tb.unit.vtd.hasPendingPageRequests(pasid: 5))
        tb.unit.clearOperations()
        tb.iommu.detachDevicePasid(d, from: a, pasid: 5)
        let pr = try XCTUnwrap(tb.unit.vtd.pageResponses.last)
        XCTAssertEqual(tb.unit.operations, [
            .pasidEntry(rid: a.rid, pasid: 5, .clearPresent),
            .descriptor(.pasidCache(did: did, pasid: 5)),
            .descriptor(.piotlb(did: did, pasid: 5, address: 0, npages: .max, ih: false)),
            .descriptor(.devTLBPasid(rid: a.rid, pasid: 5, address: 0, size: .max)),
            .pasidEntry(rid: a.rid, pasid: 5, .clear),
            .descriptor(.pageGroupResponse(rid: a.rid, pasid: 5, groupIndex: pr.groupIndex, code: .invalid, lastPage: true)),
            .descriptor(.wait(fence: true, drain: true)),
        ])
        XCTAssertFalse(tb.unit.vtd.hasPendingPageRequests(pasid: 5))
        XCTAssertTrue(tb.violations.isEmpty, "\(tb.violations)")
    }

    func testCheck53SecondStageTeardownUsesDSI() throws {
        let tb = try VTdTestbed(caps: [secondStageOnly()])
        let a = try tb.device(2, ats: false, pri: false)
        let d = try tb.paging(a)
        try tb.iommu.attachDevicePasid(d, to: a, pasid: 6)
        let did = try XCTUnwrap(tb.unit.did(for: d))
        tb.unit.clearOperations()
        tb.iommu.detachDevicePasid(d, from: a, pasid: 6)
        XCTAssertEqual(tb.unit.operations, [
            .pasidEntry(rid: a.rid, pasid: 6, .clearPresent),
            .descriptor(.pasidCache(did: did, pasid: 6)),
            .descriptor(.iotlbDomain(did: did)),
            .pasidEntry(rid: a.rid, pasid: 6, .clear),
        ])
    }

    func testCheck54UnmapInvalidatesPIOTLBAndDevTLB() throws {
        let tb = try VTdTestbed()
        let a = try tb.device(2)
        let d = try tb.paging(a)
        try tb.iommu.attachDevice(d, to: a)
        try tb.iommu.attachDevicePasid(d, to: a, pasid: 5)
        let buf = try tb.buffer([1, 2, 3])
        try tb.iommu.map(d, iova: 0x10000, paddr: buf, size: 4096, prot: [.read, .write])
        let did = try XCTUnwrap(tb.unit.did(for: d))
        tb.unit.clearOperations()
        XCTAssertEqual(tb.iommu.unmap(d, iova: 0x10000, size: 4096), 4096)
        XCTAssertEqual(descriptors(tb.unit.operations), [
            .piotlb(did: did, pasid: 0, address: 0x10000, npages: 1, ih: false),
            .piotlb(did: did, pasid: 5, address: 0x10000, npages: 1, ih: false),
            .devTLB(rid: a.rid, address: 0x10000, size: 4096),
            .devTLBPasid(rid: a.rid, pasid: 5, address: 0x10000, size: 4096),
        ])
    }

    func testCheck54SecondStageUnmapUsesPSIThenDSIWhenMaskTooLarge() throws {
        let tb = try VTdTestbed(caps: [secondStageOnly(maxAddressMask: 2)])
        let a = try tb.device(2, ats: false, pri: false)
        let d = try tb.paging(a)
        try tb.iommu.attachDevice(d, to: a)
        let did = try XCTUnwrap(tb.unit.did(for: d))
        let big = try tb.machine.memory.allocContiguous(bytes: 64 << 12)
        try tb.iommu.map(d, iova: 0x100000, paddr: big, size: 64 << 12, prot: [.read, .write])
        tb.unit.clearOperations()
        XCTAssertEqual(tb.iommu.unmap(d, iova: 0x102000, size: 0x2000), 0x2000)
        XCTAssertEqual(descriptors(tb.unit.operations), [.iotlbPage(did: did, address: 0x102000, mask: 1, ih: false)])
        tb.unit.clearOperations()
        XCTAssertEqual(tb.iommu.unmap(d, iova: 0x110000, size: 16 << 12), 16 << 12)
        XCTAssertEqual(descriptors(tb.unit.operations), [.iotlbDomain(did: did)])
    }

    func testCheck55CopiedContextRefusesPASIDAttach() throws {
        let rid = RID(bus: 0, device: 2, function: 0)
        let tb = try VTdTestbed(copied: [rid: 7])
        let a = try tb.device(2)
        XCTAssertTrue(tb.unit.isContextCopied(rid))
        XCTAssertTrue(tb.unit.allocatedDIDs.contains(7))
        let d = try tb.paging(a)
        assertErrno(.busy) { () throws(Errno) in try tb.iommu.attachDevicePasid(d, to: a, pasid: 5) }
        XCTAssertNil(a.group?.pasidArray[5])
        // A real RID attach replaces the copied context with global invalidations.
        try tb.iommu.attachDevice(d, to: a)
        XCTAssertFalse(tb.unit.isContextCopied(rid))
        let descs = descriptors(tb.unit.operations)
        XCTAssertTrue(descs.contains(.contextGlobal) && descs.contains(.pasidCacheGlobal) && descs.contains(.iotlbGlobal))
        try tb.iommu.attachDevicePasid(d, to: a, pasid: 5)
    }

    func testCheck56SVAAllocationErrnos() throws {
        let tb = try VTdTestbed(caps: [VTdCapabilities(), VTdCapabilities(svmCapable: false),
                                       VTdCapabilities(pageRequests: false)])
        let mm = try Process(memory: tb.machine.memory, pid: 1)
        let noATS = try tb.device(2, ats: false, pri: false)
        let noPASID = try tb.device(3, pasid: false, pri: false)
        let notSVM = try tb.device(4, unit: 1, bus: 1)
        let priOff = try tb.device(5, unit: 2, bus: 2)
        assertErrno(.invalidArgument) { () throws(Errno) in try tb.driver.domainAllocSVA(noATS, mm: mm) }
        assertErrno(.invalidArgument) { () throws(Errno) in try tb.driver.domainAllocSVA(noPASID, mm: mm) }
        assertErrno(.noDevice) { () throws(Errno) in try tb.driver.domainAllocSVA(notSVM, mm: mm) }
        XCTAssertFalse(priOff.priEnabled)
        assertErrno(.invalidArgument) { () throws(Errno) in try tb.driver.domainAllocSVA(priOff, mm: mm) }
        let ok = try tb.device(6)
        XCTAssertNoThrow(try tb.driver.domainAllocSVA(ok, mm: mm))
    }

    func testCheck57MMExitLeavesFPDOnlyEntryThenUnbindClears() throws {
        let tb = try VTdTestbed()
        let a = try tb.device(2)
        let mm = try Process(memory: tb.machine.memory, pid: 1)
        let va = try mm.mmap(length: 4096, prot: [.read, .write], populate: true)
        let sva = try tb.driver.domainAllocSVA(a, mm: mm)
        try tb.iommu.attachDevicePasid(sva, to: a, pasid: 8)
        tb.unit.clearOperations()
        mm.exit()
        let e = try XCTUnwrap(tb.unit.pasidEntry(rid: a.rid, pasid: 8))
        XCTAssertFalse(e.present)
        XCTAssertTrue(e.fpd)
        XCTAssertEqual(tb.unit.operations.last, .pasidEntry(rid: a.rid, pasid: 8, .fpdOnly))
        XCTAssertFalse(descriptors(tb.unit.operations).contains(.wait(fence: true, drain: true)), "no drain on release")
        let recorded = tb.unit.vtd.faultRecords.count
        XCTAssertThrowsError(try a.dmaRead(at: IOVA(sva: va), count: 8, pasid: 8))
        XCTAssertEqual(tb.unit.vtd.faultRecords.count, recorded, "FPD suppresses fault records")
        XCTAssertEqual(tb.unit.vtd.suppressedFaults, 1)
        tb.unit.clearOperations()
        tb.iommu.detachDevicePasid(sva, from: a, pasid: 8)
        XCTAssertEqual(tb.unit.pasidEntry(rid: a.rid, pasid: 8)?.isZero, true)
        XCTAssertEqual(tb.unit.operations, [.pasidEntry(rid: a.rid, pasid: 8, .clear),
                                            .descriptor(.wait(fence: true, drain: true))])
    }

    func testCheck58CachingModeMapIssuesPSI() throws {
        let tb = try VTdTestbed(caps: [secondStageOnly(cachingMode: true)])
        let a = try tb.device(2, ats: false, pri: false)
        let d = try tb.paging(a)
        try tb.iommu.attachDevice(d, to: a)
        let did = try XCTUnwrap(tb.unit.did(for: d))
        XCTAssertThrowsError(try a.dmaRead(at: 0x40000, count: 4))  // caches a not-present result
        let buf = try tb.buffer([9, 8, 7, 6])
        tb.unit.clearOperations()
        try tb.iommu.map(d, iova: 0x40000, paddr: buf, size: 4096, prot: [.read])
        XCTAssertEqual(tb.unit.operations, [.descriptor(.iotlbPage(did: did, address: 0x40000, mask: 0, ih: false))])
        XCTAssertEqual(try a.dmaRead(at: 0x40000, count: 4), [9, 8, 7, 6])
    }

    func testCheck58WithoutCachingModeOnlyWriteBufferFlush() throws {
        var caps = secondStageOnly()
        caps.rwbf = true
        let tb = try VTdTestbed(caps: [caps])
        let a = try tb.device(2, ats: false, pri: false)
        let d = try tb.paging(a)
        try tb.iommu.attachDevice(d, to: a)
        XCTAssertThrowsError(try a.dmaRead(at: 0x40000, count: 4))
        let buf = try tb.buffer([1, 2, 3, 4])
        tb.unit.clearOperations()
        try tb.iommu.map(d, iova: 0x40000, paddr: buf, size: 4096, prot: [.read])
        XCTAssertEqual(tb.unit.operations, [.writeBufferFlush])
        XCTAssertEqual(try a.dmaRead(at: 0x40000, count: 4), [1, 2, 3, 4])
    }

    /// Check 58, the usual unit: neither caching mode nor `cap_rwbf`, so the domain's
    /// `iotlb_sync_map` is off and a map issues nothing (`iommu_flush_write_buffer` is a
    /// no-op there), on either stage.
    func testCheck58WithoutCachingModeOrRWBFMapIssuesNothing() throws {
        for caps in [secondStageOnly(), VTdCapabilities()] {
            let tb = try VTdTestbed(caps: [caps])
            let a = try tb.device(2, ats: false, pri: false)
            let d = try tb.paging(a)
            try tb.iommu.attachDevice(d, to: a)
            let buf = try tb.buffer([1, 2, 3, 4])
            tb.unit.clearOperations()
            try tb.iommu.map(d, iova: 0x40000, paddr: buf, size: 4096, prot: [.read])
            XCTAssertEqual(tb.unit.operations, [])
            XCTAssertEqual(try a.dmaRead(at: 0x40000, count: 4), [1, 2, 3, 4])
        }
    }

    func testCheck59RIDAttachFailureLeavesDeviceBlocked() throws {
        var no1G = VTdCapabilities()
        no1G.firstStage1G = false
        let tb = try VTdTestbed(caps: [no1G, VTdCapabilities()])
        let a = try tb.device(2, unit: 0, ats: false, pri: false)
        let b = try tb.device(3, unit: 1, bus: 1)
        let foreign = try tb.paging(b)   // first stage with 1 GiB pages
        let buf = try tb.buffer([5])
        let def = try XCTUnwrap(tb.iommu.domainForDevice(a))
        try tb.iommu.map(def, iova: 0x1000, paddr: buf, size: 4096, prot: [.read])
        XCTAssertEqual(try a.dmaRead(at: 0x1000, count: 1), [5])
        assertErrno(.invalidArgument) { () throws(Errno) in try tb.iommu.attachDevice(foreign, to: a) }
        XCTAssertEqual(tb.unit.pasidEntry(rid: a.rid, pasid: nil)?.present, false)
        XCTAssertNil(tb.driver.deviceInfo(a)?.ridDomain)
        XCTAssertThrowsError(try a.dmaRead(at: 0x1000, count: 1)) { e in
            XCTAssertEqual((e as? DMAFault)?.reason, VTdFault.pasidEntryNotPresent)
        }
    }
}
