import XCTest
import IOMMUCore
import IOMMUDrivers

/// Checks 42–47 of spec §5: routing, grouping, one response per group, queue removal,
/// drain before detach, and the SVA handler's refusals.
final class IOPFCheckTests: XCTestCase {
    func testCheck42FaultForPasidWithoutHandleAnsweredInvalidAndEINVAL() throws {
        let rig = try SVARig()
        let dev = try rig.device(2)
        assertErrno(.invalidArgument) { () throws(Errno) in
            try rig.iommu.reportDeviceFault(dev, request(pasid: 33, grpid: 4, address: 0x1000))
        }
        XCTAssertEqual(rig.responses, [IOPFResponseRecord(device: dev.rid, pasid: 33, grpid: 4, code: .invalid, group: nil)])
        XCTAssertEqual(rig.unit.vtd.pageResponses.map { [$0.rid.raw, UInt16($0.pasid ?? 0), $0.groupIndex] }, [[dev.rid.raw, 33, 4]])
        XCTAssertEqual(rig.unit.vtd.pageResponses.map(\.code), [.invalid])
        // A bare domain (no handle) at the PASID, or a handle whose domain has no handler: the same.
        let paging = try rig.iommu.allocPagingDomain(for: dev, flags: [.pasid])
        try rig.iommu.attachDevicePasid(paging, to: dev, pasid: 33)
        assertErrno(.invalidArgument) { () throws(Errno) in
            try rig.iommu.reportDeviceFault(dev, request(pasid: 33, grpid: 5, address: 0x1000))
        }
        rig.iommu.detachDevicePasid(paging, from: dev, pasid: 33)
        try rig.iommu.attachDevicePasid(paging, to: dev, pasid: 33, handle: AttachHandle())
        assertErrno(.invalidArgument) { () throws(Errno) in
            try rig.iommu.reportDeviceFault(dev, request(pasid: 33, grpid: 6, address: 0x1000))
        }
        XCTAssertEqual(rig.responses.map(\.code), [.invalid, .invalid, .invalid])
        XCTAssertEqual(rig.iommu.faultLog.counters.unhandled, 3)
        rig.iommu.detachDevicePasid(paging, from: dev, pasid: 33)
        XCTAssertTrue(rig.violations.isEmpty, "\(rig.violations)")
    }

    func testCheck43ThreeRequestsOfOneGroupOneResponse() throws {
        let rig = try SVARig()
        let dev = try rig.device(2)
        let mm = try rig.process()
        let va = try mm.mmap(length: 3 * 4096, prot: [.read, .write])
        let bond = try rig.iommu.svaBindDevice(dev, mm: mm)
        let pasid = rig.iommu.svaGetPasid(bond)
        // Another group's partial interleaved: it must stay behind.
        try rig.iommu.reportDeviceFault(dev, request(pasid: pasid, grpid: 7, address: va, perm: IOMMUFaultPerm.write, last: false))
        try rig.iommu.reportDeviceFault(dev, request(pasid: pasid, grpid: 8, address: va, last: false))
        try rig.iommu.reportDeviceFault(dev, request(pasid: pasid, grpid: 7, address: va + 4096, last: false))
        XCTAssertTrue(rig.responses.isEmpty, "partials are not answered")
        try rig.iommu.reportDeviceFault(dev, request(pasid: pasid, grpid: 7, address: va + 8192, perm: [IOMMUFaultPerm.read, .write]))
        let groups = rig.unit.iopfQueue.pendingGroups(of: dev)
        XCTAssertEqual(groups.count, 1)
        let group = try XCTUnwrap(groups.first)
        XCTAssertEqual(group.faults.map(\.address), [va, va + 4096, va + 8192], "partials first, last at the end")
        XCTAssertTrue(group.domain === bond.domain)
        XCTAssertEqual(rig.unit.iopfQueue.partialFaults(of: dev).map(\.grpid), [8])
        XCTAssertEqual(rig.unit.iopfQueue.runPending(), 1)
        XCTAssertEqual(rig.responses, [IOPFResponseRecord(device: dev.rid, pasid: pasid, grpid: 7, code: .success,
                                                          group: group.serial)])
        XCTAssertEqual(group.responseCount, 1)
        XCTAssertFalse(group.isPending)
        let hw = try XCTUnwrap(rig.unit.vtd.pageResponses.last)
        XCTAssertEqual(hw.pasid, pasid)
        XCTAssertEqual(hw.groupIndex, 7)
        XCTAssertEqual(hw.code, .success)
        for page in 0..<3 { XCTAssertNotNil(mm.physicalAddress(of: va + UInt64(page) * 4096), "page \(page) faulted in") }
        rig.iommu.svaUnbindDevice(bond)
        XCTAssertTrue(rig.violations.isEmpty, "\(rig.violations)")
    }

    func testCheck44FirstFaultInvalidStopsTheGroup() throws {
        let rig = try SVARig()
        let dev = try rig.device(2)
        let mm = try rig.process()
        let va = try mm.mmap(length: 2 * 4096, prot: [.read, .write])
        let bond = try rig.iommu.svaBindDevice(dev, mm: mm)
        let pasid = rig.iommu.svaGetPasid(bond)
        let hole: UInt64 = 0x7000_0000
        try rig.iommu.reportDeviceFault(dev, request(pasid: pasid, grpid: 3, address: hole, last: false))
        try rig.iommu.reportDeviceFault(dev, request(pasid: pasid, grpid: 3, address: va, last: false))
        try rig.iommu.reportDeviceFault(dev, request(pasid: pasid, grpid: 3, address: va + 4096))
        rig.unit.iopfQueue.runPending()
        XCTAssertEqual(rig.responses.map(\.code), [.invalid])
        XCTAssertNil(mm.physicalAddress(of: va), "later faults of the group are not processed")
        XCTAssertNil(mm.physicalAddress(of: va + 4096))
        rig.iommu.svaUnbindDevice(bond)
    }

    func testCheck45RemoveDeviceAnswersPendingInvalidAndDropsPartials() throws {
        let rig = try SVARig()
        let dev = try rig.device(2)
        let mm = try rig.process()
        let va = try mm.mmap(length: 4096, prot: [.read, .write])
        let bond = try rig.iommu.svaBindDevice(dev, mm: mm)
        let pasid = rig.iommu.svaGetPasid(bond)
        let queue = rig.unit.iopfQueue
        try rig.iommu.reportDeviceFault(dev, request(pasid: pasid, grpid: 1, address: va))
        try rig.iommu.reportDeviceFault(dev, request(pasid: pasid, grpid: 2, address: va))
        try rig.iommu.reportDeviceFault(dev, request(pasid: pasid, grpid: 3, address: va, last: false))
        let groups = queue.pendingGroups(of: dev)
        XCTAssertEqual(groups.count, 2)
        XCTAssertEqual(queue.pendingWorkCount, 2, "two handlers in flight")
        queue.removeDevice(dev)
        XCTAssertEqual(rig.responses.map(\.code), [.invalid, .invalid])
        XCTAssertEqual(rig.responses.map(\.grpid), [1, 2])
        XCTAssertTrue(queue.partialFaults(of: dev).isEmpty)
        XCTAssertFalse(rig.iommu.hasFaultParam(dev))
        // The handlers still run; their responses are no-ops.
        XCTAssertEqual(queue.runPending(), 2)
        XCTAssertEqual(rig.responses.count, 2)
        XCTAssertEqual(groups.map(\.responseCount), [1, 1])
        XCTAssertEqual(rig.iommu.faultLog.counters.suppressedResponses, 2)
        XCTAssertEqual(rig.unit.vtd.pageResponses.map(\.code), [.invalid, .invalid])
        XCTAssertTrue(rig.machine.checker.violations(of: .onePageResponse).isEmpty)
        // Back on the queue, so the driver's own teardown finds it there.
        try queue.addDevice(dev)
        rig.iommu.svaUnbindDevice(bond)
        XCTAssertTrue(rig.machine.warnings.isEmpty, "\(rig.machine.warnings)")
        XCTAssertTrue(queue.isIdle)
    }

    func testCheck46DetachWithPendingFaultDrainsBeforeTheHandleGoes() throws {
        let rig = try SVARig()
        let dev = try rig.device(2)
        let mm = try rig.process()
        let va = try mm.mmap(length: 4096, prot: [.read, .write])
        let bond = try rig.iommu.svaBindDevice(dev, mm: mm)
        let pasid = rig.iommu.svaGetPasid(bond)
        let domain = try XCTUnwrap(bond.domain)
        // The device's write page-faults; the request sits in the hardware queue.
        XCTAssertThrowsError(try dev.dmaWrite(at: va, bytes: [1], pasid: pasid))
        XCTAssertTrue(rig.unit.vtd.hasPendingPageRequests(rid: dev.rid, pasid: pasid))
        rig.machine.events.clear()
        rig.iommu.svaUnbindDevice(bond)
        // The drain reported it while the handle was published, the SVA handler ran in
        // the mm and answered, and only then was the PASID erased and the domain freed.
        let names = rig.machine.events.all.map(\.name)
        let response = try XCTUnwrap(names.firstIndex(of: "core:iopf_response"))
        let detach = try XCTUnwrap(names.firstIndex(of: "core:detach_device_pasid"))
        XCTAssertLessThan(response, detach)
        XCTAssertEqual(rig.responses.map(\.code), [.success])
        XCTAssertNotNil(mm.physicalAddress(of: va), "the handler served the old fault in its own mm")
        XCTAssertTrue(domain.isFreed)
        XCTAssertFalse(rig.unit.vtd.hasPendingPageRequests(rid: dev.rid, pasid: pasid))
        XCTAssertTrue(rig.unit.iopfQueue.isIdle)
        // After detach returned, nothing reaches a handler for that PASID.
        rig.unit.vtd.receivePageRequest(prq(dev, pasid: pasid, group: 9, address: va))
        let pass = rig.unit.processPageRequests()
        XCTAssertEqual(pass.reported, 1)
        XCTAssertEqual(rig.unit.iopfQueue.runPending(), 0)
        XCTAssertEqual(rig.responses.last?.code, .invalid)
        XCTAssertEqual(rig.iommu.faultLog.counters.groups, 1)
        XCTAssertTrue(rig.violations.isEmpty, "\(rig.violations)")
    }

    func testCheck47SVAFaultWithoutVMAOrPermissionOrOnExitingMMIsInvalid() throws {
        let rig = try SVARig()
        let dev = try rig.device(2)
        let mm = try rig.process()
        let ro = try mm.mmap(length: 4096, prot: [.read])
        let noexec = try mm.mmap(length: 4096, prot: [.read, .write])
        let rw = try mm.mmap(length: 4096, prot: [.read, .write])
        let bond = try rig.iommu.svaBindDevice(dev, mm: mm)
        let pasid = rig.iommu.svaGetPasid(bond)
        let queue = rig.unit.iopfQueue
        queue.mode = .inline
        try rig.iommu.reportDeviceFault(dev, request(pasid: pasid, grpid: 1, address: 0x6000_0000))
        try rig.iommu.reportDeviceFault(dev, request(pasid: pasid, grpid: 2, address: ro, perm: IOMMUFaultPerm.write))
        try rig.iommu.reportDeviceFault(dev, request(pasid: pasid, grpid: 3, address: noexec, perm: [IOMMUFaultPerm.read, .exec]))
        try rig.iommu.reportDeviceFault(dev, request(pasid: pasid, grpid: 4, address: ro, perm: IOMMUFaultPerm.read))
        XCTAssertEqual(rig.responses.map(\.code), [.invalid, .invalid, .invalid, .success])
        XCTAssertNil(mm.physicalAddress(of: noexec))
        // The mm exits while bound: every request is INVALID.
        mm.exit()
        try rig.iommu.reportDeviceFault(dev, request(pasid: pasid, grpid: 5, address: rw, perm: IOMMUFaultPerm.read))
        XCTAssertEqual(rig.responses.last?.code, .invalid)
        XCTAssertEqual(rig.responses.count, 5)
        rig.iommu.svaUnbindDevice(bond)
        XCTAssertTrue(rig.violations.isEmpty, "\(rig.violations)")
    }
}
