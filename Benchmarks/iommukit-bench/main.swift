// iommukit-bench: release-build micro-benchmarks of the model's hot paths, printed as one
// JSON object. Each result is produced by a small function and stored under its key,
// so new benchmarks are one more entry in `results`.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import IOMMUCore

/// Monotonic time in nanoseconds (CLOCK_MONOTONIC).
@inline(__always)
func now() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Values fed here are observable, so the optimiser cannot drop the work producing them.
nonisolated(unsafe) var blackhole: UInt64 = 0
@inline(never) func consume(_ x: UInt64) { blackhole &+= x }

/// xorshift64*: the deterministic address stream of the walk benchmark.
struct XorShift64Star {
    var state: UInt64
    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }
}

let n = 262_144
let iovaBase: IOVA = 0x1_0000_0000
let paBase: PhysicalAddress = 0x2_0000_0000
let repetitions = 5
/// NOTLB=1 leaves out the IOTLB invalidation of unmap4k_ns, to see the page-table share alone.
let invalidateTLB = ProcessInfo.processInfo.environment["NOTLB"] == nil
let memory = PhysicalMemory(size: 16 << 30)

/// Best (lowest) of `repetitions` runs of `body`, which returns elapsed nanoseconds.
func best(_ body: () -> UInt64) -> UInt64 {
    (0..<repetitions).map { _ in body() }.min()!
}

/// One-page maps over 1 GiB into a fresh 4-level table; returns (ns/map, table bytes).
func benchMapUnmap() -> (map: Double, unmap: Double, tableBytes: Int) {
    var mapBest = UInt64.max, unmapBest = UInt64.max, bytes = 0
    let tlb = IOTLB()
    for _ in 0..<repetitions {
        let table = try! IOPageTable(format: .x86_64(levels: 4), memory: memory)
        var mapped: UInt64 = 0
        let t0 = now()
        for i in 0..<n {
            let off = UInt64(i) << 12
            try! table.mapPages(iova: iovaBase + off, paddr: paBase + off, pgsize: 4096, pgcount: 1,
                                prot: [.read, .write], mapped: &mapped)
        }
        let t1 = now()
        mapBest = min(mapBest, t1 - t0)
        bytes = table.tableBytes
        var gather = IOTLBGather()
        var unmapped: UInt64 = 0
        let t2 = now()
        for i in 0..<n {
            let iova = iovaBase + (UInt64(i) << 12)
            unmapped &+= table.unmapPages(iova: iova, pgsize: 4096, pgcount: 1, gather: &gather)
            if invalidateTLB { tlb.invalidate(tag: 1, iova: iova, size: 4096) }
        }
        let t3 = now()
        unmapBest = min(unmapBest, t3 - t2)
        consume(unmapped &+ mapped)
        gather.releaseFreelist(to: memory)
        table.destroy()
    }
    return (Double(mapBest) / Double(n), Double(unmapBest) / Double(n), bytes)
}

/// Full hardware walks at pseudo-random pages of the mapped 1 GiB.
func benchWalk() -> Double {
    let table = try! IOPageTable(format: .x86_64(levels: 4), memory: memory)
    defer { table.destroy() }
    try! table.map(iova: iovaBase, paddr: paBase, size: 1 << 30, prot: [.read, .write], pageSizes: 4096)
    let root = table.root, format = table.format
    let ns = best {
        var rng = XorShift64Star(state: 0x9E37_79B9_7F4A_7C15)
        var sum: UInt64 = 0
        let t0 = now()
        for _ in 0..<n {
            let iova = iovaBase + ((rng.next() >> 20) & 0x3FFF_F000)
            if case .translated(let pa, _, _) = IOPageTable.walk(memory: memory, format: format, root: root, iova: iova,
                                                                 access: .read, setAccessedDirty: false) {
                sum &+= pa.rawValue
            }
        }
        let t1 = now()
        consume(sum)
        return t1 - t0
    }
    return Double(ns) / Double(n)
}

/// IOTLB lookups cycling over a 64-page working set (hits after the first round).
func benchIOTLB() -> Double {
    let tlb = IOTLB()
    let ns = best {
        var sum: UInt64 = 0
        let t0 = now()
        for i in 0..<n {
            let iova = iovaBase + (UInt64(i & 63) << 12)
            if let e = tlb.lookup(tag: 1, iova: iova) {
                sum &+= e.translate(iova).rawValue
            } else {
                tlb.insert(tag: 1, iova: iova, pageSize: 4096, pa: paBase + (UInt64(i & 63) << 12), perms: [.read])
            }
        }
        let t1 = now()
        consume(sum)
        return t1 - t0
    }
    return Double(ns) / Double(n)
}

/// One 1 GiB map call with 4K and 2M leaves allowed (512 × 2 MiB); microseconds.
func benchMapHuge() -> Double {
    let ns = best {
        let table = try! IOPageTable(format: .x86_64(levels: 4), memory: memory)
        let t0 = now()
        let size = try! table.map(iova: iovaBase, paddr: paBase, size: 1 << 30, prot: [.read, .write],
                                  pageSizes: 4096 | (2 << 20))
        let t1 = now()
        consume(size)
        table.destroy()
        return t1 - t0
    }
    return Double(ns) / 1000
}

func rounded(_ x: Double) -> Double { (x * 100).rounded() / 100 }

var results: [String: Any] = [:]
/// IOAS_BENCH_ONLY=1 runs only the iommufd keys, so a profile of them is not diluted.
if ProcessInfo.processInfo.environment["IOAS_BENCH_ONLY"] == nil {
    let mapUnmap = benchMapUnmap()
    results["map4k_ns"] = rounded(mapUnmap.map)
    results["unmap4k_ns"] = rounded(mapUnmap.unmap)
    results["table_bytes"] = mapUnmap.tableBytes
    results["walk_ns"] = rounded(benchWalk())
    results["iotlb_ns"] = rounded(benchIOTLB())
    results["maphuge_total_us"] = rounded(benchMapHuge())
    for (key, value) in dmaBenchmarks() { results[key] = rounded(value) }
}
for (k, v) in iommufdBenchmarks() { results[k] = rounded(v) }
for (k, v) in serviceBenchmarks() { results[k] = rounded(v) }

let json = try! JSONSerialization.data(withJSONObject: results, options: [.sortedKeys])
print(String(decoding: json, as: UTF8.self))
if blackhole == 42 { print("") }
