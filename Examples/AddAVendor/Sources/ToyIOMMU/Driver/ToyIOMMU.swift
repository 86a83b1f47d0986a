import IOMMUCore

/// One toy IOMMU unit (`struct iommu_device`): its hardware and the driver that runs it.
/// Register it with `Machine.addIOMMU(_:)`, then put devices behind it.
public final class ToyIOMMU: IOMMUDevice, @unchecked Sendable {
    /// The unit's hardware model.
    public let toy: ToyHardware
    /// The driver, typed.
    public let toyDriver: ToyDriver

    /// A unit run by `driver`, whose tables live in `memory` (the machine's).
    /// - Throws: `ENOMEM` when the device table cannot be allocated.
    public init(name: String, driver: ToyDriver, memory: PhysicalMemory) throws(Errno) {
        toy = try ToyHardware(memory: memory)
        toyDriver = driver
        super.init(name: name, driver: driver, hardware: toy, maxPasids: ToyLayout.pasids)
        driver.register(self)
    }

    /// Writes the context entry of (`dev`, `pasid`) (nil: the RID's), as the driver's
    /// attach paths do. The hardware reads entries on every request, so the new entry
    /// takes effect at once; cached translations are tagged by domain, not by device, so
    /// none needs dropping.
    func writeContext(_ entry: ToyContextEntry, for dev: PCIDevice, pasid: PASID?) throws(Errno) {
        let address: PhysicalAddress
        if let pasid {
            guard let info = dev.driverPrivate as? ToyDeviceInfo, let table = info.pasidTable,
                  pasid.rawValue > 0, pasid.rawValue < ToyLayout.pasids else { throw .invalidArgument }
            address = table + UInt64(pasid.rawValue) * 8
        } else {
            address = toy.deviceEntry(dev.rid)
        }
        hardwareLock.withLock { toy.memory.setWord(entry.raw, at: address) }
    }

    /// Sends an invalidation command to the hardware.
    func invalidate(_ command: ToyHardware.Command) {
        hardwareLock.withLock { toy.execute(command) }
    }
}

/// What the toy driver keeps per device (`dev_iommu_priv`).
final class ToyDeviceInfo: @unchecked Sendable {
    /// The device's PASID table (one frame), nil for a device without PASID.
    let pasidTable: PhysicalAddress?
    init(pasidTable: PhysicalAddress?) { self.pasidTable = pasidTable }
}
