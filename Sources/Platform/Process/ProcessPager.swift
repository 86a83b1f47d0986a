/// The owner of an address space's contents when they live outside the model.
///
/// The model as a service keeps, for each client process, a shadow mm whose pages stand
/// for the client's own. Before the kernel side uses user pages of an mm over a range
/// (pins them, as `pin_user_pages` does, or looks them up, as `get_user_pages` does) it
/// asks the mm's pager to make the mm match its owner there: the same mappings and
/// protection, the pages present, and what they show current. So pins see the owner's
/// mappings as they are at the moment of the pin, as the kernel's walk of the real page
/// tables would. No kernel counterpart: it stands for the page tables the kernel walks
/// in the real mm.
public protocol ProcessPager: AnyObject, Sendable {
    /// Makes `mm` match its owner over `[address, address + length)`.
    /// - Throws: `EFAULT` when the owner cannot provide the range (it exited, or the
    ///   range is not mapped there: the pin then fails as on an unmapped address);
    ///   `ENOMEM` when model memory runs out.
    func prepare(_ mm: Process, address: UInt64, length: UInt64) throws(Errno)
}

extension Process {
    /// The pager of this mm (held weakly: the pager owns the mm, not the other way round).
    public var pager: (any ProcessPager)? {
        get { lock.withLock { pagerStorage } }
        set { lock.withLock { pagerStorage = newValue } }
    }

    /// The kernel side is about to use the user pages of `[address, address + length)`
    /// (the walk `get_user_pages` / `pin_user_pages` starts with): the pager, if any,
    /// brings that range up to date first. Free without a pager.
    /// - Throws: the pager's `EFAULT` or `ENOMEM`.
    public func prepareUserPages(address: UInt64, length: UInt64) throws(Errno) {
        guard length > 0, let pager else { return }
        try pager.prepare(self, address: address, length: length)
    }

    /// `get_user_pages(address, 1, 0)` without keeping a reference: the physical address
    /// of the byte at `address` after preparing its page
    /// (``prepareUserPages(address:length:)``) and faulting it in for reading; nil when
    /// it cannot be (no readable mapping, an exited owner).
    public func lookupUserPage(address: UInt64) -> PhysicalAddress? {
        let va = address & ~(Self.pageSize - 1)
        do throws(Errno) {
            try prepareUserPages(address: va, length: Self.pageSize)
            try handleFault(address: va, write: false)
        } catch {
            return nil
        }
        return physicalAddress(of: address)
    }

    /// `mm_populate` over `count` pages from the page-aligned `address`: faults every
    /// page in (a fresh zeroed frame, or the file's page) under one lock, and returns
    /// their frames in address order. The mm keeps its own references only; the caller
    /// gets none. Stops at the first page that cannot be faulted in.
    /// - Throws: `EINVAL` for a misaligned address; `EFAULT` when a page has no VMA
    ///   allowing the access, or the mm is exiting; `ENOMEM`. Pages faulted in before the
    ///   failure stay mapped, as after a partial `mm_populate`.
    public func populate(address: UInt64, count: Int, write: Bool = false) throws(Errno) -> [PhysicalAddress] {
        guard address & (Self.pageSize - 1) == 0, count >= 0 else { throw .invalidArgument }
        guard !address.addingReportingOverflow(UInt64(count) * Self.pageSize).overflow else { throw .badAddress }
        return try lock.withLock { () throws(Errno) -> [PhysicalAddress] in
            var out: [PhysicalAddress] = []
            out.reserveCapacity(count)
            var va = address
            for _ in 0..<count {
                try faultLocked(address: va, write: write, exec: false)
                guard let pa = pages[va] else { throw .badAddress }
                out.append(pa)
                va += Self.pageSize
            }
            return out
        }
    }
}
