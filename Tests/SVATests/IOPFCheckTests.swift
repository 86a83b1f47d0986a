import IOMMUConformance
import IOMMUCore
import IOMMUDrivers
import XCTest

/// Checks 42-47 are vendor-neutral and run in the conformance suite on every vendor with
/// page requests. What stays here is the VT-d hardware's side of them: the page-group
/// responses it delivers, and a page request produced by a faulting DMA rather than sent
/// by hand.
final class IOPFCheckTests: XCTestCase {
    /// Check 42 on VT-d: a request with no handler is answered `INVALID` through a
    /// page-group response descriptor carrying its PASID and group index, whether the
    /// driver reported it (`iommu_report_device_fault`) or it came through the PRQ.
    func testCheck42VTdAnswersInvalidWithAPageGroupResponse() throws {
        let rig = try SVARig()
        let dev = try rig.device(2)
        assertErrno(.invalidArgument) { try rig.iommu.reportDeviceFault(dev, request(pasid: 33, grpid: 4, address: 0x1000)) }
        try dev.sendPageRequest(PageRequest(rid: dev.rid, pasid: 34, groupIndex: 5, address: 0x2000))
        XCTAssertTrue(rig.unit.vtd.hasPendingPageRequests(rid: dev.rid, pasid: 34), "waits in the PRQ")
        rig.unit.servicePageRequests()
        XCTAssertEqual(rig.unit.vtd.pageResponses.map { [$0.rid.raw, UInt16($0.pasid?.rawValue ?? 0), $0.groupIndex] },
                       [[dev.rid.raw, 33, 4], [dev.rid.raw, 34, 5]])
        XCTAssertEqual(rig.unit.vtd.pageResponses.map(\.code), [.invalid, .invalid])
    }

    /// Checks 43 and 45 on VT-d: the response of a served group, and the `INVALID`
    /// answers of `iopf_queue_remove_device`, reach the device as page-group responses,
    /// one per group.
    func testCheck43And45VTdDeliversOneResponsePerGroup() throws {
        let rig = try SVARig()
        let dev = try rig.device(2)
        let mm = try rig.process()
        let va = try mm.mmap(length: 3 * 4096, prot: [.read, .write])
        let bond = try rig.iommu.svaBindDevice(dev, mm: mm)
        let pasid = rig.iommu.svaGetPasid(bond)
        for (grp, last) in [(UInt16(7), false), (7, true), (8, true), (9, true)] {
            rig.unit.vtd.receivePageRequest(prq(dev, pasid: pasid, group: grp, address: va, last: last))
        }
        rig.unit.processPageRequests()
        XCTAssertEqual(rig.unit.iopfQueue.runPending(), 3)
        XCTAssertEqual(rig.unit.vtd.pageResponses.map(\.groupIndex), [7, 8, 9])
        XCTAssertEqual(rig.unit.vtd.pageResponses.map(\.code), [.success, .success, .success])
        rig.unit.vtd.receivePageRequest(prq(dev, pasid: pasid, group: 10, address: va))
        rig.unit.processPageRequests()
        rig.unit.iopfQueue.removeDevice(dev)
        XCTAssertEqual(rig.unit.vtd.pageResponses.map(\.code).last, .invalid)
        XCTAssertEqual(rig.unit.iopfQueue.runPending(), 1)
        XCTAssertEqual(rig.unit.vtd.pageResponses.count, 4, "the late answer sent nothing")
        try rig.unit.iopfQueue.addDevice(dev)
        rig.iommu.svaUnbindDevice(bond)
        assertNoViolations(rig.machine)
    }

    /// Check 46 on VT-d: a device write that page-faults leaves its request in the
    /// hardware queue; unbind drains it while the handle is still published, the SVA
    /// handler serves it in the process, and only then is the PASID erased and the
    /// domain freed. Afterwards nothing reaches a handler for that PASID.
    func testCheck46VTdDrainsAPageFaultedDMABeforeUnbind() throws {
        let rig = try SVARig()
        let dev = try rig.device(2)
        let mm = try rig.process()
        let va = try mm.mmap(length: 4096, prot: [.read, .write])
        let bond = try rig.iommu.svaBindDevice(dev, mm: mm)
        let pasid = rig.iommu.svaGetPasid(bond)
        let domain = try XCTUnwrap(bond.domain)
        XCTAssertThrowsError(try dev.dmaWrite(at: IOVA(sva: va), bytes: [1], pasid: pasid))
        XCTAssertTrue(rig.unit.vtd.hasPendingPageRequests(rid: dev.rid, pasid: pasid))
        rig.machine.events.clear()
        rig.iommu.svaUnbindDevice(bond)
        let names = rig.machine.events.all.map(\.name)
        let response = try XCTUnwrap(names.firstIndex(of: "iommu:dev_page_response"))
        let detach = try XCTUnwrap(names.firstIndex(of: "iommukit:detach_device_pasid"))
        XCTAssertLessThan(response, detach)
        XCTAssertEqual(rig.responses.map(\.code), [.success])
        XCTAssertNotNil(mm.physicalAddress(of: va), "the handler served the old fault in its own mm")
        XCTAssertTrue(domain.isFreed)
        XCTAssertFalse(rig.unit.vtd.hasPendingPageRequests(rid: dev.rid, pasid: pasid))
        XCTAssertTrue(rig.unit.iopfQueue.isIdle)
        rig.unit.vtd.receivePageRequest(prq(dev, pasid: pasid, group: 9, address: va))
        XCTAssertEqual(rig.unit.processPageRequests().reported, 1)
        XCTAssertEqual(rig.unit.iopfQueue.runPending(), 0)
        XCTAssertEqual(rig.responses.last?.code, .invalid)
        XCTAssertEqual(rig.iommu.faultLog.counters.groups, 1)
        assertNoViolations(rig.machine)
    }
}
