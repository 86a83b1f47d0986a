/// One translation returned by an ``IOTLB`` lookup.
public struct IOTLBEntry: Sendable, Hashable {
    /// Physical base of the cached page.
    public let pageBase: PhysicalAddress
    /// Size of the cached page: 4 KiB, 2 MiB or 1 GiB.
    public let pageSize: UInt64
    /// Permissions the walk that filled the entry found.
    public let perms: IOMMUProt

    /// Creates an entry.
    @inlinable public init(pageBase: PhysicalAddress, pageSize: UInt64, perms: IOMMUProt) {
        self.pageBase = pageBase
        self.pageSize = pageSize
        self.perms = perms
    }

    /// The physical address for `iova` inside this page.
    @inlinable public func translate(_ iova: IOVA) -> PhysicalAddress {
        PhysicalAddress(rawValue: pageBase.rawValue | iova.offset(within: pageSize))
    }
}

/// A hardware translation cache for the vendor IOMMU models: the model's equivalent of
/// the VT-d IOTLB, the SMMU TLB or the AMD IOTLB. The kernel has no such structure; it is
/// what `iommu_iotlb_sync`, `flush_iotlb_all` and the vendors' invalidation commands
/// (VT-d `iotlb_inv_dsc`/`p_iotlb_inv_dsc`, SMMU `CMD_TLBI_*`) act on.
///
/// Entries are keyed by a vendor-built tag (VT-d: DID and PASID; SMMU: ASID/VMID) and
/// the page number. There is one direct-mapped bank per page size, so a 2 MiB or 1 GiB
/// entry is found by any address inside it; the huge banks are only probed while they
/// hold entries. A hit stays valid until invalidated, however the tables change:
/// that staleness is the point of modelling the cache.
///
/// Not locked: the vendor hardware model that owns it serialises access. All state is in
/// unsafe memory so a lookup is a few loads with no allocation, ARC or exclusivity check.
public final class IOTLB: @unchecked Sendable {
    /// One cached translation: 32 bytes.
    @usableFromInline struct Slot {
        /// Page number (`iova >> shift`) with bit 63 set while valid.
        @usableFromInline var key: UInt64
        @usableFromInline var tag: UInt64
        @usableFromInline var pageBase: UInt64
        @usableFromInline var perms: UInt32
        /// Hits on this entry since it was filled. Counting in the slot (already in the
        /// cache for the lookup) rather than in one shared counter keeps a run of hits
        /// free of a chain of read-modify-writes to the same word.
        @usableFromInline var hits: UInt32
    }

    /// One direct-mapped bank for one page size.
    @usableFromInline struct Bank {
        @usableFromInline let slots: UnsafeMutablePointer<Slot>
        @usableFromInline let mask: Int
        @usableFromInline let shift: UInt64

        init(count: Int, shift: UInt64) {
            slots = .allocate(capacity: count)
            slots.initialize(repeating: Slot(key: 0, tag: 0, pageBase: 0, perms: 0, hits: 0), count: count)
            mask = count - 1
            self.shift = shift
        }

        @inlinable @inline(__always)
        func index(tag: UInt64, page: UInt64) -> Int {
            Int(truncatingIfNeeded: page ^ (tag &<< 7)) & mask
        }
    }

    @inlinable static var valid: UInt64 { 1 << 63 }

    @usableFromInline let small: Bank
    @usableFromInline let medium: Bank
    @usableFromInline let large: Bank
    /// [0] hits of entries no longer cached, [1] misses, [2] valid 4K entries, [3] valid
    /// huge entries.
    @usableFromInline let counters: UnsafeMutablePointer<Int>

    /// A cache with `entries` 4 KiB slots (rounded up to a power of two), plus an
    /// eighth as many 2 MiB slots and a small 1 GiB bank.
    public init(entries: Int = 4096) {
        var n = 16
        while n < entries { n <<= 1 }
        small = Bank(count: n, shift: 12)
        medium = Bank(count: max(16, n / 8), shift: 21)
        large = Bank(count: 16, shift: 30)
        counters = .allocate(capacity: 4)
        counters.initialize(repeating: 0, count: 4)
    }

    deinit {
        small.slots.deallocate()
        medium.slots.deallocate()
        large.slots.deallocate()
        counters.deallocate()
    }

    /// Lookups that hit.
    public var hits: Int {
        var n = counters[0]
        for bank in [small, medium, large] {
            for i in 0...bank.mask where bank.slots[i].key & IOTLB.valid != 0 { n += Int(bank.slots[i].hits) }
        }
        return n
    }
    /// Lookups that missed.
    public var misses: Int { counters[1] }
    /// Valid entries.
    public var count: Int { counters[2] + counters[3] }

    /// The entry of `bank` for `iova` under `tag`, counting a hit on it.
    @inlinable @inline(__always)
    func probe(_ bank: Bank, tag: UInt64, iova: UInt64) -> IOTLBEntry? {
        let page = iova &>> bank.shift
        let s = bank.slots + bank.index(tag: tag, page: page)
        guard s.pointee.key == page | IOTLB.valid && s.pointee.tag == tag else { return nil }
        s.pointee.hits &+= 1
        return IOTLBEntry(pageBase: PhysicalAddress(rawValue: s.pointee.pageBase), pageSize: 1 &<< bank.shift,
                          perms: IOMMUProt(rawValue: s.pointee.perms))
    }

    /// Looks up the translation of `iova` under `tag`, counting a hit or a miss.
    ///
    /// The 4 KiB probe is inlined into callers, with its page size a constant; the huge
    /// banks and the miss count are out of line, so that the common hit is a handful of
    /// instructions.
    @inlinable @inline(__always)
    public func lookup(tag: UInt64, iova: IOVA) -> IOTLBEntry? {
        let page = iova.rawValue &>> 12
        let s = small.slots + small.index(tag: tag, page: page)
        // A hit is the expected case: the miss path (a call) is laid out cold, so a
        // caller's loop keeps its values in registers across it.
        if _fastPath(s.pointee.key == page | IOTLB.valid && s.pointee.tag == tag) {
            s.pointee.hits &+= 1
            return IOTLBEntry(pageBase: PhysicalAddress(rawValue: s.pointee.pageBase), pageSize: 4096,
                              perms: IOMMUProt(rawValue: s.pointee.perms))
        }
        return lookupHuge(tag: tag, iova: iova.rawValue)
    }

    /// The rest of a lookup that missed the 4 KiB bank: probes the huge banks if they
    /// hold entries, counting a miss if none has it.
    @usableFromInline @inline(never)
    func lookupHuge(tag: UInt64, iova: UInt64) -> IOTLBEntry? {
        if counters[3] != 0, let e = probe(medium, tag: tag, iova: iova) ?? probe(large, tag: tag, iova: iova) {
            return e
        }
        counters[1] &+= 1
        return nil
    }

    /// Drops the entry in `s`, keeping its hits in the total.
    @inlinable @inline(__always)
    func retire(_ s: UnsafeMutablePointer<Slot>) {
        counters[0] &+= Int(s.pointee.hits)
        s.pointee.hits = 0
        s.pointee.key = 0
    }

    @inline(__always)
    private func bank(forPageSize size: UInt64) -> Bank? {
        switch size {
        case 1 << 12: small
        case 1 << 21: medium
        case 1 << 30: large
        default: nil
        }
    }

    @inline(__always)
    private func countDelta(_ bank: Bank, _ delta: Int) {
        if bank.shift == 12 { counters[2] += delta } else { counters[3] += delta }
    }

    /// Caches a translation after a walk, evicting whatever shared its slot. `pa` may be
    /// any address in the page; `pageSize` must be 4 KiB, 2 MiB or 1 GiB (others are
    /// not cached).
    public func insert(tag: UInt64, iova: IOVA, pageSize: UInt64, pa: PhysicalAddress, perms: IOMMUProt) {
        guard let bank = bank(forPageSize: pageSize) else { return }
        let page = iova.rawValue >> bank.shift
        let s = bank.slots + bank.index(tag: tag, page: page)
        if s.pointee.key & IOTLB.valid == 0 { countDelta(bank, 1) } else { retire(s) }
        s.pointee = Slot(key: page | IOTLB.valid, tag: tag, pageBase: pa.rawValue & ~(pageSize - 1),
                         perms: perms.rawValue, hits: 0)
    }

    /// Drops every entry of `tag` that overlaps `[iova, iova + size)`: a page-selective
    /// or range invalidation (VT-d PSI, SMMU `CMD_TLBI_NH_VA`). Large ranges scan the
    /// banks instead of probing page by page. Allocation-free.
    @inlinable @inline(__always)
    public func invalidate(tag: UInt64, iova: IOVA, size: UInt64) {
        let iova = iova.rawValue
        guard size != 0 else { return }
        let last = iova &+ (size - 1) < iova ? UInt64.max : iova + (size - 1)
        // The common case, one 4 KiB page while no huge entry is cached, is a single
        // probe of the 4 KiB bank inlined into the caller; anything else goes out of line.
        let page = iova &>> 12
        guard page == last &>> 12, counters[3] == 0 else {
            return invalidateBanks(tag: tag, first: iova, last: last)
        }
        let s = small.slots + small.index(tag: tag, page: page)
        if s.pointee.key == page | IOTLB.valid && s.pointee.tag == tag {
            retire(s)
            counters[2] &-= 1
        }
    }

    /// Invalidates `tag`'s entries between two addresses in every bank that holds entries.
    @usableFromInline @inline(never)
    func invalidateBanks(tag: UInt64, first: UInt64, last: UInt64) {
        if counters[2] != 0 { counters[2] -= invalidateRange(small, tag: tag, first: first, last: last) }
        if counters[3] != 0 {
            counters[3] -= invalidateRange(medium, tag: tag, first: first, last: last)
                + invalidateRange(large, tag: tag, first: first, last: last)
        }
    }

    /// Invalidates `tag`'s entries of one bank between two addresses; returns how many.
    @inlinable @inline(__always)
    func invalidateRange(_ bank: Bank, tag: UInt64, first: UInt64, last: UInt64) -> Int {
        let firstPage = first >> bank.shift
        let lastPage = last >> bank.shift
        guard lastPage - firstPage < UInt64(bank.mask) else {
            return drop(in: bank) { t, p in t == tag && p >= firstPage && p <= lastPage }
        }
        var dropped = 0
        var page = firstPage
        while true {
            let s = bank.slots + bank.index(tag: tag, page: page)
            if s.pointee.key == page | IOTLB.valid && s.pointee.tag == tag {
                retire(s)
                dropped += 1
            }
            if page == lastPage { return dropped }
            page += 1
        }
    }

    /// Drops every entry of `tag`: a domain- or PASID-selective invalidation.
    public func invalidate(tag: UInt64) {
        invalidate { t, _, _ in t == tag }
    }

    /// Drops every entry: a global invalidation (`flush_iotlb_all`).
    public func invalidateAll() {
        invalidate { _, _, _ in true }
    }

    /// Drops every entry for which `predicate(tag, iova, pageSize)` holds; for vendor
    /// invalidations keyed on part of a tag (SMMU by VMID across ASIDs, VT-d by DID
    /// across PASIDs).
    /// A bank with no valid entry is not scanned (a PASID teardown on an idle unit costs
    /// nothing).
    public func invalidate(where predicate: (UInt64, IOVA, UInt64) -> Bool) {
        if counters[2] != 0 {
            counters[2] -= drop(in: small) { t, page in predicate(t, IOVA(rawValue: page << 12), 1 << 12) }
        }
        if counters[3] != 0 {
            counters[3] -= drop(in: medium) { t, page in predicate(t, IOVA(rawValue: page << 21), 1 << 21) }
                + drop(in: large) { t, page in predicate(t, IOVA(rawValue: page << 30), 1 << 30) }
        }
    }

    /// Invalidates the entries of `bank` whose (tag, page number) match; returns how many.
    @usableFromInline
    func drop(in bank: Bank, _ matches: (UInt64, UInt64) -> Bool) -> Int {
        var dropped = 0
        for i in 0...bank.mask {
            let s = bank.slots + i
            guard s.pointee.key & IOTLB.valid != 0 else { continue }
            if matches(s.pointee.tag, s.pointee.key & ~IOTLB.valid) {
                retire(s)
                dropped += 1
            }
        }
        return dropped
    }
}
