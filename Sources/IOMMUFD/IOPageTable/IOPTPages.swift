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
final class IOPTPages: @unchecked Sendable {
    static let pageSize: UInt64 = 4096

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
    /// `pages->account_mode`.
    var accountMode: IOPTAccountMode
    let accounting: PinAccounting
    let memlockLimit: UInt64
    unowned(unsafe) let ctx: IOMMUFD
    /// Page index → frame, for pinned pages.
    private(set) var pfns: [Int: UInt64] = [:]
    /// Page index → number of pin holders (filled areas and access pins).
    private var holders: [Int: Int] = [:]

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
        self.source = source
        process = ctx.current
        uptr = base & ~(Self.pageSize - 1)
        npages = Int(((last & ~(Self.pageSize - 1)) - uptr) / Self.pageSize) + 1
        self.writable = writable
        accounting = ctx.accounting
        memlockLimit = ctx.credentials.memlockLimitPages
        accountMode = ctx.credentials.capIPCLock ? .none : .user
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
        // Each fresh page holds a frame reference (`pin_user_pages`, `memfd_pin_folios`),
        // so it survives the process unmapping it or exiting and the file being truncated;
        // undone below if anything later fails.
        var fresh: [(Int, UInt64)] = []
        do throws(Errno) {
            for i in range where pfns[i] == nil {
                if ctx.shouldFail() { throw .badAddress }
                let at = uptr + UInt64(i) * Self.pageSize
                switch source {
                case .user:
                    do { fresh.append((i, try process.pinUserPage(address: at, write: writable))) } catch {
                        throw error == .noMemory ? .noMemory : .badAddress
                    }
                case .file(let file):
                    // memfd_pin_folios' errno (EINVAL past EOF, ENOMEM) reaches the caller.
                    fresh.append((i, try file.pinPages(firstIndex: at / Self.pageSize, count: 1)[0]))
                }
            }
            if !fresh.isEmpty {
                if ctx.shouldFail() { throw .noMemory }
                try accounting.charge(UInt64(fresh.count), mode: accountMode, limit: memlockLimit, pid: process.pid)
            }
        } catch {
            for (_, pa) in fresh { process.memory.putFrame(pa) }
            throw error
        }
        for (i, pa) in fresh {
            pfns[i] = pa
            PagePinRegistry.shared.pin(process.memory, pa)
        }
        for i in range { holders[i, default: 0] += 1 }
    }

    /// Drops one holder of every page of `range`; pages left without holders are unpinned.
    func unpin(_ range: ClosedRange<Int>) {
        var released = 0
        for i in range {
            guard let h = holders[i] else { preconditionFailure("iopt_pages: unpin of an unpinned page") }
            if h > 1 { holders[i] = h - 1; continue }
            holders[i] = nil
            if let pa = pfns.removeValue(forKey: i) {
                PagePinRegistry.shared.unpin(process.memory, pa)
                process.memory.putFrame(pa)
                released += 1
            }
        }
        if released > 0 { accounting.uncharge(UInt64(released), mode: accountMode, pid: process.pid) }
    }

    /// The physical address of byte `startByte` (its page must be pinned).
    func physicalAddress(ofByte startByte: UInt64) -> UInt64 {
        let i = Int(startByte / Self.pageSize)
        guard let pa = pfns[i] else { preconditionFailure("iopt_pages: page \(i) is not pinned") }
        return pa + startByte % Self.pageSize
    }

    /// Number of pinned pages.
    var pinnedCount: Int { pfns.count }
}
