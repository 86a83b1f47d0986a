import DriverShims
import Foundation
import IOMMUCore
import IOMMUDrivers

// One idxd-like device doing DMA without a PASID, with the kernel PASID and for two user
// processes (SVA) at the same time, each reaching only its own memory.
// `swift run IDXDMixedPASID` prints what happened; `--json` prints the steps as JSON.

struct Step: Encodable {
    let what: String
    let result: String
}

var steps: [Step] = []
@MainActor func step(_ what: String, _ result: String) { steps.append(Step(what: what, result: result)) }
func show(_ c: IDXDCompletion?) -> String {
    guard let c else { return "no completion" }
    let pasid = c.pasid.map { "PASID \($0)" } ?? "no PASID (RID)"
    var s = "\(c.opcode) on wq\(c.wq), \(pasid), priv \(c.privileged ? 1 : 0): \(c.record.status)"
    if c.record.status.code == .pageFault {
        s += ", \(c.record.bytesCompleted) bytes done, fault at \(c.record.faultAddress)"
    }
    return s
}

@MainActor func run() throws {
    let machine = Machine(memory: 1 << 30)
    machine.checker.isEnabled = true
    let unit = try IntelIOMMU(name: "dmar0", driver: IntelIOMMUDriver(),
                              hardware: VTdHardware(memory: machine.memory, caps: VTdCapabilities()))
    machine.addIOMMU(unit)
    let pci = try machine.addDevice(IDXDDevice.makeFunction(rid: RID(bus: 0, device: 4, function: 0)), behind: unit)
    let dsa = try IDXDDevice.probe(pci)
    step("probe dsa0 \(pci.rid) behind \(unit.name)",
         "default domain \(machine.iommu.domainForDevice(pci).map { "\($0)" } ?? "-") on the RID, kernel PASID \(dsa.kernelPasid.map { "\($0)" } ?? "none") attached to it, user SVA \(dsa.userPasidEnabled ? "on" : "off")")

    // wq0: dedicated kernel WQ kept on the RID; wq1: dedicated kernel WQ with the kernel
    // PASID; wq2: shared user WQ.
    try dsa.configureWQ(0, mode: .dedicated, size: 8, pasid: false)
    try dsa.enableWQ(0, type: .kernel)
    try dsa.configureWQ(1, mode: .dedicated, size: 8)
    try dsa.enableWQ(1, type: .kernel)
    try dsa.configureWQ(2, mode: .shared, size: 16, threshold: 8)
    try dsa.enableWQ(2, type: .user)
    step("enable wq0 (dedicated kernel, RID), wq1 (dedicated kernel), wq2 (shared user)",
         "WQCFG wq0 pasid_en \(dsa.workQueues[0].config.pasidEnabled ? 1 : 0); wq1 pasid_en \(dsa.workQueues[1].config.pasidEnabled ? 1 : 0) pasid \(dsa.workQueues[1].config.pasid.map { "\($0)" } ?? "-")")

    // Kernel work: DMA-API buffers, one IOVA space for the RID and the kernel PASID.
    let iommu = machine.iommu
    let kSrc = try machine.memory.allocContiguous(bytes: 4096)
    let kDst = try machine.memory.allocContiguous(bytes: 4096)
    let kCR = try machine.memory.allocContiguous(bytes: 4096)
    machine.memory.write(kSrc, Array("kernel data through the RID".utf8))
    let iSrc = try iommu.dmaMapPage(pci, paddr: kSrc, size: 4096)
    let iDst = try iommu.dmaMapPage(pci, paddr: kDst, size: 4096)
    let iCR = try iommu.dmaMapPage(pci, paddr: kCR, size: 4096)
    try dsa.submitKernel(.memmove(from: iSrc, to: iDst, count: 64, completion: iCR), wq: 0)
    step("kernel MEMMOVE on wq0 (MOVDIR64B), IOVA \(iSrc) -> \(iDst)",
         show(dsa.completions.last) + "; destination reads \"\(String(decoding: machine.memory.bytes(at: kDst, count: 27), as: UTF8.self))\"")
    try dsa.submitKernel(.fill(iDst + 1024, pattern: 0x4b50_4153_4b50_4153, count: 16, completion: iCR + 64), wq: 1)
    step("kernel MEMFILL on wq1 (MOVDIR64B), same IOVA space",
         show(dsa.completions.last) + "; destination reads \"\(String(decoding: machine.memory.bytes(at: kDst + 1024, count: 16), as: UTF8.self))\"")

    // Two processes on the shared user WQ.
    let a = try Process(memory: machine.memory, pid: 1001)
    let b = try Process(memory: machine.memory, pid: 1002)
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
    step("processes \(a.pid) and \(b.pid) open wq2 (iommu_sva_bind_device each)",
         "A has PASID \(ctxA.userPasid.map { "\($0)" } ?? "-"), B has PASID \(ctxB.userPasid.map { "\($0)" } ?? "-")")

    _ = portalA.enqcmd(.memmove(from: aIO, to: aIO + 4096, count: 18, completion: aIO + 8192))
    step("A: ENQCMD MEMMOVE in its own memory (VA \(aIO))",
         show(dsa.completions.last) + "; A reads \"\(String(decoding: try a.readMemory(address: aBuf + 4096, count: 18), as: UTF8.self))\"")
    _ = portalB.enqcmd(.memmove(from: bIO, to: bIO + 4096, count: 18, completion: bIO + 8192))
    step("B: ENQCMD MEMMOVE in its own memory (VA \(bIO))",
         show(dsa.completions.last) + "; B reads \"\(String(decoding: try b.readMemory(address: bBuf + 4096, count: 18), as: UTF8.self))\"")

    // A aims at B's buffer and even writes B's PASID into the descriptor.
    var steal = IDXDDescriptor.memmove(from: bIO, to: aIO + 4096, count: 18, completion: aIO + 8192)
    steal.pasid = ctxB.userPasid
    steal.priv = true
    _ = portalA.enqcmd(steal)
    step("A: ENQCMD reading B's VA \(bIO) with B's PASID and priv 1 in the descriptor",
         "CPU stamped A's PASID and priv 0 -> " + show(dsa.completions.last) + "; B's memory untouched: \"\(String(decoding: try b.readMemory(address: bBuf, count: 18), as: UTF8.self))\"")

    // Page fault without block-on-fault: A's new page is not there yet.
    let fresh = try a.mmap(length: 4096, prot: [.read, .write])
    let freshIO = IOVA(sva: fresh)
    _ = portalA.enqcmd(.memmove(from: aIO, to: freshIO, count: 18, completion: aIO + 8192))
    let faulted = dsa.completions.last
    step("A: MEMMOVE into a page it never touched (VA \(freshIO))", show(faulted))
    if let f = faulted, f.record.status.code == .pageFault {
        try a.handleFault(address: f.record.faultAddress.rawValue, write: f.record.status.faultedOnWrite)
        let done = UInt64(f.record.bytesCompleted)
        _ = portalA.enqcmd(.memmove(from: aIO + done, to: freshIO + done, count: 18 - UInt32(done),
                                    completion: aIO + 8192))
        step("A touches the page and resubmits the rest",
             show(dsa.completions.last) + "; A reads \"\(String(decoding: try a.readMemory(address: fresh, count: 18), as: UTF8.self))\"")
    }

    ctxA.close()
    ctxB.close()
    step("close both files", "drain then unbind: " + dsa.trace.suffix(6).map(\.description).joined(separator: "; "))
    for i in [iSrc, iDst, iCR] { try iommu.dmaUnmapPage(pci, dmaAddress: i, size: 4096) }
    for pa in [kSrc, kDst, kCR] { machine.memory.free(pa, bytes: 4096) }
    dsa.remove()
    step("remove dsa0", "kernel PASID detached and freed before iommu_device_unuse_default_domain; WARNs: \(machine.warnings.count)")
    a.exit()
    b.exit()
    let violations = machine.checker.violations
    step("invariant checker", violations.isEmpty ? "no violations" : violations.map(\.description).joined(separator: "; "))
}

do {
    try run()
    if CommandLine.arguments.contains("--json") {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted]
        print(String(decoding: try encoder.encode(steps), as: UTF8.self))
    } else {
        print("idxd-like device: RID, kernel PASID and two SVA processes at once (Intel VT-d)\n")
        for (i, s) in steps.enumerated() {
            print(String(format: "%2d. ", i + 1) + s.what)
            print("    -> " + s.result)
        }
    }
} catch {
    FileHandle.standardError.write(Data("IDXDMixedPASID: \(error)\n".utf8))
    exit(1)
}
