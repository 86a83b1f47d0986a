import IOMMUCore
import IOMMUDrivers
import XCTest

/// The Intel VT-d fixture: machines with one ``IntelIOMMU`` unit in scalable mode.
/// VT-d attaches PASIDs one by one (no user PASID table), has no nesting model, caches
/// translations in its IOTLB, and has static identity and release (blocking) domains.
struct VTdVendor: ConformanceVendor {
    let name = "Intel VT-d"
    let capabilities: VendorCapabilities = [.cachesTranslations, .identityReleaseDomain]

    func makeUnit() -> IOMMUDevice { makeUnit(memory: PhysicalMemory(size: 64 << 20)) }

    private func makeUnit(memory: PhysicalMemory) -> IOMMUDevice {
        // The unit's tables live in the machine's memory; the empty rig builds both together.
        try! IntelIOMMU(name: "dmar0", driver: IntelIOMMUDriver(),
                        hardware: VTdHardware(memory: memory, caps: VTdCapabilities()))
    }

    func makeEmptyRig(defaultDomainType: DomainType) throws -> Rig {
        let machine = Machine(memory: 4 << 30)
        machine.iommu.defaultDomainType = defaultDomainType
        let unit = makeUnit(memory: machine.memory)
        machine.addIOMMU(unit)
        return Rig(machine: machine, unit: unit, vendor: self)
    }

    func addDevice(to rig: Rig, rid: RID?, spec: DeviceSpec, upstream: PCIBridge?, multifunction: Bool) throws -> PCIDevice {
        let rid = rid ?? RID(bus: 0x20, device: UInt8(rig.devices.count), function: 0)
        let driver = rig.unit.driver as! IntelIOMMUDriver
        for r in spec.reservedRegions where r.kind == .direct || r.kind == .directRelaxable {
            driver.addRMRR(for: rid, start: r.start, length: r.length, relaxable: r.kind == .directRelaxable)
        }
        let caps = PCICapabilities(pasid: spec.pasidWidth.map { PASIDCapability(width: $0, privileged: true) },
                                   ats: spec.ats)
        return try rig.machine.addDevice(PCIDevice(rid: rid, caps: caps, upstream: upstream, multifunction: multifunction),
                                         behind: rig.unit)
    }

    func foreignDomain() throws -> IOMMUDomain {
        let other = try makeRig([.pasid])
        return try other.pagingDomain()
    }

    func nestedDomain(on rig: Rig, for dev: PCIDevice) throws -> (parent: IOMMUDomain, nested: IOMMUDomain) {
        throw XCTSkip("\(name) lacks capability nesting")
    }
}
