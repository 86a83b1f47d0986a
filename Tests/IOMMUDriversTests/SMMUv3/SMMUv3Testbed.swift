import IOMMUCore
import IOMMUDrivers
import XCTest

/// A machine with SMMUv3 units and PCI devices for the SMMUv3 driver and hardware tests.
final class SMMUv3Testbed: @unchecked Sendable {
    let machine: Machine
    let driver: ArmSMMUv3Driver
    var units: [ArmSMMUv3] = []

    init(bugs: SMMUv3DriverBugs = [], configurations: [SMMUv3Configuration] = [SMMUv3Configuration()],
         defaultDomainType: DomainType = .dma, checker: Bool = true) throws {
        machine = Machine(memory: 1 << 30, architecture: .arm64)
        machine.checker.isEnabled = checker
        machine.iommu.defaultDomainType = defaultDomainType
        driver = ArmSMMUv3Driver(bugs: bugs)
        for (i, c) in configurations.enumerated() {
            let unit = try ArmSMMUv3(name: "smmu\(i)", driver: driver,
                                     hardware: SMMUv3Hardware(memory: machine.memory, configuration: c))
            machine.addIOMMU(unit)
            units.append(unit)
        }
    }

    var unit: ArmSMMUv3 { units[0] }
    var smmu: SMMUv3Hardware { unit.smmu }
    var iommu: IOMMUSubsystem { machine.iommu }
    var violations: [Violation] { machine.checker.violations }

    /// A device at 00:slot.0 (bus `bus`) behind unit `unit`.
    @discardableResult
    func device(_ slot: UInt8, unit: Int = 0, pasid: Bool = true, ats: Bool = false, pri: Bool = false,
                bus: UInt8 = 0, canStall: Bool = false) throws -> PCIDevice {
        let rid = RID(bus: bus, device: slot, function: 0)
        if canStall { driver.setDMACanStall(rid) }
        let dev = PCIDevice(rid: rid, caps: PCICapabilities(pasid: pasid ? PASIDCapability(width: 20, privileged: true) : nil,
                                                            ats: ats, pri: pri))
        try machine.addDevice(dev, behind: units[unit])
        return dev
    }

    /// A 4 KiB buffer holding `bytes` at its start.
    func buffer(_ bytes: [UInt8] = []) throws -> PhysicalAddress {
        let pa = try machine.memory.allocContiguous(bytes: 4096)
        if !bytes.isEmpty { try machine.memory.write(pa, bytes) }
        return pa
    }

    /// A paging domain for `dev` (stage 1 unless `flags` ask for a nesting parent).
    func paging(_ dev: PCIDevice, flags: DomainAllocFlags = []) throws -> SMMUv3Domain {
        try XCTUnwrap(try iommu.allocPagingDomain(for: dev, flags: flags) as? SMMUv3Domain)
    }

    /// The STE of `dev` in memory.
    func ste(_ dev: PCIDevice) throws -> SMMUv3STE { try XCTUnwrap(unit.ste(dev.rid)) }

    /// The STE write steps the driver logged for `dev`.
    func steSteps(_ dev: PCIDevice) -> [SMMUv3Operation] {
        unit.operations.filter { if case .steWrite(let sid, _, _) = $0 { sid == UInt32(dev.rid.raw) } else { false } }
    }

    /// Every command the hardware executed, in order.
    var executed: [SMMUv3Command] { smmu.executed }
}
