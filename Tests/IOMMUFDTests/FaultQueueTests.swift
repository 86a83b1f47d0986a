import XCTest
import IOMMUCore
import IOMMUDrivers
@testable import IOMMUFD
import IOMMUFDSelftest

/// FAULT objects on the core's io-pgfault path (`fault.c`/`eventq.c` over `io-pgfault.c`):
/// TRIGGER_IOPF reports through `iommu_report_device_fault`, the HWPT's handler queues the
/// group on the FAULT object, and every group gets exactly one response through
/// `iopf_group_response`, from user space or automatically.
final class FaultQueueTests: XCTestCase {
    /// A mock device on an IOAS, a FAULT object with its fd, and a paging HWPT on the
    /// IOAS allocated with FAULT_ID_VALID (not attached yet).
    private struct Rig {
        let s: SelftestFD
        let ioas: UInt32, stdev: UInt32, dev: UInt32
        let fault: UInt32, faultFD: Int32, iopf: UInt32
        let pci: PCIDevice
        let queue: IOPFQueue

        init() throws {
            s = try SelftestFD()
            ioas = s.ioasAlloc()
            let (mrc, stdev, _, dev) = s.mockDomain(ioas)
            XCTAssertEqual(mrc, 0)
            self.stdev = stdev
            self.dev = dev
            let (frc, fault, faultFD) = s.faultAlloc()
            XCTAssertEqual(frc, 0)
            self.fault = fault
            self.faultFD = faultFD
            let (hrc, iopf) = s.hwptAlloc(dev: dev, pt: ioas, flags: IOMMUFDConstant.hwptFaultIDValid, faultID: fault)
            XCTAssertEqual(hrc, 0)
            self.iopf = iopf
            let s = s
            pci = try XCTUnwrap(s.fd.lock.withLock { (s.fd.table.live(dev) as? DeviceObject)?.dev })
            queue = try XCTUnwrap((pci.iommu as? MockIOMMU)?.mockDriver.iopfQueue)
        }

        var log: IOPFLog { s.machine.iommu.faultLog }
        var faultObject: FaultObject? { s.fd.lock.withLock { s.fd.table.live(fault) as? FaultObject } }

        func trigger(grpid: UInt32, addr: UInt64 = 0x1000) -> Int32 {
            s.test(IOMMUTestOp.triggerIOPF, IOMMUTestCmd.TriggerIOPF(devId: dev, pasid: 0, grpid: grpid, perm: 1, addr: addr))
        }

        /// Reads up to `count` bytes of fault records; returns rc and the records.
        func read(_ count: Int) throws -> (Int, [IOMMUHWPTPgfault]) {
            let at = s.arg + 0x4000
            let n = s.fd.readFile(faultFD, buffer: at, count: count)
            guard n > 0 else { return (n, []) }
            let bytes = try s.process.readMemory(address: at, count: n)
            return (n, stride(from: 0, to: n, by: IOMMUHWPTPgfault.size).map {
                IOMMUHWPTPgfault(bytes: Array(bytes[$0..<$0 + IOMMUHWPTPgfault.size]))
            })
        }

        /// Writes responses; returns what `write(2)` returns.
        func respond(_ responses: [(cookie: UInt32, code: UInt32)]) throws -> Int {
            let at = s.arg + 0x6000
            try s.process.writeMemory(address: at, bytes: responses.flatMap {
                IOMMUHWPTPageResponse(cookie: $0.cookie, code: $0.code).bytes
            })
            return s.fd.writeFile(faultFD, buffer: at, count: responses.count * IOMMUHWPTPageResponse.size)
        }
    }

    private let SUCCESS = IOMMUFDConstant.pageRespSuccess, INVALID = IOMMUFDConstant.pageRespInvalid

    func testAttachingAFaultCapableHWPTPutsTheMockDeviceOnItsIOPFQueue() throws {
        let r = try Rig()
        XCTAssertFalse(r.s.machine.iommu.hasFaultParam(r.pci), "the auto domain has no fault handler")
        XCTAssertEqual(r.s.replace(r.stdev, r.iopf).0, 0)
        XCTAssertTrue(r.queue.attachedDevices.contains { $0 === r.pci })
        XCTAssertEqual((r.pci.iommu as? MockIOMMU)?.mockDriver.state(of: r.pci)?.iopfRefcount, 1)
        XCTAssertEqual(r.s.replace(r.stdev, r.ioas).0, 0)
        XCTAssertFalse(r.queue.attachedDevices.contains { $0 === r.pci }, "the last fault-capable domain left")
        XCTAssertFalse(r.s.machine.iommu.hasFaultParam(r.pci))
        r.s.teardownCheck()
    }

    func testEachGroupGetsExactlyOneResponseThroughTheUAPI() throws {
        let r = try Rig()
        XCTAssertEqual(r.s.replace(r.stdev, r.iopf).0, 0)
        XCTAssertEqual(r.trigger(grpid: 1), 0)
        XCTAssertEqual(r.trigger(grpid: 2, addr: 0x2000), 0)
        let groups = r.queue.pendingGroups(of: r.pci)
        XCTAssertEqual(groups.map(\.lastFault.grpid), [1, 2], "the core holds both groups pending")
        XCTAssertEqual(r.faultObject?.pendingCount, 2)
        let (n, recs) = try r.read(3 * IOMMUHWPTPgfault.size)
        XCTAssertEqual(n, 2 * IOMMUHWPTPgfault.size)
        XCTAssertEqual(recs.map(\.cookie), [1, 2])
        XCTAssertEqual(recs.map(\.grpid), [1, 2])
        XCTAssertEqual(recs.map(\.devId), [r.dev, r.dev])
        XCTAssertEqual(recs.map(\.flags), [IOMMUFDConstant.pgfaultFlagLastPage, IOMMUFDConstant.pgfaultFlagLastPage])
        XCTAssertEqual(r.faultObject?.awaitingResponse, 2)
        XCTAssertTrue(r.log.responses.isEmpty, "reading answers nothing")

        XCTAssertEqual(try r.respond([(recs[0].cookie, SUCCESS)]), 8)
        XCTAssertEqual(r.log.responses(forGroup: groups[0].serial).map(\.code), [.success])
        XCTAssertEqual(try r.respond([(recs[0].cookie, SUCCESS)]), Int(EINVAL), "a cookie answers once")
        XCTAssertEqual(try r.respond([(recs[1].cookie, INVALID)]), 8)
        XCTAssertEqual(r.log.responses(forGroup: groups[1].serial).map(\.code), [.invalid])
        XCTAssertEqual(groups.map(\.responseCount), [1, 1])
        XCTAssertTrue(r.queue.pendingGroups(of: r.pci).isEmpty)
        XCTAssertEqual(r.faultObject?.awaitingResponse, 0)
        // Detaching later finds nothing left to answer.
        XCTAssertEqual(r.s.replace(r.stdev, r.ioas).0, 0)
        XCTAssertEqual(r.log.responses.count, 2)
        XCTAssertEqual(r.log.counters.suppressedResponses, 0)
        XCTAssertTrue(r.s.machine.checker.violations.isEmpty)
        r.s.teardownCheck()
    }

    /// `iommufd_fault_fops_write`: `xa_erase` of an unknown cookie returns NULL → `-EINVAL`;
    /// a code other than SUCCESS/INVALID → `-EINVAL`; records before a bad one stay done.
    func testResponseForAnUnknownCookieIsEINVAL() throws {
        let r = try Rig()
        XCTAssertEqual(r.s.replace(r.stdev, r.iopf).0, 0)
        XCTAssertEqual(try r.respond([(1, SUCCESS)]), Int(EINVAL), "no group was read: no cookie exists")
        XCTAssertEqual(r.trigger(grpid: 7), 0)
        XCTAssertEqual(try r.respond([(1, SUCCESS)]), Int(EINVAL), "a queued group has no cookie until read")
        let (_, recs) = try r.read(IOMMUHWPTPgfault.size)
        XCTAssertEqual(recs.first?.cookie, 1)
        XCTAssertEqual(try r.respond([(42, SUCCESS)]), Int(EINVAL))
        XCTAssertEqual(try r.respond([(1, 2)]), Int(EINVAL), "FAILURE is not a user response code")
        XCTAssertEqual(r.s.fd.writeFile(r.faultFD, buffer: r.s.arg + 0x6000, count: 7), Int(ESPIPE))
        XCTAssertTrue(r.log.responses.isEmpty, "bad input answers nothing")
        XCTAssertEqual(r.faultObject?.awaitingResponse, 1)
        XCTAssertEqual(try r.respond([(1, SUCCESS), (42, SUCCESS)]), 8, "progress before the bad record is kept")
        XCTAssertEqual(r.log.responses.map(\.code), [.success])
        r.s.teardownCheck()
    }

    func testDetachAnswersReadAndUnreadGroupsInvalidExactlyOnce() throws {
        let r = try Rig()
        XCTAssertEqual(r.s.replace(r.stdev, r.iopf).0, 0)
        XCTAssertEqual(r.trigger(grpid: 1), 0)
        XCTAssertEqual(r.trigger(grpid: 2), 0)
        let groups = r.queue.pendingGroups(of: r.pci)
        let (_, recs) = try r.read(IOMMUHWPTPgfault.size)
        XCTAssertEqual(recs.count, 1, "one group read, one still queued")
        XCTAssertEqual(r.s.replace(r.stdev, r.ioas).0, 0)
        XCTAssertEqual(groups.map(\.responseCount), [1, 1])
        XCTAssertEqual(r.log.responses.map(\.code), [.invalid, .invalid])
        // The driver's iopf_queue_remove_device answered first; iommufd's auto response
        // then found the groups no longer pending and sent nothing.
        XCTAssertEqual(r.log.counters.suppressedResponses, 2)
        XCTAssertEqual(r.faultObject?.pendingCount, 0)
        XCTAssertEqual(r.faultObject?.awaitingResponse, 0)
        XCTAssertEqual(try r.respond([(recs[0].cookie, SUCCESS)]), Int(EINVAL), "the cookie went with the attachment")
        XCTAssertEqual(r.log.responses.count, 2)
        XCTAssertTrue(r.s.machine.checker.violations.isEmpty)
        r.s.teardownCheck()
    }

    /// Closing the fd only drops its reference (`iommufd_eventq_fops_release`); the group
    /// stays pending until its attachment goes.
    func testClosingTheFaultFDAnswersNothingAndDetachStillAnswers() throws {
        let r = try Rig()
        XCTAssertEqual(r.s.replace(r.stdev, r.iopf).0, 0)
        XCTAssertEqual(r.trigger(grpid: 3), 0)
        XCTAssertEqual(r.s.fd.closeFile(r.faultFD), 0)
        XCTAssertTrue(r.log.responses.isEmpty)
        XCTAssertEqual(r.queue.pendingGroups(of: r.pci).count, 1)
        XCTAssertEqual(r.s.destroy(r.fault), EBUSY, "the HWPT still holds the fault")
        XCTAssertEqual(r.s.replace(r.stdev, r.ioas).0, 0)
        XCTAssertEqual(r.log.responses.map(\.code), [.invalid])
        XCTAssertEqual(r.s.destroy(r.iopf), 0)
        XCTAssertEqual(r.s.destroy(r.fault), 0)
        XCTAssertEqual(r.log.responses.count, 1, "destroy found nothing left")
        r.s.teardownCheck()
    }

    func testClosingTheContextAnswersEveryGroupOnce() throws {
        let r = try Rig()
        XCTAssertEqual(r.s.replace(r.stdev, r.iopf).0, 0)
        for g in UInt32(1)...3 { XCTAssertEqual(r.trigger(grpid: g), 0) }
        let groups = r.queue.pendingGroups(of: r.pci)
        _ = try r.read(IOMMUHWPTPgfault.size)
        r.s.teardownCheck()
        XCTAssertEqual(groups.map(\.responseCount), [1, 1, 1])
        XCTAssertEqual(r.log.responses.map(\.code), [.invalid, .invalid, .invalid])
        XCTAssertTrue(r.s.machine.checker.violations.isEmpty)
    }

    /// With no fault-capable HWPT attached, `iommu_report_device_fault` finds no handler
    /// and the core answers the request INVALID itself; TRIGGER_IOPF still returns 0.
    func testTriggerWithoutAFaultHandlerIsAnsweredByTheCore() throws {
        let r = try Rig()
        XCTAssertEqual(r.trigger(grpid: 9), 0)
        XCTAssertEqual(r.log.counters.unhandled, 1)
        XCTAssertEqual(r.log.responses.map(\.code), [.invalid])
        XCTAssertNil(r.log.responses.first?.group)
        XCTAssertEqual(r.faultObject?.pendingCount, 0)
        r.s.teardownCheck()
    }

    /// A group of several requests is delivered whole: one record per request, one cookie,
    /// one response.
    func testMultiRequestGroupIsReadWholeAndAnsweredOnce() throws {
        let r = try Rig()
        XCTAssertEqual(r.s.replace(r.stdev, r.iopf).0, 0)
        try r.s.machine.iommu.reportDeviceFault(r.pci, IOPFFault(flags: [], grpid: 5, perm: .read, address: 0x1000))
        try r.s.machine.iommu.reportDeviceFault(r.pci, IOPFFault(flags: .lastPage, grpid: 5, perm: .write, address: 0x2000))
        XCTAssertEqual(try r.read(IOMMUHWPTPgfault.size).0, 0, "the group does not fit: nothing is read")
        let (n, recs) = try r.read(4 * IOMMUHWPTPgfault.size)
        XCTAssertEqual(n, 2 * IOMMUHWPTPgfault.size)
        XCTAssertEqual(recs.map(\.addr), [0x1000, 0x2000])
        XCTAssertEqual(recs.map(\.flags), [0, IOMMUFDConstant.pgfaultFlagLastPage])
        XCTAssertEqual(recs.map(\.perm), [1, 2])
        XCTAssertEqual(Set(recs.map(\.cookie)), [1])
        XCTAssertEqual(try r.respond([(1, SUCCESS)]), 8)
        XCTAssertEqual(r.log.responses.map(\.code), [.success])
        XCTAssertEqual(r.log.responses.first?.grpid, 5)
        r.s.teardownCheck()
    }
}
