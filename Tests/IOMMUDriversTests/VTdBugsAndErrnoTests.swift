import IOMMUConformance
import XCTest
import IOMMUCore
@testable import IOMMUDrivers

/// The deliberately buggy drivers against the checker, and errno / unchanged-state tests.
final class VTdBugsAndErrnoTests: XCTestCase {
    private func unmapScenario(_ bugs: VTdDriverBugs) throws -> (VTdTestbed, PCIDevice, Result<[UInt8], DMAFault>) {
        let tb = try VTdTestbed(bugs: bugs)
        let a = try tb.device(2, ats: false, pri: false)
        let d = try tb.paging(a)
        try tb.iommu.attachDevice(d, to: a)
        let buf = try tb.buffer([0x0d, 0x1d])
        try tb.iommu.map(d, iova: 0x9000, paddr: buf, size: 4096, prot: [.read])
        XCTAssertEqual(try a.dmaRead(at: 0x9000, count: 2), [0x0d, 0x1d])
        XCTAssertEqual(tb.iommu.unmap(d, iova: 0x9000, size: 4096), 4096)
        let result = Result { () throws(DMAFault) in try a.dmaRead(at: 0x9000, count: 2) }
        return (tb, a, result)
    }

    func testBugSkipIOTLBFlushReadsOldBytesAndReportsI4() throws {
        let (tb, _, result) = try unmapScenario([.skipIOTLBFlushOnUnmap])
        XCTAssertEqual(try result.get(), [0x0d, 0x1d], "stale IOTLB hit reads the old bytes")
        XCTAssertFalse(tb.machine.checker.violations(of: .coherenceAfterUnmap).isEmpty)
    }

    func testCorrectDriverFaultsAfterUnmap() throws {
        let (tb, _, result) = try unmapScenario([])
        XCTAssertThrowsError(try result.get())
        XCTAssertTrue(tb.violations.isEmpty, "\(tb.violations)")
    }

    func testBugFreeDIDWhileReferencedReportsI8() throws {
        let tb = try VTdTestbed(bugs: [.freeDIDWhileReferenced])
        let a = try tb.device(2, ats: false, pri: false)
        let d = try tb.paging(a)
        try tb.iommu.attachDevicePasid(d, to: a, pasid: 5)
        try tb.iommu.attachDevicePasid(d, to: a, pasid: 6)
        tb.iommu.detachDevicePasid(d, from: a, pasid: 5)
        XCTAssertFalse(tb.machine.checker.violations(of: .didAccounting).isEmpty,
                       "DID freed while pasid 6 still carries it")
    }

    func testCorrectDriverKeepsDIDWhileReferenced() throws {
        let tb = try VTdTestbed()
        let a = try tb.device(2, ats: false, pri: false)
        let d = try tb.paging(a)
        try tb.iommu.attachDevicePasid(d, to: a, pasid: 5)
        try tb.iommu.attachDevicePasid(d, to: a, pasid: 6)
        let did = try XCTUnwrap(tb.unit.did(for: d))
        tb.iommu.detachDevicePasid(d, from: a, pasid: 5)
        XCTAssertTrue(tb.unit.allocatedDIDs.contains(did))
        XCTAssertTrue(tb.violations.isEmpty, "\(tb.violations)")
    }

    private func prqScenario(_ bugs: VTdDriverBugs) throws -> VTdTestbed {
        let tb = try VTdTestbed(bugs: bugs)
        let a = try tb.device(2)
        let d = try tb.paging(a)
        let pasid = try tb.iommu.allocGlobalPasid(for: a)
        try tb.iommu.attachDevicePasid(d, to: a, pasid: pasid)
        XCTAssertThrowsError(try a.dmaRead(at: 0xA000, count: 1, pasid: pasid))
        tb.iommu.detachDevicePasid(d, from: a, pasid: pasid)
        tb.iommu.freeGlobalPasid(pasid)
        XCTAssertEqual(try tb.iommu.allocGlobalPasid(for: a), pasid)
        return tb
    }

    func testBugSkipPRQDrainReportsI7AndI10() throws {
        let tb = try prqScenario([.skipPRQDrainOnTeardown])
        XCTAssertFalse(tb.machine.checker.violations(of: .pasidLifetime).isEmpty)
        XCTAssertFalse(tb.machine.checker.violations(of: .teardownOrder).isEmpty)
    }

    func testCorrectDriverDrainsBeforePASIDReuse() throws {
        let tb = try prqScenario([])
        XCTAssertTrue(tb.violations.isEmpty, "\(tb.violations)")
        XCTAssertEqual(tb.unit.vtd.pageResponses.last?.code, .invalid)
    }

    func testDomainAllocErrnos() throws {
        let tb = try VTdTestbed()
        let a = try tb.device(2)
        assertErrno(.notSupported) { () throws(Errno) in try tb.driver.domainAllocPaging(a, flags: [], userData: [1]) }
        assertErrno(.notSupported) { () throws(Errno) in try tb.driver.domainAllocPaging(a, flags: [.faultIDValid], userData: nil) }
        let ss = try tb.driver.domainAllocPaging(a, flags: [.nestParent], userData: nil) as? DMARDomain
        XCTAssertEqual(ss?.stage, .second)
        let tb2 = try VTdTestbed(caps: [VTdCapabilities(firstStage: false, secondStageAD: false)])
        let b = try tb2.device(2)
        assertErrno(.notSupported) { () throws(Errno) in try tb2.driver.domainAllocPaging(b, flags: [.dirtyTracking], userData: nil) }
    }

    func testSetDevPasidOnUnitWithoutPASIDIsEOPNOTSUPP() throws {
        let tb = try VTdTestbed(caps: [VTdCapabilities(pasid: false, svmCapable: false)])
        let a = try tb.device(2, pri: false)
        XCTAssertEqual(tb.unit.maxPasids, 0)
        let d = try tb.paging(a)
        assertErrno(.notSupported) { () throws(Errno) in try d.setDevPasid(a, pasid: 3, old: nil) }
        XCTAssertEqual(tb.unit.didRefcount(for: d), 0)
    }

    func testDIDExhaustionIsENOSPCAndLeavesStateUnchanged() throws {
        let tb = try VTdTestbed(caps: [VTdCapabilities(ndoms: 4)])
        let a = try tb.device(2, ats: false, pri: false)
        _ = try tb.device(3, ats: false, pri: false)   // DIDs 2 and 3 now used by default domains
        let d = try tb.paging(a)
        let allocated = tb.unit.allocatedDIDs
        XCTAssertEqual(allocated, [2, 3])
        assertErrno(.noSpace) { () throws(Errno) in try tb.iommu.attachDevicePasid(d, to: a, pasid: 5) }
        XCTAssertEqual(tb.unit.allocatedDIDs, allocated)
        XCTAssertNil(a.group?.pasidArray[5])
        XCTAssertEqual(tb.unit.pasidEntry(rid: a.rid, pasid: 5)?.present ?? false, false)
    }

    func testNonPagingDomainSetDevPasidIsEINVAL() throws {
        let tb = try VTdTestbed()
        let a = try tb.device(2)
        let d = try tb.paging(a)
        try tb.iommu.attachDevicePasid(d, to: a, pasid: 5)
        let before = tb.unit.pasidEntry(rid: a.rid, pasid: 5)
        // A second-stage-only unit cannot walk a first-stage domain: EINVAL, unchanged.
        let tb2 = try VTdTestbed(caps: [VTdCapabilities(), secondStageOnly()])
        let x = try tb2.device(2, unit: 0)
        let y = try tb2.device(3, unit: 1, bus: 1)
        let fs = try tb2.paging(x)
        assertErrno(.invalidArgument) { () throws(Errno) in try fs.setDevPasid(y, pasid: 5, old: nil) }
        XCTAssertEqual(tb2.units[1].didRefcount(for: fs), 0)
        XCTAssertEqual(tb.unit.pasidEntry(rid: a.rid, pasid: 5), before)
    }

    func testDevTLBInvalidationToGoneDeviceIsDropped() throws {
        let tb = try VTdTestbed()
        let a = try tb.device(2)
        a.isPresent = false
        tb.unit.hardwareLock.withLock {
            tb.unit.vtd.submit([.devTLB(rid: a.rid, address: 0, size: .max),
                                .devTLBPasid(rid: RID(raw: 0x0fff), pasid: 1, address: 0, size: 4096)])
        }
        XCTAssertEqual(tb.unit.vtd.droppedDescriptors.count, 2)
        // The driver itself skips devTLB flushes to an absent device.
        let d = try tb.paging(a)
        try tb.iommu.attachDevicePasid(d, to: a, pasid: 5)
        tb.unit.clearOperations()
        tb.iommu.detachDevicePasid(d, from: a, pasid: 5)
        XCTAssertFalse(descriptors(tb.unit.operations).contains { if case .devTLBPasid = $0 { true } else { false } })
    }

    func testMapOverExistingIsEEXISTAndKeepsMapping() throws {
        let tb = try VTdTestbed()
        let a = try tb.device(2, ats: false, pri: false)
        let d = try tb.paging(a)
        try tb.iommu.attachDevice(d, to: a)
        let b1 = try tb.buffer([1])
        let b2 = try tb.buffer([2])
        try tb.iommu.map(d, iova: 0x1000, paddr: b1, size: 4096, prot: [.read])
        assertErrno(.exists) { () throws(Errno) in try tb.iommu.map(d, iova: 0x1000, paddr: b2, size: 4096, prot: [.read]) }
        XCTAssertEqual(try a.dmaRead(at: 0x1000, count: 1), [1])
    }
}
