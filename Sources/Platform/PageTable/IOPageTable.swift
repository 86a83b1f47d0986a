#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A radix I/O page table in simulated physical memory: the kernel's io-pgtable /
/// generic_pt (`struct io_pgtable_ops`, `drivers/iommu/generic_pt/iommu_pt.h`), one
/// engine for every ``PageTableFormat``.
///
/// Tables are real 4 KiB frames from ``PhysicalMemory`` holding entries in the
/// hardware format, so a hardware model walks exactly what the driver wrote.
///
/// Concurrency: like an io-pgtable, the table does not lock. Callers serialise map and
/// unmap on one table (the domain's lock, the mm lock); hardware walks
/// (``walk(memory:format:root:iova:access:setAccessedDirty:)``) may run concurrently
/// with them because every update is a single aligned 64-bit store.
public final class IOPageTable: @unchecked Sendable {
    /// The entry format.
    public let format: PageTableFormat
    /// The memory the tables live in.
    public let memory: PhysicalMemory
    /// Physical address of the top-level table (what a context/PASID entry or CR3 holds).
    public let root: PhysicalAddress
    /// ``root``'s raw value, for the engine's arithmetic on table addresses.
    @usableFromInline let rootTable: UInt64

    /// Host address of physical address 0, cached to keep hot paths one load shorter.
    @usableFromInline let base: UnsafeMutableRawPointer
    /// Present-entry count of every table page, indexed by frame number. Lets an unmap
    /// tell in O(1) that a table became empty. A lazily committed host reservation: only
    /// the counters of frames used as tables are ever touched.
    @usableFromInline let occupancy: UnsafeMutablePointer<UInt16>
    private let occupancyBytes: Int
    /// Mutable bookkeeping kept out of class stored properties, so the hot paths pay no
    /// dynamic exclusivity checks: [0] table pages, [1] destroyed flag, [2] and [3] the
    /// leaf-table cache (``cachedLeafTable(_:)``).
    @usableFromInline let state: UnsafeMutablePointer<Int>

    /// Allocates an empty table: the root page (`alloc_io_pgtable_ops`).
    /// - Throws: `ENOMEM` if the root frame cannot be allocated.
    public init(format: PageTableFormat, memory: PhysicalMemory) throws(Errno) {
        self.format = format
        self.memory = memory
        base = memory.base
        occupancyBytes = Int(memory.size / UInt64(PhysicalMemory.frameSize)) * MemoryLayout<UInt16>.stride
        guard let p = mmap(nil, occupancyBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
              p != MAP_FAILED else { throw .noMemory }
        occupancy = p.bindMemory(to: UInt16.self, capacity: occupancyBytes / 2)
        state = .allocate(capacity: 4)
        state.initialize(repeating: 0, count: 4)
        do {
            root = try memory.allocFrame()
            rootTable = root.rawValue
        } catch {
            munmap(p, occupancyBytes)
            state.deallocate()
            throw error
        }
        state[0] = 1
        forgetLeafTable()
    }

    deinit {
        destroy()
        munmap(occupancy, occupancyBytes)
        state.deallocate()
    }

    /// Page-table pages in use, root included.
    public var tablePages: Int { state[0] }
    /// Bytes of page-table pages in use (``tablePages`` × 4 KiB).
    public var tableBytes: Int { state[0] * PhysicalMemory.frameSize }
    /// Whether ``destroy()`` has run; a destroyed table maps nothing and translates nothing.
    public var isDestroyed: Bool { state[1] != 0 }

    /// Frees every page-table page (`free_io_pgtable_ops`). The leaves' target frames are
    /// the caller's and are not touched. Idempotent; `deinit` calls it too.
    public func destroy() {
        guard state[1] == 0 else { return }
        state[1] = 1
        forgetLeafTable()
        freeSubtree(rootTable, level: format.levels)
        state[0] = 0
    }

    private func freeSubtree(_ table: UInt64, level: Int) {
        if level > 1 {
            for i in 0..<512 {
                let pte = (base + Int(truncatingIfNeeded: table) + i * 8).load(as: UInt64.self)
                if pte & format.presentMask != 0 && !PageTableFormat.isLeaf(pte, level: level) {
                    freeSubtree(pte & PageTableFormat.addressMask, level: level - 1)
                }
            }
        }
        memory.freeFrame(PhysicalAddress(rawValue: table))
    }

    /// A new empty table page.
    @usableFromInline
    func allocTable() throws(Errno) -> UInt64 {
        let pa = try memory.allocFrame().rawValue
        occupancy[Int(truncatingIfNeeded: pa >> 12)] = 0
        state[0] += 1
        return pa
    }

    /// The entry slot for `iova` in `table` at `level`.
    @inlinable @inline(__always)
    func slot(_ table: UInt64, _ iova: UInt64, level: Int) -> UnsafeMutableRawPointer {
        base + Int(truncatingIfNeeded: table | (((iova &>> UInt64(truncatingIfNeeded: 3 &+ 9 &* level)) & 511) &<< 3))
    }

    // The leaf-table cache: the level-1 table that the last map or unmap of a 4 KiB leaf
    // used, keyed by its 2 MiB IOVA region (`iova >> 21`; every format has 4 KiB pages and
    // 512-entry tables). Sequential maps and unmaps of single pages, one call per page,
    // then skip the walk from the root, as `mapPages` already does within one call.
    // Only map and unmap read or write it (they are serialised by the caller); the entry
    // stays valid because a linked table is only unlinked by `releaseEmptyTables` and
    // `destroy`, which forget it.

    /// The cached level-1 table if it covers `iova`, else nil.
    @inlinable @inline(__always)
    func cachedLeafTable(_ iova: UInt64) -> UInt64? {
        UInt64(UInt(bitPattern: state[2])) == iova &>> 21 ? UInt64(UInt(bitPattern: state[3])) : nil
    }

    /// Records `table` as the level-1 table covering `iova`.
    @inlinable @inline(__always)
    func cacheLeafTable(_ table: UInt64, for iova: UInt64) {
        state[2] = Int(bitPattern: UInt(iova &>> 21))
        state[3] = Int(bitPattern: UInt(table))
    }

    /// Empties the leaf-table cache. The key `UInt64.max` matches no IOVA (`iova >> 21`
    /// has at most 43 bits).
    func forgetLeafTable() {
        state[2] = -1
        state[3] = 0
    }

    @inlinable @inline(__always)
    func adjustOccupancy(_ table: UInt64, by delta: Int16) {
        let p = occupancy + Int(truncatingIfNeeded: table &>> 12)
        p.pointee = UInt16(truncatingIfNeeded: Int16(bitPattern: p.pointee) &+ delta)
    }

    /// Counts one entry of `table` cleared; returns the entries still present.
    @inlinable @inline(__always)
    func decrementOccupancy(_ table: UInt64) -> UInt16 {
        let p = occupancy + Int(truncatingIfNeeded: table &>> 12)
        let left = p.pointee &- 1
        p.pointee = left
        return left
    }

    /// Translates `iova` by a software walk: `io_pgtable_ops.iova_to_phys`.
    /// Returns the full physical address, or 0 when nothing is mapped there.
    public func iovaToPhys(_ iova: IOVA) -> PhysicalAddress {
        guard state[1] == 0 else { return 0 }
        if case .translated(let pa, _, _) = Self.walk(memory: memory, format: format, root: root, iova: iova,
                                                       access: [], setAccessedDirty: false) {
            return pa
        }
        return 0
    }

    /// Finds the leaf covering `iova`. Returns the slot, the entry and its level, or the
    /// level of the hole (with a nil slot) when nothing is mapped there.
    @usableFromInline
    func findLeaf(_ iova: UInt64) -> (slot: UnsafeMutableRawPointer?, pte: UInt64, level: Int) {
        var table = rootTable
        var level = format.levels
        while true {
            let s = slot(table, iova, level: level)
            let pte = s.load(as: UInt64.self)
            if pte & format.presentMask == 0 { return (nil, 0, level) }
            if PageTableFormat.isLeaf(pte, level: level) { return (s, pte, level) }
            table = pte & PageTableFormat.addressMask
            level -= 1
        }
    }

    /// Calls `body(leafIOVA, leafPA, leafSize, slot)` for every present leaf that
    /// intersects `[iova, iova + size)`, skipping holes a whole empty entry at a time.
    func forEachLeaf(iova: UInt64, size: UInt64,
                     _ body: (UInt64, UInt64, UInt64, UnsafeMutableRawPointer) -> Void) {
        guard state[1] == 0, size != 0 else { return }
        let limit = UInt64(1) << UInt64(format.vaBits)
        guard iova < limit else { return }
        let end = size > limit - iova ? limit : iova + size
        var cursor = iova
        while cursor < end {
            let (s, pte, level) = findLeaf(cursor)
            let span = PageTableFormat.entrySpan(level: level)
            let leafBase = cursor & ~(span - 1)
            if let s {
                body(leafBase, pte & PageTableFormat.addressMask & ~(span - 1), span, s)
            }
            let next = leafBase &+ span
            if next <= cursor { break }
            cursor = next
        }
    }
}
