import IOMMUCore

/// `IOMMUFD_OBJ_HW_QUEUE` (`struct iommufd_hw_queue`): a queue in guest memory that the
/// vIOMMU's hardware reads by physical address (a virtual command queue).
///
/// iommufd pins the queue's pages through an internal access on the nesting parent's
/// IOAS, checks they are physically contiguous and locks them there: `IOMMU_IOAS_UNMAP` of
/// any area under them is `EBUSY` while the queue exists. The queue holds a reference on
/// its vIOMMU; a driver may make it depend on another queue
/// (``/IOMMUFDDriver/IOMMUFDHWQueueCore/depend(on:)``), which then cannot be destroyed before it.
public final class HWQueueObject: IOMMUFDObject, IOMMUFDHWQueueCore, @unchecked Sendable {
    /// The HW queue ID (`obj->id`).
    public var id: HWQueueObjectID { HWQueueObjectID(rawValue: rawID) }
    /// The context, which outlives its objects.
    unowned(unsafe) let ctx: IOMMUFD
    /// `hw_queue->viommu`: a reference is held once ``holdsVIOMMU``.
    let viommuObject: VIOMMUObject
    /// `hw_queue->type`.
    public let queueType: UInt32
    /// `hw_queue->base_addr`: `nesting_parent_iova`.
    public let baseAddress: IOVA
    /// `hw_queue->length`.
    public let length: UInt64
    /// The vIOMMU reference is taken (`hw_queue->viommu` set).
    var holdsVIOMMU = false
    /// `hw_queue->access`: the internal access that pins and locks the queue memory.
    var access: AccessObject?
    /// `hw_queue->destroy`: the driver's part, once `hw_queue_init_phys` succeeded.
    var driverQueue: (any IOMMUFDHWQueueOps)?

    init(ctx: IOMMUFD, viommu: VIOMMUObject, type: UInt32, baseAddress: IOVA, length: UInt64) {
        self.ctx = ctx
        viommuObject = viommu
        queueType = type
        self.baseAddress = baseAddress
        self.length = length
        super.init(type: .hwQueue)
    }

    /// The vIOMMU.
    public var viommu: any IOMMUFDVIOMMUCore { viommuObject }

    /// The pinned IOVA range: the queue's pages, page aligned (`iommufd_hw_queue_alloc_phys`).
    var pinnedRange: (iova: IOVA, length: UInt64) {
        let aligned = baseAddress.alignedDown(to: IOPTPages.pageSize)
        let span = baseAddress.offset(within: IOPTPages.pageSize) + length
        return (aligned, (span + IOPTPages.pageSize - 1) & ~(IOPTPages.pageSize - 1))
    }

    /// `iommufd_hw_queue_destroy`: the driver's `destroy`, then the internal access
    /// (unpin, detach, destroy), then the vIOMMU reference.
    override func destroy(_ ctx: IOMMUFD) {
        driverQueue?.destroy()
        driverQueue = nil
        if let access {
            let r = pinnedRange
            ctx.accessUnpinPages(access, iova: r.iova, length: r.length)
            ctx.accessDestroyInternal(access)
            self.access = nil
        }
        if holdsVIOMMU { ctx.unref(viommuObject) }
        holdsVIOMMU = false
    }

    /// `iommufd_hw_queue_depend` (`_iommufd_object_depend`).
    /// - Throws: `EINVAL` for itself or an object that is not a HW queue.
    public func depend(on other: any IOMMUFDHWQueueCore) throws(Errno) {
        try ctx.lock.withLock { () throws(Errno) in
            guard let o = other as? HWQueueObject, o !== self else { throw .invalidArgument }
            ctx.ref(o)
        }
    }

    /// `iommufd_hw_queue_undepend` (`_iommufd_object_undepend`); a pair that could not
    /// have been made is a WARN.
    public func undepend(on other: any IOMMUFDHWQueueCore) {
        ctx.lock.withLock {
            guard let o = other as? HWQueueObject, o !== self else {
                ctx.warn("_iommufd_object_undepend", "no such dependency")
                return
            }
            ctx.unref(o)
        }
    }
}
