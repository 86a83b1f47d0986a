import IOMMUCore
import IOMMUFDDriver

/// The kernel selftest's mock IOMMU driver (`mock_ops` in
/// `drivers/iommu/iommufd/selftest.c`): the deterministic reference vendor of the model.
///
/// What it does, as the kernel mock does:
/// - paging domains (``MockDomain``) with 2 KiB pages, aperture
///   [`MOCK_APERTURE_START`, `MOCK_APERTURE_LAST`], optional dirty tracking;
/// - nested domains (``MockNestedDomain``) on a `NEST_PARENT` paging parent, whose stage 1
///   is four fake IOTLB words;
/// - a static blocked domain with `set_dev_pasid` (`mock_blocking_domain`); no identity
///   domain (the kernel mock has none);
/// - `user_pasid_table`: a nested domain on the RID owns every PASID;
/// - `capable`: cache coherency always, dirty tracking unless ``MockDeviceFlags/noDirty``;
/// - the PASID 1024 quirk (`IOMMU_TEST_PASID_RESERVED`): every second non-blocking
///   `set_dev_pasid` of PASID 1024 fails with `ENOMEM`; a blocking one resets the count;
/// - I/O page faults: a `page_response` op and one iopf queue (`mock_iommu_iopf_queue`)
///   that a device joins while a domain with a fault handler is attached to it.
///
/// One difference: the kernel mock's legacy `default_domain` is its blocking domain,
/// because its devices never use the DMA API. Here mock devices stand in for any vendor's
/// devices, so the core gives them a paging DMA default domain like a real driver's.
///
/// Every driver object is its own `domain->owner`: a second instance is "another
/// driver" for the core's compatibility check (`EINVAL`).
public final class MockIOMMUDriver: IOMMUDriver, @unchecked Sendable {
    /// `"mock"`.
    public let name = "mock"
    /// `mock_ops.user_pasid_table` (true in the kernel; false only for the variant that
    /// models a driver attaching PASIDs one by one).
    public let userPasidTable: Bool
    /// `mock_ops.blocked_domain`: the static ``MockBlockedDomain``.
    public private(set) var blockedDomain: IOMMUDomain?
    /// `mock_iommu_iopf_queue` (`"mock-iopfq"`): the driver's I/O page-fault queue; nil
    /// for a driver built with `iopf: false`.
    public let iopfQueue: IOPFQueue?

    /// Ops every paging domain of this driver lacks (the check 2 variant).
    private let pagingOpsOmitted: DomainOps
    private let lock = Lock()
    private var _units: [MockIOMMU] = []
    /// What ``MockIOMMU/makeDevice(on:flags:ats:reservedRegions:)`` or a test hook set for
    /// a RID: the device's number (nil for a plain PCI device put behind a mock unit), its
    /// flags and its reserved regions.
    private var registered: [RID: (number: Int?, flags: MockDeviceFlags, regions: [ReservedRegion])] = [:]
    private var _calls: [MockCall] = []
    /// `mock_dev_ida`: the numbers of the mock devices that exist.
    private var deviceNumbers = Set<Int>()

    /// A mock driver.
    /// - Parameters:
    ///   - userPasidTable: `iommu_ops.user_pasid_table`; the kernel mock sets it.
    ///   - blockedDomainSetsPasid: test hook for conformance check 3: `false` builds a
    ///     driver whose blocked domain lacks `set_dev_pasid`, so the core cannot remove a
    ///     PASID and must refuse PASID attach with `EOPNOTSUPP`.
    ///   - pagingDomainsSetPasid: test hook for conformance check 2: `false` builds a
    ///     driver whose paging domains lack `set_dev_pasid`, as a driver that never
    ///     implemented PASID attach, so the core refuses it with `EOPNOTSUPP`.
    ///   - iopf: `false` builds a driver without `page_response` and without an iopf
    ///     queue, as a driver with no I/O page-fault support: `iopf_queue_add_device`
    ///     refuses its devices and attaching a domain with a fault handler fails with
    ///     `ENODEV`.
    public init(userPasidTable: Bool = true, blockedDomainSetsPasid: Bool = true, pagingDomainsSetPasid: Bool = true,
                iopf: Bool = true) {
        self.userPasidTable = userPasidTable
        pagingOpsOmitted = pagingDomainsSetPasid ? [] : .setDevPasid
        iopfQueue = iopf ? IOPFQueue(name: "mock-iopfq") : nil
        blockedDomain = nil
        blockedDomain = MockBlockedDomain(driver: self, setsPasid: blockedDomainSetsPasid)
    }

    /// The units this driver runs, in creation order.
    public var units: [MockIOMMU] { lock.withLock { _units } }

    func register(_ unit: MockIOMMU) { lock.withLock { _units.append(unit) } }

    /// Every `attach_dev`/`set_dev_pasid` callback the core made, oldest first.
    public var calls: [MockCall] { lock.withLock { _calls } }

    /// Forgets the recorded callbacks.
    public func clearCalls() { lock.withLock { _calls.removeAll() } }

    func record(_ op: MockCall.Op, _ domain: IOMMUDomain, _ dev: PCIDevice, pasid: PASID?, old: IOMMUDomain?,
                succeeded: Bool) {
        let published: Bool = dev.group.map { g in
            if case .reserved? = g.slot(pasid) { return false }
            return g.slot(pasid) != nil
        } ?? false
        let call = MockCall(op: op, domain: "\(domain)", blocking: domain.type == .blocked, rid: dev.rid,
                            pasid: pasid, old: old.map { "\($0)" }, entryPublished: published, succeeded: succeeded)
        lock.withLock { _calls.append(call) }
    }

    /// Test hook: reserved regions the driver reports for the device with `rid`
    /// (`iommu_ops.get_resv_regions`). Must be set before the device is added, since the
    /// core reads them at probe (`require_direct`, RESV_DIRECT maps).
    public func setReservedRegions(_ regions: [ReservedRegion], for rid: RID) {
        lock.withLock { registered[rid, default: (nil, [], [])].regions = regions }
    }

    func register(rid: RID, number: Int, flags: MockDeviceFlags, regions: [ReservedRegion]) {
        lock.withLock { registered[rid] = (number, flags, regions) }
    }

    /// Forgets a mock device made at `rid` and frees its number (`ida_free`). What a test
    /// hook set for a plain PCI device (no number) stays.
    func unregister(rid: RID) {
        lock.withLock {
            guard let n = registered[rid]?.number else { return }
            registered[rid] = nil
            deviceNumbers.remove(n)
        }
    }

    /// `ida_alloc(&mock_dev_ida)`: the lowest free device number whose RID `isFree`
    /// accepts, with that RID, taken until ``unregister(rid:)``.
    /// - Throws: `ENOSPC` when none is left.
    func allocDeviceNumber(_ isFree: (RID) -> Bool) throws(Errno) -> (Int, RID) {
        try lock.withLock { () throws(Errno) -> (Int, RID) in
            for n in 0..<Mock.maxDevices where !deviceNumbers.contains(n) {
                let rid = RID(bus: UInt8(0x80 + n / 32), device: UInt8(n % 32), function: 0)
                guard isFree(rid) else { continue }
                deviceNumbers.insert(n)
                return (n, rid)
            }
            throw .noSpace
        }
    }

    /// The mock state of a probed device, nil if the device is not behind this driver.
    public func state(of dev: PCIDevice) -> MockDeviceState? {
        guard dev.iommu?.driver === self else { return nil }
        return dev.driverPrivate as? MockDeviceState
    }

    /// The flags of a device: as registered by ``MockIOMMU/makeDevice(on:flags:ats:reservedRegions:)``,
    /// else derived from its PCI capabilities (PASID capability → ``MockDeviceFlags/pasid``).
    func flags(of dev: PCIDevice) -> MockDeviceFlags {
        if let s = dev.driverPrivate as? MockDeviceState { return s.flags }
        return lock.withLock { registered[dev.rid]?.flags } ?? (dev.caps.pasid != nil ? [.pasid] : [])
    }

    // MARK: iommu_ops

    /// `mock_probe_device`: attaches the per-device ``MockDeviceState``. The kernel mock
    /// accepts only devices on its own bus; the model accepts any PCI device placed
    /// behind a mock unit, so topology tests can use plain PCI devices, and enables PRI
    /// on a device that has it, so it can send page requests (the kernel mock's devices
    /// are not PCI and get theirs from `IOMMU_TEST_OP_TRIGGER_IOPF`).
    /// - Throws: `ENODEV` if the device is not behind a ``MockIOMMU``.
    public func probeDevice(_ dev: PCIDevice) throws(Errno) {
        guard let unit = dev.iommu as? MockIOMMU, unit.driver === self else { throw .noDevice.from("mock_probe_device", "\(dev.rid) is not behind a mock unit of this driver") }
        dev.driverPrivate = MockDeviceState(flags: flags(of: dev))
        dev.priEnabled = dev.caps.pri
    }

    /// `iommu_ops.release_device`: clears the device's hardware entries (RID and every
    /// PASID) and releases the per-device state. A device released while still on the
    /// iopf queue leaves it, so no group of a vanished device stays pending.
    public func releaseDevice(_ dev: PCIDevice) {
        if let state = dev.driverPrivate as? MockDeviceState, state.iopfRefcount > 0 {
            state.iopfRefcount = 0
            iopfQueue?.removeDevice(dev)
        }
        if let unit = dev.iommu as? MockIOMMU {
            unit.hardwareLock.withLock { unit.mockHardware.forget(rid: dev.rid) }
        }
        // mock_dev_release: the device's number is free again.
        unregister(rid: dev.rid)
        dev.driverPrivate = nil
        dev.priEnabled = false
    }

    /// `mock_domain_alloc_paging_flags`.
    /// - Throws: `EOPNOTSUPP` for user data, a flag outside DIRTY_TRACKING | NEST_PARENT |
    ///   PASID, or DIRTY_TRACKING on a ``MockDeviceFlags/noDirty`` device.
    public func domainAllocPaging(_ dev: PCIDevice, flags: DomainAllocFlags, userData: [UInt8]?) throws(Errno) -> IOMMUDomain {
        try allocPagingDomain(for: dev, flags: flags, userData: userData, omitting: pagingOpsOmitted)
    }

    /// Test hook for conformance check 2: allocates a paging domain as
    /// `mock_domain_alloc_paging_flags` does, but whose ops lack `omitting` (e.g.
    /// `.setDevPasid`), as a driver that never implemented them would.
    /// - Throws: as ``domainAllocPaging(_:flags:userData:)``.
    public func allocPagingDomain(for dev: PCIDevice, flags: DomainAllocFlags, userData: [UInt8]? = nil,
                                  omitting: DomainOps) throws(Errno) -> MockDomain {
        guard userData == nil else { throw .notSupported.from("mock_domain_alloc_paging_flags", "mock paging domains take no user data") }
        let known: DomainAllocFlags = [.dirtyTracking, .nestParent, .pasid]
        let devFlags = self.flags(of: dev)
        guard flags.isSubset(of: known) else { throw .notSupported.from("mock_domain_alloc_paging_flags", "unknown flags \(flags.subtracting(known))") }
        if flags.contains(.dirtyTracking) && devFlags.contains(.noDirty) { throw .notSupported.from("mock_domain_alloc_paging_flags", "dirty tracking for a device flagged MOCK_FLAGS_DEVICE_NO_DIRTY") }
        return MockDomain(driver: self, allocFlags: flags, hugeIOVA: devFlags.contains(.hugeIOVA), omitting: omitting)
    }

    /// `mock_domain_alloc_nested`.
    /// - Throws: `EOPNOTSUPP` for a flag other than `IOMMU_HWPT_ALLOC_PASID`; `EINVAL` if
    ///   `parent` is not a mock paging domain of this driver allocated with NEST_PARENT,
    ///   or `userData` is shorter than `struct iommu_hwpt_selftest` (4 bytes); `E2BIG` for
    ///   non-zero bytes past it (`copy_struct_from_user`).
    public func domainAllocNested(_ dev: PCIDevice, parent: IOMMUDomain, flags: DomainAllocFlags,
                                  userData: [UInt8]) throws(Errno) -> IOMMUDomain {
        guard flags.isSubset(of: [.pasid]) else { throw .notSupported.from("mock_domain_alloc_nested", "unknown flags \(flags.subtracting([.pasid]))") }
        guard let p = parent as? MockDomain, p.owner === self, p.allocFlags.contains(.nestParent) else {
            throw .invalidArgument.from("mock_domain_alloc_nested", "the parent is not a mock nesting parent of this driver")
        }
        guard userData.count >= IOMMUHWPTSelftest.size else { throw .invalidArgument.from("mock_domain_alloc_nested", "\(userData.count) bytes of data, below struct iommu_hwpt_selftest") }
        guard userData[IOMMUHWPTSelftest.size...].allSatisfy({ $0 == 0 }) else { throw .tooBig.from("mock_domain_alloc_nested", "non-zero bytes past struct iommu_hwpt_selftest") }
        return MockNestedDomain(driver: self, parent: p, iotlb: IOMMUHWPTSelftest(bytes: userData).iotlb)
    }

    /// `mock_domain_capable`: cache coherency always; dirty tracking unless the device
    /// is ``MockDeviceFlags/noDirty``; nothing else.
    public func capable(_ dev: PCIDevice, _ cap: IOMMUCap) -> Bool {
        switch cap {
        case .cacheCoherency: true
        case .dirtyTracking: !flags(of: dev).contains(.noDirty)
        default: false
        }
    }

    /// The reserved regions set with ``setReservedRegions(_:for:)`` or at device creation
    /// (the kernel mock reports none).
    public func reservedRegions(_ dev: PCIDevice) -> [ReservedRegion] {
        lock.withLock { registered[dev.rid]?.regions ?? [] }
    }

    // MARK: shared domain-op helpers

    /// The vIOMMU part of `mock_domain_nop_attach`, for every RID attach: a nested domain
    /// made through a vIOMMU needs the device's vDEVICE there, whose virtual ID the device
    /// then reports events under; any other domain leaves no vIOMMU.
    /// - Throws: `ENOENT` for a device without a vDEVICE in the domain's vIOMMU.
    func attachVIOMMU(_ dev: PCIDevice, for domain: IOMMUDomain) throws(Errno) {
        guard let state = dev.driverPrivate as? MockDeviceState else { return }
        var viommu: MockVIOMMU?
        var virtualID: UInt64 = 0
        if let nested = domain as? MockNestedDomain, let v = nested.viommu {
            virtualID = try v.core.virtualID(of: dev)
            viommu = v
        }
        if viommu !== state.viommu {
            state.viommu = viommu
            state.virtualID = virtualID
        }
    }

    /// The part of `mock_domain_set_dev_pasid_nop` every domain shares: the PASID 1024
    /// quirk and the injected failure.
    /// - Throws: `ENOMEM` on the second non-blocking set of PASID 1024; the injected errno.
    func checkSetDevPasid(_ dev: PCIDevice, pasid: PASID, blocking: Bool) throws(Errno) {
        guard let state = dev.driverPrivate as? MockDeviceState else { throw .noDevice.from("mock_domain_set_dev_pasid_nop", "\(dev.rid) was not probed by the mock driver") }
        if !blocking, let e = state.failSetDevPasid { throw e }
        guard pasid == Mock.reservedTestPasid else { return }
        if blocking {
            state.pasid1024FakeError = false
        } else if state.pasid1024FakeError {
            state.pasid1024FakeError = false
            throw .noMemory.from("mock_domain_set_dev_pasid_nop", "the test's fake error on the second set of PASID 1024")
        } else {
            state.pasid1024FakeError = true
        }
    }

    /// Writes the hardware entry of (`dev`, `pasid`) and drops the cached translations of
    /// the domain it replaces there, as a driver does when it tears an entry down.
    func program(_ dev: PCIDevice, pasid: PASID?, _ entry: MockHardware.Entry?) {
        guard let unit = dev.iommu as? MockIOMMU else { return }
        unit.hardwareLock.withLock {
            let hw = unit.mockHardware
            let previous = hw.entry(rid: dev.rid, pasid: pasid)
            hw.program(rid: dev.rid, pasid: pasid, entry)
            switch previous {
            case .paging(_, let serial)?:
                hw.invalidate(serial: serial, pasid: pasid)
            case .nested(_, let serial)?:
                // A nested RID entry with the user PASID table served every PASID.
                if pasid == nil && hw.userPasidTable { hw.invalidateAll(serial: serial) } else {
                    hw.invalidate(serial: serial, pasid: pasid)
                }
            default:
                break
            }
        }
    }
}
