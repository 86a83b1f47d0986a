import DriverShims
import IOMMUConformance
import IOMMUCore
import IOMMUDrivers
import XCTest

/// Checks 70–73: the msm-like driver's per-process page tables on the Adreno model.
/// (Check 69 is `SMMUv2Check69Tests` in IOMMUDriversTests, on the SMMU driver's side;
/// check 74, the io-pgtable-arm errno rules and granule sizes, is
/// `LPAEFormatTests.testCheck74…` in IOMMUCoreTests, on the format itself.)
final class AdrenoCheckTests: XCTestCase {
    private func driver(_ variant: AdrenoAddressSpaces = .perProcess, bugs: MSMDriverBugs = []) throws
        -> (AdrenoRig, MSMGPU) {
        let rig = try AdrenoRig()
        return (rig, try MSMGPU(gpu: rig.gpu, variant: variant, bugs: bugs))
    }

    private func count(_ msm: MSMGPU, _ call: String) -> Int { msm.calls.calls.filter { $0 == call }.count }

    /// Check 70: N page tables enable TTBR0 once (the first `set_ttbr0_cfg(cfg)`), and
    /// destroying all N disables it once (`set_ttbr0_cfg(NULL)` by the last).
    func testCheck70NPagetablesEnableTTBR0OnceAndDisableItOnce() throws {
        let (rig, msm) = try driver()
        let contexts = try (0..<4).map { i throws(Errno) in try msm.openContext("p\(i)") }
        XCTAssertEqual(count(msm, "adreno_smmu_priv.set_ttbr0_cfg(cfg)"), 1)
        XCTAssertEqual(count(msm, "adreno_smmu_priv.set_ttbr0_cfg(NULL)"), 0)
        let tcr = rig.smmu.hardwareLock.withLock { rig.smmu.smmu.read32(.contextBank(0), SMMUv2Reg.tcr) }
        XCTAssertEqual(tcr & SMMUv2Field.tcrEPD0, 0, "TTBR0 walks enabled")
        XCTAssertEqual(rig.smmu.hardwareLock.withLock { rig.smmu.smmu.read64(.contextBank(0), SMMUv2Reg.ttbr0) },
                       contexts[0].tableBase?.rawValue, "the first table, ASID 0")
        for c in contexts.dropLast() { msm.closeContext(c) }
        XCTAssertEqual(count(msm, "adreno_smmu_priv.set_ttbr0_cfg(NULL)"), 0, "one table is still live")
        msm.closeContext(contexts[3])
        XCTAssertEqual(count(msm, "adreno_smmu_priv.set_ttbr0_cfg(NULL)"), 1)
        XCTAssertEqual(count(msm, "adreno_smmu_priv.set_ttbr0_cfg(cfg)"), 1)
        let after = rig.smmu.hardwareLock.withLock { rig.smmu.smmu.read32(.contextBank(0), SMMUv2Reg.tcr) }
        XCTAssertNotEqual(after & SMMUv2Field.tcrEPD0, 0, "disabled again")
        // A new table after that enables TTBR0 again, once.
        let again = try msm.openContext("again")
        XCTAssertEqual(count(msm, "adreno_smmu_priv.set_ttbr0_cfg(cfg)"), 2)
        msm.closeContext(again)
        msm.shutdown()
        assertNoViolations(rig.machine)
    }

    /// Check 71: a VM_BIND table maps a 2 MiB-aligned 2 MiB buffer with 512 leaves of
    /// 4 KiB (its page sizes are forced to PAGE_SIZE), from page-table pages preallocated
    /// before the map, and a 4 KiB unmap inside it succeeds and removes exactly that page.
    func testCheck71VMBindMapsWithPageLeavesAndUnmapsA4KSubrange() throws {
        let (rig, msm) = try driver()
        let ctx = try msm.openContext("vmbind", vmBind: true)
        let framesBefore = rig.machine.memory.framesInUse
        let buf = try msm.allocBuffer(ctx, bytes: 2 << 20, at: 0x2_0000_0000)
        XCTAssertEqual(count(msm, "msm_iommu_pagetable_prealloc_allocate"), 1)
        XCTAssertEqual(count(msm, "io_pgtable_ops.map_pages"), 1, "one map_pages call of 512 pages")
        // The buffer (512 frames) plus the three table pages the range needs (levels 1-3
        // under the root): the preallocation's leftovers went back.
        XCTAssertEqual(rig.machine.memory.framesInUse - framesBefore, 512 + 3)
        XCTAssertTrue(rig.machine.warnings.isEmpty, "\(rig.machine.warnings)")
        try msm.submit(ctx, [.fill(buf.gpuAddress, length: 2 << 20, byte: 0x11)])
        msm.run()
        XCTAssertEqual(msm.read(buf, count: 4), [0x11, 0x11, 0x11, 0x11])
        XCTAssertNil(msm.unmap(ctx, iova: buf.gpuAddress + 0x1000, size: 0x1000), "the 4 KiB unmap succeeds")
        let result = try msm.allocBuffer(ctx, bytes: 4096, at: 0x3_0000_0000)
        try msm.submit(ctx, [.readBack(from: buf.gpuAddress + 0x1000, into: result.gpuAddress, length: 8),
                             .readBack(from: buf.gpuAddress + 0x2000, into: result.gpuAddress + 8, length: 8)])
        msm.run()
        XCTAssertEqual(msm.faults.map(\.iova), [buf.gpuAddress + 0x1000], "only the unmapped page faults")
        XCTAssertEqual(msm.read(result, count: 16), [UInt8](repeating: 0, count: 8) + [UInt8](repeating: 0x11, count: 8))
        msm.shutdown()
        assertNoViolations(rig.machine)
    }

    /// Check 71, the other side: a kernel-managed table keeps the block sizes, so the
    /// same map uses one 2 MiB leaf and a 4 KiB unmap inside it is refused (`EINVAL`,
    /// the page still mapped: io-pgtable-arm does not split blocks).
    func testCheck71KernelManagedTableUsesABlockThatA4KUnmapCannotSplit() throws {
        let (_, msm) = try driver()
        let ctx = try msm.openContext("kernel-managed", vmBind: false)
        let buf = try msm.allocBuffer(ctx, bytes: 2 << 20, at: 0x2_0000_0000)
        XCTAssertEqual(count(msm, "msm_iommu_pagetable_prealloc_allocate"), 0)
        XCTAssertEqual(msm.unmap(ctx, iova: buf.gpuAddress + 0x1000, size: 0x1000), .invalidArgument)
        let result = try msm.allocBuffer(ctx, bytes: 4096, at: 0x3_0000_0000)
        try msm.submit(ctx, [.fill(buf.gpuAddress + 0x1000, length: 4, byte: 7),
                             .readBack(from: buf.gpuAddress + 0x1000, into: result.gpuAddress, length: 4)])
        msm.run()
        XCTAssertEqual(msm.read(result, count: 4), [7, 7, 7, 7], "still mapped")
        msm.shutdown()
    }

    /// Check 72: consecutive submissions of one context emit no table switch; alternating
    /// contexts emit one `CP_SMMU_TABLE_UPDATE` per switch, each followed by the UCHE
    /// flush event (after the memstore write of the new TTBR0).
    func testCheck72SwitchOnlyWhenTheContextChangesEachFollowedByAUCHEFlush() throws {
        let (rig, msm) = try driver()
        let a = try msm.openContext("a")
        let b = try msm.openContext("b")
        let ba = try msm.allocBuffer(a, bytes: 4096)
        let bb = try msm.allocBuffer(b, bytes: 4096)
        for _ in 0..<3 { try msm.submit(a, [.fill(ba.gpuAddress, length: 4, byte: 1)]) }
        msm.run()
        XCTAssertEqual(switches(rig.gpu), [a.tableBase], "one switch into a, none between its submissions")
        rig.gpu.clearEvents()
        rig.smmu.hardwareLock.withLock { rig.smmu.smmu.clearTLBOperations() }
        for ctx in [b, a, b, b, a] {
            try msm.submit(ctx, [.fill((ctx === a ? ba : bb).gpuAddress, length: 4, byte: 2)])
        }
        msm.run()
        XCTAssertEqual(switches(rig.gpu), [b.tableBase, a.tableBase, b.tableBase, a.tableBase])
        let events = rig.gpu.events
        for (i, e) in events.enumerated() {
            guard case .tableUpdate = e else { continue }
            XCTAssertTrue(i + 2 < events.count)
            guard i + 2 < events.count else { continue }
            if case .memWrite = events[i + 1] {} else { XCTFail("CP_MEM_WRITE of TTBR0 after the switch: \(events[i + 1])") }
            XCTAssertEqual(events[i + 2], .event(PM4.Event.ucheFlush), "the UCHE flush follows")
        }
        XCTAssertEqual(msm.lastRecordedTTBR0, a.tableBase, "the memstore holds the last TTBR0")
        let gpuTLB = rig.smmu.hardwareLock.withLock { rig.smmu.smmu.tlbOperations.filter { $0.accessor == .client } }
        XCTAssertEqual(gpuTLB.map(\.kind), [.tlbiASID, .sync, .tlbiASID, .sync, .tlbiASID, .sync, .tlbiASID, .sync],
                       "the CP invalidates the ASID itself at each switch")
        msm.shutdown()
        assertNoViolations(rig.machine)
    }

    private func switches(_ gpu: AdrenoGPU) -> [PhysicalAddress?] {
        gpu.events.compactMap { if case .tableUpdate(let t, _, _) = $0 { t } else { nil } }
    }

    /// Check 73: an unmap in a process table that is not the ring's current one still
    /// leaves no stale TLB entry: the GPU may still be running that table's queued work,
    /// and `iommu_flush_iotlb_all` of the shared ASID removes the entries whatever table
    /// they came from. The queued job then faults instead of reading the freed page.
    func testCheck73UnmapInANonCurrentTableLeavesNoStaleTLBEntry() throws {
        let (rig, msm) = try driver()
        let outcome = try staleTLBScenario(rig, msm)
        XCTAssertFalse(outcome.tlbHeldAfterUnmap, "no entry for the unmapped page survives the unmap")
        XCTAssertNotEqual(outcome.read, outcome.secret, "the queued job did not read the reused frame")
        XCTAssertEqual(msm.faults.map(\.process), ["a"], "it faulted, named from TTBR0")
        msm.shutdown()
        assertNoViolations(rig.machine)
    }
}

/// The page of the stale-TLB scenario.
let stalePage: IOVA = 0x1_0000_8000

/// What the stale-TLB scenario of check 73 saw.
struct StaleTLBOutcome {
    /// Whether the TLB held the unmapped page's translation right after the unmap.
    let tlbHeldAfterUnmap: Bool
    /// What process a's queued job read at the unmapped address.
    let read: [UInt8]
    /// What process b wrote into the frame the unmapped buffer gave back.
    let secret: [UInt8]
}

/// Process a reads its buffer (its translation is now in the TLB under ASID 0) and queues
/// a second read; process b submits, so the ring's current context becomes b before a's
/// queued job has run. Process a unmaps and frees the buffer; b takes the freed frame and
/// writes a secret into it. Then the GPU runs a's queued job, which reads the address
/// again. (The addresses keep the buffer's TLB slot apart from the ring's, and the leaf
/// table in use by another buffer, so only the unmap's own flush can remove the entry.)
func staleTLBScenario(_ rig: AdrenoRig, _ msm: MSMGPU) throws -> StaleTLBOutcome {
    let a = try msm.openContext("a")
    let b = try msm.openContext("b")
    let buf = try msm.allocBuffer(a, bytes: 4096, at: stalePage)
    let out = try msm.allocBuffer(a, bytes: 4096, at: 0x1_0010_0000)
    let bOwn = try msm.allocBuffer(b, bytes: 4096, at: 0x1_0000_0000)
    msm.write(buf, Array(repeating: 0xAA, count: 8))
    try msm.submit(a, [.readBack(from: buf.gpuAddress, into: out.gpuAddress, length: 8)])
    msm.run()
    try msm.submit(a, [.readBack(from: buf.gpuAddress, into: out.gpuAddress, length: 8)])
    try msm.submit(b, [.fill(bOwn.gpuAddress, length: 8, byte: 0)])
    XCTAssertTrue(msm.ringCurrentContext === b, "b is the ring's current context; a's job is still queued")
    msm.freeBuffer(buf)
    let held = rig.smmu.hardwareLock.withLock {
        rig.smmu.smmu.tlbHolds(contextBank: 0, asid: 0, address: stalePage)
    }
    let secret = Array("b secret".utf8)
    let reused = try msm.allocBuffer(b, bytes: 4096, at: 0x1_0020_0000)
    XCTAssertEqual(reused.physical, buf.physical, "the freed frame went to b")
    msm.write(reused, secret)
    msm.run()
    return StaleTLBOutcome(tlbHeldAfterUnmap: held, read: msm.read(out, count: secret.count), secret: secret)
}
