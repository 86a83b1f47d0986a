import Foundation
import IOMMUCore
import IOMMUDrivers

/// What the demo did, step by step: printed for a person or encoded as JSON.
struct DemoReport: Encodable {
    struct Device: Encodable {
        let rid: String
        let name: String
        let group: Int
        let capabilities: String
    }

    struct Step: Encodable {
        let action: String
        let result: String
        var bytes: String?
    }

    let iommu: String
    var devices: [Device] = []
    var steps: [Step] = []
    var counters: [String: Int] = [:]
    var violations: [String] = []

    mutating func step(_ action: String, _ result: String, bytes: [UInt8]? = nil) {
        steps.append(Step(action: action, result: result, bytes: bytes.map(Self.show)))
    }

    /// Printable bytes as a quoted string, other bytes as hex.
    static func show(_ bytes: [UInt8]) -> String {
        let trimmed = bytes.prefix { $0 != 0 }
        if !trimmed.isEmpty, trimmed.allSatisfy({ (0x20..<0x7f).contains($0) }) {
            return "\"" + String(decoding: trimmed, as: UTF8.self) + "\""
        }
        return bytes.prefix(16).map { String(format: "%02x", $0) }.joined(separator: " ")
    }

    func text() -> String {
        var out = ["IOMMUKit demo: \(iommu) with \(devices.count) PCI devices", ""]
        for d in devices {
            out.append("  \(d.rid)  \(d.name.padding(toLength: 6, withPad: " ", startingAt: 0)) group \(d.group)  \(d.capabilities)")
        }
        out.append("")
        for (i, s) in steps.enumerated() {
            out.append(String(format: "%2d. ", i + 1) + s.action)
            out.append("    -> " + s.result)
            if let b = s.bytes { out.append("       bytes: " + b) }
        }
        out.append("")
        out.append("counters:")
        let keys = ["dma_requests", "dma_bytes", "dma_faults", "translations", "walks", "iotlb_hits", "iotlb_misses",
                    "faults", "maps", "unmaps", "attaches", "atc_hits"]
        out.append("  " + keys.compactMap { k in counters[k].map { "\(k) \($0)" } }.joined(separator: ", "))
        let inv = counters.filter { $0.key.hasPrefix("inv_") }.sorted { $0.key < $1.key }
        out.append("  invalidations: " + inv.map { "\($0.key.dropFirst(4)) \($0.value)" }.joined(separator: ", "))
        out.append("invariant checker: " + (violations.isEmpty ? "no violations" : violations.joined(separator: "; ")))
        return out.joined(separator: "\n")
    }

    func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try! encoder.encode(self), as: UTF8.self)
    }
}


/// The demo scenario: the idxd pattern of the seeds on one VT-d unit. A DMA-API driver's
/// default DMA domain serves the device's RID and, attached to a global PASID, its kernel
/// PASID too; a buffer is mapped, the device moves bytes both ways, the unmap makes the
/// next DMA fault, and a second device shows that groups isolate.
func runDemo() throws -> DemoReport {
    let machine = Machine(memory: 1 << 30)
    machine.checker.isEnabled = true
    let driver = IntelIOMMUDriver()
    let unit = try IntelIOMMU(name: "dmar0", driver: driver,
                              hardware: VTdHardware(memory: machine.memory, caps: VTdCapabilities()))
    machine.addIOMMU(unit)
    let nic = try machine.addDevice(PCIDevice(rid: RID(bus: 0, device: 2, function: 0), name: "nic0"), behind: unit)
    let dsa = try machine.addDevice(
        PCIDevice(rid: RID(bus: 0, device: 3, function: 0), name: "dsa0",
                  caps: PCICapabilities(pasid: PASIDCapability(width: 20, privileged: true), ats: true, pri: true)),
        behind: unit)
    var report = DemoReport(iommu: "Intel VT-d unit \(unit.name) (scalable mode)")
    for d in [nic, dsa] {
        let caps = [d.caps.pasid.map { "PASID \($0.width) bits" }, d.caps.ats ? "ATS" : nil, d.caps.pri ? "PRI" : nil]
            .compactMap { $0 }
        report.devices.append(.init(rid: "\(d.rid)", name: d.name, group: d.group!.id,
                                    capabilities: caps.isEmpty ? "no PASID" : caps.joined(separator: ", ")))
    }
    let iommu = machine.iommu

    // A kernel DMA-API driver binds to each device: both stay on their default domains.
    try iommu.deviceUseDefaultDomain(nic)
    try iommu.deviceUseDefaultDomain(dsa)
    let domain = dsa.group!.defaultDomain!
    report.step("dsa0 bound by a DMA-API driver (iommu_device_use_default_domain)",
                "RID \(dsa.rid) translated by \(domain), DID \(unit.did(for: domain).map { "\($0)" } ?? "-")")

    // The idxd kernel PASID: the same DMA domain attached to a global PASID.
    let pasid = try iommu.allocGlobalPasid(for: dsa)
    try iommu.attachDevicePasid(domain, to: dsa, pasid: pasid)
    report.step("kernel PASID \(pasid) allocated and \(domain) attached to it (iommu_attach_device_pasid)",
                "RID and PASID \(pasid) share DID \(unit.did(for: domain).map { "\($0)" } ?? "-"), refcount \(unit.didRefcount(for: domain))")

    // One 8 KiB buffer mapped at an IOVA.
    let iova: IOVA = 0x10_0000
    let buffer = try machine.memory.allocContiguous(bytes: 8192)
    try iommu.map(domain, iova: iova, paddr: buffer, size: 8192, prot: [.read, .write])
    report.step("iommu_map iova \(iova) -> pa \(buffer), 8 KiB read/write", "mapped")

    let hello = Array("hello through the RID".utf8)
    try dsa.dmaWrite(at: iova, bytes: hello)
    report.step("dsa0 DMA write without PASID at \(iova)",
                "CPU reads pa \(buffer)", bytes: machine.memory.bytes(at: buffer, count: 32))

    // The write above left the translation in the IOTLB; a second read by the device
    // is served from the device's ATC once the first read has filled it.
    let before = machine.counters
    _ = try dsa.dmaRead(at: iova, count: 32)
    let again = try dsa.dmaRead(at: iova, count: 32)
    let after = machine.counters
    report.step("dsa0 DMA reads without PASID at \(iova), twice",
                "IOTLB hits \(after.hardware.iotlbHits - before.hardware.iotlbHits), walks \(after.hardware.walks - before.hardware.walks), device ATC hits \(after.atcHits - before.atcHits)",
                bytes: again)

    let viaPasid = try dsa.dmaRead(at: iova, count: 32, pasid: pasid)
    report.step("dsa0 DMA read with PASID \(pasid) at \(iova)", "same domain, same bytes", bytes: viaPasid)

    try dsa.dmaWrite(at: iova + 0x1000, bytes: Array("hello through PASID \(pasid)".utf8), pasid: pasid)
    report.step("dsa0 DMA write with PASID \(pasid) at \(iova + 0x1000)",
                "CPU reads pa \(buffer + 0x1000)", bytes: machine.memory.bytes(at: buffer + 0x1000, count: 32))

    do throws(DMAFault) {
        _ = try nic.dmaRead(at: iova, count: 8)
        report.step("nic0 DMA read at \(iova)", "translated (unexpected)")
    } catch {
        report.step("nic0 DMA read at \(iova) (its own group and domain)", "fault: \(error.reason)")
    }

    let unmapped = iommu.unmap(domain, iova: iova, size: 8192)
    report.step("iommu_unmap iova \(iova), 8 KiB", "\(unmapped) bytes unmapped, IOTLB and device TLB invalidated")

    do throws(DMAFault) {
        _ = try dsa.dmaRead(at: iova, count: 8)
        report.step("dsa0 DMA read without PASID at \(iova)", "translated (stale!)")
    } catch {
        report.step("dsa0 DMA read without PASID at \(iova)", "fault: \(error.reason)")
    }

    // Tear down in the driver's order: PASID first, then the DMA-API claim.
    iommu.detachDevicePasid(domain, from: dsa, pasid: pasid)
    iommu.freeGlobalPasid(pasid)
    iommu.deviceUnuseDefaultDomain(dsa)
    iommu.deviceUnuseDefaultDomain(nic)
    machine.memory.free(buffer, bytes: 8192)
    report.step("PASID \(pasid) detached and freed, drivers unbound",
                "DID refcount \(unit.didRefcount(for: domain)), warnings \(machine.warnings.count)")

    report.counters = machine.counters.dictionary
    report.violations = machine.checker.violations.map { "\($0)" }
    return report
}
