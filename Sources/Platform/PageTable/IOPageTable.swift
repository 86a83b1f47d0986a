#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A radix I/O page table in simulated physical memory: the kernel's io-pgtable /
/// generic_pt (`struct io_pgtable_ops`, `drivers/iommu/generic_pt/iommu_pt.h`), one
/// engine for every ``PageTableFormat``.
///
/// Tables are real pages from ``PhysicalMemory`` (4, 16 or 64 KiB, the format's granule;
/// a concatenated stage-2 root is several, contiguous) holding entries in the hardware
/// format, so a hardware model walks exactly what the driver wrote.
///
/// Concurrency: like an io-pgtable, the table does not lock. Callers serialise map and
/// unmap on one table (the domain's lock, the mm lock); hardware walks
/// (``walk(memory:format:root:iova:access:setAccessedDirty:)``) may run concurrently
/// with them because every update is a single aligned 64-bit store. New table levels
/// are linked in one place, `installTable(_:in:)`.
///
/// WARNs: io-pgtable-arm WARNs on some misuse (a map over a mapping, an unmap of a hole
/// or of part of a block, an address out of range). The LPAE formats record them in
/// ``warnings`` and pass each to the `warn` handler given at creation, so the owner
/// (a driver, the core) can record it as its own; x86-64 and VT-d tables never warn,
/// as generic_pt does not.
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
    /// leaf-table cache (``cachedLeafTable(_:_:)``), [4] and [5] the leaf-bits memo
    /// (``leafBits(_:prot:level:)``).
    @usableFromInline let state: UnsafeMutablePointer<Int>
    /// Where a WARN goes besides ``warnings``.
    private let warnHandler: (@Sendable (Warning) -> Void)?
    /// Where table pages below the root come from; nil for ``memory``.
    private let allocator: (any PageTableAllocator)?
    private let warningLock = Lock()
    /// Bounded, as misuse a caller repeats should not grow memory without end.
    private var _warnings = BoundedLog<Warning>(limit: 256)

    /// Allocates an empty table: the root (`alloc_io_pgtable_ops`).
    /// - Parameters:
    ///   - format: the entry format.
    ///   - memory: the memory the tables live in.
    ///   - allocator: where the table pages below the root come from
    ///     (`io_pgtable_cfg.alloc`); nil (the default) for `memory`. The root always
    ///     comes from `memory`, and every freed page goes back to it.
    ///   - warn: called with each WARN the table raises (LPAE formats only), e.g. to
    ///     record it with the machine's warnings; ``warnings`` keeps them too.
    /// - Throws: `ENOMEM` if the root cannot be allocated.
    public init(format: PageTableFormat, memory: PhysicalMemory, allocator: (any PageTableAllocator)? = nil,
                warn: (@Sendable (Warning) -> Void)? = nil) throws(Errno) {
        self.format = format
        self.memory = memory
        self.allocator = allocator
        warnHandler = warn
        base = memory.base
        occupancyBytes = Int(memory.size / UInt64(PhysicalMemory.frameSize)) * MemoryLayout<UInt16>.stride
        guard let p = mmap(nil, occupancyBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
              p != MAP_FAILED else {
            throw .noMemory.from("alloc_io_pgtable_ops", "no host memory for the occupancy counters")
        }
        occupancy = p.bindMemory(to: UInt16.self, capacity: occupancyBytes / 2)
        state = .allocate(capacity: 6)
        state.initialize(repeating: 0, count: 6)
        state[4] = -1
        do {
            let bytes = format.rootTableBytes
            root = bytes == PhysicalMemory.frameSize
                ? try memory.allocFrame() : try memory.allocContiguous(bytes: bytes, alignment: bytes)
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

    /// Page-table pages in use, root included (a concatenated root counts once).
    public var tablePages: Int { state[0] }
    /// Bytes of page-table pages in use: the root plus one granule per other table.
    public var tableBytes: Int { state[0] == 0 ? 0 : format.rootTableBytes + (state[0] - 1) * format.tableBytes }

    /// The WARNs this table raised, oldest first (the newest 256).
    public var warnings: [Warning] { warningLock.withLock { _warnings.elements } }

    /// Raises a WARN: io-pgtable-arm's `WARN_ON` at `function`. Only LPAE tables warn;
    /// with ``IOPageTableQuirks/noWarn`` the quiet cases (`quiet: true`) do not.
    @usableFromInline @inline(never)
    func warn(_ function: String, _ message: String, quiet: Bool = false) {
        guard format.isLPAE, !(quiet && format.quirks.contains(.noWarn)) else { return }
        let w = Warning(function: function, message: message)
        warningLock.withLock { _warnings.append(w) }
        warnHandler?(w)
    }

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
            let entries = level == format.levels ? format.rootEntries : format.tableEntries
            for i in 0..<entries {
                let pte = (base + Int(truncatingIfNeeded: table) + i * 8).load(as: UInt64.self)
                if pte & format.presentMask != 0 && !format.isLeaf(pte, level: level) {
                    freeSubtree(format.decodeAddress(pte), level: level - 1)
                }
            }
        }
        // A table larger than a frame is one contiguous run, freed whole.
        memory.freeFrame(PhysicalAddress(rawValue: table))
    }

    /// A new empty table page (one granule), from the allocator if the table has one.
    @usableFromInline
    func allocTable() throws(Errno) -> UInt64 {
        let bytes = format.tableBytes
        let pa: UInt64
        if let allocator {
            pa = try allocator.allocTable(bytes: bytes).rawValue
        } else {
            pa = (bytes == PhysicalMemory.frameSize
                ? try memory.allocFrame() : try memory.allocContiguous(bytes: bytes, alignment: bytes)).rawValue
        }
        occupancy[Int(truncatingIfNeeded: pa >> 12)] = 0
        state[0] += 1
        return pa
    }

    /// Links a new, empty table into the empty entry `slot` of `parent` and returns the
    /// new table's address. The one place a table level is installed (the kernel's
    /// `arm_lpae_install_table` / generic_pt's table install), so that concurrent map
    /// can later install with a compare-and-swap here alone.
    /// - Throws: `ENOMEM` if the table cannot be allocated; nothing changes.
    @usableFromInline
    func installTable(_ slot: UnsafeMutableRawPointer, in parent: UInt64) throws(Errno) -> UInt64 {
        let child = try allocTable()
        slot.storeBytes(of: format.encodeAddress(child) | format.tableBits, as: UInt64.self)
        adjustOccupancy(parent, by: 1)
        return child
    }

    /// The entry slot for `iova` in `table` at `level`.
    @inlinable @inline(__always)
    func slot(_ table: UInt64, _ iova: UInt64, level: Int) -> UnsafeMutableRawPointer {
        base + Int(truncatingIfNeeded: table | (((iova &>> format.indexShift(level: level))
                                                   & format.indexMask(level: level)) &<< 3))
    }

    /// ``slot(_:_:level:)`` with the layout's constants.
    @inlinable @inline(__always)
    func slot<L: PageTableLayout>(_: L.Type, _ table: UInt64, _ iova: UInt64, level: Int) -> UnsafeMutableRawPointer {
        base + Int(truncatingIfNeeded: table | (((iova &>> L.indexShift(format, level: level))
                                                   & L.indexMask(format, level: level)) &<< 3))
    }

    // The leaf-table cache: the level-1 table that the last map or unmap of a page-sized
    // leaf used, keyed by the IOVA region one leaf table covers (`iova >> (page shift +
    // index bits)`: 2 MiB with 4 KiB pages). Sequential maps and unmaps of single pages,
    // one call per page, then skip the walk from the root, as `mapPages` already does
    // within one call. Only map and unmap read or write it (they are serialised by the
    // caller); the entry stays valid because a linked table is only unlinked by
    // `releaseEmptyTables` and `destroy`, which forget it.

    /// The cached level-1 table if it covers `iova`, else nil.
    @inlinable @inline(__always)
    func cachedLeafTable<L: PageTableLayout>(_: L.Type, _ iova: UInt64) -> UInt64? {
        UInt64(UInt(bitPattern: state[2])) == iova &>> L.indexShift(format, level: 2)
            ? UInt64(UInt(bitPattern: state[3])) : nil
    }

    /// Records `table` as the level-1 table covering `iova` (outside the layout loops).
    func cacheLeafTable(_ table: UInt64, for iova: UInt64) {
        state[2] = Int(bitPattern: UInt(iova &>> format.indexShift(level: 2)))
        state[3] = Int(bitPattern: UInt(table))
    }

    /// Records `table` as the level-1 table covering `iova`.
    @inlinable @inline(__always)
    func cacheLeafTable<L: PageTableLayout>(_: L.Type, _ table: UInt64, for iova: UInt64) {
        state[2] = Int(bitPattern: UInt(iova &>> L.indexShift(format, level: 2)))
        state[3] = Int(bitPattern: UInt(table))
    }

    /// The leaf bits for `prot` at `level`, remembered for the last pair asked: a driver
    /// maps page after page with one protection, and the LPAE encoding takes a dozen
    /// decisions. The key `-1` matches no pair (protection flags use 6 bits).
    @inlinable @inline(__always)
    func leafBits<L: PageTableLayout>(_: L.Type, prot: IOMMUProt, level: Int) -> UInt64 {
        let key = Int(truncatingIfNeeded: prot.rawValue) | level &<< 32
        if state[4] == key { return UInt64(UInt(bitPattern: state[5])) }
        let bits = L.leafBits(format, prot: prot, level: level)
        state[4] = key
        state[5] = Int(bitPattern: UInt(bits))
        return bits
    }

    /// Empties the leaf-table cache. The key `UInt64.max` matches no IOVA (a leaf table
    /// covers at least 2 MiB, so the key has at most 43 bits).
    func forgetLeafTable() {
        state[2] = -1
        state[3] = 0
    }

    @inlinable @inline(__always)
    func adjustOccupancy(_ table: UInt64, by delta: Int) {
        let p = occupancy + Int(truncatingIfNeeded: table &>> 12)
        p.pointee = UInt16(truncatingIfNeeded: Int(p.pointee) &+ delta)
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
            if format.isLeaf(pte, level: level) { return (s, pte, level) }
            table = format.decodeAddress(pte)
            level -= 1
        }
    }

    /// Calls `body(leafIOVA, leafPA, leafSize, slot)` for every present leaf that
    /// intersects `[iova, iova + size)`, skipping holes a whole empty entry at a time.
    func forEachLeaf(iova: UInt64, size: UInt64,
                     _ body: (UInt64, UInt64, UInt64, UnsafeMutableRawPointer) -> Void) {
        guard state[1] == 0, size != 0 else { return }
        // Work in offsets from the start of the input range, so a TTBR1 range ending at
        // 2^64 cannot wrap.
        let limit = UInt64(1) << UInt64(format.vaBits)
        let first = iova &- format.inputBase
        guard first < limit else { return }
        let end = size > limit - first ? limit : first + size
        var cursor = first
        while cursor < end {
            let va = cursor &+ format.inputBase
            let (s, pte, level) = findLeaf(va)
            let span = format.entrySpan(level: level)
            let leafBase = cursor & ~(span - 1)
            if let s {
                body(leafBase &+ format.inputBase, format.decodeAddress(pte) & ~(span - 1), span, s)
            }
            let next = leafBase &+ span
            if next <= cursor { break }
            cursor = next
        }
    }
}

/// A custom source of table pages for an ``IOPageTable`` (`io_pgtable_cfg.alloc`), for an
/// owner that must not allocate while mapping: a GPU driver that preallocates, before a
/// VM_BIND job runs, every page the bind can need. Pages are ``PhysicalMemory`` frames
/// (a larger granule a contiguous run); a freed one goes back to that memory.
public protocol PageTableAllocator: AnyObject, Sendable {
    /// A zeroed table page of `bytes`, aligned to its size.
    /// - Throws: `ENOMEM` when none is left; the map that asked fails with it and
    ///   changes nothing.
    func allocTable(bytes: Int) throws(Errno) -> PhysicalAddress
}
