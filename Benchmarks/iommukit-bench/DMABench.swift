import IOMMUCore
import IOMMUDrivers

/// DMA benchmarks through an IOMMU model, end to end: a device issues 8-byte DMA reads
/// that go through the DMA engine, the unit's hardware lock, the vendor's configuration
/// caches, its IOTLB and, on a miss, a 4-level first-stage walk.
///
/// - Intel VT-d: context cache, PASID cache, IOTLB (`dma8_hit_ns`, `dma8_miss_ns`).
/// - ARM SMMUv3: STE cache, CD cache, TLB tagged by (VMID, ASID), an LPAE stage-1 walk
///   (`smmuv3_dma8_hit_ns`, `smmuv3_dma8_miss_ns`).
///
/// `dma8_hit_ns`: one mapped page read over and over (warm IOTLB), ns per read.
/// `dma8_miss_ns`: reads cycling over 32 Ki distinct 4 KiB pages, eight times the IOTLB's
/// slots, so every read misses and walks; ns per read.
///
/// The machine is built once; each run measures both keys.
func dmaBenchmark() throws -> () throws -> [String: Double] {
    try dmaBenchmark(keyPrefix: "") { machine throws(Errno) in
        try IntelIOMMU(name: "dmar0", driver: IntelIOMMUDriver(),
                       hardware: VTdHardware(memory: machine.memory, caps: VTdCapabilities()))
    }
}

/// The same DMA benchmark through an ARM SMMUv3 (`smmuv3_dma8_hit_ns`,
/// `smmuv3_dma8_miss_ns`).
func smmuv3DMABenchmark() throws -> () throws -> [String: Double] {
    try dmaBenchmark(keyPrefix: "smmuv3_") { machine throws(Errno) in
        try ArmSMMUv3(name: "smmu0", driver: ArmSMMUv3Driver(), hardware: SMMUv3Hardware(memory: machine.memory))
    }
}

private func dmaBenchmark(keyPrefix: String, unit makeUnit: (Machine) throws(Errno) -> IOMMUDevice) throws
    -> () throws -> [String: Double] {
    let machine = Machine(memory: 1 << 30)
    let unit = try makeUnit(machine)
    machine.addIOMMU(unit)
    // No ATS: every read is translated by the IOMMU, not the device's ATC.
    let dev = PCIDevice(rid: RID(bus: 0, device: 2, function: 0), name: "bench")
    try machine.addDevice(dev, behind: unit)
    let domain = try machine.iommu.allocPagingDomain(for: dev)
    try machine.iommu.attachDevice(domain, to: dev)

    let pages = 32 << 10
    let bytes = pages * 4096
    let pa = try machine.memory.allocContiguous(bytes: bytes, alignment: 2 << 20)
    // IOVA offset by one page from the 2 MiB-aligned PA: every leaf is a 4 KiB page.
    let iovaBase: IOVA = 0x4000_1000
    try machine.iommu.map(domain, iova: iovaBase, paddr: pa, size: UInt64(bytes), prot: [.read, .write])

    let reads = 1 << 20
    return {
        var word: UInt64 = 0
        let hit = withUnsafeMutableBytes(of: &word) { buf -> Double in
            for _ in 0..<1000 { try? dev.dmaRead(at: iovaBase, into: buf) }
            let start = ContinuousClock.now
            for _ in 0..<reads { try? dev.dmaRead(at: iovaBase, into: buf) }
            return nanoseconds(ContinuousClock.now - start) / Double(reads)
        }
        let miss = withUnsafeMutableBytes(of: &word) { buf -> Double in
            var page = 0
            let start = ContinuousClock.now
            for _ in 0..<reads {
                try? dev.dmaRead(at: iovaBase &+ UInt64(page) << 12, into: buf)
                page = (page &+ 1) & (pages - 1)
            }
            return nanoseconds(ContinuousClock.now - start) / Double(reads)
        }
        withExtendedLifetime(machine) {}
        return [keyPrefix + "dma8_hit_ns": hit, keyPrefix + "dma8_miss_ns": miss]
    }
}

private func nanoseconds(_ d: Duration) -> Double {
    Double(d.components.seconds) * 1e9 + Double(d.components.attoseconds) / 1e9
}
