import DriverShims
import IOMMUCore

/// GPU benchmarks through the ARM SMMUv2 model and the Adreno-like GPU, with the msm-like
/// driver's per-process tables:
///
/// - `gpu_dma8_hit_ns`: the GPU reads 8 bytes of a process's buffer (TTBR0, the context
///   bank's TLB warm) over and over: the DMA engine, the unit's hardware lock, stream
///   matching, the context bank, the TLB; ns per read. Comparable with `dma8_hit_ns`.
/// - `gpu_switch_ns`: one context switch as the ring runs it: `CP_SMMU_TABLE_UPDATE` (the
///   CP writes TTBR0 and CONTEXTIDR and invalidates the ASID), the memstore write of the
///   new TTBR0 and the UCHE flush event, with the TLB refills the invalidation causes.
///   Measured as the difference per submission between batches of 200 empty submissions
///   that alternate between two processes and batches of one process (both carry a
///   fence); the best of five batches each.
///
/// The machine, the driver, two processes and a 4 KiB buffer are built once; each run
/// measures both keys.
func gpuBenchmark() throws -> () throws -> [String: Double] {
    let rig = try AdrenoRig(checker: false)
    let msm = try MSMGPU(gpu: rig.gpu, variant: .perProcess)
    let a = try msm.openContext("a")
    let b = try msm.openContext("b")
    let buf = try msm.allocBuffer(a, bytes: 4096, at: 0x1_0000_0000)
    try msm.submit(a, [.fill(buf.gpuAddress, length: 8, byte: 1)])
    msm.run()   // TTBR0 now holds a's table

    let reads = 1 << 20
    // Submissions per batch: well within the ring (each is at most 16 dwords).
    let batch = 200
    func perSubmission(_ contexts: [MSMContext]) throws(Errno) -> Double {
        var best = Double.infinity
        for _ in 0..<5 {
            for i in 0..<batch { try msm.submit(contexts[i % contexts.count], []) }
            let start = ContinuousClock.now
            msm.run()
            best = min(best, nanoseconds(ContinuousClock.now - start) / Double(batch))
        }
        return best
    }
    return {
        // Back on a's table, so the reads hit.
        try msm.submit(a, [])
        msm.run()
        var word: UInt64 = 0
        let hit = withUnsafeMutableBytes(of: &word) { out -> Double in
            for _ in 0..<1000 { try? rig.gpu.dmaRead(at: buf.gpuAddress, into: out) }
            let start = ContinuousClock.now
            for _ in 0..<reads { try? rig.gpu.dmaRead(at: buf.gpuAddress, into: out) }
            return nanoseconds(ContinuousClock.now - start) / Double(reads)
        }
        let same = try perSubmission([a])
        let alternating = try perSubmission([a, b])
        withExtendedLifetime((rig, msm)) {}
        return ["gpu_dma8_hit_ns": hit, "gpu_switch_ns": max(alternating - same, 0)]
    }
}

private func nanoseconds(_ d: Duration) -> Double {
    Double(d.components.seconds) * 1e9 + Double(d.components.attoseconds) / 1e9
}
