import Foundation
import IOMMUCore
import IOMMUDrivers

/// What the demo did, step by step. The text form is for a person; the JSON form
/// carries the same figures as fields (numbers, ids, names) and no prose.
struct DemoReport: Encodable {
    struct Unit: Encodable {
        let vendor: String
        let name: String
        let driver: String
        /// VT-d only.
        var scalableMode: Bool?
    }

    struct Device: Encodable {
        let rid: String
        let name: String
        let group: Int
        let pasidBits: Int?
        let ats: Bool
        let pri: Bool

        var capabilities: String {
            let caps = [pasidBits.map { "PASID \($0) bits" }, ats ? "ATS" : nil, pri ? "PRI" : nil].compactMap { $0 }
            return caps.isEmpty ? "no PASID" : caps.joined(separator: ", ")
        }
    }

    struct Fault: Encodable {
        let code: Int
        let reason: String
    }

    /// One step: an identifier, the figures it produced, and (not encoded) its text.
    struct Step: Encodable {
        let step: String
        var device: String?
        var pasid: UInt32?
        var domain: String?
        var did: Int?
        var didRefcount: Int?
        var asid: Int?
        var ste: String?
        var iova: UInt64?
        var pa: UInt64?
        var size: UInt64?
        var reads: Int?
        var data: String?
        var iotlbHits: Int?
        var walks: Int?
        var atcHits: Int?
        var fault: Fault?
        var unmapped: UInt64?
        var warnings: Int?
        var action = ""
        var result = ""

        enum CodingKeys: String, CodingKey {
            case step, device, pasid, domain, did, didRefcount, asid, ste, iova, pa, size, reads, data, iotlbHits, walks,
                 atcHits, fault, unmapped, warnings
        }

        init(_ step: String) { self.step = step }
    }

    let iommu: Unit
    var devices: [Device] = []
    var steps: [Step] = []
    var counters: Counters = Counters()
    var violations: [Violation] = []

    enum CodingKeys: String, CodingKey { case iommu, devices, steps, counters, violations }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(iommu, forKey: .iommu)
        try c.encode(devices, forKey: .devices)
        try c.encode(steps, forKey: .steps)
        try c.encode(counters.dictionary, forKey: .counters)
        try c.encode(violations, forKey: .violations)
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
        let unit = iommu.vendor == DemoVendor.smmuv3.rawValue
            ? "ARM SMMUv3 \(iommu.name) (two-level stream and CD tables)"
            : "Intel VT-d unit \(iommu.name)\(iommu.scalableMode == true ? " (scalable mode)" : "")"
        var out = ["IOMMUKit demo: \(unit) with \(devices.count) PCI devices", ""]
        for d in devices {
            out.append("  \(d.rid)  \(d.name.padding(toLength: 6, withPad: " ", startingAt: 0)) group \(d.group)  \(d.capabilities)")
        }
        out.append("")
        for (i, s) in steps.enumerated() {
            out.append(String(format: "%2d. ", i + 1) + s.action)
            out.append("    -> " + s.result)
            if let b = s.data { out.append("       bytes: " + b) }
        }
        out.append("")
        out.append("counters:")
        out.append(counters.description.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
        out.append("invariant checker: " + (violations.isEmpty ? "no violations" : violations.map(\.description).joined(separator: "; ")))
        return out.joined(separator: "\n")
    }

    func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return String(decoding: try! encoder.encode(self), as: UTF8.self)
    }
}


/// The IOMMU the demo runs on (`--vendor`).
enum DemoVendor: String, CaseIterable {
    /// An Intel VT-d unit in scalable mode.
    case vtd
    /// An ARM SMMUv3.
    case smmuv3
}

/// The demo scenario: the idxd pattern of the seeds on one IOMMU unit. A DMA-API driver's
/// default DMA domain serves the device's RID and, attached to a global PASID, its kernel
/// PASID too; a buffer is mapped, the device moves bytes both ways, the unmap makes the
/// next DMA fault, and a second device shows that groups isolate. Each step is also a
/// ``Machine/step(_:)`` of the machine, so `iommukit graph demo --at N` can draw it.
func runDemo(vendor: DemoVendor = .vtd) throws -> DemoReport {
    // An SMMUv3 sits in an arm64 machine (its SVA would share arm64 process tables).
    let machine = Machine(memory: 1 << 30, architecture: vendor == .vtd ? .x86_64 : .arm64)
    machine.checker.isEnabled = true
    let unit: IOMMUDevice
    let unitReport: DemoReport.Unit
    switch vendor {
    case .vtd:
        let driver = IntelIOMMUDriver()
        let vtd = try IntelIOMMU(name: "dmar0", driver: driver,
                                 hardware: VTdHardware(memory: machine.memory, caps: VTdCapabilities()))
        (unit, unitReport) = (vtd, .init(vendor: vendor.rawValue, name: vtd.name, driver: driver.name,
                                          scalableMode: vtd.caps.scalableMode))
    case .smmuv3:
        let driver = ArmSMMUv3Driver()
        let smmu = try ArmSMMUv3(name: "smmu0", driver: driver, hardware: SMMUv3Hardware(memory: machine.memory))
        (unit, unitReport) = (smmu, .init(vendor: vendor.rawValue, name: smmu.name, driver: driver.name))
    }
    machine.addIOMMU(unit)
    let nic = try machine.addDevice(PCIDevice(rid: RID(bus: 0, device: 2, function: 0), name: "nic0"), behind: unit)
    let dsa = try machine.addDevice(
        PCIDevice(rid: RID(bus: 0, device: 3, function: 0), name: "dsa0",
                  caps: PCICapabilities(pasid: PASIDCapability(width: 20, privileged: true), ats: true, pri: true)),
        behind: unit)
    var report = DemoReport(iommu: unitReport)
    for d in [nic, dsa] {
        report.devices.append(.init(rid: "\(d.rid)", name: d.name, group: d.group!.id, pasidBits: d.caps.pasid?.width,
                                    ats: d.caps.ats, pri: d.caps.pri))
    }
    let iommu = machine.iommu
    func record(_ s: DemoReport.Step) {
        report.steps.append(s)
        machine.step(s.action)
    }
    func dmaFault(_ f: DMAFault) -> DemoReport.Fault { .init(code: Int(f.reason.code), reason: f.reason.text) }
    // How the unit tags the domain: VT-d's DID and its reference count, SMMUv3's ASID and
    // the STE of dsa0. Fills the step's fields; returns (tag, reference count) as text.
    func tag(_ s: inout DemoReport.Step, _ domain: IOMMUDomain) -> (tag: String, refcount: String) {
        if let vtd = unit as? IntelIOMMU {
            s.did = vtd.did(for: domain).map(Int.init)
            s.didRefcount = vtd.didRefcount(for: domain)
            return ("DID \(s.did.map { "\($0)" } ?? "-")", "refcount \(s.didRefcount!)")
        }
        if let smmu = unit as? ArmSMMUv3, let d = domain as? SMMUv3Domain {
            s.asid = Int(d.asid)
            s.ste = smmu.ste(dsa.rid).map { "\($0)" }
            return ("ASID \(d.asid)", "STE \(s.ste ?? "-")")
        }
        return ("\(domain)", "")
    }

    // A kernel DMA-API driver binds to each device: both stay on their default domains.
    try iommu.deviceUseDefaultDomain(nic)
    try iommu.deviceUseDefaultDomain(dsa)
    let domain = dsa.group!.defaultDomain!
    var s = DemoReport.Step("use_default_domain")
    (s.device, s.domain) = ("\(dsa.rid)", "\(domain)")
    s.action = "dsa0 bound by a DMA-API driver (iommu_device_use_default_domain)"
    s.result = "RID \(dsa.rid) translated by \(domain), \(tag(&s, domain).tag)"
    s.didRefcount = nil
    record(s)

    // The idxd kernel PASID: the same DMA domain attached to a global PASID.
    let pasid = try iommu.allocGlobalPasid(for: dsa)
    try iommu.attachDevicePasid(domain, to: dsa, pasid: pasid)
    s = DemoReport.Step("attach_device_pasid")
    (s.device, s.pasid, s.domain) = ("\(dsa.rid)", pasid.rawValue, "\(domain)")
    s.action = "kernel PASID \(pasid) allocated and \(domain) attached to it (iommu_attach_device_pasid)"
    let shared = tag(&s, domain)
    s.result = "RID and PASID \(pasid) share \(shared.tag), \(shared.refcount)"
    record(s)

    // One 8 KiB buffer mapped at an IOVA.
    let iova: IOVA = 0x10_0000
    let buffer = try machine.memory.allocContiguous(bytes: 8192)
    try iommu.map(domain, iova: iova, paddr: buffer, size: 8192, prot: [.read, .write])
    s = DemoReport.Step("map")
    (s.domain, s.iova, s.pa, s.size) = ("\(domain)", iova.rawValue, buffer.rawValue, 8192)
    s.action = "iommu_map iova \(iova) -> pa \(buffer), 8 KiB read/write"
    s.result = "mapped"
    record(s)

    let hello = Array("hello through the RID".utf8)
    try dsa.dmaWrite(at: iova, bytes: hello)
    s = DemoReport.Step("dma_write")
    (s.device, s.iova, s.pa, s.size) = ("\(dsa.rid)", iova.rawValue, buffer.rawValue, UInt64(hello.count))
    s.data = DemoReport.show(try machine.memory.bytes(at: buffer, count: 32))
    s.action = "dsa0 DMA write without PASID at \(iova)"
    s.result = "CPU reads pa \(buffer)"
    record(s)

    // The write above left the translation in the IOTLB; a second read by the device
    // is served from the device's ATC once the first read has filled it.
    let before = machine.counters
    _ = try dsa.dmaRead(at: iova, count: 32)
    let again = try dsa.dmaRead(at: iova, count: 32)
    let after = machine.counters
    s = DemoReport.Step("dma_read")
    (s.device, s.iova, s.size, s.reads) = ("\(dsa.rid)", iova.rawValue, 32, 2)
    s.iotlbHits = after.hardware.iotlbHits - before.hardware.iotlbHits
    s.walks = after.hardware.walks - before.hardware.walks
    s.atcHits = after.atcHits - before.atcHits
    s.data = DemoReport.show(again)
    s.action = "dsa0 DMA reads without PASID at \(iova), twice"
    s.result = "IOTLB hits \(s.iotlbHits!), walks \(s.walks!), device ATC hits \(s.atcHits!)"
    record(s)

    let viaPasid = try dsa.dmaRead(at: iova, count: 32, pasid: pasid)
    s = DemoReport.Step("dma_read")
    (s.device, s.pasid, s.iova, s.size, s.reads) = ("\(dsa.rid)", pasid.rawValue, iova.rawValue, 32, 1)
    s.data = DemoReport.show(viaPasid)
    s.action = "dsa0 DMA read with PASID \(pasid) at \(iova)"
    s.result = "same domain, same bytes"
    record(s)

    let viaPasidText = Array("hello through PASID \(pasid)".utf8)
    try dsa.dmaWrite(at: iova + 0x1000, bytes: viaPasidText, pasid: pasid)
    s = DemoReport.Step("dma_write")
    (s.device, s.pasid, s.iova, s.pa, s.size) = ("\(dsa.rid)", pasid.rawValue, (iova + 0x1000).rawValue, (buffer + 0x1000).rawValue,
                                                     UInt64(viaPasidText.count))
    s.data = DemoReport.show(try machine.memory.bytes(at: buffer + 0x1000, count: 32))
    s.action = "dsa0 DMA write with PASID \(pasid) at \(iova + 0x1000)"
    s.result = "CPU reads pa \(buffer + 0x1000)"
    record(s)

    s = DemoReport.Step("dma_read")
    (s.device, s.iova, s.size, s.reads) = ("\(nic.rid)", iova.rawValue, 8, 1)
    s.action = "nic0 DMA read at \(iova) (its own group and domain)"
    do throws(DMAFault) {
        _ = try nic.dmaRead(at: iova, count: 8)
        s.result = "translated (unexpected)"
    } catch {
        s.fault = dmaFault(error)
        s.result = "fault: \(error.reason)"
    }
    record(s)

    let unmapped = iommu.unmap(domain, iova: iova, size: 8192)
    s = DemoReport.Step("unmap")
    (s.domain, s.iova, s.size, s.unmapped) = ("\(domain)", iova.rawValue, 8192, unmapped)
    s.action = "iommu_unmap iova \(iova), 8 KiB"
    s.result = "\(unmapped) bytes unmapped, IOTLB and device TLB invalidated"
    record(s)

    s = DemoReport.Step("dma_read")
    (s.device, s.iova, s.size, s.reads) = ("\(dsa.rid)", iova.rawValue, 8, 1)
    s.action = "dsa0 DMA read without PASID at \(iova)"
    do throws(DMAFault) {
        _ = try dsa.dmaRead(at: iova, count: 8)
        s.result = "translated (stale!)"
    } catch {
        s.fault = dmaFault(error)
        s.result = "fault: \(error.reason)"
    }
    record(s)

    // Tear down in the driver's order: PASID first, then the DMA-API claim.
    iommu.detachDevicePasid(domain, from: dsa, pasid: pasid)
    iommu.freeGlobalPasid(pasid)
    iommu.deviceUnuseDefaultDomain(dsa)
    iommu.deviceUnuseDefaultDomain(nic)
    machine.memory.free(buffer, bytes: 8192)
    s = DemoReport.Step("teardown")
    (s.device, s.pasid, s.domain, s.warnings) = ("\(dsa.rid)", pasid.rawValue, "\(domain)", machine.warnings.count)
    s.action = "PASID \(pasid) detached and freed, drivers unbound"
    let left = tag(&s, domain)
    s.did = unit is IntelIOMMU ? nil : s.did
    s.result = (unit is IntelIOMMU ? "DID \(left.refcount)" : left.tag) + ", warnings \(s.warnings!)"
    record(s)

    report.counters = machine.counters
    report.violations = machine.checker.violations
    return report
}
