import IOMMUConformance
import XCTest
import IOMMUCore
import IOMMUDrivers

/// Several processes bind, fault, unmap, unbind and exit at the same time, one VT-d unit
/// (and so one iopf queue, driven by one thread) each, sharing the core and the driver.
final class SVAConcurrencyTests: XCTestCase {
    func testConcurrentBindFaultUnbindOnSeparateUnits() throws {
        let lanes = 4
        let rig = try SVARig(units: lanes)
        let devices = try (0..<lanes).map { try rig.device(2, unit: $0) }
        let mms = try (0..<lanes).map { _ in try rig.process() }
        let failures = Failures()
        DispatchQueue.concurrentPerform(iterations: lanes) { i in
            do {
                let dev = devices[i], mm = mms[i]
                for round in 0..<5 {
                    let va = try mm.mmap(length: 2 * 4096, prot: [.read, .write])
                    let bond = try rig.iommu.svaBindDevice(dev, mm: mm)
                    let pasid = rig.iommu.svaGetPasid(bond)
                    let bytes = [UInt8](repeating: UInt8(i * 16 + round), count: 5000)
                    _ = try rig.dmaWriteRetrying(dev, at: va, bytes: bytes, pasid: pasid)
                    if try mm.readMemory(address: va, count: bytes.count) != bytes { failures.add("lane \(i) bytes") }
                    try mm.munmap(address: va, length: 2 * 4096)
                    if (try? dev.dmaRead(at: IOVA(sva: va), count: 1, pasid: pasid)) != nil { failures.add("lane \(i) stale") }
                    rig.servePageRequests(for: dev)
                    rig.iommu.svaUnbindDevice(bond)
                }
                mm.exit()
            } catch {
                failures.add("lane \(i): \(error)")
            }
        }
        XCTAssertEqual(failures.all, [])
        XCTAssertTrue(rig.violations.isEmpty, "\(rig.violations)")
        XCTAssertTrue(mms.allSatisfy { $0.enqcmdPasid == nil })
        XCTAssertTrue(rig.units.allSatisfy { $0.iopfQueue.isIdle })
    }
}

private final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    func add(_ s: String) { lock.withLock { list.append(s) } }
    var all: [String] { lock.withLock { list } }
}
