/// Capabilities a driver reports per device (`enum iommu_cap`).
public enum IOMMUCap: Sendable, Hashable {
    /// `IOMMU_CAP_CACHE_COHERENCY`: DMA is cache coherent (required by iommufd bind).
    case cacheCoherency
    /// `IOMMU_CAP_NOEXEC`: `IOMMU_NOEXEC` is honoured.
    case noexec
    /// `IOMMU_CAP_PRE_BOOT_PROTECTION`.
    case preBootProtection
    /// `IOMMU_CAP_ENFORCE_CACHE_COHERENCY`.
    case enforceCacheCoherency
    /// `IOMMU_CAP_DIRTY_TRACKING`.
    case dirtyTracking
}

/// A vendor IOMMU driver: the model of `struct iommu_ops`.
///
/// One object per driver (all VT-d units share one), so that `domain.owner === driver`
/// is the kernel's `domain->owner == ops` compatibility test. Per-unit state lives in the
/// driver's ``IOMMUDevice`` subclass. Operations a driver does not implement keep the
/// default from the protocol extension, which returns what the core returns for a NULL op.
public protocol IOMMUDriver: AnyObject, Sendable {
    /// The driver's name (`"intel-iommu"`, `"mock"`).
    var name: String { get }

    /// `iommu_ops.probe_device`: set up per-device state; may enable PASID/ATS/PRI.
    /// Errors make the device unusable with this IOMMU (`ENODEV`).
    func probeDevice(_ dev: PCIDevice) throws(Errno)

    /// `iommu_ops.release_device`.
    func releaseDevice(_ dev: PCIDevice)

    /// `iommu_ops.domain_alloc_paging_flags`: `EOPNOTSUPP` for unsupported flags or user
    /// data, `ENOMEM`.
    func domainAllocPaging(_ dev: PCIDevice, flags: DomainAllocFlags, userData: [UInt8]?) throws(Errno) -> IOMMUDomain

    /// `iommu_ops.domain_alloc_sva`: `EOPNOTSUPP` when absent.
    func domainAllocSVA(_ dev: PCIDevice, mm: Process) throws(Errno) -> IOMMUDomain

    /// `iommu_ops.domain_alloc_nested`: `EOPNOTSUPP` when absent.
    func domainAllocNested(_ dev: PCIDevice, parent: IOMMUDomain, flags: DomainAllocFlags,
                           userData: [UInt8]) throws(Errno) -> IOMMUDomain

    /// `iommu_ops.identity_domain`: the static identity domain, if the driver has one.
    var identityDomain: IOMMUDomain? { get }
    /// `iommu_ops.blocked_domain`: the static blocking domain; its `set_dev_pasid` is how
    /// the core removes a PASID.
    var blockedDomain: IOMMUDomain? { get }
    /// `iommu_ops.release_domain`: attached before `release_device`, if set.
    var releaseDomain: IOMMUDomain? { get }

    /// `iommu_ops.def_domain_type`: `.identity` or `.dma` to force the default domain
    /// type of a device, nil for no preference.
    func defDomainType(_ dev: PCIDevice) -> DomainType?

    /// `iommu_ops.get_resv_regions`.
    func reservedRegions(_ dev: PCIDevice) -> [ReservedRegion]

    /// `iommu_ops.capable`.
    func capable(_ dev: PCIDevice, _ cap: IOMMUCap) -> Bool

    /// `iommu_ops.user_pasid_table`: the driver can hand the whole PASID table of a RID to
    /// a user (a nested domain attached to the RID translates every PASID).
    var userPasidTable: Bool { get }

    /// `iommu_ops.page_response`: deliver a page-group response to the device that sent
    /// `fault` (the last request of its group). Nil, the default, is the kernel's NULL
    /// op: the driver cannot take part in I/O page faults and `iopf_queue_add_device`
    /// fails with `ENODEV`.
    var pageResponse: IOMMUPageResponseOp? { get }
}

extension IOMMUDriver {
    /// Default: no per-device release work.
    public func releaseDevice(_ dev: PCIDevice) {}
    /// Default: no SVA support (`EOPNOTSUPP`).
    public func domainAllocSVA(_ dev: PCIDevice, mm: Process) throws(Errno) -> IOMMUDomain {
        throw .notSupported.from("domain_alloc_sva", "\(name) has no SVA domains")
    }
    /// Default: no nesting support (`EOPNOTSUPP`).
    public func domainAllocNested(_ dev: PCIDevice, parent: IOMMUDomain, flags: DomainAllocFlags,
                                  userData: [UInt8]) throws(Errno) -> IOMMUDomain {
        throw .notSupported.from("domain_alloc_nested", "\(name) has no nested domains")
    }
    /// Default: no identity domain.
    public var identityDomain: IOMMUDomain? { nil }
    /// Default: no release domain.
    public var releaseDomain: IOMMUDomain? { nil }
    /// Default: no preference.
    public func defDomainType(_ dev: PCIDevice) -> DomainType? { nil }
    /// Default: no reserved regions.
    public func reservedRegions(_ dev: PCIDevice) -> [ReservedRegion] { [] }
    /// Default: cache coherent, nothing else.
    public func capable(_ dev: PCIDevice, _ cap: IOMMUCap) -> Bool { cap == .cacheCoherency }
    /// Default: PASIDs are attached one by one.
    public var userPasidTable: Bool { false }
    /// Default: no `page_response` op (no I/O page-fault support).
    public var pageResponse: IOMMUPageResponseOp? { nil }
}

/// One hardware IOMMU instance (`struct iommu_device`): the driver that runs it, its
/// hardware model, and its PASID space. Vendors subclass it to hold per-unit state
/// (VT-d: the DID allocator and the queued-invalidation engine).
open class IOMMUDevice: @unchecked Sendable, CustomStringConvertible {
    /// A name for logs (`"dmar0"`).
    public let name: String
    /// The driver (`iommu_device.ops`).
    public let driver: any IOMMUDriver
    /// The hardware model that translates DMA for devices behind this unit.
    public let hardware: any IOMMUHardware
    /// `iommu_device.max_pasids`: the hardware PASID space, 0 without PASID support.
    public let maxPasids: UInt32
    /// The event log of the machine the unit is registered with (nil before
    /// ``Machine/addIOMMU(_:)``), for the vendor's own tracepoints.
    public internal(set) var events: EventLog?
    /// Serializes the hardware model: every translation and every invalidation hold it,
    /// as the hardware's own pipeline would order them.
    public let hardwareLock = Lock()
    /// The machine the unit is registered on (`iommu_device_register`), nil before.
    /// Weak: the machine owns its units.
    public internal(set) weak var machine: Machine?
    /// DMA statistics of devices behind this unit; guarded by ``hardwareLock``. Kept
    /// behind a pointer so the DMA path updates them without dynamic exclusivity checks,
    /// which cost more than the update itself.
    let dmaStatsStorage: UnsafeMutablePointer<DMAStats> = {
        let p = UnsafeMutablePointer<DMAStats>.allocate(capacity: 1)
        p.initialize(to: DMAStats())
        return p
    }()

    var dmaStats: DMAStats { dmaStatsStorage.pointee }

    deinit { dmaStatsStorage.deallocate() }

    /// A unit run by `driver` with `hardware`.
    public init(name: String, driver: any IOMMUDriver, hardware: any IOMMUHardware, maxPasids: UInt32) {
        self.name = name
        self.driver = driver
        self.hardware = hardware
        self.maxPasids = maxPasids
    }

    /// The unit's name.
    public var description: String { name }

    // MARK: page requests (PCIe PRI)

    /// A page request from a device below this unit arrives (a PCIe Page Request
    /// Message, sent with ``PCIDevice/sendPageRequest(_:)``). The vendor's hardware model
    /// takes it its own way: VT-d writes it into its page-request queue, where it waits
    /// for ``servicePageRequests()``; a model without a queue may hand it to its driver at
    /// once, which reports it to the core with
    /// ``IOMMUSubsystem/reportDeviceFault(_:_:)`` (`iommu_report_device_fault`), as the
    /// kernel's selftest mock does for `IOMMU_TEST_OP_TRIGGER_IOPF`.
    ///
    /// The default is a unit without page-request support, which drops every request.
    /// - Returns: whether the unit took the request: false when it has no page-request
    ///   support or its queue is full (the request is lost, as on hardware).
    open func receivePageRequest(_ request: PageRequest) -> Bool { false }

    /// One run of the driver's page-request handler (VT-d: `prq_event_thread`), driven
    /// explicitly rather than by an interrupt: every request the hardware queued is read
    /// and reported to the core (`iommu_report_device_fault`), which groups it and runs
    /// the domain's fault handler or answers it. The default, for a unit without a
    /// page-request queue, does nothing.
    /// - Returns: the number of requests read from the hardware queue.
    @discardableResult
    open func servicePageRequests() -> Int { 0 }

    /// What this unit's driver knows about `domain`, for the object graph: the domain's
    /// tag on this unit (VT-d: `DID 3`; SMMUv3: `ASID 5`, `VMID 2`) and its page-table
    /// root (`pgd 0x...`), one line each; empty for a domain the unit has no state for.
    /// The vendor's hook into ``ObjectGraph``; the default knows nothing.
    open func graphDetails(of domain: IOMMUDomain) -> [String] { [] }
}

/// A reserved IOVA region (`struct iommu_resv_region`).
public struct ReservedRegion: Hashable, Sendable {
    /// `enum iommu_resv_type`.
    public enum Kind: Hashable, Sendable {
        /// `IOMMU_RESV_DIRECT`: must be identity-mapped at all times.
        case direct
        /// `IOMMU_RESV_DIRECT_RELAXABLE`: identity-mapped, may be dropped for assignment.
        case directRelaxable
        /// `IOMMU_RESV_RESERVED`: never map.
        case reserved
        /// `IOMMU_RESV_MSI`: hardware MSI window, untranslated.
        case msi
        /// `IOMMU_RESV_SW_MSI`: software-managed MSI window.
        case swMSI
    }
    /// First address.
    public var start: IOVA
    /// Length in bytes.
    public var length: UInt64
    /// Protection for direct mappings.
    public var prot: IOMMUProt
    /// The region type.
    public var kind: Kind

    /// A region of `kind`.
    public init(start: IOVA, length: UInt64, prot: IOMMUProt = [.read, .write], kind: Kind) {
        self.start = start
        self.length = length
        self.prot = prot
        self.kind = kind
    }
}

/// Per-unit DMA statistics, updated under the unit's hardware lock.
struct DMAStats {
    var requests = 0
    var bytes = 0
    var faults = 0
    var atcHits = 0
}
