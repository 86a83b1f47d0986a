import IOMMUCore
import IOMMUDrivers
import XCTest

/// The Mock vendor fixture: machines with one ``MockIOMMU``.
struct MockVendor: ConformanceVendor {
    let name = "Mock"
    let capabilities: VendorCapabilities = [.userPasidTable, .nesting, .cachesTranslations, .failureInjection, .anyReservedRegion]

    /// Builds a rig with a caller-chosen driver (the variants of checks 3 and the
    /// all-PASIDs shape).
    func makeEmptyRig(driver: MockIOMMUDriver, defaultDomainType: DomainType = .dma) -> Rig {
        let machine = Machine(memory: 4 << 30)
        machine.iommu.defaultDomainType = defaultDomainType
        let unit = MockIOMMU(driver: driver)
        machine.addIOMMU(unit)
        return Rig(machine: machine, unit: unit, vendor: self)
    }

    func makeUnit() -> IOMMUDevice { MockIOMMU(driver: MockIOMMUDriver()) }

    func makeEmptyRig(defaultDomainType: DomainType) throws -> Rig {
        makeEmptyRig(driver: MockIOMMUDriver(), defaultDomainType: defaultDomainType)
    }

    /// Mock devices where the spec allows (width 20 or none, no bridge), plain PCI
    /// functions behind the mock unit otherwise.
    func addDevice(to rig: Rig, rid: RID?, spec: DeviceSpec, upstream: PCIBridge?, multifunction: Bool) throws -> PCIDevice {
        let unit = rig.unit as! MockIOMMU
        if rid == nil, upstream == nil, !multifunction, spec.pasidWidth == nil || spec.pasidWidth == Mock.pasidWidth {
            return try unit.makeDevice(on: rig.machine, flags: spec.pasidWidth == nil ? [] : [.pasid], ats: spec.ats,
                                       reservedRegions: spec.reservedRegions)
        }
        let rid = rid ?? RID(bus: 0x20, device: UInt8(rig.devices.count), function: 0)
        let caps = PCICapabilities(pasid: spec.pasidWidth.map { PASIDCapability(width: $0) }, ats: spec.ats)
        unit.mockDriver.setReservedRegions(spec.reservedRegions, for: rid)
        let dev = PCIDevice(rid: rid, caps: caps, upstream: upstream, multifunction: multifunction)
        return try rig.machine.addDevice(dev, behind: unit)
    }

    func foreignDomain() throws -> IOMMUDomain {
        let other = try makeRig([.pasid])
        return try other.pagingDomain()
    }

    func nestedDomain(on rig: Rig, for dev: PCIDevice) throws -> (parent: IOMMUDomain, nested: IOMMUDomain) {
        let parent = try rig.iommu.allocPagingDomain(for: dev, flags: [.nestParent])
        let nested = try rig.driver.domainAllocNested(dev, parent: parent, flags: [], userData: [0xef, 0xbe, 0xad, 0x0b])
        return (parent, nested)
    }
}

extension Rig {
    /// The Mock driver of a Mock rig, or `XCTSkip` for another vendor: for the checks
    /// that need the Mock's failure-injection knobs or its callback log.
    func mockDriver() throws -> MockIOMMUDriver {
        guard let d = driver as? MockIOMMUDriver else {
            throw XCTSkip("Mock-only check: needs the Mock failure-injection knobs (capability failureInjection)")
        }
        return d
    }

    /// The mock state of `dev` (Mock-only).
    func mockState(_ dev: PCIDevice) throws -> MockDeviceState {
        guard let s = try mockDriver().state(of: dev) else { throw XCTSkip("not a mock device") }
        return s
    }
}
