#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A radix I/O page table in simulated physical memory: the kernel's io-pgtable /
/// generic_pt (`struct io_pgtable_ops`, `drivers/iommu/generic_pt/iommu_pt.h`), one
/// engine for every ``PageTableFormat``.
///
/// Tables are real pages from ``PhysicalMemory`` (4, 16 or 64 KiB, the format's granule;
/// a concatenated stage-2 root is several, contiguous) holding entries in the hardware
/// format, so a hardware model walks exactly what the driver wrote.
///
/// Concurrency, as io-pgtable and generic_pt: the table takes no lock. Maps and unmaps
/// may run on many threads at once as long as their IOVA ranges are disjoint (the
/// kernel's "write range lock that includes the whole range" is the caller's), and
/// hardware walks (``walk(memory:format:root:iova:access:setAccessedDirty:)``) may run
/// at any time. Every entry is read and written with single atomic 64-bit accesses
/// (`PageTableEntrySlot`); a missing table level is linked with a compare-and-swap
/// (`installTable(_:expected:)`), and the thread that loses the race frees its new page
/// and uses the winner's. A table page is unlinked only by an unmap whose range covers
/// all of it, so no other caller can be using it; it then waits on the gather's
/// freelist until the IOTLB sync. Calls on overlapping ranges at once are a caller bug:
/// their mappings are then undefined, but a table page is still freed at most once (its
/// unlink is a compare-and-swap too).
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
    /// Mutable bookkeeping kept out of class stored properties, so the hot paths pay no
    /// dynamic exclusivity checks: [0] table pages, [1] destroyed flag, [2] the
    /// leaf-bits memo (``leafBits(_:prot:level:)``).
    @usableFromInline let state: UnsafeMutablePointer<Atomic<Int>>
    /// The leaf-table cache (``cachedLeafTable(_:_:)``): ``leafCacheEntries`` words, one
    /// per 64-byte line so that threads working in different regions never write the
    /// same line.
    @usableFromInline let leafCache: UnsafeMutablePointer<Atomic<UInt64>>
    /// Bits of a table's frame number in a leaf-cache word (the region sits above
    /// them); 0 disables the cache (a memory too large for region and frame to share a
    /// word).
    @usableFromInline let leafCacheFrameBits: UInt64
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
        let frameBits = UInt64(UInt64.bitWidth - (memory.size >> 12).leadingZeroBitCount)
        let regionBits = UInt64(max(0, format.vaBits - Int(format.indexShift(level: 2))))
        leafCacheFrameBits = frameBits + regionBits <= 64 ? frameBits : 0
        state = .allocate(capacity: 3)
        for i in 0..<3 { (state + i).initialize(to: Atomic(0)) }
        let words = Self.leafCacheEntries * Self.leafCacheStride
        leafCache = UnsafeMutableRawPointer.allocate(byteCount: words * 8, alignment: 64)
            .bindMemory(to: Atomic<UInt64>.self, capacity: words)
        for i in 0..<words { (leafCache + i).initialize(to: Atomic(0)) }
        do {
            let bytes = format.rootTableBytes
            root = bytes == PhysicalMemory.frameSize
                ? try memory.allocFrame() : try memory.allocContiguous(bytes: bytes, alignment: bytes)
            rootTable = root.rawValue
        } catch {
            state.deallocate()
            leafCache.deallocate()
            throw error
        }
        state[0].store(1, ordering: .relaxed)
    }

    deinit {
        destroy()
        state.deallocate()
        leafCache.deallocate()
    }

    /// Leaf-cache words, each on its own cache line (8 words apart).
    @usableFromInline static var leafCacheEntries: Int { 64 }
    @usableFromInline static var leafCacheStride: Int { 8 }

    /// Page-table pages in use, root included (a concatenated root counts once).
    public var tablePages: Int { state[0].load(ordering: .relaxed) }
    /// Bytes of page-table pages in use: the root plus one granule per other table.
    public var tableBytes: Int {
        let pages = tablePages
        return pages == 0 ? 0 : format.rootTableBytes + (pages - 1) * format.tableBytes
    }

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
    public var isDestroyed: Bool { destroyed }

    @inlinable @inline(__always)
    var destroyed: Bool { state[1].load(ordering: .relaxed) != 0 }

    /// Frees every page-table page (`free_io_pgtable_ops`). The leaves' target frames are
    /// the caller's and are not touched. Idempotent; `deinit` calls it too. No map,
    /// unmap or walk may run at the same time (the owner has fenced the hardware off).
    public func destroy() {
        guard !destroyed else { return }
        state[1].store(1, ordering: .relaxed)
        for i in 0..<Self.leafCacheEntries { leafCache[i * Self.leafCacheStride].store(0, ordering: .relaxed) }
        freeSubtree(rootTable, level: format.levels)
        state[0].store(0, ordering: .relaxed)
    }

    private func freeSubtree(_ table: UInt64, level: Int) {
        if level > 1 {
            let entries = level == format.levels ? format.rootEntries : format.tableEntries
            for i in 0..<entries {
                let pte = PageTableEntrySlot(base + Int(truncatingIfNeeded: table) + i * 8).load()
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
        state[0].add(1, ordering: .relaxed)
        return pa
    }

    /// Gives back a table page no one else ever saw: the loser's page of a table-install
    /// race.
    @usableFromInline
    func freeUnusedTable(_ table: UInt64) {
        state[0].subtract(1, ordering: .relaxed)
        memory.freeFrame(PhysicalAddress(rawValue: table))
    }

    /// Links a new, empty table at the non-present entry `s` (which held `expected`)
    /// with a compare-and-swap, as io-pgtable's `arm_lpae_install_table` and generic_pt's
    /// table install do: when another thread linked one first, this thread's page is
    /// freed and the other's used. Returns the entry now in the slot (the new table, or
    /// whatever the other thread installed). The one place a table level is installed;
    /// out of line, as it runs once per new table.
    /// - Throws: `ENOMEM` if no table page can be allocated; nothing changes.
    @usableFromInline @inline(never)
    func installTable(_ s: PageTableEntrySlot, expected: UInt64) throws(Errno) -> UInt64 {
        let child = try allocTable()
        let entry = format.encodeAddress(child) | format.tableBits
        var old = expected
        while true {
            let (linked, found) = s.compareExchange(expected: old, desired: entry)
            if linked { return entry }
            if found & format.presentMask != 0 {
                freeUnusedTable(child)
                return found
            }
            old = found
        }
    }

    /// The entry slot for `iova` in `table` at `level`.
    @inlinable @inline(__always)
    func slot(_ table: UInt64, _ iova: UInt64, level: Int) -> PageTableEntrySlot {
        PageTableEntrySlot(base + Int(truncatingIfNeeded: table | (((iova &>> format.indexShift(level: level))
                                                                       & format.indexMask(level: level)) &<< 3)))
    }

    /// ``slot(_:_:level:)`` with the layout's constants.
    @inlinable @inline(__always)
    func slot<L: PageTableLayout>(_: L.Type, _ table: UInt64, _ iova: UInt64, level: Int) -> PageTableEntrySlot {
        PageTableEntrySlot(base + Int(truncatingIfNeeded: table | (((iova &>> L.indexShift(format, level: level))
                                                                       & L.indexMask(format, level: level)) &<< 3)))
    }

    // The leaf-table cache: the level-1 tables that recent maps and unmaps of page-sized
    // leaves used, one per region a leaf table covers (2 MiB with 4 KiB pages), in a small
    // direct-mapped array. Sequential maps and unmaps of single pages, one call per
    // page, then skip the walk from the root, as `mapPages` already does within one
    // call. A word holds the region (its offset in the input range, so TTBR1 addresses
    // fit) over the table's frame number, so it is read and written whole, atomically,
    // by any thread; threads in different regions use different words (on different
    // cache lines) and a word is written only when it changes. An entry stays valid
    // while its table is linked: a table is unlinked only by an unmap covering its
    // whole region (no one else may be working there), which clears the entry, and by
    // `destroy`. Callers have checked that `iova` lies in the input range.

    /// The cache word for `region`.
    @inlinable @inline(__always)
    func leafCacheWord(_ region: UInt64) -> UnsafeMutablePointer<Atomic<UInt64>> {
        leafCache + Int(truncatingIfNeeded: region & UInt64(Self.leafCacheEntries &- 1)) &* Self.leafCacheStride
    }

    /// The region of `iova`: the number of the leaf table's span in the input range.
    @inlinable @inline(__always)
    func leafRegion<L: PageTableLayout>(_: L.Type, _ iova: UInt64) -> UInt64 {
        (iova &- L.inputBase(format)) &>> L.indexShift(format, level: 2)
    }

    /// The cached level-1 table if it covers `iova`, else nil.
    @inlinable @inline(__always)
    func cachedLeafTable<L: PageTableLayout>(_: L.Type, _ iova: UInt64) -> UInt64? {
        let frameBits = leafCacheFrameBits
        guard frameBits != 0 else { return nil }
        let region = leafRegion(L.self, iova)
        let word = leafCacheWord(region).pointee.load(ordering: .relaxed)
        let frame = word & ((1 &<< frameBits) &- 1)
        guard frame != 0, word &>> frameBits == region else { return nil }
        return frame &<< 12
    }

    /// Records `table` as the level-1 table covering `iova` (a store only if it changes).
    @inlinable @inline(__always)
    func cacheLeafTable<L: PageTableLayout>(_: L.Type, _ table: UInt64, for iova: UInt64) {
        let frameBits = leafCacheFrameBits
        guard frameBits != 0 else { return }
        let region = leafRegion(L.self, iova)
        let word = leafCacheWord(region)
        let value = region &<< frameBits | table &>> 12
        if word.pointee.load(ordering: .relaxed) != value { word.pointee.store(value, ordering: .relaxed) }
    }

    /// ``cacheLeafTable(_:_:for:)`` outside the layout loops.
    func cacheLeafTable(_ table: UInt64, for iova: UInt64) {
        cacheLeafTable(LPAELayout.self, table, for: iova)
    }

    /// Forgets `table` as the level-1 table of `iova`'s region, if the cache holds it.
    @usableFromInline
    func forgetLeafTable(_ table: UInt64, for iova: UInt64) {
        let frameBits = leafCacheFrameBits
        guard frameBits != 0 else { return }
        let region = leafRegion(LPAELayout.self, iova)
        _ = leafCacheWord(region).pointee.compareExchange(expected: region &<< frameBits | table &>> 12,
                                                          desired: 0, ordering: .relaxed)
    }

    /// The leaf bits for `prot` at `level`, remembered for the last pair asked: a driver
    /// maps page after page with one protection, and the LPAE encoding takes a dozen
    /// decisions. The memo is one atomic word, so threads mapping at once never pair one
    /// key with another's bits: the bits, with the key in bits 20 to 31, which are
    /// address bits in every format's leaf and so clear in its attribute bits.
    @inlinable @inline(__always)
    func leafBits<L: PageTableLayout>(_: L.Type, prot: IOMMUProt, level: Int) -> UInt64 {
        let keyField: UInt64 = 0xFFF &<< 20
        let key = (UInt64(truncatingIfNeeded: prot.rawValue & 0xFF) | UInt64(truncatingIfNeeded: level) &<< 8
                   | 1 &<< 11) &<< 20
        let memo = UInt64(UInt(bitPattern: state[2].load(ordering: .relaxed)))
        if memo & keyField == key { return memo & ~keyField }
        let bits = L.leafBits(format, prot: prot, level: level)
        if bits & keyField == 0 && prot.rawValue <= 0xFF && level < 8 {
            state[2].store(Int(bitPattern: UInt(bits | key)), ordering: .relaxed)
        }
        return bits
    }

    /// Translates `iova` by a software walk: `io_pgtable_ops.iova_to_phys`.
    /// Returns the full physical address, or 0 when nothing is mapped there.
    public func iovaToPhys(_ iova: IOVA) -> PhysicalAddress {
        guard !destroyed else { return 0 }
        if case .translated(let pa, _, _) = Self.walk(memory: memory, format: format, root: root, iova: iova,
                                                       access: [], setAccessedDirty: false) {
            return pa
        }
        return 0
    }

    /// Finds the leaf covering `iova`. Returns the slot, the entry and its level, or the
    /// level of the hole (with a nil slot) when nothing is mapped there.
    @usableFromInline
    func findLeaf(_ iova: UInt64) -> (slot: PageTableEntrySlot?, pte: UInt64, level: Int) {
        var table = rootTable
        var level = format.levels
        while true {
            let s = slot(table, iova, level: level)
            let pte = s.load()
            if pte & format.presentMask == 0 { return (nil, 0, level) }
            if format.isLeaf(pte, level: level) { return (s, pte, level) }
            table = format.decodeAddress(pte)
            level -= 1
        }
    }

    /// Calls `body(leafIOVA, leafPA, leafSize, slot)` for every present leaf that
    /// intersects `[iova, iova + size)`, skipping holes a whole empty entry at a time.
    func forEachLeaf(iova: UInt64, size: UInt64,
                     _ body: (UInt64, UInt64, UInt64, PageTableEntrySlot) -> Void) {
        guard !destroyed, size != 0 else { return }
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
