import IOMMUCore

/// The pages behind one `IOMMU_IOAS_MAP` or `IOMMU_IOAS_MAP_FILE` (`struct iopt_pages`,
/// `pages.c`): a user VA range of a process, or a byte range of a memfd, pinned lazily and
/// at most once per page however many areas (copies), domains and accesses use it.
///
/// Pinning takes a frame reference per page and records its frame, takes one
/// ``PagePinRegistry`` pin and charges the ``PinAccounting`` of the owning mm. User pages
/// are faulted in and pinned from the process (`Process.pinUserPage`, as
/// `pin_user_pages` does, with `FOLL_WRITE` for writable mappings); file pages come from
/// the memfd's page cache (`memfd_pin_folios`), whatever process maps it. A page is
/// unpinned, and its frame reference dropped, when its last user goes; until then the
/// frame stays allocated even if the process unmaps it or exits, or the file is
/// truncated or closed.
package final class IOPTPages: @unchecked Sendable {
    package static let pageSize: UInt64 = 4096

    /// `pages->type`: where the pages come from.
    enum Source {
        /// `IOPT_ADDRESS_USER`: the user VA range of ``process``.
        case user
        /// `IOPT_ADDRESS_FILE`: the memfd (`pages->file`, a reference held like
        /// `get_file`), starting at file offset ``uptr``.
        case file(Memfd)
    }

    /// `pages->type` and, for files, `pages->file`.
    let source: Source
    /// `pages->source_mm`: whose `VmPin`/`VmLck` the pins are charged to and, for user
    /// pages, the address space they are pinned from. Changed by
    /// `IOMMU_IOAS_CHANGE_PROCESS` for file pages.
    var process: Process
    /// `pages->uptr` (user pages) or `pages->start` (file pages): the page-aligned user
    /// address or file offset of page 0. IOVA allocation aligns to it the same way.
    let uptr: UInt64
    /// `pages->npages`.
    let npages: Int
    /// `pages->writable`: pinned for write.
    let writable: Bool
    /// `pages->account_mode`: NONE when the task that made the mapping had
    /// `CAP_IPC_LOCK` at that moment, else USER (MM in an MM-mode context).
    var accountMode: IOPTAccountMode
    let accounting: PinAccounting
    /// `pages->source_task`: the credentials of the task that made the mapping (or took
    /// it over with `IOMMU_IOAS_CHANGE_PROCESS`); its `RLIMIT_MEMLOCK` is read at every
    /// charge.
    var sourceTask: any IOMMUFDCredentialSource
    /// `pages->source_user`: whose `user->locked_vm` USER mode charges.
    var sourceUser: UInt32
    unowned(unsafe) let ctx: IOMMUFD
    /// `ctx.faultInjection` (a constant of the context), held directly: `ctx.shouldFail()`
    /// per pinned page retained the context, whose refcount takes the slow side-table
    /// path (device groups refer to it weakly).
    let faultInjection: FaultInjection
    /// Per-page pin state: the frame, and the holds of the filled areas (the kernel's
    /// `domains_itree`) and of accesses (`access_itree`); a page is pinned exactly while
    /// it is held.
    struct PageState {
        var pa: PhysicalAddress = 0
        var areaHolds: UInt32 = 0
        var accessHolds: UInt32 = 0
        /// Pinned by a pin in progress and not yet given to a holder.
        var isFresh = false
    }
    /// Pages objects up to this many pages keep their state in a flat array indexed by
    /// page (allocated on first pin): no hashing per page on the map/unmap path. Larger
    /// ones (rare, and usually pinned sparsely by accesses) use a dictionary.
    static let flatLimit = 1 << 18
    private var flat: [PageState] = []
    private var sparse: [Int: PageState] = [:]
    /// The state of page 0 of a one-page object (the 4 KiB `IOMMU_IOAS_MAP`), kept inline
    /// so that such an object allocates no per-page array at all.
    private var single = PageState()
    /// Number of pinned pages.
    private(set) var pinnedCount = 0

    @inline(__always) private func state(_ i: Int) -> PageState {
        if npages == 1 { return single }
        return npages <= Self.flatLimit ? (flat.isEmpty ? PageState() : flat[i]) : (sparse[i] ?? PageState())
    }

    @inline(__always) private func setState(_ i: Int, _ s: PageState) {
        if npages == 1 {
            single = s
        } else if npages <= Self.flatLimit {
            flat[i] = s
        } else {
            sparse[i] = s
        }
    }

    /// Forgets page `i` (unpinned).
    @inline(__always) private func clearState(_ i: Int) {
        if npages == 1 {
            single = PageState()
        } else if npages <= Self.flatLimit {
            flat[i] = PageState()
        } else {
            sparse[i] = nil
        }
    }

    /// Whether the pages are file-backed (`IOPT_ADDRESS_FILE`).
    var isFile: Bool { if case .file = source { true } else { false } }

    /// `iopt_alloc_user_pages`.
    /// - Throws: `EINVAL` for a zero or huge length; `EOVERFLOW` when the range wraps.
    convenience init(ctx: IOMMUFD, uptr: UInt64, length: UInt64, writable: Bool) throws(Errno) {
        guard length != 0, length <= UInt64.max - Self.pageSize else {
            throw .invalidArgument.from("iopt_alloc_user_pages", "length 0x\(String(length, radix: 16)) is 0 or too large")
        }
        let (end, o) = uptr.addingReportingOverflow(length)
        guard !o else { throw .overflow.from("iopt_alloc_user_pages", "user_va 0x\(String(uptr, radix: 16)) + length 0x\(String(length, radix: 16)) overflows") }
        self.init(ctx: ctx, source: .user, base: uptr, last: end - 1, writable: writable)
    }

    /// `iopt_alloc_file_pages`: bytes `[start, start + length)` of `file`.
    /// - Throws: `EOVERFLOW` when the range wraps; `EINVAL` for a zero or huge length.
    convenience init(ctx: IOMMUFD, file: Memfd, start: UInt64, length: UInt64, writable: Bool) throws(Errno) {
        guard length == 0 || !start.addingReportingOverflow(length - 1).overflow else {
            throw .overflow.from("iopt_alloc_file_pages", "start 0x\(String(start, radix: 16)) + length 0x\(String(length, radix: 16)) overflows")
        }
        guard length != 0, length <= UInt64.max - Self.pageSize else {
            throw .invalidArgument.from("iopt_alloc_file_pages", "length 0x\(String(length, radix: 16)) is 0 or too large")
        }
        self.init(ctx: ctx, source: .file(file), base: start, last: start + (length - 1), writable: writable)
    }

    private init(ctx: IOMMUFD, source: Source, base: UInt64, last: UInt64, writable: Bool) {
        self.ctx = ctx
        faultInjection = ctx.faultInjection
        self.source = source
        process = ctx.current
        uptr = base & ~(Self.pageSize - 1)
        npages = Int(((last & ~(Self.pageSize - 1)) - uptr) / Self.pageSize) + 1
        self.writable = writable
        accounting = ctx.accounting
        // iopt_alloc_pages: capable(CAP_IPC_LOCK) and current_user() of the caller now.
        let task = ctx.currentCredentials
        sourceTask = task
        sourceUser = task.uid
        accountMode = task.capable(.ipcLock) ? .none : .user
    }

    /// Page indexes covering bytes `[startByte, startByte + length)` of the pages.
    static func pageRange(startByte: UInt64, length: UInt64) -> ClosedRange<Int> {
        Int(startByte / pageSize)...Int((startByte + length - 1) / pageSize)
    }

    // MARK: pinning, as pages.c does it

    /// The two ways a page is held, as the kernel's two interval trees of an `iopt_pages`
    /// tell them apart: by an area filled into the IOAS's domains (`domains_itree`), or by
    /// an access that pinned it (`access_itree`).
    enum Holder { case area, access }

    /// `iopt_area_fill_domain(s)`: reads the pages of `range` for a domain through a
    /// `pfn_reader`, pinning from the user or the file those no area and no access holds
    /// yet. With `holdForArea` the area becomes a holder of every page (it was not filled
    /// yet); an area already filled is only read again (`batch_from_domain`).
    ///
    /// Fault injection points, where the kernel's reader has them: the batch allocation
    /// (`batch_init` → `ENOMEM`); before the first pin, the user page array
    /// (`temp_kmalloc` → `ENOMEM`); every pin call (`pfn_reader_user_pin` → `EFAULT`),
    /// each covering up to `TEMP_MEMORY_LIMIT / sizeof(struct page *)` pages; and the
    /// accounting update when anything new was pinned (`ENOMEM`).
    /// - Throws: those; `EFAULT`/`ENOMEM` from the user pin; `EINVAL` past the end of a
    ///   file; `ENOMEM` over `RLIMIT_MEMLOCK`. Nothing changes on error.
    func readForDomain(_ range: ClosedRange<Int>, holdForArea: Bool) throws(Errno) {
        if faultInjection.shouldFail() { throw .noMemory }
        guard holdForArea else { return }
        try pin(range, for: .area, pinCall: .reader)
    }

    /// `iopt_area_unfill_domain(s)`: the area no longer holds `range`; pages nothing holds
    /// any more are unpinned and uncharged.
    func releaseForDomain(_ range: ClosedRange<Int>) { unpin(range, for: .area) }

    /// `iopt_area_add_access` → `iopt_pages_fill_xarray`: an access holds every page of
    /// `range`. Fault injection points per span of pages: held by a domain only, the
    /// xarray store (`pages_to_xarray` → `EINVAL`); held by nothing, one pin call for the
    /// whole span (`EFAULT`) then the xarray store; then the accounting update when
    /// anything new was pinned (`ENOMEM`). Pages another access holds need nothing.
    /// - Throws: those; pin errors as ``readForDomain(_:holdForArea:)``. Nothing changes
    ///   on error.
    func pinForAccess(_ range: ClosedRange<Int>) throws(Errno) {
        try pin(range, for: .access, pinCall: .fillXarray)
    }

    /// `iopt_area_remove_access`: the access no longer holds `range`.
    func unpinForAccess(_ range: ClosedRange<Int>) { unpin(range, for: .access) }

    /// How a pin call batches: the `pfn_reader`'s, up to `TEMP_MEMORY_LIMIT` of page
    /// pointers per call, or `iopt_pages_fill_xarray`'s, a whole span per call with the
    /// xarray stores around it.
    private enum PinCall { case reader, fillXarray }

    /// Holds every page of `range` for `holder`, pinning those nothing holds yet in calls
    /// batched as `pinCall` says. On error nothing changes.
    private func pin(_ range: ClosedRange<Int>, for holder: Holder, pinCall: PinCall) throws(Errno) {
        // Each page pinned here holds a frame reference (`pin_user_pages`,
        // `memfd_pin_folios`) and its frame is stored at once; on error exactly the pages
        // still without any holder in the range are the fresh ones, and are let go again.
        var fresh = 0
        do throws(Errno) {
            var pagesPerCall = 0
            var i = range.lowerBound
            while i <= range.upperBound {
                let s = state(i)
                if s.holds(holder) > 0 { i += 1; continue }
                // A span of pages with the same state, up to the range's end.
                let heldByArea = s.areaHolds > 0 || s.accessHolds > 0
                var end = i
                while end < range.upperBound {
                    let t = state(end + 1)
                    guard t.holds(holder) == 0, (t.areaHolds > 0 || t.accessHolds > 0) == heldByArea else { break }
                    end += 1
                }
                if heldByArea {
                    // Pinned for the other kind of holder already: the access path copies
                    // the PFNs into its xarray (an injection point); the reader reads them.
                    if pinCall == .fillXarray, faultInjection.shouldFail() { throw .invalidArgument }
                    i = end + 1
                    continue
                }
                switch pinCall {
                case .reader:
                    if pagesPerCall == 0 {
                        // The user page array, sized for this first span and capped.
                        if faultInjection.shouldFail() { throw .noMemory }
                        pagesPerCall = max(1, min(end - i + 1, Int(ctx.tempMemoryLimit) / 8))
                    }
                    var at = i
                    while at <= end {
                        if faultInjection.shouldFail() { throw .badAddress }
                        let n = min(pagesPerCall, end - at + 1)
                        try pinFresh(at..<(at + n))
                        fresh += n
                        at += n
                    }
                case .fillXarray:
                    if faultInjection.shouldFail() { throw .badAddress }
                    try pinFresh(i..<(end + 1))
                    fresh += end - i + 1
                    if faultInjection.shouldFail() { throw .invalidArgument }
                }
                i = end + 1
            }
            if fresh > 0 {
                if faultInjection.shouldFail() {
                    throw .noMemory.from("iopt_pages_update_pinned", "accounting failed by injection")
                }
                try accounting.charge(UInt64(fresh), mode: accountMode, limit: sourceTask.memlockLimitPages,
                                      uid: sourceUser, pid: process.pid)
            }
        } catch {
            releaseFresh(range)
            throw error
        }
        // One registry lock for the whole range.
        PagePinRegistry.shared.update(process.memory) { (counts: inout PagePinRegistry.Counts) in
            for i in range {
                var s = state(i)
                if s.isFresh { counts.pin(s.pa) }
                s.isFresh = false
                s.add(1, to: holder)
                setState(i, s)
            }
        }
        pinnedCount += fresh
    }

    /// Pins the pages `indexes`, none of which is held: a frame reference each, the frame
    /// stored with no holder yet (which marks it fresh).
    /// - Throws: user pages: `EFAULT` when a page cannot be faulted in (no VMA, a read-only
    ///   VMA for a writable mapping, an exited mm), `ENOMEM`; file pages: `EINVAL` past the
    ///   end of the file, `ENOMEM`. Pages pinned before the failure stay fresh.
    private func pinFresh(_ indexes: Range<Int>) throws(Errno) {
        if npages > 1 && npages <= Self.flatLimit && flat.isEmpty {
            flat = Array(repeating: PageState(), count: npages)
        }
        // `process` read once: every use below would otherwise load and retain it again.
        let process = self.process
        if case .user = source, !indexes.isEmpty {
            // The walk over the range, once: an mm whose pages live outside the model
            // (a ProcessPager's) brings them up to date first.
            do {
                try process.prepareUserPages(address: uptr + UInt64(indexes.lowerBound) * Self.pageSize,
                                             length: UInt64(indexes.count) * Self.pageSize)
            } catch {
                throw error == .noMemory ? .noMemory : .badAddress
            }
        }
        for i in indexes {
            let at = uptr + UInt64(i) * Self.pageSize
            let pa: PhysicalAddress
            switch source {
            case .user:
                do { pa = try process.pinUserPage(address: at, write: writable) } catch {
                    throw error == .noMemory ? .noMemory : .badAddress
                }
            case .file(let file):
                // memfd_pin_folios' errno (EINVAL past EOF, ENOMEM) reaches the caller.
                pa = try file.pinPages(firstIndex: at / Self.pageSize, count: 1)[0]
            }
            setState(i, PageState(pa: pa, fresh: true))
        }
    }

    /// Lets go of the fresh pages of `range` after a failed pin.
    private func releaseFresh(_ range: ClosedRange<Int>) {
        let memory = process.memory
        for i in range where state(i).isFresh {
            memory.putFrame(state(i).pa)
            clearState(i)
        }
    }

    /// Drops one `holder` hold of every page of `range`; pages left with no holder are
    /// unpinned and uncharged. A page `holder` does not hold is the caller's bug: the
    /// kernel WARNs (`iopt_pages_sub_npinned`) and so does the model, skipping it.
    private func unpin(_ range: ClosedRange<Int>, for holder: Holder) {
        var released = 0
        var unheld = 0
        // `process` read once (see pin).
        let process = self.process
        let memory = process.memory
        PagePinRegistry.shared.update(memory) { (counts: inout PagePinRegistry.Counts) in
            for i in range {
                var s = state(i)
                guard s.holds(holder) > 0 else {
                    unheld += 1
                    continue
                }
                s.add(-1, to: holder)
                if s.areaHolds > 0 || s.accessHolds > 0 {
                    setState(i, s)
                } else {
                    counts.unpin(s.pa)
                    memory.putFrame(s.pa)
                    clearState(i)
                    released += 1
                }
            }
        }
        if unheld > 0 { ctx.warn("iopt_pages_sub_npinned", "\(unheld) pages unpinned that were not pinned") }
        pinnedCount -= released
        if released > 0, let (function, message) = accounting.uncharge(UInt64(released), mode: accountMode,
                                                                       uid: sourceUser, pid: process.pid) {
            ctx.warn(function, message)
        }
    }

    /// The physical address of byte `startByte` (its page must be held).
    func physicalAddress(ofByte startByte: UInt64) -> PhysicalAddress {
        let i = Int(startByte / Self.pageSize)
        let s = state(i)
        guard s.areaHolds > 0 || s.accessHolds > 0 else { preconditionFailure("iopt_pages: page \(i) is not pinned") }
        return s.pa + startByte % Self.pageSize
    }

    // MARK: reading and writing for an access

    /// `iopt_pages_rw_access`: copies `count` bytes from byte `startByte` of the pages
    /// into `data` (or out of `write`), as an access does.
    ///
    /// The kernel's three paths: user pages of the caller's own mm are copied through the
    /// CPU (`copy_from_user` at `uptr + startByte`, whatever the mm maps there now); else
    /// (another mm, file pages, or the selftest's `MOCK_ACCESS_RW_SLOW_PATH`) one page is
    /// pinned on its own (`iopt_pages_rw_page`, an injection point: `EINVAL`) and more
    /// through a `pfn_reader` (`iopt_pages_rw_slow`: injection points as
    /// ``readForDomain(_:holdForArea:)`` without the accounting), each released again.
    /// - Throws: `EPERM` a write to read-only pages; `EFAULT` memory that cannot be
    ///   reached; the injected errno.
    func readWrite(startByte: UInt64, count: Int, write data: [UInt8]?, slowPath: Bool) throws(Errno) -> [UInt8] {
        if data != nil && !writable { throw .notPermitted }
        let memory = process.memory
        if !slowPath, case .user = source, ctx.current === process {
            // copy_to_user / copy_from_user on the caller's own memory.
            let address = uptr &+ startByte
            if let data {
                try ctx.callerMemory.copyToUser(address, data)
                return []
            }
            return try ctx.callerMemory.copyFromUser(address, count: count)
        }
        let range = Self.pageRange(startByte: startByte, length: UInt64(count))
        if range.count == 1 {
            if faultInjection.shouldFail() { throw .invalidArgument }
        } else if faultInjection.shouldFail() {
            throw .noMemory
        }
        // The reader's pins: pages already held are read where they are; the others are
        // pinned for the copy and let go after it.
        var borrowed: [Int] = []
        defer {
            for i in borrowed {
                memory.putFrame(state(i).pa)
                clearState(i)
            }
        }
        var pagesPerCall = 0
        for i in range where !state(i).isHeld {
            if range.count > 1 {
                if pagesPerCall == 0 {
                    if faultInjection.shouldFail() { throw .noMemory }
                    pagesPerCall = max(1, Int(ctx.tempMemoryLimit) / 8)
                }
                if (i - range.lowerBound) % pagesPerCall == 0, faultInjection.shouldFail() { throw .badAddress }
            }
            try pinFresh(i..<(i + 1))
            borrowed.append(i)
        }
        var out: [UInt8] = []
        var byte = startByte
        var offset = 0
        while offset < count {
            let n = Int(min(Self.pageSize - byte % Self.pageSize, UInt64(count - offset)))
            let i = Int(byte / Self.pageSize)
            let pa = state(i).pa + byte % Self.pageSize
            if let data {
                data[offset..<offset + n].withUnsafeBytes { memory.uncheckedWrite(pa, from: $0) }
                memory.didWrite(pa, count: n)
            } else {
                memory.willRead(pa, count: n)
                out += memory.uncheckedBytes(at: pa, count: n)
            }
            offset += n
            byte += UInt64(n)
        }
        return out
    }
}

extension IOPTPages.PageState {
    /// A page pinned by a pin in progress, not yet given to a holder.
    init(pa: PhysicalAddress, fresh: Bool) { self.init(pa: pa, areaHolds: 0, accessHolds: 0, isFresh: fresh) }
    /// Held by an area or an access.
    var isHeld: Bool { areaHolds > 0 || accessHolds > 0 }
    /// The holds of `holder`.
    func holds(_ holder: IOPTPages.Holder) -> UInt32 { holder == .area ? areaHolds : accessHolds }
    /// Adds `delta` holds of `holder`.
    mutating func add(_ delta: Int32, to holder: IOPTPages.Holder) {
        switch holder {
        case .area: areaHolds = UInt32(Int64(areaHolds) + Int64(delta))
        case .access: accessHolds = UInt32(Int64(accessHolds) + Int64(delta))
        }
    }
}
