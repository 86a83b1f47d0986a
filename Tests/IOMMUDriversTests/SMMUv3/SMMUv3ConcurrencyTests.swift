import Foundation
import IOMMUConformance
import IOMMUCore
@testable import IOMMUDrivers
import XCTest

/// SMMUv3 under concurrency, as the kernel's contract allows it: DMA on several threads
/// while another attaches and detaches PASIDs and maps and unmaps; the driver lock
/// orders configuration, the hardware lock orders translation against commands. Run under
/// ThreadSanitizer with `swift test --sanitize=thread --filter SMMUv3ConcurrencyTests`.
final class SMMUv3ConcurrencyTests: XCTestCase {
    func testDMAWhileAttachDetachMapUnmapOnOtherPasids() throws {
        let tb = try SMMUv3Testbed()
        let devices = try (1...3).map { try tb.device(UInt8($0), ats: $0 == 2) }
        let domain = try tb.paging(devices[0])
        let buf = try tb.buffer(Array(repeating: 0x5C, count: 64))
        try tb.iommu.map(domain, iova: 0x10_0000, paddr: buf, size: 4096, prot: [.read, .write])
        for d in devices { try tb.iommu.attachDevicePasid(domain, to: d, pasid: 1) }
        let failures = Failures()
        let rounds = 200
        DispatchQueue.concurrentPerform(iterations: devices.count + 1) { lane in
            if lane == devices.count {
                // The configuration thread: PASID 2 comes and goes on every device, and a
                // second page is mapped and unmapped.
                do {
                    let other = try tb.paging(devices[0])
                    for r in 0..<rounds {
                        for d in devices { try tb.iommu.attachDevicePasid(other, to: d, pasid: 2) }
                        try tb.iommu.map(domain, iova: 0x20_0000, paddr: buf, size: 4096, prot: [.read])
                        _ = tb.iommu.unmap(domain, iova: 0x20_0000, size: 4096)
                        for d in devices { tb.iommu.detachDevicePasid(other, from: d, pasid: 2) }
                        if r % 50 == 0 { tb.unit.processEventQueue() }
                    }
                } catch {
                    failures.add("config: \(error)")
                }
                return
            }
            let dev = devices[lane]
            for _ in 0..<rounds * 4 {
                guard let bytes = try? dev.dmaRead(at: 0x10_0000, count: 8, pasid: 1), bytes == Array(repeating: 0x5C, count: 8)
                else {
                    failures.add("lane \(lane): PASID 1 lost its translation")
                    return
                }
            }
        }
        XCTAssertEqual(failures.all, [])
        XCTAssertTrue(tb.violations.isEmpty, "\(tb.violations)")
        for d in devices {
            XCTAssertEqual(tb.unit.cd(d.rid, ssid: 2)?.isValid, false)
            XCTAssertEqual(try d.dmaRead(at: 0x10_0000, count: 1, pasid: 1), [0x5C])
        }
    }

    /// Devices behind two SMMUs of one driver do not share an SVA domain: each domain is
    /// finalised for one SMMU, so the core's try of the mm's first domain on the second
    /// device fails (`EINVAL`) and a second domain, with its own ASID, is allocated.
    func testSVADomainsArePerSMMU() throws {
        let tb = try SMMUv3Testbed(configurations: [SMMUv3Configuration(), SMMUv3Configuration()])
        let a = try tb.device(1, unit: 0)
        let b = try tb.device(1, unit: 1, bus: 1)
        let mm = try SMMUv3Testbed.process(tb.machine)
        let va = try mm.mmap(length: 4096, prot: [.read, .write])
        try mm.writeMemory(address: va, bytes: [0x2A])
        let ba = try tb.iommu.svaBindDevice(a, mm: mm)
        let bb = try tb.iommu.svaBindDevice(b, mm: mm)
        XCTAssertFalse(ba.domain === bb.domain)
        XCTAssertEqual(tb.iommu.svaDomains(of: mm).count, 2)
        let pasid = tb.iommu.svaGetPasid(ba)
        XCTAssertEqual(tb.iommu.svaGetPasid(bb), pasid, "one PASID per mm")
        let asids = [ba, bb].compactMap { ($0.domain as? SMMUv3Domain)?.asid }
        XCTAssertEqual(Set(asids).count, 2, "ASIDs are global: two domains, two ASIDs")
        for dev in [a, b] { XCTAssertEqual(try dev.dmaRead(at: IOVA(sva: va), count: 1, pasid: pasid), [0x2A]) }
        tb.iommu.svaUnbindDevice(ba)
        tb.iommu.svaUnbindDevice(bb)
        mm.exit()
        assertNoViolations(tb.machine)
    }
}

private final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    func add(_ s: String) { lock.withLock { list.append(s) } }
    var all: [String] { lock.withLock { list } }
}
