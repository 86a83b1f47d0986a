import IOMMUCore

/// One mock IOMMU unit (`struct mock_iommu_device`): an ``/IOMMUCore/IOMMUDevice`` run by a
/// ``MockIOMMUDriver`` with a ``MockHardware`` and `max_pasids` = 1 << 20.
public final class MockIOMMU: IOMMUDevice, @unchecked Sendable {
    /// The unit's hardware model.
    public let mockHardware: MockHardware
    /// The driver, typed.
    public let mockDriver: MockIOMMUDriver

    /// A unit of `driver`. Register it with `machine.addIOMMU(_:)` before adding devices.
    public init(driver: MockIOMMUDriver, name: String? = nil) {
        let hw = MockHardware(userPasidTable: driver.userPasidTable)
        mockHardware = hw
        mockDriver = driver
        super.init(name: name ?? "mock\(driver.units.count)", driver: driver, hardware: hw, maxPasids: Mock.maxPasids)
        driver.register(self)
    }

    /// A page request from a device below the unit. The kernel's mock has no hardware
    /// queue: `IOMMU_TEST_OP_TRIGGER_IOPF` reports a request straight to the core, so
    /// the mock unit hands every request to `iommu_report_device_fault` at once (the
    /// core answers `INVALID` when no fault handler takes it).
    /// - Returns: false for a RID that is no device of this unit's machine.
    public override func receivePageRequest(_ request: PageRequest) -> Bool {
        guard let machine, let dev = machine.device(request.rid), dev.iommu === self else { return false }
        try? machine.iommu.reportDeviceFault(dev, request.fault)
        return true
    }

    /// `mock_dev_create` + probe: makes a mock PCI device behind this unit and adds it to
    /// `machine`. Each mock device sits alone on its own slot of a root bus, so it is
    /// alone in its group; with ``MockDeviceFlags/pasid`` it has PASID width 20, else no
    /// PASID capability.
    /// - Parameters:
    ///   - machine: the machine to add the device to.
    ///   - flags: `MOCK_FLAGS_DEVICE_*` of the selftest (``MockDeviceFlags``).
    ///   - ats: give the device ATS (the mock driver never enables it; PCI reset handling
    ///     in the core only applies to ATS-capable devices).
    ///   - reservedRegions: what the driver will report for it (`get_resv_regions`).
    /// - Throws: `EINVAL` for a flag outside ``MockDeviceFlags/valid``; what
    ///   `Machine.addDevice` throws.
    @discardableResult
    public func makeDevice(on machine: Machine, flags: MockDeviceFlags = [], ats: Bool = false,
                           reservedRegions: [ReservedRegion] = []) throws(Errno) -> PCIDevice {
        guard flags.isSubset(of: .valid) else { throw .invalidArgument }
        var rid: RID
        repeat {
            let id = mockDriver.allocDeviceID()
            rid = RID(bus: UInt8(truncatingIfNeeded: 0x80 + id / 32), device: UInt8(id % 32), function: 0)
        } while machine.device(rid) != nil
        let caps = PCICapabilities(pasid: flags.contains(.pasid) ? PASIDCapability(width: Mock.pasidWidth) : nil,
                                   ats: ats)
        mockDriver.register(rid: rid, flags: flags, regions: reservedRegions)
        let dev = PCIDevice(rid: rid, name: "iommufd_mock\(rid.bus - 0x80)_\(rid.device)", caps: caps)
        return try machine.addDevice(dev, behind: self)
    }
}
