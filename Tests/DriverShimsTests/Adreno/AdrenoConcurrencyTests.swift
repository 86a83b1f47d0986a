import DriverShims
import Foundation
import IOMMUConformance
import IOMMUCore
import IOMMUDrivers
import XCTest

/// Several processes using the GPU at once, as they do through their own ioctls: each
/// opens its context, maps buffers, submits work and kicks the ring from its own thread,
/// while another process comes and goes and faults. Meant for ThreadSanitizer
/// (`swift test --sanitize=thread --filter AdrenoConcurrencyTests`) as well as plain runs.
final class AdrenoConcurrencyTests: XCTestCase {
    private func stress(_ variant: AdrenoAddressSpaces) throws {
        let rig = try AdrenoRig()
        let msm = try MSMGPU(gpu: rig.gpu, variant: variant)
        let workers = 3, rounds = 30, churns = 15
        let surface: IOVA = 0x1_0000_0000, result: IOVA = 0x1_0010_0000
        let failures = Box<[String]>([])
        let lock = NSLock()
        @Sendable func fail(_ s: String) { lock.lock(); failures.value.append(s); lock.unlock() }

        DispatchQueue.concurrentPerform(iterations: workers + 1) { w in
            do {
                if w < workers {
                    // Every worker uses the same GPU addresses, each in its own space.
                    let ctx = try msm.openContext("p\(w)")
                    let staging = try msm.allocBuffer(ctx, bytes: 4096, at: 0x1_0020_0000)
                    let own = try msm.allocBuffer(ctx, bytes: 4096, at: surface)
                    let back = try msm.allocBuffer(ctx, bytes: 4096, at: result)
                    for k in 0..<rounds {
                        let pattern = [UInt8](repeating: UInt8(truncatingIfNeeded: w << 6 | k), count: 4096)
                        msm.write(staging, pattern)
                        try msm.submit(ctx, [.copy(from: staging.gpuAddress, to: own.gpuAddress, length: 4096),
                                             .readBack(from: own.gpuAddress, into: back.gpuAddress, length: 4096)])
                        msm.run()
                        if msm.read(back) != pattern { fail("p\(w) round \(k): read back another's bytes") }
                    }
                    msm.closeContext(ctx)
                } else {
                    // A process that opens, reaches for the others' surface address (not
                    // mapped in its space), and closes, over and over.
                    for k in 0..<churns {
                        let ctx = try msm.openContext("churn")
                        let loot = try msm.allocBuffer(ctx, bytes: 4096, at: 0x1_0030_0000)
                        try msm.submit(ctx, [.readBack(from: surface, into: loot.gpuAddress, length: 64)])
                        msm.run()
                        if msm.read(loot, count: 64) != [UInt8](repeating: 0, count: 64) {
                            fail("churn \(k) read someone's surface")
                        }
                        msm.closeContext(ctx)
                    }
                }
            } catch {
                fail("worker \(w): \(error)")
            }
        }
        XCTAssertEqual(failures.value, [], "\(variant)")
        let faults = msm.faults
        XCTAssertEqual(faults.count, churns, "\(variant): one fault per reach: \(faults)")
        XCTAssertTrue(faults.allSatisfy { $0.process == "churn" }, "\(variant): \(faults)")
        msm.shutdown()
        assertNoViolations(rig.machine, "\(variant)")
        XCTAssertTrue(rig.machine.warnings.isEmpty, "\(variant): \(rig.machine.warnings)")
    }

    func testProcessesSubmittingFromTheirOwnThreadsStayIsolatedWithPerProcessTables() throws {
        try stress(.perProcess)
    }

    func testProcessesSubmittingFromTheirOwnThreadsStayIsolatedWithPrivatePASIDs() throws {
        try stress(.privatePASID)
    }
}
