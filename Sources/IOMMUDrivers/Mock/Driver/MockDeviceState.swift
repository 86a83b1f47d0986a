import IOMMUCore

/// Per-device state of the mock driver (`struct mock_dev`), kept in
/// `PCIDevice.driverPrivate` from probe on.
///
/// `@unchecked Sendable`: the quirk counter changes only inside driver callbacks, which
/// the core runs under its group lock; the test hooks are set by a test before the calls
/// they affect.
public final class MockDeviceState: @unchecked Sendable {
    /// The device's mock flags (`mock_dev.flags`).
    public let flags: MockDeviceFlags
    /// `mock_dev.pasid_1024_fake_error`: armed by a successful non-blocking
    /// `set_dev_pasid` of PASID 1024; the next one fails with `ENOMEM` and disarms it; a
    /// blocking one disarms it.
    public internal(set) var pasid1024FakeError = false
    /// `mock_dev.iopf_refcount`: attachments (RID and PASIDs) of domains with a fault
    /// handler; the device is on the driver's iopf queue while it is non-zero.
    public internal(set) var iopfRefcount = 0
    /// `mock_dev.domain`: the domain the RID was last attached to, whose fault-handler
    /// attachment the next RID attach gives up. Weak: the core owns domains.
    weak var ridDomain: IOMMUDomain?
    /// `mock_dev.cache`: four words a vIOMMU invalidation clears, each
    /// `IOMMU_TEST_DEV_CACHE_DEFAULT` at first.
    public internal(set) var cache = [UInt32](repeating: Mock.devCacheDefault, count: Mock.devCacheCount)
    /// `mock_dev.viommu`: the vIOMMU of the nested domain the RID is attached to, nil for
    /// any other domain. Weak: iommufd owns vIOMMUs.
    public internal(set) weak var viommu: MockVIOMMU?
    /// `mock_dev.vdev_id`: the device's virtual ID in ``viommu``.
    public internal(set) var virtualID: UInt64 = 0

    /// Test hook (no kernel counterpart): while set, every non-blocking `set_dev_pasid` on
    /// this device fails with this errno before touching the hardware, so conformance
    /// checks 7 and 10 can exercise the core's rollback.
    public var failSetDevPasid: Errno?
    /// Test hook (no kernel counterpart): while set, `attach_dev` of a non-blocking domain
    /// on this device fails with this errno and leaves the RID entry as it was.
    public var failAttachDev: Errno?

    init(flags: MockDeviceFlags) { self.flags = flags }
}

/// One driver callback the mock recorded, oldest first in ``MockIOMMUDriver/calls``:
/// lets tests assert which callbacks the core made, in which order, and what the core's
/// PASID array held at that moment.
public struct MockCall: Hashable, Sendable, CustomStringConvertible {
    /// Which callback ran.
    public enum Op: String, Hashable, Sendable {
        /// `iommu_domain_ops.attach_dev`.
        case attachDev = "attach_dev"
        /// `iommu_domain_ops.set_dev_pasid`.
        case setDevPasid = "set_dev_pasid"
    }
    /// The callback.
    public let op: Op
    /// The domain whose op ran (its description, e.g. `BLOCKED#1`).
    public let domain: String
    /// Whether that domain is the blocked domain.
    public let blocking: Bool
    /// The device.
    public let rid: RID
    /// The PASID (0 for `attach_dev`).
    public let pasid: PASID?
    /// The `old` argument's description, or nil.
    public let old: String?
    /// Whether the group's PASID array held a published (not merely reserved) entry at
    /// `pasid` when the callback ran: ``/IOMMUCore/Invariant/entryVisibility`` says attach
    /// programs before publishing and detach tears down before erasing.
    public let entryPublished: Bool
    /// Whether the callback succeeded.
    public let succeeded: Bool

    /// `set_dev_pasid BLOCKED#1 00:01.0 pasid 5 old=DMA#3 published ok`.
    public var description: String {
        "\(op.rawValue) \(domain) \(rid) pasid \(pasid.map { "\($0)" } ?? "-") old=\(old ?? "-") \(entryPublished ? "published" : "unpublished") \(succeeded ? "ok" : "failed")"
    }
}
