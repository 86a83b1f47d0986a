import IOMMUCore

/// A mock paging domain (`struct mock_iommu_domain` with `mock_ops.default_domain_ops`):
/// per-`MOCK_IO_PAGE_SIZE` entries in a ``MockPageTable``, aperture
/// [`MOCK_APERTURE_START`, `MOCK_APERTURE_LAST`] with `force_aperture`, page sizes
/// `MOCK_IO_PAGE_SIZE` (plus `MOCK_HUGE_PAGE_SIZE` for ``MockDeviceFlags/hugeIOVA``
/// devices), dirty ops only when allocated with DIRTY_TRACKING.
///
/// The model adds what a real driver has and the kernel mock omits: map refuses a present
/// entry (`EEXIST`), unmap stops at a hole and records its range in the gather, and
/// `iotlb_sync` / `flush_iotlb_all` invalidate the mock hardware's IOTLB.
public final class MockDomain: IOMMUDomain, @unchecked Sendable {
    /// The table the hardware walks (`mock->pfns`).
    public let table = MockPageTable()
    /// The flags the domain was allocated with (`IOMMU_HWPT_ALLOC_*`).
    public let allocFlags: DomainAllocFlags
    private unowned let driver: MockIOMMUDriver
    private let stateLock = Lock()
    private var tracking = false
    private var pagesUntilFailure: Int?

    init(driver: MockIOMMUDriver, allocFlags: DomainAllocFlags, hugeIOVA: Bool, omitting: DomainOps) {
        self.driver = driver
        self.allocFlags = allocFlags
        var ops: DomainOps = [.attachDev, .setDevPasid, .mapPages, .unmapPages, .flushIOTLBAll, .iotlbSync, .iovaToPhys]
        if allocFlags.contains(.dirtyTracking) { ops.insert(.dirtyTracking) }
        super.init(type: .unmanaged, owner: driver, ops: ops.subtracting(omitting),
                   pgsizeBitmap: Mock.pageSize | (hugeIOVA ? Mock.hugePageSize : 0),
                   geometry: DomainGeometry(apertureStart: Mock.apertureStart, apertureEnd: Mock.apertureLast,
                                            forceAperture: true))
    }

    /// Test hook for conformance check 26 (no kernel counterpart; the kernel uses
    /// `iommufd_should_fail()` fault injection): after this many more
    /// `MOCK_IO_PAGE_SIZE` entries are mapped, `map_pages` fails with `ENOMEM`. nil
    /// (the default) never fails.
    public var failMapAfterPages: Int? {
        get { stateLock.withLock { pagesUntilFailure } }
        set { stateLock.withLock { pagesUntilFailure = newValue } }
    }

    /// Whether dirty tracking is on (`MOCK_DIRTY_TRACK`).
    public var isDirtyTracking: Bool { stateLock.withLock { tracking } }

    // MARK: attach

    /// `mock_domain_nop_attach`: programs the RID entry to this table; a domain with a
    /// fault handler puts the device on the iopf queue.
    /// - Throws: `EINVAL` for a domain with dirty ops on a ``MockDeviceFlags/noDirty``
    ///   device; the injected ``MockDeviceState/failAttachDev`` errno; `ENODEV`/`EBUSY`
    ///   from enabling IOPF. The RID entry is unchanged on error.
    public override func attachDev(_ dev: PCIDevice, old: IOMMUDomain?) throws(Errno) {
        do throws(Errno) {
            guard let state = driver.state(of: dev) else { throw .noDevice.from("mock_domain_nop_attach", "\(dev.rid) was not probed by the mock driver") }
            if ops.contains(.dirtyTracking) && state.flags.contains(.noDirty) { throw .invalidArgument.from("mock_domain_nop_attach", "a dirty-tracking domain on a device flagged MOCK_FLAGS_DEVICE_NO_DIRTY") }
            if let e = state.failAttachDev { throw e }
            try driver.attachVIOMMU(dev, for: self)
            try driver.switchRIDIOPF(dev, to: self)
        } catch {
            driver.record(.attachDev, self, dev, pasid: nil, old: old, succeeded: false)
            throw error
        }
        driver.program(dev, pasid: nil, .paging(table: table, serial: serial))
        driver.record(.attachDev, self, dev, pasid: nil, old: old, succeeded: true)
    }

    /// `mock_domain_set_dev_pasid_nop`: programs the (RID, PASID) entry to this table
    /// and moves the IOPF enablement from `old` to this domain.
    /// - Throws: `ENOMEM` from the PASID 1024 quirk; the injected
    ///   ``MockDeviceState/failSetDevPasid`` errno; `ENODEV`/`EBUSY` from enabling IOPF.
    ///   The entry keeps `old` on error.
    public override func setDevPasid(_ dev: PCIDevice, pasid: PASID, old: IOMMUDomain?) throws(Errno) {
        guard ops.contains(.setDevPasid) else { throw .notSupported.from("mock_domain_set_dev_pasid_nop", "\(self) has no set_dev_pasid") }
        do throws(Errno) {
            try driver.checkSetDevPasid(dev, pasid: pasid, blocking: false)
            try driver.switchPasidIOPF(dev, to: self, old: old)
        } catch {
            driver.record(.setDevPasid, self, dev, pasid: pasid, old: old, succeeded: false)
            throw error
        }
        driver.program(dev, pasid: pasid, .paging(table: table, serial: serial))
        driver.record(.setDevPasid, self, dev, pasid: pasid, old: old, succeeded: true)
    }

    // MARK: map / unmap

    /// `mock_domain_map_pages`: one entry per `MOCK_IO_PAGE_SIZE`, the first flagged
    /// START and the last LAST, all HUGE when `pgsize` is the huge size; `mapped` grows
    /// entry by entry so the core can undo a partial map.
    /// - Throws: `EINVAL` for a `pgsize` outside the bitmap or `iova`/`paddr` not aligned
    ///   to it; `EEXIST` at an entry already present (it is left as it was); `ENOMEM`
    ///   from the ``failMapAfterPages`` hook.
    public override func mapPages(iova: IOVA, paddr: PhysicalAddress, pgsize: UInt64, pgcount: Int, prot: IOMMUProt,
                                  mapped: inout UInt64) throws(Errno) {
        let iova = iova.rawValue, paddr = paddr.rawValue
        guard pgsize & pgsizeBitmap == pgsize, pgsize.nonzeroBitCount == 1, pgcount > 0,
              (iova | paddr) & (pgsize - 1) == 0 else { throw .invalidArgument.from("mock_domain_map_pages", "page size 0x\(String(pgsize, radix: 16)) x \(pgcount) at iova 0x\(String(iova, radix: 16)), paddr 0x\(String(paddr, radix: 16)) is not a supported, aligned page run") }
        let perPage = Int(pgsize / Mock.pageSize)
        let total = perPage * pgcount
        let iovaEnd = iova.addingReportingOverflow(pgsize * UInt64(pgcount))
        guard !iovaEnd.overflow else { throw .invalidArgument.from("mock_domain_map_pages", "iova 0x\(String(iova, radix: 16)) + the run overflows") }
        var done = 0
        defer { mapped += UInt64(done) * Mock.pageSize }
        try table.withEntries { (entries: inout [UInt64: MockPTE]) throws(Errno) in
            while done < total {
                if consumeFailureBudget() { throw .noMemory.from("mock_domain_map_pages", "allocation failed by the test's failure budget") }
                let index = iova / Mock.pageSize + UInt64(done)
                if entries[index] != nil { throw .exists.from("mock_domain_map_pages", "a page of the run is already mapped") }
                entries[index] = MockPTE(pfn: paddr / Mock.pageSize + UInt64(done), prot: prot.intersection([.read, .write]),
                                         dirty: false, huge: pgsize != Mock.pageSize,
                                         start: done == 0, last: done == total - 1)
                done += 1
            }
        }
    }

    /// Counts one page against ``failMapAfterPages``; true when the map must fail.
    private func consumeFailureBudget() -> Bool {
        stateLock.withLock {
            guard let left = pagesUntilFailure else { return false }
            if left <= 0 { return true }
            pagesUntilFailure = left - 1
            return false
        }
    }

    /// `mock_domain_unmap_pages`: erases entries until `pgsize * pgcount` bytes are gone
    /// or a hole is reached, and adds the erased range to `gather`.
    /// - Returns: bytes unmapped (0 when `iova` itself is a hole).
    public override func unmapPages(iova: IOVA, pgsize: UInt64, pgcount: Int, gather: inout IOTLBGather) -> UInt64 {
        let start = iova
        let iova = iova.rawValue
        guard pgsize != 0, pgsize % Mock.pageSize == 0, iova % Mock.pageSize == 0, pgcount > 0 else { return 0 }
        let total = Int(pgsize / Mock.pageSize) * pgcount
        let erased: Int = table.withEntries { entries in
            var n = 0
            while n < total, entries.removeValue(forKey: iova / Mock.pageSize + UInt64(n)) != nil { n += 1 }
            return n
        }
        let bytes = UInt64(erased) * Mock.pageSize
        gather.addRange(iova: start, size: bytes)
        return bytes
    }

    /// `iotlb_sync`: invalidates the gathered range in the IOTLB of every mock unit (the
    /// kernel mock has no IOTLB and no such op).
    public override func iotlbSync(_ gather: inout IOTLBGather) {
        guard !gather.isEmpty else { return }
        for unit in driver.units {
            unit.hardwareLock.withLock { unit.mockHardware.invalidate(serial: serial, first: gather.start, last: gather.end) }
        }
    }

    /// `flush_iotlb_all`: drops every cached translation of the domain on every unit.
    public override func flushIOTLBAll() {
        for unit in driver.units {
            unit.hardwareLock.withLock { unit.mockHardware.invalidateAll(serial: serial) }
        }
    }

    /// `mock_domain_iova_to_phys`: the entry's physical address plus the offset in the
    /// page, 0 when unmapped (the kernel mock WARNs there instead).
    public override func iovaToPhys(_ iova: IOVA) -> PhysicalAddress {
        guard let pte = table.entry(iova) else { return 0 }
        return pte.physical + iova.offset(within: Mock.pageSize)
    }

    // MARK: dirty tracking

    /// `mock_domain_set_dirty_tracking`.
    /// - Throws: `EINVAL` to enable on a domain allocated without DIRTY_TRACKING.
    public override func setDirtyTracking(_ enabled: Bool) throws(Errno) {
        if enabled && !ops.contains(.dirtyTracking) { throw .invalidArgument.from("mock_domain_set_dirty_tracking", "\(self) was not allocated with dirty tracking") }
        stateLock.withLock { tracking = enabled }
    }

    /// `mock_domain_read_and_clear_dirty`: reports each dirty page (a huge map as one
    /// `MOCK_HUGE_PAGE_SIZE` range) and clears its dirty bits unless `clear` is false
    /// (`IOMMU_DIRTY_NO_CLEAR`).
    /// - Throws: `EINVAL` while tracking is off.
    public override func readAndClearDirty(iova: IOVA, size: UInt64, clear: Bool,
                                           _ report: (IOVA, UInt64) -> Void) throws(Errno) {
        guard isDirtyTracking else { throw .invalidArgument.from("mock_domain_read_and_clear_dirty", "dirty tracking is off on \(self)") }
        var ranges: [(UInt64, UInt64)] = []
        table.withEntries { entries in
            var cur = iova.rawValue
            let end = iova.rawValue &+ size
            while cur < end {
                guard let pte = entries[cur / Mock.pageSize] else { cur += Mock.pageSize; continue }
                let pgsize = pte.huge ? Mock.hugePageSize : Mock.pageSize
                let head = cur & ~(pgsize - 1)
                var dirty = false
                var p = head
                while p < head + pgsize {
                    if var e = entries[p / Mock.pageSize], e.dirty {
                        dirty = true
                        if clear { e.dirty = false; entries[p / Mock.pageSize] = e }
                    }
                    p += Mock.pageSize
                }
                if dirty { ranges.append((head, pgsize)) }
                cur = head + pgsize
            }
        }
        for (start, length) in ranges { report(IOVA(rawValue: start), length) }
    }

    /// The mock half of `IOMMU_TEST_OP_DIRTY` (`iommufd_test_dirty`): marks every mapped
    /// entry in [`iova`, `iova + length`) dirty, as a device write would on hardware.
    /// - Returns: how many entries were marked (`out_nr_dirty`).
    /// - Throws: `EINVAL` while tracking is off, or for a range not aligned to
    ///   `MOCK_IO_PAGE_SIZE`.
    public func markDirty(iova: IOVA, length: UInt64) throws(Errno) -> Int {
        guard isDirtyTracking else { throw .invalidArgument.from("iommufd_test_dirty", "dirty tracking is off on \(self)") }
        let iova = iova.rawValue
        guard (iova | length) % Mock.pageSize == 0, iova &+ length >= iova else { throw .invalidArgument.from("iommufd_test_dirty", "iova 0x\(String(iova, radix: 16)) or length 0x\(String(length, radix: 16)) is not page aligned, or wraps") }
        return table.withEntries { entries in
            var n = 0
            var cur = iova
            while cur < iova + length {
                if var e = entries[cur / Mock.pageSize] {
                    e.dirty = true
                    entries[cur / Mock.pageSize] = e
                    n += 1
                }
                cur += Mock.pageSize
            }
            return n
        }
    }

    /// `mock_domain_free`: drops the table's cached translations everywhere.
    public override func free() { flushIOTLBAll() }
}
