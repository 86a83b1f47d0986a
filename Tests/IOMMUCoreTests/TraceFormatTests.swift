import XCTest
import IOMMUCore

/// The event log's text: `trace-cmd report` lines with the kernel's tracepoint names and
/// `TP_printk` formats (include/trace/events/iommu.h), line for line.
final class TraceFormatTests: XCTestCase {
    private let dsa = RID(bus: 0, device: 3, function: 0)

    private func lines(_ records: [TraceRecord]) -> [String] {
        let log = EventLog()
        log.isEnabled = true
        for r in records { log.record(r) }
        return log.traceLines()
    }

    func testIOMMUTracepointsPrintTheKernelFormat() {
        let fault = IOPFFault(flags: [.pasidValid, .lastPage], pasid: 5, grpid: 3, perm: [.read, .write],
                              address: 0x7f00_1000)
        XCTAssertEqual(lines([
            .addDeviceToGroup(groupID: 1, device: dsa),
            .map(iova: 0x10_0000, paddr: 0x12_7000, size: 8192),
            .unmap(iova: 0x10_0000, size: 8192, unmappedSize: 4096),
            .ioPageFault(device: dsa, iova: 0x10_0000, write: true, pasid: nil, reason: "not present"),
            .devFault(device: dsa, fault: fault),
            .devPageResponse(device: dsa, pasid: 5, grpid: 3, code: .success),
            .removeDeviceFromGroup(groupID: 1, device: dsa),
        ]), [
            "        iommukit-1     [000] .....     0.000001: iommu:add_device_to_group: IOMMU: groupID=1 device=0000:00:03.0",
            "        iommukit-1     [000] .....     0.000002: iommu:map:            IOMMU: iova=0x0000000000100000 - 0x0000000000102000 paddr=0x0000000000127000 size=8192",
            "        iommukit-1     [000] .....     0.000003: iommu:unmap:          IOMMU: iova=0x0000000000100000 - 0x0000000000102000 size=8192 unmapped_size=4096",
            "        iommukit-1     [000] .....     0.000004: iommu:io_page_fault:  IOMMU:pci 0000:00:03.0 iova=0x0000000000100000 flags=0x0001",
            "        iommukit-1     [000] .....     0.000005: iommu:dev_fault:      IOMMU:0000:00:03.0 type=2 reason=0 addr=0x000000007f001000 fetch=0x0000000000000000 pasid=5 group=3 flags=3 prot=3",
            "        iommukit-1     [000] .....     0.000006: iommu:dev_page_response: IOMMU:0000:00:03.0 code=0 pasid=5 group=3",
            "        iommukit-1     [000] .....     0.000007: iommu:remove_device_from_group: IOMMU: groupID=1 device=0000:00:03.0",
        ])
    }

    func testModelEventsUseTheIOMMUKitSystemAndPrintTheirFields() {
        XCTAssertEqual(lines([.pasidEvent("attach_device_pasid", device: dsa, pasid: 2, domain: TestDomain.shared)]), [
            "        iommukit-1     [000] .....     0.000001: iommukit:attach_device_pasid: device=0000:00:03.0 pasid=2 domain=\(TestDomain.shared)",
        ])
    }

    func testTaskColumnsFollowTheLogsTask() {
        let log = EventLog()
        log.isEnabled = true
        log.task = TraceTask(comm: "qemu-system-x86_64", pid: 4242, cpu: 1)
        log.record(.addDeviceToGroup(groupID: 0, device: dsa))
        // comm is cut to 16 characters (TASK_COMM_LEN), the pid left-aligned in 5.
        XCTAssertEqual(log.traceLines(), [
            "qemu-system-x86_-4242  [001] .....     0.000001: iommu:add_device_to_group: IOMMU: groupID=0 device=0000:00:03.0",
        ])
    }

    func testVirtualClockAdvancesOneMicrosecondPerEventAcrossClear() {
        let log = EventLog()
        log.isEnabled = true
        for _ in 0..<3 { log.record(.map(iova: 0, paddr: 0, size: 4096)) }
        log.clear()
        log.record(.map(iova: 0, paddr: 0, size: 4096))
        XCTAssertEqual(log.all.map(\.sequence), [4])
        XCTAssertEqual(log.all.map(\.timestamp), [4000])
        XCTAssertTrue(log.traceLines()[0].contains("     0.000004: iommu:map:"))
    }

    func testRecordingWhileOffBuildsNothing() {
        let log = EventLog()
        var built = 0
        func make() -> TraceRecord {
            built += 1
            return .map(iova: 0, paddr: 0, size: 4096)
        }
        log.record(make())
        log.record("iommukit:legacy", [.init("k", "\(built)")])
        XCTAssertEqual(built, 0, "the record was built although the log is off")
        XCTAssertTrue(log.all.isEmpty)
        log.isEnabled = true
        log.record(make())
        XCTAssertEqual(built, 1)
    }

    func testTailGivesTheNewestLinesOldestFirst() {
        let log = EventLog()
        log.isEnabled = true
        for i in 0..<30 { log.record(.map(iova: IOVA(rawValue: UInt64(i) << 12), paddr: 0, size: 4096)) }
        let tail = log.tail(20)
        XCTAssertEqual(tail.count, 20)
        XCTAssertTrue(tail[0].contains("iova=0x000000000000a000 "), tail[0])
        XCTAssertTrue(tail[19].contains("iova=0x000000000001d000 "), tail[19])
        XCTAssertEqual(log.tail(0), [])
        XCTAssertEqual(log.tail(100).count, 30)
    }

    func testFilterByEventSystemDeviceAndPasid() {
        let log = EventLog()
        log.isEnabled = true
        let nic = RID(bus: 0, device: 2, function: 0)
        log.record(.map(iova: 0, paddr: 0, size: 4096))
        log.record(.addDeviceToGroup(groupID: 0, device: nic))
        log.record(.pasidEvent("attach_device_pasid", device: dsa, pasid: 1, domain: TestDomain.shared))
        log.record(.devPageResponse(device: dsa, pasid: 2, grpid: 0, code: .invalid))
        func names(_ f: TraceFilter) -> [String] { log.events(matching: f).map(\.name) }
        XCTAssertEqual(names(TraceFilter(event: "map")), ["iommu:map"])
        XCTAssertEqual(names(TraceFilter(event: "iommu:map")), ["iommu:map"])
        XCTAssertEqual(names(TraceFilter(event: "iommu:")), ["iommu:map", "iommu:add_device_to_group", "iommu:dev_page_response"])
        XCTAssertEqual(names(TraceFilter(event: "iommukit:*")), ["iommukit:attach_device_pasid"])
        XCTAssertEqual(names(TraceFilter(device: dsa)), ["iommukit:attach_device_pasid", "iommu:dev_page_response"])
        XCTAssertEqual(names(TraceFilter(pasid: 2)), ["iommu:dev_page_response"])
        XCTAssertEqual(names(TraceFilter(event: "map", device: dsa)), [])
        XCTAssertEqual(names(TraceFilter()).count, 4)
    }

    func testPCIAddressParsing() {
        XCTAssertEqual(RID(parsing: "00:03.0"), dsa)
        XCTAssertEqual(RID(parsing: "0000:3a:1f.7"), RID(bus: 0x3a, device: 0x1f, function: 7))
        for bad in ["", "3", "00:03", "00:20.0", "00:03.8", "0001:00:03.0", "zz:00.0", "00:03.0.1"] {
            XCTAssertNil(RID(parsing: bad), bad)
        }
        XCTAssertEqual(dsa.devName, "0000:00:03.0")
    }

    func testStepsAreNumberedPerMachineAndRecorded() {
        let machine = Machine(memory: 1 << 24)
        machine.events.isEnabled = true
        machine.step("first")
        machine.step("second \"quoted\"")
        XCTAssertEqual(machine.events.stepNames, ["first", "second \"quoted\""])
        XCTAssertEqual(machine.events.named("iommukit:step").map(\.message),
                       ["step=1 name=\"first\"", "step=2 name=\"second \"quoted\"\""])
    }

    func testCountersReadAsText() {
        var c = Counters()
        c.dmaRequests = 7
        c.dmaBytes = 138
        c.maps = 1
        c.attaches = 3
        c.hardware.walks = 1
        c.hardware.invalidations = ["piotlb": 3, "devtlb": 1]
        XCTAssertEqual("\(c)", """
            dma: 7 requests, 138 bytes, 0 faults, 0 ATC hits
            translation: 0 requests, 1 walk, 0 IOTLB hits, 0 IOTLB misses, 0 faults
            core: 1 map, 0 unmaps, 3 attaches
            invalidations: devtlb 1, piotlb 3
            """)
    }
}

/// A domain for records that only print it.
private final class TestDomain: IOMMUDomain, @unchecked Sendable {
    static let shared = TestDomain(type: .unmanaged, owner: NoDriver(), ops: [])
}

private final class NoDriver: IOMMUDriver {
    let name = "none"
    func probeDevice(_ dev: PCIDevice) throws(Errno) {}
    func domainAllocPaging(_ dev: PCIDevice, flags: DomainAllocFlags, userData: [UInt8]?) throws(Errno) -> IOMMUDomain {
        throw .notSupported
    }
    var blockedDomain: IOMMUDomain? { nil }
}
