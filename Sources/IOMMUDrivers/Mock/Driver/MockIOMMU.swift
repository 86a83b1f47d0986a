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
    ///
    /// Mock devices are numbered as the kernel numbers them (`ida_alloc`, freed by
    /// `mock_dev_release`): the lowest number not in use, named `iommufd_mockN`. Number N
    /// sits at RID `(0x80 + N / 32):(N % 32).0`, so ``Mock/maxDevices`` devices can exist
    /// at once; a number whose RID another device of the machine already holds is
    /// skipped. A machine may make and remove any number of them over its life.
    /// - Parameters:
    ///   - machine: the machine to add the device to.
    ///   - flags: `MOCK_FLAGS_DEVICE_*` of the selftest (``MockDeviceFlags``).
    ///   - ats: give the device ATS (the mock driver never enables it; PCI reset handling
    ///     in the core only applies to ATS-capable devices).
    ///   - reservedRegions: what the driver will report for it (`get_resv_regions`).
    /// - Throws: `EINVAL` for a flag outside ``MockDeviceFlags/valid``; `ENOSPC` when no
    ///   number is free (`ida_alloc`'s errno); what `Machine.addDevice` throws (the number
    ///   is freed again then).
    @discardableResult
    public func makeDevice(on machine: Machine, flags: MockDeviceFlags = [], ats: Bool = false,
                           reservedRegions: [ReservedRegion] = []) throws(Errno) -> PCIDevice {
        guard flags.isSubset(of: .valid) else {
            throw .invalidArgument.from("makeDevice", "unknown mock device flags \(flags.subtracting(.valid))")
        }
        let taken = Set(machine.allDevices.map(\.rid))
        let (id, rid) = try mockDriver.allocDeviceNumber { !taken.contains($0) }
        let caps = PCICapabilities(pasid: flags.contains(.pasid) ? PASIDCapability(width: Mock.pasidWidth) : nil,
                                   ats: ats)
        mockDriver.register(rid: rid, number: id, flags: flags, regions: reservedRegions)
        let dev = PCIDevice(rid: rid, name: "iommufd_mock\(id)", caps: caps)
        do { return try machine.addDevice(dev, behind: self) } catch {
            mockDriver.unregister(rid: rid)
            throw error
        }
    }
}
