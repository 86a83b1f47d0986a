import Foundation
import XCTest
import IOMMUCore
import IOMMUDrivers

/// The event log and the invariant checker may be switched on and off while devices DMA:
/// the DMA path reads both switches without a lock, so they are atomics. Run under
/// ThreadSanitizer: `swift test --sanitize=thread --filter ObserveToggleRaceTests`
/// reports nothing.
final class ObserveToggleRaceTests: XCTestCase {
    func testTogglingTheLogAndTheCheckerWhileDevicesDMA() throws {
        let machine = Machine(memory: 1 << 30)
        let unit = try IntelIOMMU(name: "dmar0", driver: IntelIOMMUDriver(),
                                  hardware: VTdHardware(memory: machine.memory, caps: VTdCapabilities()))
        machine.addIOMMU(unit)
        let lanes = try (UInt8(1)...3).map { slot in
            let dev = try machine.addDevice(PCIDevice(rid: RID(bus: 0, device: slot, function: 0)), behind: unit)
            let pa = try machine.memory.allocContiguous(bytes: 4096)
            try machine.memory.write(pa, [slot, slot, slot, slot])
            return (dev, try machine.iommu.dmaMapPage(dev, paddr: pa, size: 4096))
        }
        let rounds = 20_000
        let done = Atomic(0)
        DispatchQueue.concurrentPerform(iterations: lanes.count + 1) { lane in
            if lane == lanes.count {
                // The switcher: flips both while the other lanes run.
                var on = false
                while done.value < lanes.count {
                    on.toggle()
                    machine.events.isEnabled = on
                    machine.checker.isEnabled = on
                }
                machine.events.isEnabled = false
                machine.checker.isEnabled = false
                return
            }
            let (dev, iova) = lanes[lane]
            var buffer = [UInt8](repeating: 0, count: 8)
            for round in 0..<rounds {
                buffer.withUnsafeMutableBytes { b in
                    do throws(DMAFault) { try dev.dmaRead(at: iova, into: b) } catch { XCTFail("\(error)") }
                }
                // Now and then a request that faults (the fault is logged when the log is on).
                if round % 64 == 0 { _ = try? dev.dmaRead(at: iova + 0x10_0000, count: 8) }
            }
            XCTAssertEqual(Array(buffer[0..<4]), [UInt8](repeating: UInt8(lane + 1), count: 4))
            done.increment()
        }
        XCTAssertEqual(machine.checker.violations, [], "the checker found nothing wrong while it was on")
    }
}

/// A counter shared by the lanes (a lock: the test is about the model's races, not its own).
private final class Atomic: @unchecked Sendable {
    private let lock = NSLock()
    private var count: Int
    init(_ value: Int) { count = value }
    var value: Int { lock.withLock { count } }
    func increment() { lock.withLock { count += 1 } }
}
