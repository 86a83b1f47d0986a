/// An IOMMU domain (`struct iommu_domain` plus its `iommu_domain_ops`): a translation
/// that can be attached to a device's RID or to PASIDs.
///
/// Vendor drivers subclass it and override the operations they implement, listing them
/// in ``ops``; the core never calls an operation that is not listed, and returns the
/// kernel's errno for a missing one. A domain has identity: the core compares domains by
/// reference, as the kernel compares pointers.
open class IOMMUDomain: @unchecked Sendable, CustomStringConvertible {
    // `type`, `pgsizeBitmap` and `geometry` are read on every map and unmap, from any
    // thread, and written only while the domain is set up (before it is shared): final,
    // so a read is a load rather than a call, and without the dynamic exclusivity check
    // (a runtime call per read) that a class `var` otherwise costs.

    /// `iommu_domain.type`. The core sets DMA/DMA-FQ on default domains it allocates.
    @exclusivity(unchecked) public internal(set) final var type: DomainType
    /// The driver that allocated the domain (`iommu_domain.owner`); attach refuses a
    /// domain from another driver with `EINVAL`.
    public let owner: any IOMMUDriver
    /// The operations this domain implements.
    public let ops: DomainOps
    /// `iommu_domain.pgsize_bitmap`: the page sizes the table supports.
    @exclusivity(unchecked) public final var pgsizeBitmap: UInt64
    /// `iommu_domain.geometry`.
    @exclusivity(unchecked) public final var geometry: DomainGeometry
    /// A small sequential number, for logs and violations.
    public let serial: Int
    /// For SVA domains: the process whose page table this domain shares (`domain->mm`).
    public var mm: Process?
    /// For SVA domains: how many devices share the domain (`domain->users`).
    public var users = 0
    /// The fault handler for I/O page faults routed to this domain (`iopf_handler`), if any.
    public var hasIOPFHandler = false
    /// Set by the core once ``free()`` ran, so use-after-free shows up in the checker.
    public internal(set) var isFreed = false
    /// The DMA-API state of a DMA/DMA-FQ default domain (`iommu_dma_cookie`: the IOVA
    /// allocator and the flush queue), created on first use by the DMA API.
    var dmaCookie: DMACookie?
    /// The I/O page-fault handler of the domain (`iommu_domain.iopf_handler`): the core
    /// routes page-request groups for attachments of this domain to it. The SVA core
    /// installs ``SVAIOPFHandler`` on every SVA domain it allocates. Setting it keeps
    /// ``hasIOPFHandler`` in step.
    public var iopfHandler: (any IOPFHandler)? {
        didSet { hasIOPFHandler = iopfHandler != nil }
    }
    /// The domain's fault handler (`iommu_domain.handler`, set by
    /// `iommu_set_fault_handler`): what `report_iommu_fault` calls. Guarded by the core's
    /// lock (``IOMMUSubsystem/setFaultHandler(_:_:)``).
    var faultHandler: IOMMUFaultHandler?

    nonisolated(unsafe) private static var nextSerial = 1
    private static let serialLock = Lock()

    /// Creates a domain. Drivers call this from their `domain_alloc_*` operations.
    public init(type: DomainType, owner: any IOMMUDriver, ops: DomainOps,
                pgsizeBitmap: UInt64 = 0, geometry: DomainGeometry = DomainGeometry()) {
        self.type = type
        self.owner = owner
        self.ops = ops
        self.pgsizeBitmap = pgsizeBitmap
        self.geometry = geometry
        serial = Self.serialLock.withLock {
            defer { Self.nextSerial += 1 }
            return Self.nextSerial
        }
    }

    /// `TYPE#serial`, e.g. `DMA#3`.
    public var description: String { "\(type)#\(serial)" }

    /// `iommu_domain_ops.attach_dev(domain, dev, old)`: make this domain translate the
    /// device's RID. Errno contract (iommu.h): `EINVAL` incompatible (soft failure),
    /// `ENOMEM`, `ENOSPC` (no DID/ASID), `EBUSY`, `ENODEV`.
    open func attachDev(_ dev: PCIDevice, old: IOMMUDomain?) throws(Errno) {
        throw .noDevice.from("attach_dev", "\(self) has no attach_dev")
    }

    /// `iommu_domain_ops.set_dev_pasid(domain, dev, pasid, old)`: set or replace the
    /// translation of one PASID. On error the PASID must keep the `old` configuration.
    open func setDevPasid(_ dev: PCIDevice, pasid: PASID, old: IOMMUDomain?) throws(Errno) {
        throw .notSupported.from("set_dev_pasid", "\(self) has no set_dev_pasid")
    }

    /// `iommu_domain_ops.map_pages`: map `pgcount` pages of `pgsize`, advancing `mapped`.
    open func mapPages(iova: IOVA, paddr: PhysicalAddress, pgsize: UInt64, pgcount: Int, prot: IOMMUProt,
                       mapped: inout UInt64) throws(Errno) {
        throw .noDevice.from("map_pages", "\(self) has no map_pages")
    }

    /// `iommu_domain_ops.unmap_pages`: returns bytes unmapped (0 at a hole or a block that
    /// would have to be split) and records what must be invalidated in `gather`.
    open func unmapPages(iova: IOVA, pgsize: UInt64, pgcount: Int, gather: inout IOTLBGather) -> UInt64 { 0 }

    /// `iommu_domain_ops.flush_iotlb_all`: invalidate every translation of the domain.
    open func flushIOTLBAll() {}

    /// `iommu_domain_ops.iotlb_sync_map`: make new mappings visible (caching mode, RWBF).
    open func iotlbSyncMap(iova: IOVA, size: UInt64) throws(Errno) {}

    /// `iommu_domain_ops.iotlb_sync`: invalidate what `gather` recorded; afterwards the
    /// core frees the gather's table pages.
    open func iotlbSync(_ gather: inout IOTLBGather) {}

    /// `iommu_domain_ops.iova_to_phys`: 0 when not mapped.
    open func iovaToPhys(_ iova: IOVA) -> PhysicalAddress { 0 }

    /// `dirty_ops.set_dirty_tracking`.
    open func setDirtyTracking(_ enabled: Bool) throws(Errno) {
        throw .notSupported.from("set_dirty_tracking", "\(self) does not track dirty pages")
    }

    /// `dirty_ops.read_and_clear_dirty`: reports dirty (iova, size) ranges.
    open func readAndClearDirty(iova: IOVA, size: UInt64, clear: Bool,
                                _ report: (IOVA, UInt64) -> Void) throws(Errno) {
        throw .notSupported.from("read_and_clear_dirty", "\(self) does not track dirty pages")
    }

    /// `iommu_domain_ops.set_pgtable_quirks`: page-table quirks for a table the driver has
    /// not made yet (listed as ``DomainOps/setPgtableQuirks``).
    open func setPgtableQuirks(_ quirks: IOPageTableQuirks) throws(Errno) { throw .invalidArgument }

    /// `iommu_domain_ops.free`: release the domain's page tables and IDs.
    open func free() {}
}

/// An attach handle (`struct iommu_attach_handle`): what the core stores in a group's
/// PASID array when the attacher wants page faults routed back to it (iommufd, SVA).
/// Identity matters: replacing a PASID with the handle already stored is `EINVAL`.
open class AttachHandle: @unchecked Sendable {
    /// The attached domain; set by the core on attach.
    public internal(set) var domain: IOMMUDomain?
    /// Creates an empty handle.
    public init() {}
}
