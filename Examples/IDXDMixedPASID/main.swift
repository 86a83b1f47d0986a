import DriverShims
import Foundation
import IOMMUCore
import IOMMUDrivers

// One idxd-like device doing DMA without a PASID, with the kernel PASID and for two user
// processes (SVA) at the same time, each reaching only its own memory, behind an Intel
// VT-d unit or (with `--vendor smmuv3`) an ARM SMMUv3.
// `swift run IDXDMixedPASID` prints what happened; `--json` prints the steps as JSON.

/// The IOMMU the device sits behind.
enum Vendor: String {
    case vtd, smmuv3

    var title: String { self == .vtd ? "Intel VT-d" : "ARM SMMUv3" }

    func unit(_ machine: Machine) throws -> IOMMUDevice {
        switch self {
        case .vtd:
            try IntelIOMMU(name: "dmar0", driver: IntelIOMMUDriver(),
                           hardware: VTdHardware(memory: machine.memory, caps: VTdCapabilities()))
        case .smmuv3:
            try ArmSMMUv3(name: "smmu0", driver: ArmSMMUv3Driver(), hardware: SMMUv3Hardware(memory: machine.memory))
        }
    }

    /// The CPUs of the machine: SVA shares a process's page table, so it must be in the
    /// format this IOMMU walks (x86-64 for VT-d, arm64 for SMMUv3).
    var architecture: CPUArchitecture { self == .vtd ? .x86_64 : .arm64 }
}

var vendor = Vendor.vtd
if let i = CommandLine.arguments.firstIndex(of: "--vendor") {
    guard i + 1 < CommandLine.arguments.count, let v = Vendor(rawValue: CommandLine.arguments[i + 1]) else {
        FileHandle.standardError.write(Data("IDXDMixedPASID: --vendor takes vtd or smmuv3\n".utf8))
        exit(2)
    }
    vendor = v
}

/// One step: an identifier and the figures it produced (the JSON form), and the text a
/// person reads (not encoded).
struct Step: Encodable {
    struct WQ: Encodable {
        let wq: Int
        let pasidEnabled: Bool
        let pasid: UInt32?
    }
    struct Completion: Encodable {
        let wq: Int
        let opcode: String
        let pasid: UInt32?
        let privileged: Bool
        let status: String
        let statusCode: UInt8
        let bytesCompleted: UInt32
        let faultAddress: UInt64?
    }
    let step: String
    var device: String?
    var defaultDomain: String?
    var kernelPasid: UInt32?
    var userSVA: Bool?
    var wqs: [WQ]?
    var processes: [Int32]?
    var pasids: [UInt32?]?
    var va: UInt64?
    var iovas: [UInt64]?
    var calls: [String]?
    var completion: Completion?
    var read: String?
    var warnings: Int?
    var violations: [Violation]?
    var what = ""
    var result = ""

    enum CodingKeys: String, CodingKey {
        case step, device, defaultDomain, kernelPasid, userSVA = "user_sva", wqs, processes, pasids, va, iovas, calls,
             completion, read, warnings, violations
    }

    init(_ step: String) { self.step = step }
}

var steps: [Step] = []
nonisolated(unsafe) var currentMachine: Machine?
/// Records `s` and names the machine's state after it (`Machine.step`), so that
/// `iommukit graph IDXDMixedPASID --at N` draws it.
@MainActor func record(_ s: Step) {
    steps.append(s)
    currentMachine?.step(s.what)
}
func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
func show(_ c: IDXDCompletion?) -> String {
    guard let c else { return "no completion" }
    let pasid = c.pasid.map { "PASID \($0)" } ?? "no PASID (RID)"
    var s = "\(c.opcode) on wq\(c.wq), \(pasid), priv \(c.privileged ? 1 : 0): \(c.record.status)"
    if c.record.status.code == .pageFault {
        s += ", \(c.record.bytesCompleted) bytes done, fault at \(c.record.faultAddress)"
    }
    return s
}
func fields(_ c: IDXDCompletion?) -> Step.Completion? {
    c.map {
        Step.Completion(wq: $0.wq, opcode: "\($0.opcode)", pasid: $0.pasid?.rawValue, privileged: $0.privileged,
                        status: "\($0.record.status.code)", statusCode: $0.record.status.rawValue,
                        bytesCompleted: $0.record.bytesCompleted,
                        faultAddress: $0.record.status.code == .pageFault ? $0.record.faultAddress.rawValue : nil)
    }
}
func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

@MainActor func run() throws {
    let machine = Machine(memory: 1 << 30, architecture: vendor.architecture)
    currentMachine = machine
    machine.checker.isEnabled = true
    let unit = try vendor.unit(machine)
    machine.addIOMMU(unit)
    let pci = try machine.addDevice(IDXDDevice.makeFunction(rid: RID(bus: 0, device: 4, function: 0)), behind: unit)
    let dsa = try IDXDDevice.probe(pci)
    var s = Step("probe")
    (s.device, s.defaultDomain, s.kernelPasid, s.userSVA) = ("\(pci.rid)", machine.iommu.domainForDevice(pci).map { "\($0)" },
                                                            dsa.kernelPasid?.rawValue, dsa.userPasidEnabled)
    s.what = "probe dsa0 \(pci.rid) behind \(unit.name)"
    s.result = "default domain \(s.defaultDomain ?? "-") on the RID, kernel PASID \(dsa.kernelPasid.map { "\($0)" } ?? "none") attached to it, user SVA \(dsa.userPasidEnabled ? "on" : "off")"
    record(s)

    // wq0: dedicated kernel WQ kept on the RID; wq1: dedicated kernel WQ with the kernel
    // PASID; wq2: shared user WQ.
    try dsa.configureWQ(0, mode: .dedicated, size: 8, pasid: false)
    try dsa.enableWQ(0, type: .kernel)
    try dsa.configureWQ(1, mode: .dedicated, size: 8)
    try dsa.enableWQ(1, type: .kernel)
    try dsa.configureWQ(2, mode: .shared, size: 16, threshold: 8)
    try dsa.enableWQ(2, type: .user)
    s = Step("enable_wqs")
    s.wqs = (0..<3).map { Step.WQ(wq: $0, pasidEnabled: dsa.workQueues[$0].config.pasidEnabled, pasid: dsa.workQueues[$0].config.pasid?.rawValue) }
    s.what = "enable wq0 (dedicated kernel, RID), wq1 (dedicated kernel), wq2 (shared user)"
    s.result = "WQCFG wq0 pasid_en \(s.wqs![0].pasidEnabled ? 1 : 0); wq1 pasid_en \(s.wqs![1].pasidEnabled ? 1 : 0) pasid \(s.wqs![1].pasid.map { "\($0)" } ?? "-")"
    record(s)

    // Kernel work: DMA-API buffers, one IOVA space for the RID and the kernel PASID.
    let iommu = machine.iommu
    let kSrc = try machine.memory.allocContiguous(bytes: 4096)
    let kDst = try machine.memory.allocContiguous(bytes: 4096)
    let kCR = try machine.memory.allocContiguous(bytes: 4096)
    try machine.memory.write(kSrc, Array("kernel data through the RID".utf8))
    let iSrc = try iommu.dmaMapPage(pci, paddr: kSrc, size: 4096)
    let iDst = try iommu.dmaMapPage(pci, paddr: kDst, size: 4096)
    let iCR = try iommu.dmaMapPage(pci, paddr: kCR, size: 4096)
    try dsa.submitKernel(.memmove(from: iSrc, to: iDst, count: 64, completion: iCR), wq: 0)
    s = Step("kernel_memmove")
    s.iovas = [iSrc.rawValue, iDst.rawValue]
    (s.completion, s.read) = (fields(dsa.completions.last), text(try machine.memory.bytes(at: kDst, count: 27)))
    s.what = "kernel MEMMOVE on wq0 (MOVDIR64B), IOVA \(iSrc) -> \(iDst)"
    s.result = show(dsa.completions.last) + "; destination reads \"\(s.read!)\""
    record(s)
    try dsa.submitKernel(.fill(iDst + 1024, pattern: 0x4b50_4153_4b50_4153, count: 16, completion: iCR + 64), wq: 1)
    s = Step("kernel_memfill")
    s.iovas = [(iDst + 1024).rawValue]
    (s.completion, s.read) = (fields(dsa.completions.last), text(try machine.memory.bytes(at: kDst + 1024, count: 16)))
    s.what = "kernel MEMFILL on wq1 (MOVDIR64B), same IOVA space"
    s.result = show(dsa.completions.last) + "; destination reads \"\(s.read!)\""
    record(s)

    // Two processes on the shared user WQ.
    let a = try machine.makeProcess(pid: 1001)
    let b = try machine.makeProcess(pid: 1002)
    _ = try b.mmap(length: 16 * 4096, prot: [.read, .write])   // B's buffer lands above A's
    let aBuf = try a.mmap(length: 3 * 4096, prot: [.read, .write], populate: true)
    let bBuf = try b.mmap(length: 3 * 4096, prot: [.read, .write], populate: true)
    try a.writeMemory(address: aBuf, bytes: Array("process A's secret".utf8))
    try b.writeMemory(address: bBuf, bytes: Array("process B's secret".utf8))
    let ctxA = try dsa.open(wq: 2, process: a)
    let ctxB = try dsa.open(wq: 2, process: b)
    let portalA = try ctxA.mmap(from: a)
    let portalB = try ctxB.mmap(from: b)
    // Under SVA a device addresses a process's memory by the process's virtual addresses.
    let aIO = IOVA(sva: aBuf), bIO = IOVA(sva: bBuf)
    s = Step("sva_open")
    (s.processes, s.pasids) = ([a.pid, b.pid], [ctxA.userPasid?.rawValue, ctxB.userPasid?.rawValue])
    s.what = "processes \(a.pid) and \(b.pid) open wq2 (iommu_sva_bind_device each)"
    s.result = "A has PASID \(ctxA.userPasid.map { "\($0)" } ?? "-"), B has PASID \(ctxB.userPasid.map { "\($0)" } ?? "-")"
    record(s)

    _ = portalA.enqcmd(.memmove(from: aIO, to: aIO + 4096, count: 18, completion: aIO + 8192))
    s = Step("user_memmove")
    (s.processes, s.va, s.completion) = ([a.pid], aBuf, fields(dsa.completions.last))
    s.read = text(try a.readMemory(address: aBuf + 4096, count: 18))
    s.what = "A: ENQCMD MEMMOVE in its own memory (VA \(hex(aBuf)))"
    s.result = show(dsa.completions.last) + "; A reads \"\(s.read!)\""
    record(s)
    _ = portalB.enqcmd(.memmove(from: bIO, to: bIO + 4096, count: 18, completion: bIO + 8192))
    s = Step("user_memmove")
    (s.processes, s.va, s.completion) = ([b.pid], bBuf, fields(dsa.completions.last))
    s.read = text(try b.readMemory(address: bBuf + 4096, count: 18))
    s.what = "B: ENQCMD MEMMOVE in its own memory (VA \(hex(bBuf)))"
    s.result = show(dsa.completions.last) + "; B reads \"\(s.read!)\""
    record(s)

    // A aims at B's buffer and even writes B's PASID into the descriptor.
    var steal = IDXDDescriptor.memmove(from: bIO, to: aIO + 4096, count: 18, completion: aIO + 8192)
    steal.pasid = ctxB.userPasid
    steal.priv = true
    _ = portalA.enqcmd(steal)
    s = Step("user_memmove_forged")
    (s.processes, s.va, s.completion) = ([a.pid], bBuf, fields(dsa.completions.last))
    s.read = text(try b.readMemory(address: bBuf, count: 18))
    s.what = "A: ENQCMD reading B's VA \(hex(bBuf)) with B's PASID and priv 1 in the descriptor"
    s.result = "CPU stamped A's PASID and priv 0 -> " + show(dsa.completions.last) + "; B's memory untouched: \"\(s.read!)\""
    record(s)

    // Page fault without block-on-fault: A's new page is not there yet.
    let fresh = try a.mmap(length: 4096, prot: [.read, .write])
    let freshIO = IOVA(sva: fresh)
    _ = portalA.enqcmd(.memmove(from: aIO, to: freshIO, count: 18, completion: aIO + 8192))
    let faulted = dsa.completions.last
    s = Step("user_memmove_fault")
    (s.processes, s.va, s.completion) = ([a.pid], fresh, fields(faulted))
    s.what = "A: MEMMOVE into a page it never touched (VA \(hex(fresh)))"
    s.result = show(faulted)
    record(s)
    if let f = faulted, f.record.status.code == .pageFault {
        try a.handleFault(address: f.record.faultAddress.rawValue, write: f.record.status.faultedOnWrite)
        let done = UInt64(f.record.bytesCompleted)
        _ = portalA.enqcmd(.memmove(from: aIO + done, to: freshIO + done, count: 18 - UInt32(done),
                                    completion: aIO + 8192))
        s = Step("user_memmove_resubmit")
        (s.processes, s.va, s.completion) = ([a.pid], fresh + done, fields(dsa.completions.last))
        s.read = text(try a.readMemory(address: fresh, count: 18))
        s.what = "A touches the page and resubmits the rest"
        s.result = show(dsa.completions.last) + "; A reads \"\(s.read!)\""
        record(s)
    }

    ctxA.close()
    ctxB.close()
    s = Step("sva_close")
    s.processes = [a.pid, b.pid]
    s.calls = dsa.trace.suffix(6).map(\.description)
    s.what = "close both files"
    s.result = "drain then unbind: " + s.calls!.joined(separator: "; ")
    record(s)
    for i in [iSrc, iDst, iCR] { try iommu.dmaUnmapPage(pci, dmaAddress: i, size: 4096) }
    for pa in [kSrc, kDst, kCR] { machine.memory.free(pa, bytes: 4096) }
    dsa.remove()
    s = Step("remove")
    (s.device, s.warnings) = ("\(pci.rid)", machine.warnings.count)
    s.what = "remove dsa0"
    s.result = "kernel PASID detached and freed before iommu_device_unuse_default_domain; WARNs: \(machine.warnings.count)"
    record(s)
    a.exit()
    b.exit()
    let violations = machine.checker.violations
    s = Step("invariant_checker")
    s.violations = violations
    s.what = "invariant checker"
    s.result = violations.isEmpty ? "no violations" : violations.map(\.description).joined(separator: "; ")
    record(s)
}

do {
    try run()
    if CommandLine.arguments.contains("--json") {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        print(String(decoding: try encoder.encode(steps), as: UTF8.self))
    } else {
        print("idxd-like device: RID, kernel PASID and two SVA processes at once (\(vendor.title))\n")
        for (i, s) in steps.enumerated() {
            print(String(format: "%2d. ", i + 1) + s.what)
            print("    -> " + s.result)
        }
    }
} catch {
    FileHandle.standardError.write(Data("IDXDMixedPASID: \(error)\n".utf8))
    exit(1)
}
