import IOMMUCore

/// One entry of a mock domain's table: the model of a value in `mock_iommu_domain.pfns`
/// (an xarray indexed by `iova / MOCK_IO_PAGE_SIZE` holding the PFN and flag bits).
public struct MockPTE: Hashable, Sendable {
    /// Physical frame number in `MOCK_IO_PAGE_SIZE` units.
    public var pfn: UInt64
    /// Permissions recorded at map time. The kernel mock drops `prot`; the model keeps
    /// read and write so the mock hardware can refuse a write to a read-only mapping.
    public var prot: IOMMUProt
    /// `MOCK_PFN_DIRTY_IOVA`: set by the test op, reported by `read_and_clear_dirty`.
    public var dirty: Bool
    /// `MOCK_PFN_HUGE_IOVA`: part of a `MOCK_HUGE_PAGE_SIZE` map.
    public var huge: Bool
    /// `MOCK_PFN_START_IOVA`: first entry of one `map_pages` call.
    public var start: Bool
    /// `MOCK_PFN_LAST_IOVA`: last entry of one `map_pages` call.
    public var last: Bool

    /// The physical address of the entry's page.
    public var physical: PhysicalAddress { PhysicalAddress(rawValue: pfn * Mock.pageSize) }
}

/// The table of a mock paging domain: per-`MOCK_IO_PAGE_SIZE` entries, as the kernel mock
/// keeps them in an xarray. The mock "hardware" reads this very object (the hardware
/// entry of an attached RID or PASID holds a reference to it), as a real IOMMU walks the
/// table the driver wrote.
///
/// Locked: the driver updates it under the lock and the hardware model reads it under
/// the lock (lock order: unit hardware lock, then this lock).
public final class MockPageTable: @unchecked Sendable {
    private let lock = Lock()
    private var entries: [UInt64: MockPTE] = [:]

    /// An empty table (`xa_init(&mock->pfns)`).
    public init() {}

    /// The entry covering `iova`, if mapped (`xa_load`).
    public func entry(_ iova: IOVA) -> MockPTE? {
        lock.withLock { entries[iova.rawValue / Mock.pageSize] }
    }

    /// Number of mapped `MOCK_IO_PAGE_SIZE` entries.
    public var count: Int { lock.withLock { entries.count } }

    /// Runs `body` with exclusive access to the entries (the driver's update path).
    func withEntries<T, E: Error>(_ body: (inout [UInt64: MockPTE]) throws(E) -> T) throws(E) -> T {
        try lock.withLock { () throws(E) -> T in try body(&entries) }
    }
}
