import IOMMUCore
import XCTest

// Page requests: routing, grouping, exactly one response per group, queue removal,
// drain before detach, and the SVA handler's refusals (checks 42-47). Requests come
// from the device (`PCIDevice.sendPageRequest`), through the vendor's hardware and
// driver, to the core's iopf queue.

extension ConformanceSuite {
    static let pageRequestChecks: [ConformanceCheck] = [
        .check42PageRequestWithoutHandlerIsAnsweredInvalid, .check43OneResponsePerPageRequestGroup,
        .check44SVAFirstFailedRequestEndsTheGroup, .check45RemovingTheDeviceAnswersPendingGroups,
        .check46DetachAnswersPendingRequestsBeforeTheHandleGoes,
        .check47SVARequestWithoutVMAOrPermissionOrOnExitingMMIsInvalid,
    ]
}

extension Rig {
    /// A paging domain whose fault handler records groups (and answers them with
    /// `answer` from queued work), attached with a handle to `pasid` of `dev`: the shape
    /// iommufd gives a fault-capable HWPT.
    func faultCapableDomain(_ dev: PCIDevice, pasid: PASID, answer: IOMMUPageResponseCode? = .success)
        throws -> (IOMMUDomain, RecordingFaultHandler) {
        let domain = try pagingDomain(for: dev)
        let handler = RecordingFaultHandler(answer: answer)
        domain.iopfHandler = handler
        try iommu.attachDevicePasid(domain, to: dev, pasid: pasid, handle: AttachHandle())
        return (domain, handler)
    }
}

extension ConformanceCheck {
    /// Check 42: a page request that finds no fault handler (no handle at its PASID, a
    /// domain attached without a handle, or a handle whose domain has no handler) is
    /// answered `INVALID` by the core (`iopf_error_response`); the driver's
    /// `iommu_report_device_fault` call gets `EINVAL`.
    public static var check42PageRequestWithoutHandlerIsAnsweredInvalid: ConformanceCheck {
        ConformanceCheck(requires: [.pasid, .pageRequests]) { vendor in
            let rig = try vendor.makeRig([.pri])
            let dev = rig.devices[0]
            rig.machine.checker.isEnabled = true
            assertErrno(.invalidArgument) {
                try rig.iommu.reportDeviceFault(dev, pageRequest(dev, pasid: 33, group: 4, address: 0x10_0000).fault)
            }
            XCTAssertEqual(rig.responses, [IOPFResponseRecord(device: dev.rid, pasid: 33, grpid: 4, code: .invalid,
                                                              group: nil)])
            try rig.sendPageRequests(dev, [pageRequest(dev, pasid: 33, group: 5, address: 0x10_0000)])
            let paging = try rig.pagingDomain()
            try rig.iommu.attachDevicePasid(paging, to: dev, pasid: 33)
            try rig.sendPageRequests(dev, [pageRequest(dev, pasid: 33, group: 6, address: 0x10_0000)])
            rig.iommu.detachDevicePasid(paging, from: dev, pasid: 33)
            try rig.iommu.attachDevicePasid(paging, to: dev, pasid: 33, handle: AttachHandle())
            try rig.sendPageRequests(dev, [pageRequest(dev, pasid: 33, group: 7, address: 0x10_0000)])
            rig.iommu.detachDevicePasid(paging, from: dev, pasid: 33)
            XCTAssertEqual(rig.responses.map(\.grpid), [4, 5, 6, 7])
            XCTAssertEqual(rig.responses.map(\.code), [.invalid, .invalid, .invalid, .invalid])
            XCTAssertEqual(rig.responses.map(\.pasid), [33, 33, 33, 33], "the response carries the PASID")
            XCTAssertEqual(rig.iommu.faultLog.counters.unhandled, 4)
            assertNoViolations(rig.machine)
        }
    }

    /// Check 43: requests of one group (same group index) are gathered until the last
    /// one: the handler gets one group with the partial requests first and the last at
    /// the end, while another group's partial stays behind; the group is answered once,
    /// with the last request's PASID and group index.
    public static var check43OneResponsePerPageRequestGroup: ConformanceCheck {
        ConformanceCheck(requires: [.pasid, .pageRequests]) { vendor in
            let rig = try vendor.makeRig([.pri])
            let dev = rig.devices[0]
            rig.machine.checker.isEnabled = true
            let (domain, handler) = try rig.faultCapableDomain(dev, pasid: 21)
            let queue = try XCTUnwrap(rig.iommu.iopfQueue(of: dev), "a fault-capable attachment puts the device on an iopf queue")
            let va: UInt64 = 0x40_0000
            try rig.sendPageRequests(dev, [
                pageRequest(dev, pasid: 21, group: 7, address: va, access: .write, last: false),
                pageRequest(dev, pasid: 21, group: 8, address: va, last: false),
                pageRequest(dev, pasid: 21, group: 7, address: va + 4096, last: false),
            ])
            XCTAssertTrue(rig.responses.isEmpty, "partial requests are not answered")
            XCTAssertTrue(handler.groups.isEmpty)
            try rig.sendPageRequests(dev, [pageRequest(dev, pasid: 21, group: 7, address: va + 8192, access: [.read, .write])])
            let group = try XCTUnwrap(handler.groups.first)
            XCTAssertEqual(handler.groups.count, 1)
            XCTAssertEqual(group.faults.map(\.address), [IOVA(sva: va), IOVA(sva: va + 4096), IOVA(sva: va + 8192)],
                           "partials first, the last at the end")
            XCTAssertTrue(group.domain === domain)
            XCTAssertEqual(queue.pendingGroups(of: dev).map(\.serial), [group.serial])
            XCTAssertEqual(queue.partialFaults(of: dev).map(\.grpid), [8])
            XCTAssertTrue(rig.responses.isEmpty, "answered only when the handler's work runs")
            XCTAssertEqual(queue.runPending(), 1)
            XCTAssertEqual(rig.responses, [IOPFResponseRecord(device: dev.rid, pasid: 21, grpid: 7, code: .success,
                                                              group: group.serial)])
            XCTAssertEqual(group.responseCount, 1)
            XCTAssertFalse(group.isPending)
            group.respond(.success)
            XCTAssertEqual(rig.responses.count, 1, "a second answer of the same group sends nothing")
            rig.iommu.detachDevicePasid(domain, from: dev, pasid: 21)
            assertNoViolations(rig.machine)
        }
    }

    /// Check 44: the SVA handler serves a group's requests in order and stops at the
    /// first it cannot serve: the group is answered `INVALID` once and the later
    /// requests are not faulted in.
    public static var check44SVAFirstFailedRequestEndsTheGroup: ConformanceCheck {
        ConformanceCheck(requires: [.pasid, .sva, .pageRequests]) { vendor in
            let rig = try vendor.makeRig([.pri])
            let dev = rig.devices[0]
            let mm = try rig.process()
            let va = try mm.mmap(length: 2 * 4096, prot: [.read, .write])
            let bond = try rig.iommu.svaBindDevice(dev, mm: mm)
            let pasid = rig.iommu.svaGetPasid(bond)
            let hole: UInt64 = 0x7000_0000
            try rig.sendPageRequests(dev, [
                pageRequest(dev, pasid: pasid, group: 3, address: hole, last: false),
                pageRequest(dev, pasid: pasid, group: 3, address: va, last: false),
                pageRequest(dev, pasid: pasid, group: 3, address: va + 4096),
            ])
            rig.iommu.iopfQueue(of: dev)?.runPending()
            XCTAssertEqual(rig.responses.map(\.code), [.invalid])
            XCTAssertNil(mm.physicalAddress(of: va), "later requests of the group are not served")
            XCTAssertNil(mm.physicalAddress(of: va + 4096))
            rig.iommu.svaUnbindDevice(bond)
        }
    }

    /// Check 45: `iopf_queue_remove_device` drops the device's partial requests and
    /// answers each pending group `INVALID`; a handler that answers later sends nothing
    /// (each group got exactly one response).
    public static var check45RemovingTheDeviceAnswersPendingGroups: ConformanceCheck {
        ConformanceCheck(requires: [.pasid, .pageRequests]) { vendor in
            let rig = try vendor.makeRig([.pri])
            let dev = rig.devices[0]
            rig.machine.checker.isEnabled = true
            let (domain, handler) = try rig.faultCapableDomain(dev, pasid: 12)
            let queue = try XCTUnwrap(rig.iommu.iopfQueue(of: dev))
            let va: UInt64 = 0x40_0000
            try rig.sendPageRequests(dev, [
                pageRequest(dev, pasid: 12, group: 1, address: va),
                pageRequest(dev, pasid: 12, group: 2, address: va),
                pageRequest(dev, pasid: 12, group: 3, address: va, last: false),
            ])
            XCTAssertEqual(handler.groups.count, 2)
            XCTAssertEqual(queue.pendingWorkCount, 2, "two answers queued")
            queue.removeDevice(dev)
            XCTAssertEqual(rig.responses.map(\.code), [.invalid, .invalid])
            XCTAssertEqual(rig.responses.map(\.grpid), [1, 2])
            XCTAssertTrue(queue.partialFaults(of: dev).isEmpty)
            XCTAssertFalse(rig.iommu.hasFaultParam(dev))
            XCTAssertEqual(queue.runPending(), 2, "the handler's work still runs")
            XCTAssertEqual(rig.responses.count, 2, "and answers nothing")
            XCTAssertEqual(handler.groups.map(\.responseCount), [1, 1])
            XCTAssertEqual(rig.iommu.faultLog.counters.suppressedResponses, 2)
            // Back on the queue, so the driver's own teardown finds the device there.
            try queue.addDevice(dev)
            rig.iommu.detachDevicePasid(domain, from: dev, pasid: 12)
            assertNoWarnings(rig.machine)
            XCTAssertTrue(queue.isIdle)
            assertNoViolations(rig.machine)
        }
    }

    /// Check 46: detaching a PASID while a page request of it is outstanding (still in
    /// the hardware queue, or reported and not answered) answers it before the detach
    /// completes: once `iommu_detach_device_pasid` returns, the group got exactly one
    /// response, nothing of the PASID is left in the hardware queue, and a later request
    /// for the PASID reaches no handler (`INVALID`).
    public static var check46DetachAnswersPendingRequestsBeforeTheHandleGoes: ConformanceCheck {
        ConformanceCheck(requires: [.pasid, .pageRequests]) { vendor in
            let rig = try vendor.makeRig([.pri])
            let dev = rig.devices[0]
            rig.machine.checker.isEnabled = true
            rig.machine.events.isEnabled = true
            let (domain, handler) = try rig.faultCapableDomain(dev, pasid: 30)
            let queue = try XCTUnwrap(rig.iommu.iopfQueue(of: dev))
            let va: UInt64 = 0x40_0000
            try rig.sendPageRequests(dev, [pageRequest(dev, pasid: 30, group: 3, address: va)], service: false)
            rig.machine.events.clear()
            rig.iommu.detachDevicePasid(domain, from: dev, pasid: 30)
            let handled = handler.groups.count
            XCTAssertEqual(rig.responses.filter { $0.grpid == 3 }.count, 1, "answered once by the time detach returned")
            let names = rig.machine.events.all.map(\.name)
            let response = try XCTUnwrap(names.firstIndex(of: "iommu:dev_page_response"))
            let detach = try XCTUnwrap(names.firstIndex(of: "iommukit:detach_device_pasid"))
            XCTAssertLessThan(response, detach)
            XCTAssertFalse(rig.unit.hardwareLock.withLock { rig.unit.hardware.hasPendingPageRequests(pasid: 30) })
            queue.runPending()
            XCTAssertEqual(rig.responses.filter { $0.grpid == 3 }.count, 1, "still once")
            XCTAssertTrue(queue.isIdle)
            try rig.sendPageRequests(dev, [pageRequest(dev, pasid: 30, group: 9, address: va)])
            queue.runPending()
            XCTAssertEqual(rig.responses.last?.grpid, 9)
            XCTAssertEqual(rig.responses.last?.code, .invalid)
            XCTAssertEqual(handler.groups.count, handled, "nothing reached a handler after the detach")
            assertNoViolations(rig.machine)
        }
    }

    /// Check 47: the SVA handler answers `INVALID` to a request with no VMA at its
    /// address, one asking for an access the VMA does not allow (write to read-only,
    /// execute without exec), and any request once the mm is exiting; a request it can
    /// serve is answered `SUCCESS` and the page is present afterwards.
    public static var check47SVARequestWithoutVMAOrPermissionOrOnExitingMMIsInvalid: ConformanceCheck {
        ConformanceCheck(requires: [.pasid, .sva, .pageRequests]) { vendor in
            let rig = try vendor.makeRig([.pri])
            let dev = rig.devices[0]
            rig.machine.checker.isEnabled = true
            let mm = try rig.process()
            let ro = try mm.mmap(length: 4096, prot: [.read])
            let noexec = try mm.mmap(length: 4096, prot: [.read, .write])
            let rw = try mm.mmap(length: 4096, prot: [.read, .write])
            let bond = try rig.iommu.svaBindDevice(dev, mm: mm)
            let pasid = rig.iommu.svaGetPasid(bond)
            rig.iommu.iopfQueue(of: dev)?.mode = .inline
            try rig.sendPageRequests(dev, [
                pageRequest(dev, pasid: pasid, group: 1, address: 0x6000_0000),
                pageRequest(dev, pasid: pasid, group: 2, address: ro, access: .write),
            ])
            // An execute request goes to the core as a driver reports it: on the wire an
            // execute-only last request reads as a PASID stop marker, and execute with
            // read is malformed for some hardware queues.
            try rig.iommu.reportDeviceFault(dev, pageRequest(dev, pasid: pasid, group: 3, address: noexec,
                                                             access: [.read, .exec]).fault)
            try rig.sendPageRequests(dev, [pageRequest(dev, pasid: pasid, group: 4, address: ro, access: .read)])
            XCTAssertEqual(rig.responses.map(\.code), [.invalid, .invalid, .invalid, .success])
            XCTAssertNil(mm.physicalAddress(of: noexec))
            XCTAssertNotNil(mm.physicalAddress(of: ro))
            mm.exit()
            try rig.sendPageRequests(dev, [pageRequest(dev, pasid: pasid, group: 5, address: rw)])
            XCTAssertEqual(rig.responses.last?.code, .invalid)
            XCTAssertEqual(rig.responses.count, 5)
            rig.iommu.svaUnbindDevice(bond)
            assertNoViolations(rig.machine)
        }
    }
}
