import Foundation
import IOMMUCore
import IOMMUDrivers

// Scale: how the model behaves with as many PASIDs and devices as the hardware allows.
//
// - `pasid_attach_1m_s`: one paging domain attached to every PASID of one VT-d device
//   (2^20 - 1 of them, PASID 0 being the RID's), then detached from all; seconds.
//   `pasid_table_bytes`: the device's PASID directory and tables at that moment.
// - `devices_4k_probe_s`: 4,096 devices probed behind one VT-d unit, each in a group of
//   its own with a DMA default domain (a DID each); seconds.

/// `pasid_attach_1m_s` and `pasid_table_bytes`: a fresh machine per run.
func pasidScaleBenchmark() throws -> () throws -> [String: Double] {
    let count = ProcessInfo.processInfo.environment["PASID_BENCH_COUNT"].flatMap { UInt32($0) } ?? (1 << 20) - 1
    return {
        let machine = Machine(memory: 8 << 30)
        let unit = try IntelIOMMU(name: "dmar0", driver: IntelIOMMUDriver(),
                                  hardware: VTdHardware(memory: machine.memory, caps: VTdCapabilities()))
        machine.addIOMMU(unit)
        let dev = try machine.addDevice(
            PCIDevice(rid: RID(bus: 0, device: 2, function: 0),
                      caps: PCICapabilities(pasid: PASIDCapability(width: 20, privileged: false, execute: false))),
            behind: unit)
        let domain = try machine.iommu.allocPagingDomain(for: dev)
        let framesBefore = machine.memory.framesInUse
        let t0 = now()
        for pasid in 1...count { try machine.iommu.attachDevicePasid(domain, to: dev, pasid: PASID(rawValue: pasid)) }
        let tableBytes = (machine.memory.framesInUse - framesBefore) * PhysicalMemory.frameSize
        for pasid in 1...count { machine.iommu.detachDevicePasid(domain, from: dev, pasid: PASID(rawValue: pasid)) }
        let t1 = now()
        machine.iommu.freeDomain(domain)
        return ["pasid_attach_1m_s": Double(t1 - t0) / 1e9, "pasid_table_bytes": Double(tableBytes)]
    }
}

/// `devices_4k_probe_s`: a fresh machine per run.
func deviceScaleBenchmark() throws -> () throws -> [String: Double] {
    let count = ProcessInfo.processInfo.environment["DEVICE_BENCH_COUNT"].flatMap { Int($0) } ?? 4096
    return {
        let machine = Machine(memory: 4 << 30)
        let unit = try IntelIOMMU(name: "dmar0", driver: IntelIOMMUDriver(),
                                  hardware: VTdHardware(memory: machine.memory, caps: VTdCapabilities()))
        machine.addIOMMU(unit)
        let t0 = now()
        for i in 0..<count {
            // One function per slot, 32 slots per bus: every device is alone in its group.
            let rid = RID(bus: UInt8(truncatingIfNeeded: 1 + i / 32), device: UInt8(i % 32), function: 0)
            try machine.addDevice(PCIDevice(rid: rid), behind: unit)
        }
        let t1 = now()
        return ["devices_4k_probe_s": Double(t1 - t0) / 1e9]
    }
}
