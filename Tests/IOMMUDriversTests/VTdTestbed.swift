import XCTest
import IOMMUCore
@testable import IOMMUDrivers

/// A small machine with VT-d units and PCI devices for the driver tests.
final class VTdTestbed {
    let machine: Machine
    let driver: IntelIOMMUDriver
    var units: [IntelIOMMU] = []

    init(bugs: VTdDriverBugs = [], caps: [VTdCapabilities] = [VTdCapabilities()],
         copied: [RID: UInt16] = [:], checker: Bool = true) throws {
        machine = Machine(memory: 1 << 30)
        machine.checker.isEnabled = checker
        driver = IntelIOMMUDriver(bugs: bugs)
        for (i, c) in caps.enumerated() {
            let unit = try IntelIOMMU(name: "dmar\(i)", driver: driver,
                                      hardware: VTdHardware(memory: machine.memory, caps: c),
                                      copiedContexts: i == 0 ? copied : [:])
            machine.addIOMMU(unit)
            units.append(unit)
        }
    }

    var unit: IntelIOMMU { units[0] }
    var iommu: IOMMUSubsystem { machine.iommu }

    /// A device at 00:slot.0 behind unit `unit` with the chosen capabilities.
    @discardableResult
    func device(_ slot: UInt8, unit: Int = 0, pasid: Bool = true, ats: Bool = true, pri: Bool = true,
                bus: UInt8 = 0) throws -> PCIDevice {
        let dev = PCIDevice(rid: RID(bus: bus, device: slot, function: 0),
                            caps: PCICapabilities(pasid: pasid ? PASIDCapability(width: 20, privileged: true) : nil,
                                                  ats: ats, pri: pri))
        try machine.addDevice(dev, behind: units[unit])
        return dev
    }

    /// A 4 KiB buffer holding `bytes` at its start.
    func buffer(_ bytes: [UInt8]) throws -> PhysicalAddress {
        let pa = try machine.memory.allocContiguous(bytes: 4096)
        try machine.memory.write(pa, bytes)
        return pa
    }

    func paging(_ dev: PCIDevice, flags: DomainAllocFlags = [.pasid]) throws -> DMARDomain {
        try XCTUnwrap(try iommu.allocPagingDomain(for: dev, flags: flags) as? DMARDomain)
    }

    var violations: [Violation] { machine.checker.violations }
}

/// Capabilities of a unit with second stage only (first stage off).
func secondStageOnly(cachingMode: Bool = false, maxAddressMask: Int = 18) -> VTdCapabilities {
    VTdCapabilities(cachingMode: cachingMode, maxAddressMask: maxAddressMask, firstStage: false)
}

func descriptors(_ ops: [VTdOperation]) -> [VTdDescriptor] {
    ops.compactMap { if case .descriptor(let d) = $0 { d } else { nil } }
}
