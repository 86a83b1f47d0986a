/// The optional things a vendor model can do, as the conformance suite asks about them.
///
/// A check lists the capabilities it needs; on a vendor that lacks one the check is
/// reported as skipped with the missing capabilities' names, never as passed. A vendor
/// declares a capability only if it passes every check that needs it.
public struct VendorCapabilities: OptionSet, Hashable, Sendable, CustomStringConvertible {
    /// The raw bits.
    public let rawValue: UInt32
    /// Wraps raw bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// PASID attach: the unit has a PASID space (`iommu_device.max_pasids` > 0) and the
    /// driver's paging and blocked domains implement `set_dev_pasid`.
    public static let pasid = VendorCapabilities(rawValue: 1 << 0)
    /// `iommu_ops.user_pasid_table`: a nested domain attached to the RID owns every PASID
    /// of the device ("RID plus all PASIDs"). Needs ``nesting``.
    public static let userPasidTable = VendorCapabilities(rawValue: 1 << 1)
    /// `domain_alloc_nested` on a `IOMMU_HWPT_ALLOC_NEST_PARENT` paging parent; the vendor
    /// implements ``ConformanceVendor/nestedDomain(in:for:)``.
    public static let nesting = VendorCapabilities(rawValue: 1 << 2)
    /// The hardware caches translations until the driver invalidates them, so a stale
    /// hit is possible between `iommu_unmap_fast` and `iommu_iotlb_sync`.
    public static let cachesTranslations = VendorCapabilities(rawValue: 1 << 3)
    /// `iommu_ops.identity_domain` and `iommu_ops.release_domain` are both set.
    public static let identityReleaseDomain = VendorCapabilities(rawValue: 1 << 4)
    /// The vendor can build the driver variants of ``DriverVariant`` (a driver missing an
    /// op or a flag) with ``ConformanceVendor/makeUnit(on:variant:)``.
    public static let driverVariants = VendorCapabilities(rawValue: 1 << 5)
    /// The vendor can make its driver fail on demand (``ConformanceVendor/failSetDevPasid(_:on:)``,
    /// ``ConformanceVendor/failMapPages(after:in:)``) and report the `attach_dev` and
    /// `set_dev_pasid` callbacks the core made (``ConformanceVendor/driverCalls(on:)``).
    public static let failureInjection = VendorCapabilities(rawValue: 1 << 6)
    /// Firmware can describe an `IOMMU_RESV_DIRECT` region for a device (VT-d RMRR, ARM
    /// IORT RMR) through ``ConformanceVendor/describeReservedRegions(_:for:on:)``.
    public static let directMappedRegions = VendorCapabilities(rawValue: 1 << 7)
    /// The vendor can make its driver report a reserved region of any kind for a device
    /// (real drivers report only what firmware and the MSI design give them).
    public static let anyReservedRegion = VendorCapabilities(rawValue: 1 << 8)
    /// Shared virtual addressing: `domain_alloc_sva`, so `iommu_sva_bind_device` works.
    /// Needs ``pasid``.
    public static let sva = VendorCapabilities(rawValue: 1 << 9)
    /// Page requests: devices with PRI can send page requests to the unit
    /// (``/IOMMUCore/IOMMUDevice/receivePageRequest(_:)``), the driver reports them to the core and
    /// delivers the core's responses (`iommu_ops.page_response`).
    public static let pageRequests = VendorCapabilities(rawValue: 1 << 10)
    /// Dirty tracking: paging domains allocated with `IOMMU_HWPT_ALLOC_DIRTY_TRACKING`
    /// have `dirty_ops`, and the hardware records device writes in them while tracking is
    /// on.
    public static let dirtyTracking = VendorCapabilities(rawValue: 1 << 11)
    /// A domain allocated for a device behind one unit can be attached to devices behind
    /// another unit of the same driver object (VT-d checks compatibility per unit). A
    /// vendor that finalises each domain for one unit (SMMUv3: `smmu_domain->smmu`)
    /// refuses that attach with `EINVAL` and lacks it.
    public static let domainsSpanUnits = VendorCapabilities(rawValue: 1 << 12)

    /// Every capability with its name, in declaration order.
    public static let named: [(VendorCapabilities, String)] = [
        (.pasid, "pasid"), (.userPasidTable, "userPasidTable"), (.nesting, "nesting"),
        (.cachesTranslations, "cachesTranslations"), (.identityReleaseDomain, "identityReleaseDomain"),
        (.driverVariants, "driverVariants"), (.failureInjection, "failureInjection"),
        (.directMappedRegions, "directMappedRegions"), (.anyReservedRegion, "anyReservedRegion"),
        (.sva, "sva"), (.pageRequests, "pageRequests"), (.dirtyTracking, "dirtyTracking"),
        (.domainsSpanUnits, "domainsSpanUnits"),
    ]

    /// The names of the capabilities in the set, e.g. `nesting, userPasidTable`.
    public var names: [String] { Self.named.filter { contains($0.0) }.map(\.1) }

    /// The names joined with `, `; `none` for the empty set.
    public var description: String { isEmpty ? "none" : names.joined(separator: ", ") }
}
