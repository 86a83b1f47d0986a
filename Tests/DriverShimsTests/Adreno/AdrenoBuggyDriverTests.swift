import DriverShims
import IOMMUConformance
import IOMMUCore
import IOMMUDrivers
import XCTest

/// Deliberately buggy msm-like drivers, and what the invariant checker reports about them.
final class AdrenoBuggyDriverTests: XCTestCase {
    /// The buggy driver skips the ASID flush after an unmap in a table the ring does not
    /// have current. The GPU still runs that table's queued job with the page's entry in
    /// the TLB: the job reads the frame the unmap gave back, now another process's secret,
    /// and the checker reports the stale translation (I4).
    func testSkippingTheFlushForANonCurrentTableIsCaught() throws {
        let rig = try AdrenoRig()
        let msm = try MSMGPU(gpu: rig.gpu, variant: .perProcess, bugs: .skipFlushForNonCurrentTable)
        let outcome = try staleTLBScenario(rig, msm)
        XCTAssertTrue(outcome.tlbHeldAfterUnmap, "the entry survived the unmap")
        XCTAssertEqual(outcome.read, outcome.secret, "a's job read b's secret")
        let stale = rig.machine.checker.violations(of: .coherenceAfterUnmap)
        XCTAssertEqual(stale.count, 1, "\(rig.machine.checker.violations)")
        XCTAssertEqual(stale.first?.address, stalePage)
        XCTAssertTrue(stale.first?.message.contains("missing invalidation") ?? false, "\(stale)")
        XCTAssertTrue(stale.first?.event.contains("IOTLB hit") ?? false)
        msm.shutdown()
    }

    /// The buggy driver frees a closed process's page table at once, while the ring
    /// still switches to it for the process's queued job. The job then walks freed
    /// page-table pages, and the checker reports it (I4: a table freed while in use).
    /// The correct driver keeps the table until the job retires.
    func testFreeingATableStillCurrentForQueuedWorkIsCaught() throws {
        for buggy in [false, true] {
            let rig = try AdrenoRig()
            let msm = try MSMGPU(gpu: rig.gpu, variant: .perProcess, bugs: buggy ? .freeTableWhileCurrent : [])
            let keep = try msm.openContext("keep")   // so that TTBR0 stays enabled
            let a = try msm.openContext("a")
            let src = try msm.allocBuffer(a, bytes: 4096, at: 0x1_0000_0000)
            let dst = try msm.allocBuffer(a, bytes: 4096, at: 0x1_0001_0000)
            msm.write(src, [1, 2, 3, 4])
            let table = try XCTUnwrap(a.tableBase)
            try msm.submit(a, [.copy(from: src.gpuAddress, to: dst.gpuAddress, length: 4)])
            msm.closeContext(a)
            XCTAssertEqual(rig.machine.memory.isAllocated(table), !buggy, buggy ? "freed at once" : "kept for the job")
            msm.run()
            let freedTable = rig.machine.checker.violations.filter { $0.message.contains("freed while context bank 0") }
            if buggy {
                XCTAssertFalse(freedTable.isEmpty, "\(rig.machine.checker.violations)")
                XCTAssertEqual(freedTable.first?.invariant, .coherenceAfterUnmap)
            } else {
                assertNoViolations(rig.machine)
                XCTAssertFalse(rig.machine.memory.isAllocated(table), "freed once the job retired")
            }
            msm.closeContext(keep)
            msm.shutdown()
        }
    }
}
