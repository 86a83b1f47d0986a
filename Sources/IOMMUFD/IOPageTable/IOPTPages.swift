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
    /// Per-page pin state: the frame and the number of pin holders (filled areas and
    /// access pins); a page is pinned exactly while it has holders.
    struct PageState {
        var pa: PhysicalAddress = 0
        var holders: UInt32 = 0
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
        guard length != 0, length <= UInt64.max - Self.pageSize else { throw .invalidArgument }
        let (end, o) = uptr.addingReportingOverflow(length)
        guard !o else { throw .overflow }
        self.init(ctx: ctx, source: .user, base: uptr, last: end - 1, writable: writable)
    }

    /// `iopt_alloc_file_pages`: bytes `[start, start + length)` of `file`.
    /// - Throws: `EOVERFLOW` when the range wraps; `EINVAL` for a zero or huge length.
    convenience init(ctx: IOMMUFD, file: Memfd, start: UInt64, length: UInt64, writable: Bool) throws(Errno) {
        guard length == 0 || !start.addingReportingOverflow(length - 1).overflow else { throw .overflow }
        guard length != 0, length <= UInt64.max - Self.pageSize else { throw .invalidArgument }
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

    /// Pins every page of `range` for one more holder. On error nothing changes.
    /// - Throws: user pages: `EFAULT` when a page cannot be faulted in (no VMA, a
    ///   read-only VMA for a writable mapping, an exited mm) or the injection point fires.
    ///   File pages: `EINVAL` when a page reaches past the end of the file
    ///   (`memfd_pin_folios`). Both: `ENOMEM` when accounting exceeds `RLIMIT_MEMLOCK` or
    ///   memory runs out.
    func pin(_ range: ClosedRange<Int>) throws(Errno) {
        if npages > 1 && npages <= Self.flatLimit && flat.isEmpty {
            flat = Array(repeating: PageState(), count: npages)
        }
        // `process` read once: every use below would otherwise load and retain it again.
        let process = self.process
        // Each fresh page holds a frame reference (`pin_user_pages`, `memfd_pin_folios`),
        // so it survives the process unmapping it or exiting and the file being truncated.
        // Its frame is stored at once with no holder yet, which marks it fresh: on error
        // the pages of the range still without holders are exactly those pinned here (up
        // to where the loop stopped), and their references are dropped again.
        var fresh = 0
        var next = range.lowerBound
        do throws(Errno) {
            while next <= range.upperBound {
                let i = next
                if state(i).holders == 0 {
                    if faultInjection.shouldFail() { throw .badAddress }
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
                    setState(i, PageState(pa: pa, holders: 0))
                    fresh += 1
                }
                next += 1
            }
            if fresh > 0 {
                if faultInjection.shouldFail() { throw .noMemory }
                try accounting.charge(UInt64(fresh), mode: accountMode, limit: sourceTask.memlockLimitPages,
                                      uid: sourceUser, pid: process.pid)
            }
        } catch {
            for i in range.lowerBound..<next where state(i).holders == 0 {
                let s = state(i)
                process.memory.putFrame(s.pa)
                clearState(i)
            }
            throw error
        }
        // One registry lock for the whole range.
        PagePinRegistry.shared.update(process.memory) { (counts: inout PagePinRegistry.Counts) in
            for i in range {
                var s = state(i)
                if s.holders == 0 { counts.pin(s.pa) }
                s.holders += 1
                setState(i, s)
            }
        }
        pinnedCount += fresh
    }

    /// Drops one holder of every page of `range`; pages left without holders are unpinned.
    func unpin(_ range: ClosedRange<Int>) {
        var released = 0
        // `process` read once (see pin).
        let process = self.process
        let memory = process.memory
        PagePinRegistry.shared.update(memory) { (counts: inout PagePinRegistry.Counts) in
            for i in range {
                var s = state(i)
                guard s.holders > 0 else { preconditionFailure("iopt_pages: unpin of an unpinned page") }
                if s.holders > 1 {
                    s.holders -= 1
                    setState(i, s)
                } else {
                    counts.unpin(s.pa)
                    memory.putFrame(s.pa)
                    clearState(i)
                    released += 1
                }
            }
        }
        pinnedCount -= released
        if released > 0, let (function, message) = accounting.uncharge(UInt64(released), mode: accountMode,
                                                                       uid: sourceUser, pid: process.pid) {
            ctx.warn(function, message)
        }
    }

    /// The physical address of byte `startByte` (its page must be pinned).
    func physicalAddress(ofByte startByte: UInt64) -> PhysicalAddress {
        let i = Int(startByte / Self.pageSize)
        let s = state(i)
        guard s.holders > 0 else { preconditionFailure("iopt_pages: page \(i) is not pinned") }
        return s.pa + startByte % Self.pageSize
    }
}
