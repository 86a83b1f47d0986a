import Foundation
import IOMMUCore
import IOMMUDrivers
import Synchronization

/// `iommu_map` throughput on one VT-d paging domain from one thread and from two threads
/// on disjoint ranges, as the DMA API maps from several CPUs.
///
/// - `map4k_core_ns`: ns per one-page `iommu_map` (core, driver and page table) from one
///   thread, over 1 GiB in a fresh domain attached to a device.
/// - `map4k_2t_speedup`: the same pages mapped by two threads, each its own half (own
///   leaf tables below shared upper tables): the two-thread rate over the one-thread
///   rate. 2.0 is perfect scaling on two idle cores; it says nothing on one core.
func mapThreadsBenchmark() throws -> () throws -> [String: Double] {
    let machine = Machine(memory: 4 << 30)
    let unit = try IntelIOMMU(name: "dmar0", driver: IntelIOMMUDriver(),
                              hardware: VTdHardware(memory: machine.memory, caps: VTdCapabilities()))
    machine.addIOMMU(unit)
    let dev = try machine.addDevice(PCIDevice(rid: RID(bus: 0, device: 2, function: 0)), behind: unit)
    let pages = 1 << 18
    return {
        let one = try timeMaps(machine, dev, pages: pages, threads: 1)
        let two = try timeMaps(machine, dev, pages: pages, threads: 2)
        return ["map4k_core_ns": Double(one) / Double(pages), "map4k_2t_speedup": Double(one) / Double(two)]
    }
}

/// Maps `pages` pages into a fresh domain attached to `dev` from `threads` threads (each
/// a contiguous share), and returns the nanoseconds from the common start to the last
/// thread's end. Unmaps and frees the domain afterwards, untimed.
private func timeMaps(_ machine: Machine, _ dev: PCIDevice, pages: Int, threads: Int) throws -> UInt64 {
    let domain = try machine.iommu.allocPagingDomain(for: dev)
    try machine.iommu.attachDevice(domain, to: dev)
    defer {
        machine.iommu.detachDevice(domain, from: dev)
        machine.iommu.freeDomain(domain)
    }
    let iovaBase: IOVA = 0x1_0000_0000
    let paBase: PhysicalAddress = 0x4000_0000
    let share = pages / threads
    let ready = Atomic<Int>(0)
    let go = Atomic<Bool>(false)
    let failures = Atomic<Int>(0)
    let finished = DispatchGroup()
    let iommu = machine.iommu
    for t in 0..<threads {
        finished.enter()
        Thread {
            ready.add(1, ordering: .relaxed)
            while !go.load(ordering: .acquiring) {}
            for i in (t * share)..<((t + 1) * share) {
                let offset = UInt64(i) << 12
                do { try iommu.map(domain, iova: iovaBase + offset, paddr: paBase + offset, size: 4096, prot: [.read]) }
                catch { failures.add(1, ordering: .relaxed) }
            }
            finished.leave()
        }.start()
    }
    while ready.load(ordering: .relaxed) < threads { sched_yield() }
    let t0 = now()
    go.store(true, ordering: .releasing)
    finished.wait()
    let t1 = now()
    guard failures.load(ordering: .relaxed) == 0 else { throw Errno.noMemory }
    _ = iommu.unmap(domain, iova: iovaBase, size: UInt64(pages) << 12)
    return t1 - t0
}
