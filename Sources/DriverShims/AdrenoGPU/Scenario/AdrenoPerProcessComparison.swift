import IOMMUCore
import IOMMUDrivers

/// A machine with a Qualcomm SMMU-500 (the Adreno implementation) and an Adreno GPU
/// behind it, the invariant checker on.
public struct AdrenoRig: Sendable {
    /// The machine.
    public let machine: Machine
    /// The SMMU.
    public let smmu: ARMSMMUv2
    /// The GPU.
    public let gpu: AdrenoGPU

    /// Builds the machine: `memory` bytes, an SMMUv2 unit `gpu-smmu` with the Qualcomm
    /// Adreno implementation, the GPU behind it (stream ID 0), the checker on unless
    /// `checker` is false.
    /// - Throws: an errno from the SMMU or the GPU's probe.
    public init(memory: UInt64 = 1 << 30, config: SMMUv2Configuration = SMMUv2Configuration(),
                canDoTTBR1: Bool = true, checker: Bool = true) throws(Errno) {
        machine = Machine(memory: memory)
        machine.checker.isEnabled = checker
        smmu = try ARMSMMUv2(name: "gpu-smmu", driver: ARMSMMUv2Driver(),
                             hardware: SMMUv2Hardware(memory: machine.memory, config: config),
                             impl: QcomAdrenoSMMU(canDoTTBR1: canDoTTBR1))
        machine.addIOMMU(smmu)
        gpu = try AdrenoGPU(on: machine, behind: smmu)
    }
}

/// What one address-space design let the malicious process do, and what it cost.
public struct AdrenoScenarioResult: Sendable, Codable {
    /// The design.
    public let variant: AdrenoAddressSpaces
    /// Whether the malicious process's read-back brought the banking surface's bytes
    /// into its own buffer.
    public let surfaceLeaked: Bool
    /// Whether the malicious process's fill changed the banking surface.
    public let surfaceOverwritten: Bool
    /// Whether the banking process's own GPU work (render, read back) did what it asked.
    public let bankingRendered: Bool
    /// The faults the GPU driver's handler reported (process, address, syndrome).
    public let faults: [String]
    /// The IOMMU calls the GPU driver made (`name ×n`), in first-use order.
    public let calls: [String]
    /// Total IOMMU calls.
    public let callCount: Int
    /// `CP_SMMU_TABLE_UPDATE`s the GPU executed.
    public let tableSwitches: Int
    /// TLB maintenance the SMMU executed, by who asked (`cpu`, `gpu`) and kind.
    public let tlbInvalidations: [String: Int]
    /// Table walks the SMMU made.
    public let walks: Int
    /// Violations the invariant checker reported.
    public let violations: [String]
}

/// The scenario of the 2017 thread, run on each address-space design on a fresh rig:
/// 1. a "banking" process renders a 16 KiB surface (a copy from its staging buffer,
///    done by the GPU), then reads it back;
/// 2. a "malicious" process submits a read-back aimed at the banking surface's GPU
///    address into its own buffer, and a fill that scribbles over that address;
/// 3. the banking process reads its surface back again; everything is torn down.
/// Counters, faults and checker violations are taken over the whole run.
public enum AdrenoPerProcessComparison {
    /// The banking surface's contents.
    public static let secret: [UInt8] = {
        let line = Array("ACCOUNT 4242-1337 BALANCE 9,876.54 EUR | ".utf8)
        return (0..<surfaceBytes).map { line[$0 % line.count] }
    }()
    /// The surface size.
    public static let surfaceBytes = 16 << 10
    /// Where each process maps its buffers (VM_BIND: the process chooses).
    static let surfaceAddress: IOVA = 0x1_0000_0000
    static let stagingAddress: IOVA = 0x1_0010_0000
    static let resultAddress: IOVA = 0x1_0020_0000
    static let lootAddress: IOVA = 0x1_0030_0000

    /// Runs every design.
    /// - Throws: an errno from building the rig or from the driver.
    public static func runAll() throws(Errno) -> [AdrenoScenarioResult] {
        var out: [AdrenoScenarioResult] = []
        for v in AdrenoAddressSpaces.allCases { out.append(try run(v)) }
        return out
    }

    /// Runs one design.
    /// - Throws: an errno from building the rig or from the driver.
    public static func run(_ variant: AdrenoAddressSpaces) throws(Errno) -> AdrenoScenarioResult {
        let rig = try AdrenoRig()
        let msm = try MSMGPU(gpu: rig.gpu, variant: variant)
        let n = surfaceBytes

        let banking = try msm.openContext("banking")
        let surface = try msm.allocBuffer(banking, bytes: n, at: surfaceAddress)
        let staging = try msm.allocBuffer(banking, bytes: n, at: stagingAddress)
        let result = try msm.allocBuffer(banking, bytes: n, at: resultAddress)
        msm.write(staging, secret)
        try msm.submit(banking, [.copy(from: staging.gpuAddress, to: surface.gpuAddress, length: n),
                                 .readBack(from: surface.gpuAddress, into: result.gpuAddress, length: n)])
        msm.run()
        let rendered = msm.read(result) == secret

        let malicious = try msm.openContext("malicious")
        let loot = try msm.allocBuffer(malicious, bytes: n, at: lootAddress)
        // The attacker aims at the banking surface's GPU address (in a shared table it
        // learns it; in a table of its own the same number names nothing of banking's).
        let target = surface.gpuAddress
        try msm.submit(malicious, [.readBack(from: target, into: loot.gpuAddress, length: n)])
        try msm.submit(malicious, [.fill(target, length: n, byte: 0x66)])
        msm.run()

        try msm.submit(banking, [.readBack(from: surface.gpuAddress, into: result.gpuAddress, length: n)])
        msm.run()

        let leaked = msm.read(loot) == secret
        let overwritten = msm.read(surface) != secret
        msm.shutdown()

        let hw = rig.smmu.hardwareLock.withLock { (rig.smmu.smmu.tlbOperations, rig.smmu.smmu.counters) }
        var tlb: [String: Int] = [:]
        for op in hw.0 where op.kind != .sync {
            tlb["\(op.accessor == .client ? "gpu" : "cpu") \(op.kind.rawValue)", default: 0] += 1
        }
        let switches = rig.gpu.events.filter { if case .tableUpdate = $0 { return true } else { return false } }.count
        return AdrenoScenarioResult(
            variant: variant, surfaceLeaked: leaked, surfaceOverwritten: overwritten, bankingRendered: rendered,
            faults: msm.faults.map(\.description), calls: msm.calls.counts.map(\.description),
            callCount: msm.calls.calls.count,
            tableSwitches: switches, tlbInvalidations: tlb, walks: hw.1.walks,
            violations: rig.machine.checker.violations.map(\.description))
    }
}
