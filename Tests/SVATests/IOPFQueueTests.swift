import IOMMUConformance
import XCTest
import IOMMUCore
import IOMMUDrivers

/// The iopf queue and the VT-d page-request thread: stop markers, bad requests,
/// overflow, routing without PASID, handler failure, add/remove errno, and one response
/// per group.
final class IOPFQueueTests: XCTestCase {
    func testStopMarkerIsDroppedWithoutResponse() throws {
        let rig = try SVARig()
        let dev = try rig.device(2)
        let mm = try rig.process()
        let bond = try rig.iommu.svaBindDevice(dev, mm: mm)
        rig.unit.vtd.receivePageRequest(prq(dev, pasid: mm.enqcmdPasid, group: 0, address: 0, read: false, write: false))
        let pass = rig.unit.processPageRequests()
        XCTAssertEqual(pass.stopMarkers, 1)
        XCTAssertEqual(pass.reported, 0)
        XCTAssertTrue(rig.unit.vtd.pageResponses.isEmpty)
        XCTAssertEqual(rig.iommu.faultLog.counters.reported, 0)
        rig.iommu.svaUnbindDevice(bond)
    }

    func testMalformedAndUnknownRequestsAreAnsweredInvalidWhenLast() throws {
        let rig = try SVARig()
        let dev = try rig.device(2)
        let ghost = PCIDevice(rid: RID(bus: 0, device: 30, function: 0))
        let bad: [VTdPageRequest] = [
            prq(dev, pasid: 5, group: 1, address: 0x0000_8000_0000_0000),   // not canonical
            prq(dev, pasid: 5, group: 2, address: 0x1000, privileged: true), // privileged read
            prq(dev, pasid: 5, group: 3, address: 0x1000, execute: true),    // execute + read
            prq(ghost, pasid: 5, group: 4, address: 0x1000),                 // unknown RID
            prq(dev, pasid: 5, group: 5, address: 0x0000_8000_0000_0000, last: false),
        ]
        for r in bad { XCTAssertTrue(rig.unit.vtd.receivePageRequest(r)) }
        let pass = rig.unit.processPageRequests()
        XCTAssertEqual(pass.rejected, 5)
        XCTAssertEqual(pass.reported, 0)
        let sent = descriptorsOfKind(rig.unit.vtd.executed)
        XCTAssertEqual(sent.map(\.group), [1, 2, 3, 4], "a non-last bad request gets no response")
        XCTAssertTrue(sent.allSatisfy { $0.code == .invalid })
        XCTAssertEqual(rig.unit.vtd.pageResponses.map(\.groupIndex), [1, 2, 3], "the unknown RID is on no link")
    }

    func testOverflowWithEmptyQueueDiscardsPartials() throws {
        let rig = try SVARig()
        let dev = try rig.device(2)
        let mm = try rig.process()
        let va = try mm.mmap(length: 4096, prot: [.read])
        let bond = try rig.iommu.svaBindDevice(dev, mm: mm)
        let pasid = rig.iommu.svaGetPasid(bond)
        rig.unit.vtd.receivePageRequest(prq(dev, pasid: pasid, group: 1, address: va, last: false))
        rig.unit.processPageRequests()
        XCTAssertEqual(rig.unit.iopfQueue.partialFaults(of: dev).count, 1)
        let ghost = PCIDevice(rid: RID(bus: 0, device: 31, function: 0))
        for i in 0..<VTdHardware.prqCapacity {
            XCTAssertTrue(rig.unit.vtd.receivePageRequest(prq(ghost, pasid: nil, group: UInt16(i & 0x1FF), address: 0, last: false)))
        }
        XCTAssertFalse(rig.unit.vtd.receivePageRequest(prq(dev, pasid: pasid, group: 1, address: va)), "the last request is lost")
        XCTAssertTrue(rig.unit.vtd.prqOverflow)
        let pass = rig.unit.processPageRequests()
        XCTAssertTrue(pass.overflowCleared)
        XCTAssertFalse(rig.unit.vtd.prqOverflow)
        XCTAssertTrue(rig.unit.iopfQueue.partialFaults(of: dev).isEmpty, "orphaned partials dropped")
        rig.iommu.svaUnbindDevice(bond)
    }

    func testRequestWithoutPasidRoutesToTheRIDHandleAndHandlerFailureAnswersFailure() throws {
        let rig = try SVARig()
        let dev = try rig.device(2)
        let group = try XCTUnwrap(dev.group)
        let domain = try rig.iommu.allocPagingDomain(for: dev, flags: [.pasid])
        let handler = RecordingHandler()
        domain.iopfHandler = handler
        XCTAssertTrue(domain.hasIOPFHandler)
        try rig.iommu.groupClaimDMAOwner(group, owner: handler)
        try rig.iommu.attachGroupHandle(domain, to: group, handle: AttachHandle())
        XCTAssertEqual(rig.driverInfo(dev).iopfRefcount, 1, "a fault-capable RID domain puts the device on the iopf queue")
        // A DMA without PASID to an unmapped IOVA: a page request routed to slot 0.
        XCTAssertThrowsError(try dev.dmaRead(at: 0x4000, count: 4))
        rig.servePageRequests(for: dev)
        XCTAssertEqual(handler.groups.count, 1)
        XCTAssertFalse(handler.groups[0].lastFault.pasidValid)
        XCTAssertEqual(rig.responses.last, IOPFResponseRecord(device: dev.rid, pasid: nil, grpid: handler.groups[0].lastFault.grpid,
                                                              code: .success, group: handler.groups[0].serial))
        // A PASID request with nothing at that PASID does not fall back to the RID (no user PASID table).
        assertErrno(.invalidArgument) { () throws(Errno) in
            try rig.iommu.reportDeviceFault(dev, request(pasid: 9, grpid: 1, address: 0x4000))
        }
        // The handler refuses: the core answers FAILURE.
        handler.fail = .noMemory
        try rig.iommu.reportDeviceFault(dev, request(pasid: nil, grpid: 2, address: 0x4000))
        XCTAssertEqual(rig.responses.last?.code, .failure)
        XCTAssertEqual(rig.machine.warnings.last?.function, "iommu_report_device_fault")
        rig.iommu.detachGroupHandle(domain, from: group)
        XCTAssertEqual(rig.driverInfo(dev).iopfRefcount, 0)
        rig.iommu.groupReleaseDMAOwner(group)
        rig.iommu.freeDomain(domain)
    }

    func testAddDeviceErrnosAndFlushWithoutQueue() throws {
        let rig = try SVARig()
        let dev = try rig.device(2)
        let queue = IOPFQueue(name: "test-iopfq")
        try queue.addDevice(dev)
        assertErrno(.busy) { () throws(Errno) in try queue.addDevice(dev) }
        assertErrno(.busy) { () throws(Errno) in try rig.unit.iopfQueue.addDevice(dev) }
        queue.removeDevice(dev)
        XCTAssertTrue(rig.machine.warnings.isEmpty)
        queue.removeDevice(dev)
        XCTAssertEqual(rig.machine.warnings.map(\.function), ["iopf_queue_remove_device"])
        assertErrno(.noDevice) { () throws(Errno) in try rig.iommu.iopfQueueFlushDevice(dev) }
        // A driver without page_response.
        let machine = Machine(memory: 1 << 28)
        let mock = MockIOMMU(driver: MockIOMMUDriver(iopf: false))
        machine.addIOMMU(mock)
        let mdev = try mock.makeDevice(on: machine, flags: [.pasid])
        assertErrno(.noDevice) { () throws(Errno) in try queue.addDevice(mdev) }
        XCTAssertFalse(machine.iommu.hasFaultParam(mdev))
    }

    func testDoubleResponseBugIsReportedAsI14() throws {
        let rig = try SVARig()
        let dev = try rig.device(2)
        let mm = try rig.process()
        let va = try mm.mmap(length: 4096, prot: [.read])
        let bond = try rig.iommu.svaBindDevice(dev, mm: mm)
        let pasid = rig.iommu.svaGetPasid(bond)
        // Move the device to a queue with the historical bug.
        let buggy = IOPFQueue(name: "buggy-iopfq", bugs: [.respondWithoutPendingCheck])
        rig.unit.iopfQueue.removeDevice(dev)
        try buggy.addDevice(dev)
        try rig.iommu.reportDeviceFault(dev, request(pasid: pasid, grpid: 4, address: va))
        let group = try XCTUnwrap(buggy.pendingGroups(of: dev).first)
        buggy.removeDevice(dev)        // answers INVALID
        buggy.runPending()             // the handler answers again
        XCTAssertEqual(group.responseCount, 2)
        XCTAssertEqual(rig.iommu.faultLog.responses(forGroup: group.serial).map(\.code), [.invalid, .success])
        let v = rig.machine.checker.violations(of: .onePageResponse)
        XCTAssertEqual(v.count, 1)
        XCTAssertEqual(v.first?.pasid, pasid)
        try rig.unit.iopfQueue.addDevice(dev)
        rig.iommu.svaUnbindDevice(bond)
    }

    func testQueueFreedWithUnansweredGroupReportsI14() throws {
        let rig = try SVARig()
        let dev = try rig.device(2)
        let domain = try rig.iommu.allocPagingDomain(for: dev, flags: [.pasid])
        let handler = RecordingHandler()
        handler.answer = nil
        domain.iopfHandler = handler
        rig.unit.iopfQueue.mode = .inline
        try rig.iommu.attachDevicePasid(domain, to: dev, pasid: 12, handle: AttachHandle())
        try rig.iommu.reportDeviceFault(dev, request(pasid: 12, grpid: 1, address: 0x1000))
        XCTAssertEqual(rig.unit.iopfQueue.pendingGroups(of: dev).count, 1)
        // iopf_queue_free with the device still on it: WARN, INVALID to the pending group.
        rig.unit.iopfQueue.free()
        XCTAssertEqual(rig.responses.map(\.code), [.invalid])
        XCTAssertTrue(rig.machine.warnings.contains { $0.function == "iopf_queue_free" })
        // A standalone queue dropped with a pending group: the checker hears of it.
        var standalone: IOPFQueue? = IOPFQueue(name: "leaky")
        try standalone?.addDevice(dev)
        try rig.iommu.reportDeviceFault(dev, request(pasid: 12, grpid: 2, address: 0x1000))
        XCTAssertEqual(standalone?.pendingGroups(of: dev).count, 1)
        standalone = nil
        XCTAssertEqual(rig.machine.checker.violations(of: .onePageResponse).count, 1)
        XCTAssertFalse(rig.iommu.hasFaultParam(dev), "the dead queue let go of the device")
        rig.iommu.detachDevicePasid(domain, from: dev, pasid: 12)
    }
}

private func descriptorsOfKind(_ ds: [VTdDescriptor]) -> [(group: UInt16, code: VTdPageResponseCode)] {
    ds.compactMap { if case .pageGroupResponse(_, _, let g, let c, _) = $0 { (g, c) } else { nil } }
}
