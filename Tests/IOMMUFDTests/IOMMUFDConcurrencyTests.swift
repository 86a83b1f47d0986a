import Foundation
import IOMMUCore
import IOMMUDrivers
import IOMMUFD
import XCTest

/// iommufd under concurrent callers, as a VMM's threads issue ioctls on one /dev/iommu:
/// `IOMMU_IOAS_MAP` and `IOMMU_IOAS_UNMAP` of disjoint slices of one IOAS at once, each
/// pinning user pages and filling two VT-d paging domains, while the devices DMA. CI
/// runs this class under ThreadSanitizer.
final class IOMMUFDConcurrencyTests: XCTestCase {
    /// Four threads map and unmap their own slices, 200 times each: after each map a
    /// device's DMA read returns the slice's bytes, after each unmap it faults; when all
    /// are done, nothing is mapped and no page is still pinned.
    func testConcurrentMapAndUnmapOfDisjointSlices() throws {
        let machine = Machine(memory: 2 << 30)
        let unit = try IntelIOMMU(name: "dmar0", driver: IntelIOMMUDriver(),
                                  hardware: VTdHardware(memory: machine.memory, caps: VTdCapabilities()))
        machine.addIOMMU(unit)
        let process = try IOMMUCore.Process(memory: machine.memory, pid: 300)
        let threads = 4, slice: UInt64 = 64 << 10
        let va = try process.mmap(length: threads * Int(slice), prot: [.read, .write], at: 0x1_0000_0000, populate: true)
        for t in 0..<threads {
            try process.writeMemory(address: va + UInt64(t) * slice, bytes: [UInt8(0xA0 + t)])
        }
        let fd = IOMMUFD(machine: machine, process: process)
        let ioas = try fd.allocIOAS()
        var bound: [DeviceObject] = []
        var devices: [PCIDevice] = []
        for slot in UInt8(1)...2 {
            let dev = try machine.addDevice(PCIDevice(rid: RID(bus: 0, device: slot, function: 0)), behind: unit)
            let idev = try fd.deviceBind(dev)
            _ = try fd.deviceAttach(idev, ptID: try fd.allocHWPT(device: idev.id, pt: ioas))
            bound.append(idev)
            devices.append(dev)
        }
        let pinnedBefore = machine.memory.framesWithExtraReferences
        let findings = Findings()
        let start = DispatchSemaphore(value: 0)
        let done = DispatchGroup()
        for t in 0..<threads {
            done.enter()
            let iova = IOVA(rawValue: 0x4000_0000 + UInt64(t) << 30)
            let dev = devices[t % devices.count]
            Thread {
                start.wait()
                for _ in 0..<200 {
                    do {
                        let mapped = try fd.map(ioas: ioas, userVA: va + UInt64(t) * slice, length: slice, iova: iova)
                        if mapped != iova { findings.add("thread \(t): mapped at \(mapped), asked for \(iova)") }
                        let byte = try dev.dmaRead(at: iova, count: 1)
                        if byte != [UInt8(0xA0 + t)] { findings.add("thread \(t): DMA read \(byte)") }
                        let unmapped = try fd.unmap(ioas: ioas, iova: iova, length: slice)
                        if unmapped != slice { findings.add("thread \(t): unmapped \(unmapped) bytes") }
                        if (try? dev.dmaRead(at: iova, count: 1)) != nil { findings.add("thread \(t): DMA after unmap") }
                    } catch {
                        findings.add("thread \(t): \(error)")
                    }
                }
                done.leave()
            }.start()
        }
        for _ in 0..<threads { start.signal() }
        done.wait()
        XCTAssertEqual(findings.all, [])
        XCTAssertEqual(try fd.unmap(ioas: ioas, iova: 0, length: .max), 0, "nothing left mapped (unmap-all finds nothing)")
        XCTAssertEqual(machine.memory.framesWithExtraReferences, pinnedBefore, "every pin dropped")
        for idev in bound { fd.deviceUnbind(idev) }
        fd.close()
    }
}

/// What went wrong, from any thread.
private final class Findings: @unchecked Sendable {
    private let lock = Lock()
    private var list: [String] = []
    func add(_ s: String) { lock.withLock { list.append(s) } }
    var all: [String] { lock.withLock { list } }
}
