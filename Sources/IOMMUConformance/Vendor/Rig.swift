import IOMMUCore

/// A machine with a unit of one vendor and devices behind it: what a check (or any test)
/// builds with ``ConformanceVendor/makeRig(_:topology:defaultDomainType:variant:)`` and
/// works on.
///
/// Not thread-safe: one test drives a rig.
public final class Rig: @unchecked Sendable {
    /// The vendor that built the rig.
    public let vendor: any ConformanceVendor
    /// The machine.
    public let machine: Machine
    /// The vendor's unit, registered on ``machine``.
    public let unit: IOMMUDevice
    /// The devices added so far, in order.
    public private(set) var devices: [PCIDevice] = []
    private var nextPid: Int32 = 100

    /// A rig over a machine and a registered unit; ``ConformanceVendor`` builds them.
    public init(vendor: any ConformanceVendor, machine: Machine, unit: IOMMUDevice) {
        self.vendor = vendor
        self.machine = machine
        self.unit = unit
    }

    /// The machine's IOMMU core.
    public var iommu: IOMMUSubsystem { machine.iommu }
    /// The unit's driver.
    public var driver: any IOMMUDriver { unit.driver }
    /// The machine's physical memory.
    public var memory: PhysicalMemory { machine.memory }

    /// Adds a device built by the vendor from `spec` behind `unit` (default: the rig's
    /// unit) and probes it: firmware's reserved regions first
    /// (``ConformanceVendor/describeReservedRegions(_:for:on:)``), then
    /// ``ConformanceVendor/makeDevice(_:rid:upstream:multifunction:)`` and
    /// `Machine.addDevice`. A device with no `rid` gets the next free slot: bus 0x40 below
    /// a bridge, bus 0x20 otherwise.
    /// - Throws: what the vendor throws; `EEXIST` for a RID in use; the probe's errno.
    @discardableResult
    public func addDevice(_ spec: DeviceSpec = .pasid, rid: RID? = nil, upstream: PCIBridge? = nil,
                          multifunction: Bool = false, behind unit: IOMMUDevice? = nil) throws -> PCIDevice {
        let unit = unit ?? self.unit
        let rid = rid ?? nextRID(bus: upstream == nil ? 0x20 : 0x40)
        try vendor.describeReservedRegions(spec.reservedRegions, for: rid, on: unit)
        let dev = vendor.makeDevice(spec, rid: rid, upstream: upstream, multifunction: multifunction)
        try machine.addDevice(dev, behind: unit)
        devices.append(dev)
        return dev
    }

    private func nextRID(bus: UInt8) -> RID {
        var b = bus
        while true {
            for slot in UInt8(0)..<32 {
                let rid = RID(bus: b, device: slot, function: 0)
                if machine.device(rid) == nil { return rid }
            }
            b &+= 1
        }
    }

    /// A second unit of the vendor on the same machine, registered: run by the rig's
    /// unit's driver object when `sharingDriver`, else by a new (incompatible) one.
    @discardableResult
    public func addUnit(sharingDriver: Bool) throws -> IOMMUDevice {
        let u = try vendor.makeUnit(on: machine, sharingDriverWith: sharingDriver ? unit : nil)
        machine.addIOMMU(u)
        return u
    }

    /// A zeroed, physically contiguous DMA buffer of `bytes` (4 KiB multiple) filled
    /// with `fill`.
    public func buffer(fill: UInt8 = 0, bytes: Int = 4096) throws -> PhysicalAddress {
        let pa = try memory.allocContiguous(bytes: bytes)
        if fill != 0 { try memory.write(pa, [UInt8](repeating: fill, count: bytes)) }
        return pa
    }

    /// A new UNMANAGED paging domain for `dev` (default: the first device), as
    /// `iommu_paging_domain_alloc_flags` gives it.
    public func pagingDomain(for dev: PCIDevice? = nil, flags: DomainAllocFlags = []) throws -> IOMMUDomain {
        try iommu.allocPagingDomain(for: dev ?? devices[0], flags: flags)
    }

    /// An IOVA inside the aperture of `domain`: `offset` bytes above the larger of the
    /// aperture start and 16 MiB (clear of the low reserved windows some checks use).
    public func iova(_ domain: IOMMUDomain, _ offset: UInt64 = 0) -> IOVA {
        max(domain.geometry.apertureStart, 0x100_0000) + offset
    }

    /// Whether the hardware holds a live entry for (`dev`, `pasid`) (nil: the RID's).
    public func live(_ dev: PCIDevice, _ pasid: PASID?) -> Bool {
        guard let u = dev.iommu else { return false }
        return u.hardwareLock.withLock { u.hardware.hasLiveEntry(rid: dev.rid, pasid: pasid) }
    }

    /// A new process (an mm) on the machine, with the next pid from 101; its page table
    /// has the format of the machine's CPU architecture.
    public func process() throws -> IOMMUCore.Process {
        nextPid += 1
        return try machine.makeProcess(pid: nextPid)
    }

    /// A leak check starting now over this rig's machine and every unit on it (see
    /// ``LeakCheck``), with `extra` counters of the caller's own.
    public func leakCheck(extra: [String: () -> Int] = [:]) -> LeakCheck {
        LeakCheck(machine: machine, vendor: vendor, extra: extra)
    }
}
