import IOMMUCore

/// The pages behind one `IOMMU_IOAS_MAP` (`struct iopt_pages`, `pages.c`): a user VA
/// range of a process, pinned lazily and at most once per page however many areas
/// (copies), domains and accesses use it.
///
/// Pinning faults the page in and takes a frame reference (`Process.pinUserPage`, as
/// `pin_user_pages` does, with `FOLL_WRITE` for writable mappings), records its frame,
/// takes one ``PagePinRegistry`` pin and charges the caller's ``PinAccounting``. A page
/// is unpinned, and its frame reference dropped, when its last user goes; until then
/// the frame stays allocated even if the process unmaps it or exits.
final class IOPTPages: @unchecked Sendable {
    static let pageSize: UInt64 = 4096

    let process: Process
    /// `pages->uptr`: the page-aligned user address of page 0.
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

    /// `iopt_alloc_user_pages`.
    /// - Throws: `EINVAL` for a zero or huge length; `EOVERFLOW` when the range wraps.
    init(ctx: IOMMUFD, uptr: UInt64, length: UInt64, writable: Bool) throws(Errno) {
        guard length != 0, length <= UInt64.max - Self.pageSize else { throw .invalidArgument }
        let (end, o) = uptr.addingReportingOverflow(length)
        guard !o else { throw .overflow }
        self.ctx = ctx
        process = ctx.current
        self.uptr = uptr & ~(Self.pageSize - 1)
        let last = (end - 1) & ~(Self.pageSize - 1)
        npages = Int((last - self.uptr) / Self.pageSize) + 1
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
    /// - Throws: `EFAULT` when a page cannot be faulted in (no VMA, a read-only VMA for a
    ///   writable mapping, an exited mm) or the injection point fires; `ENOMEM` when
    ///   accounting exceeds `RLIMIT_MEMLOCK` or memory runs out.
    func pin(_ range: ClosedRange<Int>) throws(Errno) {
        // Each fresh page holds a frame reference (`pin_user_pages`), so it survives the
        // process unmapping it or exiting; undone below if anything later fails.
        var fresh: [(Int, UInt64)] = []
        do throws(Errno) {
            for i in range where pfns[i] == nil {
                if ctx.shouldFail() { throw .badAddress }
                let va = uptr + UInt64(i) * Self.pageSize
                do { fresh.append((i, try process.pinUserPage(address: va, write: writable))) } catch {
                    throw error == .noMemory ? .noMemory : .badAddress
                }
            }
            if !fresh.isEmpty {
                if ctx.shouldFail() { throw .noMemory }
                try accounting.charge(UInt64(fresh.count), mode: accountMode, limit: memlockLimit)
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
        if released > 0 { accounting.uncharge(UInt64(released), mode: accountMode) }
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
