import Foundation
import IOMMUCore

// The page-table engine alone, on the same workloads as the plain-C yardstick
// (a small C radix page table built for comparison): 256 Ki one-page maps into a fresh 4-level
// x86-64 table, their unmaps, random walks over 1 GiB, IOTLB lookups, and one 1 GiB map
// with 2 MiB leaves. Keys: map4k_ns, unmap4k_ns, table_bytes, walk_ns, iotlb_ns,
// maphuge_total_us.

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

private let n = 262_144
private let iovaBase: IOVA = 0x1_0000_0000
private let paBase: PhysicalAddress = 0x2_0000_0000
/// NOTLB=1 leaves out the IOTLB invalidation of unmap4k_ns, to see the page-table share alone.
private let invalidateTLB = ProcessInfo.processInfo.environment["NOTLB"] == nil
private let memory = PhysicalMemory(size: 16 << 30)

/// One-page maps over 1 GiB into a fresh 4-level table, then their unmaps:
/// `map4k_ns`, `unmap4k_ns` (ns per call) and `table_bytes`.
func pageTableMapUnmap() throws -> () throws -> [String: Double] {
    try pageTableMapUnmap(format: .x86_64(levels: 4), keyPrefix: "")
}

/// The map/unmap workload on any format, each key after `keyPrefix`.
func pageTableMapUnmap(format: PageTableFormat, keyPrefix: String) throws -> () throws -> [String: Double] {
    let tlb = IOTLB()
    return {
        // Read once: a global is initialised lazily, so every read in the loop would
        // call swift_once.
        let invalidate = invalidateTLB
        let table = try IOPageTable(format: format, memory: memory)
        var mapped: UInt64 = 0
        let t0 = now()
        for i in 0..<n {
            let off = UInt64(i) << 12
            try table.mapPages(iova: iovaBase + off, paddr: paBase + off, pgsize: 4096, pgcount: 1,
                               prot: [.read, .write], mapped: &mapped)
        }
        let t1 = now()
        let bytes = table.tableBytes
        var gather = IOTLBGather()
        var unmapped: UInt64 = 0
        let t2 = now()
        for i in 0..<n {
            let iova = iovaBase + (UInt64(i) << 12)
            unmapped &+= table.unmapPages(iova: iova, pgsize: 4096, pgcount: 1, gather: &gather)
            if invalidate { tlb.invalidate(tag: 1, iova: iova, size: 4096) }
        }
        let t3 = now()
        consume(unmapped &+ mapped)
        gather.releaseFreelist(to: memory)
        table.destroy()
        return [keyPrefix + "map4k_ns": Double(t1 - t0) / Double(n), keyPrefix + "unmap4k_ns": Double(t3 - t2) / Double(n),
                keyPrefix + "table_bytes": Double(bytes)]
    }
}

/// Full hardware walks at pseudo-random pages of a mapped 1 GiB: `walk_ns`.
func pageTableWalk() throws -> () throws -> [String: Double] {
    try pageTableWalk(format: .x86_64(levels: 4), keyPrefix: "")
}

/// The walk workload on any format, the key after `keyPrefix`.
func pageTableWalk(format: PageTableFormat, keyPrefix: String) throws -> () throws -> [String: Double] {
    let table = try IOPageTable(format: format, memory: memory)
    try table.map(iova: iovaBase, paddr: paBase, size: 1 << 30, prot: [.read, .write], pageSizes: 4096)
    let root = table.root, format = table.format
    return {
        withExtendedLifetime(table) {
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
            return [keyPrefix + "walk_ns": Double(t1 - t0) / Double(n)]
        }
    }
}

/// IOTLB lookups cycling over a 64-page working set: `iotlb_ns`. The working set is
/// filled first (the yardstick's first 64 of its 256 Ki lookups miss and fill), so the
/// timed loop is lookups that hit; with no fill in the loop, the sum stays in a register
/// as the yardstick's does, instead of being spilled around the fill's call.
func iotlbLookup() throws -> () throws -> [String: Double] {
    {
        let tlb = IOTLB()
        for p in 0..<UInt64(64) {
            tlb.insert(tag: 1, iova: iovaBase + (p << 12), pageSize: 4096, pa: paBase + (p << 12), perms: [.read])
        }
        var sum: UInt64 = 0
        let t0 = now()
        for i in 0..<n {
            let iova = iovaBase + (UInt64(i & 63) << 12)
            if let e = tlb.lookup(tag: 1, iova: iova) { sum &+= e.translate(iova).rawValue }
        }
        let t1 = now()
        consume(sum &+ UInt64(tlb.misses))
        return ["iotlb_ns": Double(t1 - t0) / Double(n)]
    }
}

/// One 1 GiB map call with 4K and 2M leaves allowed (512 × 2 MiB): `maphuge_total_us`.
func mapHuge() throws -> () throws -> [String: Double] {
    {
        let table = try IOPageTable(format: .x86_64(levels: 4), memory: memory)
        let t0 = now()
        let size = try table.map(iova: iovaBase, paddr: paBase, size: 1 << 30, prot: [.read, .write],
                                 pageSizes: 4096 | (2 << 20))
        let t1 = now()
        consume(size)
        table.destroy()
        return ["maphuge_total_us": Double(t1 - t0) / 1000]
    }
}
