/// Protection of a process mapping: `PROT_READ`, `PROT_WRITE`, `PROT_EXEC`
/// (`include/uapi/asm-generic/mman-common.h`); the empty set is `PROT_NONE`.
public struct ProcessProt: OptionSet, Sendable, Hashable {
    /// The raw flag word, the C `prot` value.
    public let rawValue: UInt32
    /// Wraps a raw flag word.
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// `PROT_READ`.
    @inlinable public static var read: ProcessProt { ProcessProt(rawValue: 1 << 0) }
    /// `PROT_WRITE`.
    @inlinable public static var write: ProcessProt { ProcessProt(rawValue: 1 << 1) }
    /// `PROT_EXEC`.
    @inlinable public static var exec: ProcessProt { ProcessProt(rawValue: 1 << 2) }
}

/// One mapping (`struct vm_area_struct`): `[start, end)`, page aligned. Anonymous
/// private memory, a `MAP_SHARED` window on a ``Memfd`` starting at page `pgoff`, or a
/// driver's own frames (`VM_PFNMAP`, see ``Process/mapFrames(_:prot:at:ops:)``).
struct VMA: Sendable {
    var start: UInt64
    var end: UInt64
    var prot: ProcessProt
    /// `vm_file`: the shared file behind the mapping; nil for anonymous memory.
    var file: Memfd? = nil
    /// `vm_pgoff`: the file page mapped at `start`.
    var pgoff: UInt64 = 0
    /// `vm_ops` of a driver mapping (`VM_PFNMAP`): its frames are the driver's, never
    /// faulted in or copied, and the driver hears of every copy and removal.
    var ops: (any VMAOperations)? = nil
}

/// `struct vm_operations_struct` for a mapping of a driver's own frames: the driver is
/// told when a piece of the mapping comes to be (a split by `munmap`, a `fork`) and when
/// one goes (`munmap`, exit), so it can count the mappings that use its memory.
/// Both are called with no lock of the process held.
public protocol VMAOperations: AnyObject, Sendable {
    /// `open`: one more mapping (piece) of the region exists.
    func open()
    /// `close`: one mapping (piece) of the region is gone.
    func close()
}

extension Process {
    /// Lowest address handed out by `mmap` without a hint (above `mmap_min_addr`).
    static let mmapBase: UInt64 = 0x1000_0000
    static let pageSize: UInt64 = 4096

    /// The PTE permissions for a VMA protection: user pages of normal cacheable memory
    /// (arm64: MAIR write-back, inner shareable; x86 has nothing to set), read implied by
    /// any access (x86 cannot express write-only), XD / XN unless executable. Nil for
    /// `PROT_NONE`.
    static func pteProt(_ prot: ProcessProt) -> IOMMUProt? {
        guard !prot.isEmpty else { return nil }
        var p: IOMMUProt = [.read, .cache]
        if prot.contains(.write) { p.insert(.write) }
        if !prot.contains(.exec) { p.insert(.noexec) }
        return p
    }

    /// Page-rounds `length` and checks `[address, address + length)` lies in user space.
    func userRange(address: UInt64, length: Int) throws(Errno) -> (UInt64, UInt64) {
        guard length > 0 else { throw .invalidArgument.from("mmap", "length \(length) is not positive") }
        guard address & (Self.pageSize - 1) == 0 else { throw .invalidArgument.from("mmap", "address 0x\(String(address, radix: 16)) is not page aligned") }
        let len = (UInt64(length) + Self.pageSize - 1) & ~(Self.pageSize - 1)
        guard address < userLimit, len <= userLimit - address else {
            throw .invalidArgument.from("mmap", "[0x\(String(address, radix: 16)), +0x\(String(len, radix: 16))) is outside user space")
        }
        return (address, address + len)
    }

    /// Creates an anonymous private mapping: `mmap(addr, length, prot,
    /// MAP_PRIVATE | MAP_ANONYMOUS [| MAP_FIXED_NOREPLACE] [| MAP_POPULATE], -1, 0)`.
    /// Pages are allocated on first touch unless `populate`.
    /// - Parameters:
    ///   - length: bytes, rounded up to whole pages.
    ///   - prot: the mapping's protection.
    ///   - address: where to place it (page aligned, must be free); nil lets the model
    ///     choose the lowest free range.
    ///   - populate: fault every page in now (`MAP_POPULATE`).
    /// - Returns: the start address.
    /// - Throws: `EINVAL` for a zero length, a misaligned address, a range outside user
    ///   space or an exiting mm; `EEXIST` if `address` overlaps a mapping
    ///   (`MAP_FIXED_NOREPLACE`); `ENOMEM` if no free range is large enough or
    ///   populating runs out of memory (the mapping is then removed).
    @discardableResult
    public func mmap(length: Int, prot: ProcessProt, at address: UInt64? = nil,
                     populate: Bool = false) throws(Errno) -> UInt64 {
        let start = try insertVMA(length: length, prot: prot, at: address, file: nil, pgoff: 0)
        if populate && !prot.isEmpty {
            var va = start
            let end = start + ((UInt64(length) + Self.pageSize - 1) & ~(Self.pageSize - 1))
            do {
                while va < end {
                    try handleFault(address: va, write: prot.contains(.write), exec: prot.contains(.exec))
                    va += Self.pageSize
                }
            } catch {
                try? munmap(address: start, length: length)
                throw error
            }
        }
        return start
    }

    /// Places a new VMA (`mmap_region`): at `address` if given (it must be free), else at
    /// the lowest free range.
    /// - Throws: `EINVAL` zero length, misaligned or out-of-range address, exiting mm;
    ///   `EEXIST` `address` overlaps a mapping; `ENOMEM` no free range.
    func insertVMA(length: Int, prot: ProcessProt, at address: UInt64?, file: Memfd?,
                   pgoff: UInt64, ops: (any VMAOperations)? = nil) throws(Errno) -> UInt64 {
        guard length > 0 else { throw .invalidArgument.from("mmap_region", "length \(length) is not positive") }
        return try lock.withLock { () throws(Errno) -> UInt64 in
            guard !exiting else { throw .invalidArgument.from("mmap_region", "pid \(pid) is exiting") }
            let len = (UInt64(length) + Self.pageSize - 1) & ~(Self.pageSize - 1)
            let start: UInt64
            if let address {
                let (s, e) = try userRange(address: address, length: length)
                guard !vmas.contains(where: { $0.start < e && s < $0.end }) else {
                    throw .exists.from("mmap_region", "[0x\(String(s, radix: 16)), 0x\(String(e, radix: 16))) overlaps a mapping (MAP_FIXED_NOREPLACE)")
                }
                start = s
            } else {
                var candidate = Self.mmapBase
                for v in vmas where v.end > candidate {
                    if v.start >= candidate && v.start - candidate >= len { break }
                    candidate = v.end
                }
                guard candidate < userLimit, len <= userLimit - candidate else {
                    throw .noMemory.from("mmap_region", "no free range of 0x\(String(len, radix: 16)) bytes")
                }
                start = candidate
            }
            let i = vmas.firstIndex { $0.start > start } ?? vmas.count
            vmas.insert(VMA(start: start, end: start + len, prot: prot, file: file, pgoff: pgoff, ops: ops), at: i)
            return start
        }
    }

    /// The protection of the VMA holding `address` (`find_vma` + `vm_flags`), nil when no
    /// VMA does. The SVA fault handler checks a page request against it.
    package func vmaProtection(at address: UInt64) -> ProcessProt? {
        lock.withLock { vmaIndexLocked(containing: address).map { vmas[$0].prot } }
    }

    /// Parts of the VMAs inside `[start, end)`, clipped.
    func segments(_ start: UInt64, _ end: UInt64) -> [(UInt64, UInt64)] {
        vmas.compactMap { v in
            let s = max(v.start, start), e = min(v.end, end)
            return s < e ? (s, e) : nil
        }
    }

    /// Splits VMAs so that `start` and `end` are VMA boundaries.
    /// - Returns: the driver ops of the pieces made (one `open` each is owed).
    func splitVMAs(at start: UInt64, _ end: UInt64) -> [any VMAOperations] {
        var opened: [any VMAOperations] = []
        for cut in [start, end] {
            if let i = vmas.firstIndex(where: { $0.start < cut && cut < $0.end }) {
                var upper = vmas[i]
                // The upper part of a file mapping maps the file further on.
                upper.pgoff += (cut - upper.start) / Self.pageSize
                upper.start = cut
                vmas[i].end = cut
                vmas.insert(upper, at: i + 1)
                if let ops = upper.ops { opened.append(ops) }
            }
        }
        return opened
    }

    /// Pages in `[start, end)` and their frames, in address order.
    func populatedPages(_ start: UInt64, _ end: UInt64) -> [(va: UInt64, pa: PhysicalAddress)] {
        pages.filter { $0.key >= start && $0.key < end }.map { (va: $0.key, pa: $0.value) }.sorted { $0.va < $1.va }
    }

    /// `remap_pfn_range` from a driver's `mmap`: a new shared mapping of the driver's
    /// `frames` (one per page, in order), at `address` if given (it must be free), else at
    /// the lowest free range. The mm holds a reference to each frame while it maps it;
    /// the pages are never faulted in, and `fork` gives the child the same frames. `ops`
    /// hears of every piece made (`open`) or removed (`close`), the first mapping itself
    /// excepted, as the kernel's `mmap` does not call `open` for it.
    /// - Returns: the start address.
    /// - Throws: as ``mmap(length:prot:at:populate:)``; `EFAULT` for a frame that is not
    ///   allocated. Nothing is mapped on error.
    @discardableResult
    public func mapFrames(_ frames: [PhysicalAddress], prot: ProcessProt, at address: UInt64? = nil,
                          ops: any VMAOperations) throws(Errno) -> UInt64 {
        let start = try insertVMA(length: frames.count * Int(Self.pageSize), prot: prot, at: address, file: nil,
                                  pgoff: 0, ops: ops)
        var done = 0
        do throws(Errno) {
            for pa in frames {
                try insertPage(address: start + UInt64(done) * Self.pageSize, frame: pa)
                done += 1
            }
        } catch {
            // Taken down again without telling the driver: the mapping never was.
            lock.withLock { if let i = vmas.firstIndex(where: { $0.start == start }) { vmas[i].ops = nil } }
            try? munmap(address: start, length: frames.count * Int(Self.pageSize))
            throw error
        }
        return start
    }

    /// Removes mappings in the range: `munmap(2)`. Clears the PTEs, fires
    /// `invalidateRange` for each VMA part removed, then drops the mm's reference on each
    /// page (a pinned page stays allocated until unpinned) and frees the page-table pages
    /// of the hole left between the remaining mappings (`free_pgtables`). Unmapping a
    /// range with no mapping succeeds. A driver mapping cut in two gets `open` for the
    /// new piece; every piece removed gets `close`.
    /// - Throws: `EINVAL` for a misaligned address, a zero length or a range outside user
    ///   space.
    public func munmap(address: UInt64, length: Int) throws(Errno) {
        let (start, end) = try userRange(address: address, length: length)
        var gather = IOTLBGather()
        let (ranges, freed, opened, closed): ([(UInt64, UInt64)], [PhysicalAddress], [any VMAOperations],
                                              [any VMAOperations]) =
            lock.withLock {
                let ranges = segments(start, end)
                guard !ranges.isEmpty else { return ([], [], [], []) }
                var freed: [PhysicalAddress] = []
                for (va, pa) in populatedPages(start, end) {
                    _ = pageTable.unmapPages(iova: IOVA(rawValue: va), pgsize: Self.pageSize, pgcount: 1, gather: &gather)
                    pages[va] = nil
                    freed.append(pa)
                }
                let opened = splitVMAs(at: start, end)
                let closed = vmas.filter { $0.start >= start && $0.end <= end }.compactMap(\.ops)
                vmas.removeAll { $0.start >= start && $0.end <= end }
                // The page tables of the hole between the mappings that remain on either side.
                let floor = vmas.last { $0.end <= start }?.end ?? 0
                let ceiling = vmas.first { $0.start >= end }?.start ?? userLimit
                pageTable.releaseEmptyTables(from: IOVA(rawValue: floor), to: IOVA(rawValue: ceiling), gather: &gather)
                return (ranges, freed, opened, closed)
            }
        for ops in opened { ops.open() }
        notifyInvalidate(ranges)
        for pa in freed { memory.putFrame(pa) }
        gather.releaseFreelist(to: memory)
        for ops in closed { ops.close() }
    }

    /// Changes the protection of mapped pages: `mprotect(2)`. Rewrites the PTEs of the
    /// populated pages (a `PROT_NONE` page loses its PTE and keeps its frame), then fires
    /// `invalidateRange` for each VMA part changed.
    /// - Throws: `EINVAL` for a misaligned address, a zero length or a range outside user
    ///   space; `ENOMEM` if part of the range is not mapped (as Linux) or a page-table
    ///   page cannot be allocated.
    public func mprotect(address: UInt64, length: Int, prot: ProcessProt) throws(Errno) {
        let (start, end) = try userRange(address: address, length: length)
        var gather = IOTLBGather()
        var opened: [any VMAOperations] = []
        let result: Result<[(UInt64, UInt64)], Errno> = lock.withLock {
            let ranges = segments(start, end)
            let covered = ranges.reduce(UInt64(0)) { $0 + ($1.1 - $1.0) }
            guard !exiting, covered == end - start else { return .failure(.noMemory.from("mprotect", "[0x\(String(start, radix: 16)), 0x\(String(end, radix: 16))) is not fully mapped")) }
            opened = splitVMAs(at: start, end)
            for i in vmas.indices where vmas[i].start >= start && vmas[i].end <= end { vmas[i].prot = prot }
            for (va, pa) in populatedPages(start, end) {
                _ = pageTable.unmapPages(iova: IOVA(rawValue: va), pgsize: Self.pageSize, pgcount: 1, gather: &gather)
                guard let p = Self.pteProt(prot) else { continue }
                var mapped: UInt64 = 0
                do throws(Errno) {
                    try pageTable.mapPages(iova: IOVA(rawValue: va), paddr: pa, pgsize: Self.pageSize, pgcount: 1, prot: p,
                                           mapped: &mapped)
                } catch {
                    return .failure(error)
                }
            }
            return .success(ranges)
        }
        // A driver mapping cut in pieces hears of each new one, as for munmap.
        for ops in opened { ops.open() }
        switch result {
        case .success(let ranges):
            notifyInvalidate(ranges)
            gather.releaseFreelist(to: memory)
        case .failure(let e):
            // Entries already rewritten were still taken away from secondary MMUs.
            notifyInvalidate([(start, end)])
            gather.releaseFreelist(to: memory)
            throw e
        }
    }
}
