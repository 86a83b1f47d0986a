import IOMMUCore

extension IOMMUFD {
    /// `IOMMU_VIOMMU_ALLOC` (`iommufd_viommu_alloc_ioctl`): a vIOMMU of `type` on the
    /// IOMMU behind `dev_id`, over the nesting parent `hwpt_id`, set up by the driver
    /// (`viommu_init`) with the type's data when `data_len` is not 0.
    ///
    /// Checks, in the kernel's order: `flags` or `type` DEFAULT → `EOPNOTSUPP`; the device
    /// → `ENOENT`; a driver without vIOMMUs, or not of this type → `EOPNOTSUPP`;
    /// `hwpt_id` not a HWPT_PAGING (0, an IOAS, a nested HWPT) → `ENOENT`; not
    /// `NEST_PARENT` → `EINVAL`; the object → `ENOMEM`; the driver's errno. `__reserved`
    /// is not checked. The vIOMMU holds its parent (`IOMMU_DESTROY` of it is `EBUSY`).
    func ioctlVIOMMUAlloc(_ u: inout UCmd) throws(Errno) -> Int32 {
        var c = u.decode(IOMMUVIOMMUAlloc.self)
        guard c.flags == 0, c.type != IOMMUVIOMMUType.default else { throw .notSupported }
        let idev = try get(c.devId, .device, as: DeviceObject.self)
        defer { put(idev) }
        guard let unit = idev.dev.iommu, let driver = unit.driver as? any IOMMUFDVIOMMUDriver,
              driver.supportsVIOMMU(idev.dev, type: c.type) else { throw .notSupported }
        let hwpt = try get(c.hwptId, .hwptPaging, as: HWPTPagingObject.self)
        defer { put(hwpt) }
        guard hwpt.nestParent, let parent = hwpt.domain else { throw .invalidArgument }
        let viommu = VIOMMUObject(ctx: self, type: c.type, hwpt: hwpt, unit: unit)
        try allocObject(viommu)
        ref(hwpt)
        do throws(Errno) {
            let data = c.dataLen == 0 ? nil
                : IOMMUUserData(type: c.type, uptr: c.dataUptr, len: c.dataLen, user: user)
            viommu.ops = try driver.viommuInit(viommu, dev: idev.dev, parent: parent, userData: data)
            c.outViommuId = viommu.id.rawValue
            try u.respond(c)
        } catch {
            abortAndDestroy(viommu)
            throw error
        }
        finalize(viommu)
        return 0
    }

    /// `IOMMU_VDEVICE_ALLOC` (`iommufd_vdevice_alloc_ioctl`): the device `dev_id` in the
    /// vIOMMU under virtual ID `virt_id`.
    ///
    /// Checks, in the kernel's order: `virt_id` above `ULONG_MAX` (never, with 64-bit
    /// IDs) → `EINVAL`; the vIOMMU → `ENOENT`; the device → `ENOENT`; a device of another
    /// IOMMU → `EINVAL`; a device being unbound → `ENOENT`; a device that has a vDEVICE →
    /// `EEXIST`; the object → `ENOMEM`; `virt_id` taken in this vIOMMU → `EEXIST`. The
    /// vDEVICE holds the vIOMMU and the device.
    func ioctlVDeviceAlloc(_ u: inout UCmd) throws(Errno) -> Int32 {
        var c = u.decode(IOMMUVDeviceAlloc.self)
        let viommu = try get(c.viommuId, .viommu, as: VIOMMUObject.self)
        defer { put(viommu) }
        let idev = try get(c.devId, .device, as: DeviceObject.self)
        // On success the device reference stays with the vDEVICE.
        var keepDevice = false
        defer { if !keepDevice { put(idev) } }
        guard viommu.unit === idev.dev.iommu else { throw .invalidArgument }
        guard !idev.destroying else { throw .noEntry }
        guard idev.vdev == nil else { throw .exists }
        let vdev = VDeviceObject(viommu: viommu, idev: idev, virtID: c.virtId)
        try allocObject(vdev)
        ref(viommu)
        idev.vdev = vdev
        do throws(Errno) {
            guard viommu.vdevs[c.virtId] == nil else { throw .exists }
            viommu.vdevs[c.virtId] = vdev
            c.outVdeviceId = vdev.id.rawValue
            try u.respond(c)
        } catch {
            abortAndDestroy(vdev)
            throw error
        }
        finalize(vdev)
        keepDevice = true
        return 0
    }

    /// `IOMMU_VEVENTQ_ALLOC` (`iommufd_veventq_alloc`): a vEVENTQ of `type` on the vIOMMU,
    /// holding up to `veventq_depth` events, and the fd to read them from.
    ///
    /// Checks, in the kernel's order: `flags`, `__reserved` or `type` DEFAULT →
    /// `EOPNOTSUPP`; depth 0 → `EINVAL`; the vIOMMU → `ENOENT`; a vEVENTQ of that type on
    /// it → `EEXIST`; the object → `ENOMEM`; the fd → `EMFILE`. The fd holds the object
    /// (`IOMMU_DESTROY` is `EBUSY` until it is closed); the object holds the vIOMMU.
    func ioctlVEventQAlloc(_ u: inout UCmd) throws(Errno) -> Int32 {
        var c = u.decode(IOMMUVEventQAlloc.self)
        guard c.flags == 0, c.reserved == 0, c.type != IOMMUVEventQType.default else { throw .notSupported }
        guard c.veventqDepth != 0 else { throw .invalidArgument }
        let viommu = try get(c.viommuId, .viommu, as: VIOMMUObject.self)
        defer { put(viommu) }
        guard !viommu.veventqs.contains(where: { $0.queueType == c.type }) else { throw .exists }
        let q = VEventQueueObject(viommu: viommu, type: c.type, depth: c.veventqDepth)
        try allocObject(q)
        ref(viommu)
        viommu.veventqs.append(q)
        let fd: Int32
        do { fd = try installFile(.veventq(q)) } catch {
            abortAndDestroy(q)
            throw error
        }
        q.fdOpen = true
        ref(q)
        c.outVeventqId = q.id.rawValue
        c.outVeventqFd = UInt32(bitPattern: fd)
        do { try u.respond(c) } catch {
            files[fd] = nil
            unref(q)
            abortAndDestroy(q)
            throw error
        }
        finalize(q)
        return 0
    }

    /// `IOMMU_HW_QUEUE_ALLOC` (`iommufd_hw_queue_alloc_ioctl`): a HW queue of `type` at
    /// `index` on the vIOMMU, over `[nesting_parent_iova, + length)` of the parent's IOAS.
    ///
    /// Checks, in the kernel's order: `flags` or `type` DEFAULT → `EOPNOTSUPP`; `length`
    /// 0 → `EINVAL`; `nesting_parent_iova + length - 1` wraps → `EOVERFLOW`; the vIOMMU →
    /// `ENOENT`; a driver without HW queues, or not of this type → `EOPNOTSUPP`; the
    /// object → `ENOMEM`; then the queue memory (`iommufd_hw_queue_alloc_phys`): its page
    /// span → `ERANGE` on overflow; an internal access on the parent's IOAS (`ENOMEM`,
    /// `EADDRINUSE`) pins it (`ENOENT` not fully mapped, `EPERM` not readable, pin
    /// errors), and its pages must be physically contiguous (`EFAULT`); last the driver
    /// (`hw_queue_init_phys`). Every area under the memory is then locked (unmap `EBUSY`)
    /// until the queue is destroyed.
    func ioctlHWQueueAlloc(_ u: inout UCmd) throws(Errno) -> Int32 {
        var c = u.decode(IOMMUHWQueueAlloc.self)
        guard c.flags == 0, c.type != IOMMUHWQueueType.default else { throw .notSupported }
        guard c.length != 0 else { throw .invalidArgument }
        guard !c.nestingParentIova.addingReportingOverflow(c.length - 1).overflow else { throw .overflow }
        let viommu = try get(c.viommuId, .viommu, as: VIOMMUObject.self)
        defer { put(viommu) }
        guard let ops = viommu.ops, ops.supportsHWQueue(type: c.type) else { throw .notSupported }
        let queue = HWQueueObject(ctx: self, viommu: viommu, type: c.type, baseAddress: IOVA(rawValue: c.nestingParentIova),
                                  length: c.length)
        try allocObject(queue)
        do throws(Errno) {
            let (access, basePhysical) = try hwQueueAllocPhys(queue, viommu)
            queue.access = access
            ref(viommu)
            queue.holdsVIOMMU = true
            queue.driverQueue = try ops.hwQueueInit(queue, index: c.index, basePhysical: basePhysical)
            c.outHwQueueId = queue.id.rawValue
            try u.respond(c)
        } catch {
            abortAndDestroy(queue)
            throw error
        }
        finalize(queue)
        return 0
    }

    /// `iommufd_hw_queue_alloc_phys`: pin the queue's pages through an internal access on
    /// the vIOMMU parent's IOAS and check they are physically contiguous.
    /// - Returns: the access and the physical address of the queue's first byte.
    /// - Throws: `ERANGE` the page span overflows; the access's errno (see
    ///   ``ioctlHWQueueAlloc(_:)``); `EFAULT` pages that are not contiguous.
    private func hwQueueAllocPhys(_ queue: HWQueueObject, _ viommu: VIOMMUObject) throws(Errno) -> (AccessObject, PhysicalAddress) {
        let page = IOPTPages.pageSize
        let aligned = queue.baseAddress.alignedDown(to: page)
        let offset = queue.baseAddress.offset(within: page)
        let (span, o1) = offset.addingReportingOverflow(queue.length)
        let (rounded, o2) = span.addingReportingOverflow(page - 1)
        guard !o1, !o2 else { throw .outOfRange }
        let length = rounded & ~(page - 1)
        let access = try accessCreateInternal()
        do throws(Errno) {
            try accessAttachInternal(access, to: viommu.hwpt.ioas)
            let frames = try accessPinPages(access, iova: aligned, length: length, write: false)
            for i in frames.indices.dropFirst() where frames[i] != frames[i - 1] + page {
                accessUnpinPages(access, iova: aligned, length: length)
                throw .badAddress
            }
            return (access, frames[0] + offset)
        } catch {
            accessDestroyInternal(access)
            throw error
        }
    }
}
