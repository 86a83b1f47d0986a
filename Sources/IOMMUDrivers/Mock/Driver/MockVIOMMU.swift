import IOMMUCore
import IOMMUFDDriver

// The selftest mock's vIOMMU (`struct mock_viommu`, `mock_viommu_ops` in
// `drivers/iommu/iommufd/selftest.c`), on the vIOMMU protocol of IOMMUFDDriver: nested
// domains through the vIOMMU, device-cache invalidation by virtual ID, two HW queues
// that must come in index order, and an optional page pair user space maps.

extension MockIOMMUDriver: IOMMUFDVIOMMUDriver {
    /// `mock_get_viommu_size`: only `IOMMU_VIOMMU_TYPE_SELFTEST`.
    public func supportsVIOMMU(_ dev: PCIDevice, type: UInt32) -> Bool { type == IOMMUVIOMMUType.selftest }

    /// `mock_viommu_init`. With data (`struct iommu_viommu_selftest`): two zeroed pages
    /// are offered for `mmap`, `in_data` is written to the first word of them and echoed
    /// in `out_data`, and the region's offset and length are reported.
    /// - Throws: `EINVAL` a parent that is not a mock paging domain of this driver; data
    ///   of another type, shorter than `out_data`'s end or longer than the structure
    ///   (`EINVAL`), `EFAULT`; `ENOMEM` for the pages or the region.
    public func viommuInit(_ core: any IOMMUFDVIOMMUCore, dev: PCIDevice, parent: IOMMUDomain,
                           userData: IOMMUUserData?) throws(Errno) -> any IOMMUFDVIOMMUOps {
        guard let s2 = parent as? MockDomain, s2.owner === self, let memory = dev.machine?.memory else {
            throw .invalidArgument
        }
        let viommu = MockVIOMMU(driver: self, core: core, s2Parent: s2, memory: memory)
        guard let userData else { return viommu }
        let size = IOMMUVIOMMUSelftest.size
        var data = IOMMUVIOMMUSelftest(bytes: try userData.copy(expectedType: IOMMUVIOMMUType.selftest,
                                                                minLength: 8, maxLength: size))
        let length = Mock.viommuMMapLength
        let page = try memory.allocContiguous(bytes: Int(length))
        let offset: UInt64
        do { offset = try core.allocMMap(physicalAddress: page, length: length) } catch {
            memory.free(page, bytes: Int(length))
            throw error
        }
        // A loopback: what user space gave is what it reads back, here and in the pages.
        withUnsafeBytes(of: data.inData.littleEndian) { memory.uncheckedWrite(page, from: $0) }
        data.outData = data.inData
        data.outMmapLength = length
        data.outMmapOffset = offset
        do {
            try userData.copyOut(data.bytes, expectedType: IOMMUVIOMMUType.selftest, minLength: 8, maxLength: size)
        } catch {
            core.destroyMMap(offset: offset)
            memory.free(page, bytes: Int(length))
            throw error
        }
        viommu.setMMap(page: page, offset: offset)
        return viommu
    }
}

/// A mock vIOMMU (`struct mock_viommu`): its nesting parent, its HW queues and its
/// mmap-able page pair.
public final class MockVIOMMU: IOMMUFDVIOMMUOps, @unchecked Sendable {
    private unowned let driver: MockIOMMUDriver
    /// iommufd's vIOMMU, valid until ``destroy()``.
    public unowned let core: any IOMMUFDVIOMMUCore
    /// `mock_viommu->s2_parent`.
    let s2Parent: MockDomain
    private let memory: PhysicalMemory
    private let lock = Lock()
    /// `mock_viommu->page` and `mmap_offset`.
    private var mmap: (page: PhysicalAddress, offset: UInt64)?
    /// `mock_viommu->hw_queue[IOMMU_TEST_HW_QUEUE_MAX]`.
    private var queues = [MockHWQueue?](repeating: nil, count: Int(Mock.hwQueueMax))

    init(driver: MockIOMMUDriver, core: any IOMMUFDVIOMMUCore, s2Parent: MockDomain, memory: PhysicalMemory) {
        self.driver = driver
        self.core = core
        self.s2Parent = s2Parent
        self.memory = memory
    }

    func setMMap(page: PhysicalAddress, offset: UInt64) { lock.withLock { mmap = (page, offset) } }

    /// `mock_viommu_destroy`: the mmap region goes, then its pages.
    public func destroy() {
        guard let m = lock.withLock({ () -> (page: PhysicalAddress, offset: UInt64)? in defer { mmap = nil }; return mmap }) else {
            return
        }
        core.destroyMMap(offset: m.offset)
        memory.free(m.page, bytes: Int(Mock.viommuMMapLength))
    }

    /// `mock_viommu_alloc_domain_nested`: a ``MockNestedDomain`` on the vIOMMU's parent,
    /// remembering the vIOMMU (a device attaches to it only through its vDEVICE).
    /// - Throws: `EOPNOTSUPP` a flag other than `IOMMU_HWPT_ALLOC_PASID`, or data that is
    ///   not `IOMMU_HWPT_DATA_SELFTEST`; `EINVAL`/`EFAULT` copying the data.
    public func allocDomainNested(flags: DomainAllocFlags, userData: IOMMUUserData) throws(Errno) -> IOMMUDomain {
        guard flags.isSubset(of: [.pasid]) else { throw .notSupported }
        let iotlb = try MockNestedDomain.iotlb(from: userData)
        return MockNestedDomain(driver: driver, parent: s2Parent, iotlb: iotlb, viommu: self)
    }

    /// The largest array `kcalloc` gives (`KMALLOC_MAX_SIZE`, 4 MiB): a larger
    /// invalidation array is `ENOMEM`.
    static let kmallocMax = 4 << 20

    /// `mock_viommu_cache_invalidate`: every `struct iommu_viommu_invalidate_selftest`
    /// entry, in order, clears one cache word (or all four with
    /// `IOMMU_TEST_INVALIDATE_FLAG_ALL`) of the device with that virtual ID. An empty array
    /// of the right type checks the type only. The array is copied whole first, so a copy
    /// or type error handles nothing.
    /// - Throws: `EINVAL` the wrong type, a `cache_id` above 3 or a `vdev_id` no vDEVICE
    ///   has; `EOPNOTSUPP` unknown flags; `E2BIG`/`EFAULT` copying; `ENOMEM` an array
    ///   past what `kcalloc` gives. `handled` counts the entries done before the error.
    public func cacheInvalidate(_ array: IOMMUUserDataArray, handled: inout UInt32) throws(Errno) {
        handled = 0
        if array.entryNum == 0 && array.type == IOMMUHWPTInvalidateDataType.viommuSelftest { return }
        let entrySize = IOMMUVIOMMUInvalidateSelftest.size
        guard Int(array.entryNum) <= Self.kmallocMax / entrySize else { throw .noMemory }
        let entries = try array.copyAll(expectedType: IOMMUHWPTInvalidateDataType.viommuSelftest, entrySize: entrySize)
            .map { IOMMUVIOMMUInvalidateSelftest(bytes: $0) }
        for e in entries {
            guard e.flags & ~Mock.invalidateFlagAll == 0 else { throw .notSupported }
            guard e.cacheId <= Mock.devCacheIDMax else { throw .invalidArgument }
            guard let dev = core.device(virtualID: UInt64(e.vdevId)), let state = driver.state(of: dev) else {
                throw .invalidArgument
            }
            if e.flags & Mock.invalidateFlagAll != 0 {
                for i in state.cache.indices { state.cache[i] = 0 }
            } else {
                state.cache[Int(e.cacheId)] = 0
            }
            handled += 1
        }
    }

    /// `mock_viommu_get_hw_queue_size`: only `IOMMU_HW_QUEUE_TYPE_SELFTEST`.
    public func supportsHWQueue(type: UInt32) -> Bool { type == IOMMUHWQueueType.selftest }

    /// `mock_hw_queue_init_phys`: queue `index` (below `IOMMU_TEST_HW_QUEUE_MAX`), which
    /// depends on queue `index - 1`; the physical address iommufd found must be the one
    /// the parent domain maps the queue's base to.
    /// - Throws: `EINVAL` an index too large; `EEXIST` an index in use; `EIO` no queue at
    ///   `index - 1`; `EFAULT` an address the parent does not agree with.
    public func hwQueueInit(_ queue: any IOMMUFDHWQueueCore, index: UInt32,
                            basePhysical: PhysicalAddress) throws(Errno) -> (any IOMMUFDHWQueueOps)? {
        guard index < Mock.hwQueueMax else { throw .invalidArgument }
        return try lock.withLock { () throws(Errno) -> (any IOMMUFDHWQueueOps)? in
            guard queues[Int(index)] == nil else { throw .exists }
            var prev: MockHWQueue?
            if index > 0 {
                guard let p = queues[Int(index) - 1] else { throw .ioError }
                prev = p
            }
            let pte = s2Parent.table.entry(queue.baseAddress)
            guard let pte, pte.physical + queue.baseAddress.offset(within: Mock.pageSize) == basePhysical else { throw .badAddress }
            if let prev { try queue.depend(on: prev.core) }
            let q = MockHWQueue(viommu: self, core: queue, index: Int(index), prev: prev)
            queues[Int(index)] = q
            return q
        }
    }

    /// `mock_hw_queue_destroy`.
    fileprivate func remove(_ q: MockHWQueue) {
        lock.withLock {
            if queues[q.index] === q { queues[q.index] = nil }
            if let prev = q.prev { q.core.undepend(on: prev.core) }
        }
    }
}

/// A mock HW queue (`struct mock_hw_queue`).
final class MockHWQueue: IOMMUFDHWQueueOps, @unchecked Sendable {
    unowned let viommu: MockVIOMMU
    unowned let core: any IOMMUFDHWQueueCore
    let index: Int
    /// The queue this one depends on.
    let prev: MockHWQueue?

    init(viommu: MockVIOMMU, core: any IOMMUFDHWQueueCore, index: Int, prev: MockHWQueue?) {
        self.viommu = viommu
        self.core = core
        self.index = index
        self.prev = prev
    }

    /// `mock_hw_queue_destroy`: the slot frees and the dependency goes.
    func destroy() { viommu.remove(self) }
}
