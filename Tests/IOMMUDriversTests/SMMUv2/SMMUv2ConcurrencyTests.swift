import Foundation
import XCTest
import IOMMUConformance
import IOMMUCore
@testable import IOMMUDrivers

/// The SMMUv2 model under concurrent use, as the kernel allows it: devices DMA while the
/// driver maps, unmaps and flushes other pages of their domains, faults raise interrupts
/// the CPU handles, and new domains are attached. Meant for ThreadSanitizer
/// (`swift test --sanitize=thread --filter SMMUv2ConcurrencyTests`) as well as plain runs.
final class SMMUv2ConcurrencyTests: XCTestCase {
    func testDMAMapUnmapFaultsAndAttachRunTogether() throws {
        let t = try SMMUv2Testbed(checker: false)
        let devs = try (1...3).map { i throws in try t.device(UInt8(i)) }
        let domains = try devs.map { d throws -> ARMSMMUv2Domain in
            let dom = try t.paging(d)
            try t.iommu.attachDevice(dom, to: d)
            return dom
        }
        let bufs = try devs.indices.map { i throws in try t.buffer([UInt8(i + 1)]) }
        // A page each device reads throughout, never unmapped.
        for (i, d) in domains.enumerated() { try t.iommu.map(d, iova: 0x10_0000, paddr: bufs[i], size: 4096, prot: [.read]) }
        let scratch = try t.buffer()
        let banks = t.unit.allocatedContextBanks
        let errors = Box(0)
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: devs.count + 3) { worker in
            switch worker {
            case 0..<devs.count:
                // DMA: the stable page always reads its byte; the churned one may fault.
                for k in 0..<2000 {
                    let v = try? devs[worker].dmaRead(at: 0x10_0000, count: 1)
                    if v != [UInt8(worker + 1)] { lock.lock(); errors.value += 1; lock.unlock() }
                    _ = try? devs[worker].dmaRead(at: 0x20_0000 + UInt64(k & 7) << 12, count: 1)
                }
            case devs.count:
                // Map and unmap other pages of every domain.
                for k in 0..<300 {
                    let d = domains[k % domains.count]
                    let iova: IOVA = 0x20_0000 + UInt64(k & 7) << 12
                    try? t.iommu.map(d, iova: iova, paddr: scratch, size: 4096, prot: [.read])
                    _ = t.iommu.unmap(d, iova: iova, size: 4096)
                    if k % 50 == 0 { t.iommu.flushIOTLBAll(d) }
                }
            case devs.count + 1:
                // The CPU taking the fault interrupts.
                for _ in 0..<500 { t.unit.handleInterrupts() }
            default:
                // Domains come and go on the unit's other banks.
                for _ in 0..<50 {
                    guard let d = try? t.paging(devs[0]) else { continue }
                    try? t.iommu.map(d, iova: 0x1000, paddr: scratch, size: 4096, prot: [.read])
                    _ = t.iommu.iovaToPhys(d, iova: 0x1000)
                    t.iommu.freeDomain(d)
                }
            }
        }
        XCTAssertEqual(errors.value, 0, "a stable mapping read wrong or faulted")
        XCTAssertEqual(t.unit.allocatedContextBanks, banks, "the banks of the domains that came and went are free")
    }
}
