import IOMMUCore

// The vIOMMU part of the driver API (`include/linux/iommufd.h`, `driver.c`): what a vendor
// implements to offer `IOMMU_VIOMMU_ALLOC` and what iommufd gives it back. A vendor (the
// Mock, SMMUv3's vSMMU) adopts ``IOMMUFDVIOMMUDriver`` on its driver and returns
// an ``IOMMUFDVIOMMUOps`` per vIOMMU; iommufd owns the objects and hands the vendor
// their cores (``IOMMUFDVIOMMUCore``, ``IOMMUFDHWQueueCore``) to call back into.

/// A vIOMMU as its driver sees it (`struct iommufd_viommu` and the driver API over it in
/// `drivers/iommu/iommufd/driver.c`). Made by iommufd on `IOMMU_VIOMMU_ALLOC`; valid until
/// the driver's ``IOMMUFDVIOMMUOps/destroy()`` returns.
public protocol IOMMUFDVIOMMUCore: AnyObject, Sendable {
    /// `viommu->type` (`enum iommu_viommu_type`).
    var viommuType: UInt32 { get }
    /// `viommu->obj.id`, as the number the uAPI carries.
    var rawID: UInt32 { get }
    /// The nesting parent's domain (`viommu->hwpt->common.domain`): the stage 2 every
    /// nested domain of this vIOMMU translates through.
    var parentDomain: IOMMUDomain { get }
    /// `iommufd_viommu_find_dev(viommu, vdev_id)`: the device whose vDEVICE has virtual ID
    /// `virtualID` in this vIOMMU, or nil.
    func device(virtualID: UInt64) -> PCIDevice?
    /// `iommufd_viommu_get_vdev_id(viommu, dev, &vdev_id)`: the virtual ID of `dev`'s
    /// vDEVICE in this vIOMMU.
    /// - Throws: `ENOENT` when `dev` has no vDEVICE here.
    func virtualID(of dev: PCIDevice) throws(Errno) -> UInt64
    /// `iommufd_viommu_report_event(viommu, type, data, len)`: queues a virtual event on
    /// the vIOMMU's vEVENTQ of `type` (a lost-events mark instead when it is full).
    /// - Throws: `EINVAL` empty data; `EOPNOTSUPP` no vEVENTQ of that type.
    func reportEvent(type: UInt32, data: [UInt8]) throws(Errno)
    /// `iommufd_viommu_alloc_mmap(viommu, mmio_addr, length, &offset)`: lets user space map
    /// `[physicalAddress, + length)` by `mmap` of the iommufd at the returned offset
    /// (owned by this vIOMMU, which cannot be destroyed while it is mapped).
    /// - Throws: `EINVAL` an address or length not page aligned, or a zero length;
    ///   `ENOMEM`.
    func allocMMap(physicalAddress: PhysicalAddress, length: UInt64) throws(Errno) -> UInt64
    /// `iommufd_viommu_destroy_mmap(viommu, offset)`: no new `mmap` of the region.
    func destroyMMap(offset: UInt64)
}

/// A HW queue as its driver sees it (`struct iommufd_hw_queue`): guest queue memory the
/// hardware reads by physical address, pinned and locked in the nesting parent's IOAS by
/// iommufd while the queue exists.
public protocol IOMMUFDHWQueueCore: AnyObject, Sendable {
    /// `hw_queue->viommu`.
    var viommu: any IOMMUFDVIOMMUCore { get }
    /// `hw_queue->obj.id`, as the number the uAPI carries.
    var rawID: UInt32 { get }
    /// `hw_queue->type` (`enum iommu_hw_queue_type`).
    var queueType: UInt32 { get }
    /// `hw_queue->base_addr`: the queue's address in the guest physical (nesting parent
    /// IOVA) space.
    var baseAddress: IOVA { get }
    /// `hw_queue->length`.
    var length: UInt64 { get }
    /// `iommufd_hw_queue_depend(self, other)`: `other` cannot be destroyed (`EBUSY`) while
    /// this queue exists.
    /// - Throws: `EINVAL` for a dependency on itself or on another kind of object.
    func depend(on other: any IOMMUFDHWQueueCore) throws(Errno)
    /// `iommufd_hw_queue_undepend(self, other)`: drops a dependency made with
    /// ``depend(on:)``.
    func undepend(on other: any IOMMUFDHWQueueCore)
}

/// The vIOMMU ops of a driver's `iommu_ops`: `get_viommu_size` and `viommu_init`.
public protocol IOMMUFDVIOMMUDriver: AnyObject, Sendable {
    /// `get_viommu_size(dev, type) != 0`: whether the driver makes vIOMMUs of `type` for
    /// `dev`'s IOMMU.
    func supportsVIOMMU(_ dev: PCIDevice, type: UInt32) -> Bool
    /// `viommu_init(viommu, parent_domain, user_data)`: sets a new vIOMMU up over the
    /// nesting parent `parent` (a domain of this driver), with the type's data if the
    /// caller gave any. `dev` is the device it was asked for (`IOMMU_VIOMMU_ALLOC`'s
    /// `dev_id`), whose machine holds any memory the driver needs.
    /// - Returns: the driver's vIOMMU (`viommu->ops` and its private part).
    /// - Throws: the driver's errno; nothing is left behind then.
    func viommuInit(_ core: any IOMMUFDVIOMMUCore, dev: PCIDevice, parent: IOMMUDomain,
                    userData: IOMMUUserData?) throws(Errno) -> any IOMMUFDVIOMMUOps
}

/// `struct iommufd_viommu_ops`: a driver's vIOMMU. Every op has a default that is the
/// kernel's answer for an op the driver leaves `NULL`.
public protocol IOMMUFDVIOMMUOps: AnyObject, Sendable {
    /// `destroy`: releases what the driver holds for the vIOMMU (its mmap regions, its
    /// pages). Called once, when the vIOMMU object is destroyed.
    func destroy()
    /// `alloc_domain_nested(viommu, flags, user_data)`: a nested domain (stage 1 of the
    /// guest) translating through the vIOMMU's parent.
    /// - Throws: `EOPNOTSUPP` by default; the driver's data errno.
    func allocDomainNested(flags: DomainAllocFlags, userData: IOMMUUserData) throws(Errno) -> IOMMUDomain
    /// `cache_invalidate(viommu, array)`: the vIOMMU form of `IOMMU_HWPT_INVALIDATE`.
    /// `handled` must hold the number of entries done, on error too.
    /// - Throws: `EOPNOTSUPP` by default; the driver's per-entry errno.
    func cacheInvalidate(_ array: IOMMUUserDataArray, handled: inout UInt32) throws(Errno)
    /// `get_hw_queue_size(viommu, type) != 0`: whether the driver makes HW queues of
    /// `type`. False by default (`EOPNOTSUPP`).
    func supportsHWQueue(type: UInt32) -> Bool
    /// `hw_queue_init_phys(hw_queue, index, base_addr_pa)`: sets a queue up over its
    /// pinned, physically contiguous memory starting at `basePhysical`.
    /// - Returns: the queue's `destroy`, or nil when it needs none.
    /// - Throws: `EOPNOTSUPP` by default; the driver's errno.
    func hwQueueInit(_ queue: any IOMMUFDHWQueueCore, index: UInt32,
                     basePhysical: PhysicalAddress) throws(Errno) -> (any IOMMUFDHWQueueOps)?
}

extension IOMMUFDVIOMMUOps {
    /// No `alloc_domain_nested`: `EOPNOTSUPP`.
    public func allocDomainNested(flags: DomainAllocFlags, userData: IOMMUUserData) throws(Errno) -> IOMMUDomain {
        throw .notSupported
    }
    /// No `cache_invalidate`: `EOPNOTSUPP`, nothing handled.
    public func cacheInvalidate(_ array: IOMMUUserDataArray, handled: inout UInt32) throws(Errno) {
        handled = 0
        throw .notSupported
    }
    /// No `get_hw_queue_size`.
    public func supportsHWQueue(type: UInt32) -> Bool { false }
    /// No `hw_queue_init_phys`: `EOPNOTSUPP`.
    public func hwQueueInit(_ queue: any IOMMUFDHWQueueCore, index: UInt32,
                            basePhysical: PhysicalAddress) throws(Errno) -> (any IOMMUFDHWQueueOps)? {
        throw .notSupported
    }
}

/// What a driver keeps for one HW queue (`hw_queue->destroy`).
public protocol IOMMUFDHWQueueOps: AnyObject, Sendable {
    /// `hw_queue->destroy`: releases the queue (its dependencies included). Called once.
    func destroy()
}
