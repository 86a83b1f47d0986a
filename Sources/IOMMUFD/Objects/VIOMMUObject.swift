import IOMMUCore

/// `IOMMUFD_OBJ_VIOMMU` (`struct iommufd_viommu`): a slice of a physical IOMMU given to one
/// VM, over a nesting-parent paging HWPT (the VM's stage 2). It holds the VM's virtual
/// device IDs (its vDEVICEs), delivers virtual events (its vEVENTQs), builds nested
/// domains in the driver's format, and may own HW queues and MMIO pages user space maps.
///
/// References: it holds one on its parent HWPT; every vDEVICE, vEVENTQ, HW queue, nested
/// HWPT made on it, and every live `mmap` of its pages, holds one on it.
public final class VIOMMUObject: IOMMUFDObject, IOMMUFDVIOMMUCore, @unchecked Sendable {
    /// The vIOMMU ID (`obj->id`).
    public var id: VIOMMUObjectID { VIOMMUObjectID(rawValue: rawID) }
    /// The context, which outlives its objects.
    unowned(unsafe) let ctx: IOMMUFD
    /// `viommu->type`.
    public let viommuType: UInt32
    /// `viommu->hwpt`: the nesting parent (a users reference is held).
    let hwpt: HWPTPagingObject
    /// `viommu->iommu_dev`: the physical IOMMU behind it; devices of other IOMMUs cannot
    /// join it.
    let unit: IOMMUDevice
    /// `viommu->ops`: the driver's vIOMMU, nil until `viommu_init` succeeded.
    var ops: (any IOMMUFDVIOMMUOps)?
    /// `viommu->vdevs`: vDEVICEs by virtual ID.
    var vdevs: [UInt64: VDeviceObject] = [:]
    /// `viommu->veventqs`: at most one per type.
    var veventqs: [VEventQueueObject] = []

    init(ctx: IOMMUFD, type: UInt32, hwpt: HWPTPagingObject, unit: IOMMUDevice) {
        self.ctx = ctx
        viommuType = type
        self.hwpt = hwpt
        self.unit = unit
        super.init(type: .viommu)
    }

    /// The nesting parent's domain.
    public var parentDomain: IOMMUDomain {
        // A paging HWPT has its domain for as long as the vIOMMU holds it.
        guard let d = hwpt.domain else { preconditionFailure("vIOMMU over a HWPT without a domain") }
        return d
    }

    /// `iommufd_viommu_destroy`: the driver's `destroy` (it drops its mmap regions), then
    /// the parent reference.
    override func destroy(_ ctx: IOMMUFD) {
        ops?.destroy()
        ops = nil
        vdevs = [:]
        ctx.unref(hwpt)
    }

    /// `iommufd_viommu_find_dev`.
    public func device(virtualID: UInt64) -> PCIDevice? {
        ctx.lock.withLock { vdevs[virtualID]?.idev.dev }
    }

    /// `iommufd_viommu_get_vdev_id`.
    /// - Throws: `ENOENT` when `dev` has no vDEVICE here.
    public func virtualID(of dev: PCIDevice) throws(Errno) -> UInt64 {
        try ctx.lock.withLock { () throws(Errno) -> UInt64 in
            guard let v = vdevs.values.first(where: { $0.idev.dev === dev }) else { throw .noEntry }
            return v.virtID
        }
    }

    /// `iommufd_viommu_report_event`: queue `data` on the vEVENTQ of `type`.
    /// - Throws: `EINVAL` empty data (the kernel WARNs: a driver bug); `EOPNOTSUPP` no
    ///   vEVENTQ of that type.
    public func reportEvent(type: UInt32, data: [UInt8]) throws(Errno) {
        try ctx.lock.withLock { () throws(Errno) in
            guard !data.isEmpty else {
                ctx.warn("iommufd_viommu_report_event", "an event without data")
                throw .invalidArgument
            }
            guard let q = veventqs.first(where: { $0.queueType == type }) else { throw .notSupported }
            q.report(data)
        }
    }

    /// `iommufd_viommu_alloc_mmap`: a region of the context's mmap space owned by this
    /// vIOMMU.
    /// - Throws: `EINVAL` an address or length not page aligned or a zero length; `EBUSY`
    ///   no room left in the offset space.
    public func allocMMap(physicalAddress: PhysicalAddress, length: UInt64) throws(Errno) -> UInt64 {
        try ctx.lock.withLock { () throws(Errno) -> UInt64 in
            try ctx.allocMMapRegion(owner: self, physicalAddress: physicalAddress, length: length)
        }
    }

    /// `iommufd_viommu_destroy_mmap`.
    public func destroyMMap(offset: UInt64) {
        ctx.lock.withLock { ctx.destroyMMapRegion(owner: self, offset: offset) }
    }
}

/// `IOMMUFD_OBJ_VDEVICE` (`struct iommufd_vdevice`): a bound device as the VM sees it in
/// one vIOMMU, under a virtual ID (vSID, vRID, vDeviceID). A device has at most one.
///
/// It holds references on its vIOMMU and on its device (a users and a wait reference,
/// which the device takes back when it goes: the vDEVICE is then destroyed and its ID
/// left as a tombstone, unusable and not reused until the context is closed).
public final class VDeviceObject: IOMMUFDObject, @unchecked Sendable {
    /// The vDEVICE ID (`obj->id`).
    public var id: VDeviceObjectID { VDeviceObjectID(rawValue: rawID) }
    /// `vdev->viommu` (a reference is held).
    let viommu: VIOMMUObject
    /// `vdev->idev` (a reference is held).
    let idev: DeviceObject
    /// `vdev->virt_id`.
    let virtID: UInt64

    init(viommu: VIOMMUObject, idev: DeviceObject, virtID: UInt64) {
        self.viommu = viommu
        self.idev = idev
        self.virtID = virtID
        super.init(type: .vdevice)
    }

    /// `iommufd_vdevice_destroy`: ``abort(_:)``, then the device reference goes.
    override func destroy(_ ctx: IOMMUFD) {
        abort(ctx)
        ctx.put(idev)
    }

    /// `iommufd_vdevice_abort`: leave the vIOMMU's table (if it got there), drop the
    /// vIOMMU reference and let the device forget it. A failed `IOMMU_VDEVICE_ALLOC`
    /// drops its device reference itself.
    override func abort(_ ctx: IOMMUFD) {
        if viommu.vdevs[virtID] === self { viommu.vdevs[virtID] = nil }
        ctx.unref(viommu)
        if idev.vdev === self { idev.vdev = nil }
    }
}
