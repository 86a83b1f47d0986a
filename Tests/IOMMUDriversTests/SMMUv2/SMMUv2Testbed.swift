import XCTest
import IOMMUCore
@testable import IOMMUDrivers

/// A machine with one ARM SMMUv2 (generic or Qualcomm Adreno implementation) and devices
/// behind it, for the SMMUv2 driver tests.
final class SMMUv2Testbed: @unchecked Sendable {
    let machine: Machine
    let unit: ARMSMMUv2

    init(qualcomm: Bool = false, canDoTTBR1: Bool = true, config: SMMUv2Configuration = SMMUv2Configuration(),
         checker: Bool = true) throws {
        machine = Machine(memory: 1 << 30)
        machine.checker.isEnabled = checker
        unit = try ARMSMMUv2(name: "smmu0", driver: ARMSMMUv2Driver(),
                             hardware: SMMUv2Hardware(memory: machine.memory, config: config),
                             impl: qualcomm ? QcomAdrenoSMMU(canDoTTBR1: canDoTTBR1) : nil)
        machine.addIOMMU(unit)
    }

    var iommu: IOMMUSubsystem { machine.iommu }
    var memory: PhysicalMemory { machine.memory }

    /// Runs `body` on the hardware with the unit's hardware lock held.
    func hw<T>(_ body: (SMMUv2Hardware) -> T) -> T { unit.hardwareLock.withLock { body(unit.smmu) } }

    /// A PCI function at `bus`:`slot`.0 (its stream ID is its RID).
    @discardableResult
    func device(_ slot: UInt8, bus: UInt8 = 0x10) throws -> PCIDevice {
        try machine.addDevice(PCIDevice(rid: RID(bus: bus, device: slot, function: 0)), behind: unit)
    }

    /// The GPU: stream ID 0, `qcom,adreno`, at RID 00:00.0.
    func gpu() throws -> PCIDevice {
        let rid = RID(bus: 0, device: 0, function: 0)
        unit.describeMaster(rid, ARMSMMUv2FirmwareMaster(streamIDs: [ARMSMMUv2StreamID(0)], compatible: "qcom,adreno"))
        return try machine.addDevice(PCIDevice(rid: rid, name: "adreno"), behind: unit)
    }

    /// A 4 KiB buffer holding `bytes`.
    func buffer(_ bytes: [UInt8] = []) throws -> PhysicalAddress {
        let pa = try memory.allocContiguous(bytes: 4096)
        try memory.write(pa, bytes)
        return pa
    }

    func paging(_ dev: PCIDevice) throws -> ARMSMMUv2Domain {
        try XCTUnwrap(try iommu.allocPagingDomain(for: dev) as? ARMSMMUv2Domain)
    }
}

/// A raw SMMUv2 with no driver: tests program its registers as a driver would.
final class RawSMMUv2 {
    let memory = PhysicalMemory(size: 1 << 30)
    let hw: SMMUv2Hardware

    init(config: SMMUv2Configuration = SMMUv2Configuration()) throws {
        hw = try SMMUv2Hardware(memory: memory, config: config)
        hw.write32(.global0, SMMUv2Reg.sCR0, SMMUv2Field.sCR0USFCFG | SMMUv2Field.sCR0GFIE)
    }

    /// Stream match group `idx` matches `id`/`mask` and routes as `type` to `cb`.
    func route(_ idx: Int, id: UInt16, mask: UInt16 = 0, type: UInt32 = SMMUv2Field.s2crTypeTranslate, cb: Int = 0) {
        hw.write32(.global0, SMMUv2Reg.s2cr(idx), type << 16 | UInt32(cb))
        hw.write32(.global0, SMMUv2Reg.smr(idx), SMMUv2Field.smrValid | UInt32(mask) << 16 | UInt32(id))
    }

    /// A 48-bit, 4K-granule stage-1 table for the lower (TTBR0) or upper (TTBR1) range.
    func table(upper: Bool) throws -> IOPageTable {
        let format = try PageTableFormat.armLPAE(.stage1, pageSizes: 1 << 12 | 1 << 21 | 1 << 30, ias: 48, oas: 48,
                                                 quirks: upper ? .armTTBR1 : [])
        return try IOPageTable(format: format, memory: memory)
    }

    /// Programs context bank `cb` as a stage-1 AArch64 context with 48-bit ranges and 4K
    /// granules: TTBR0 and TTBR1 with `asid` (a nil table disables that range), SCTLR with
    /// fault reporting and interrupt, plus `sctlr` bits (CFCFG, HUPCF).
    func context(_ cb: Int, lower: IOPageTable?, upper: IOPageTable?, asid: UInt16, sctlr: UInt32 = 0) {
        hw.write32(.global1, SMMUv2Reg.cba2r(cb), SMMUv2Field.cba2rVA64)
        hw.write32(.global1, SMMUv2Reg.cbar(cb), SMMUv2Field.cbarTypeS1BypassS2 << 16)
        var tcr: UInt32 = 16 | 16 << 16 | 2 << 30
        if lower == nil { tcr |= SMMUv2Field.tcrEPD0 }
        if upper == nil { tcr |= SMMUv2Field.tcrEPD1 }
        hw.write32(.contextBank(cb), SMMUv2Reg.tcr2, 5 | SMMUv2Field.tcr2AS)
        hw.write32(.contextBank(cb), SMMUv2Reg.tcr, tcr)
        let a = UInt64(asid) << 48
        hw.write64(.contextBank(cb), SMMUv2Reg.ttbr0, (lower?.root.rawValue ?? 0) | a)
        hw.write64(.contextBank(cb), SMMUv2Reg.ttbr1, (upper?.root.rawValue ?? 0) | a)
        hw.write32(.contextBank(cb), SMMUv2Reg.sctlr,
                   SMMUv2Field.sctlrM | SMMUv2Field.sctlrCFIE | SMMUv2Field.sctlrCFRE | sctlr)
    }

    /// A frame holding `bytes`.
    func frame(_ bytes: [UInt8] = []) throws -> PhysicalAddress {
        let pa = try memory.allocFrame()
        try memory.write(pa, bytes)
        return pa
    }

    func read(_ sid: UInt16, _ va: IOVA, write: Bool = false) -> TranslationResult {
        hw.translate(TranslationRequest(rid: RID(raw: sid), pasid: nil, privileged: false,
                                        access: write ? .write : .read, address: va))
    }
}

/// The physical address a translation result gives, nil for a fault.
func translated(_ r: TranslationResult) -> PhysicalAddress? {
    if case .translated(let pa, _, _) = r { return pa }
    return nil
}

/// The fault reason of a result, nil for a translation.
func faultReason(_ r: TranslationResult) -> FaultReason? {
    if case .fault(let reason) = r { return reason }
    return nil
}
