/// How the engine's hot loops (walk, map, unmap) read a format: the index geometry and
/// the entry encoding, as static functions of the format value.
///
/// The loops are written once, generic over a layout, and each public entry point picks
/// the layout from ``PageTableFormat/layout`` with one branch. ``X86Layout`` (x86-64 and
/// VT-d) and ``LPAE4KLayout`` (the common LPAE tables) have constant geometry and
/// encodings the compiler folds into their loops; ``LPAELayout`` reads any LPAE table's
/// geometry from the format value. The knowledge stays in the format; a layout only decides what the
/// compiler may treat as constant.
@usableFromInline protocol PageTableLayout {
    /// Whether a walk checks that each table it reads lies in physical memory. LPAE
    /// tables may be written by a guest (an SMMU's nested stage 1), so their walks check;
    /// x86-64 and VT-d tables here are written only by the model's drivers and mm, and
    /// their walks stay as lean as the hardware's.
    static func checksTableBounds(_ f: PageTableFormat) -> Bool
    /// Right shift of an input address to the index bits of `level`.
    static func indexShift(_ f: PageTableFormat, level: Int) -> UInt64
    /// Mask of an index below the root.
    static func tableIndexMask(_ f: PageTableFormat) -> UInt64
    /// Mask of an index at the root.
    static func rootIndexMask(_ f: PageTableFormat) -> UInt64
    /// Above the last level, an entry is a leaf when `pte & mask == value`.
    static func blockTest(_ f: PageTableFormat) -> (mask: UInt64, value: UInt64)
    /// The address bits of an entry (the loops read it once and pass it to `decode`).
    static func addressMask(_ f: PageTableFormat) -> UInt64
    /// The address an entry points to.
    static func decode(_ f: PageTableFormat, _ pte: UInt64, mask: UInt64) -> UInt64
    /// The entry bits holding address `pa`.
    static func encode(_ f: PageTableFormat, _ pa: UInt64) -> UInt64
    /// The first input address (0 unless TTBR1).
    static func inputBase(_ f: PageTableFormat) -> UInt64
    /// The leaf bits for `prot` at `level`.
    static func leafBits(_ f: PageTableFormat, prot: IOMMUProt, level: Int) -> UInt64
    /// The leaf checks of a walk: validity at `level`, the accessed flag, the permission
    /// check and the dirty update; nil when the access is allowed.
    static func checkLeaf(_ f: PageTableFormat, _ pte: UInt64, at slot: UnsafeMutableRawPointer, level: Int,
                          access: WalkAccess, setAccessedDirty: Bool, tablesAll: UInt64,
                          tablesAny: UInt64) -> PageWalkResult?
    /// The effective permissions of a translation.
    static func permissions(_ f: PageTableFormat, leaf: UInt64, tablesAll: UInt64, tablesAny: UInt64,
                            setAccessedDirty: Bool) -> IOMMUProt
}

/// The kind of layout a format uses (what ``PageTableFormat/layout`` stores).
@usableFromInline enum PageTableLayoutKind: UInt8, Hashable, Sendable {
    /// x86-64 first stage and VT-d second stage (``X86Layout``).
    case x86
    /// LPAE with a 4K granule, TTBR0 and a single root table (``LPAE4KLayout``).
    case lpae4K
    /// Any other LPAE table (``LPAELayout``).
    case lpae
}

/// The constant geometry both 4 KiB layouts share: 512 entries of 9 index bits per
/// level, a root of at most one table, input from address 0, and table and leaf
/// addresses stored in place in the entry.
@usableFromInline protocol FourKiBGeometry: PageTableLayout {}

extension FourKiBGeometry {
    @inlinable @inline(__always)
    static func indexShift(_ f: PageTableFormat, level: Int) -> UInt64 { UInt64(truncatingIfNeeded: 3 &+ 9 &* level) }
    @inlinable @inline(__always)
    static func tableIndexMask(_ f: PageTableFormat) -> UInt64 { 511 }
    @inlinable @inline(__always)
    static func rootIndexMask(_ f: PageTableFormat) -> UInt64 { 511 }
    @inlinable @inline(__always)
    static func decode(_ f: PageTableFormat, _ pte: UInt64, mask: UInt64) -> UInt64 { pte & mask }
    @inlinable @inline(__always)
    static func encode(_ f: PageTableFormat, _ pa: UInt64) -> UInt64 { pa }
    @inlinable @inline(__always)
    static func inputBase(_ f: PageTableFormat) -> UInt64 { 0 }
}

/// x86-64 first stage and VT-d second stage: constant 4 KiB geometry, PS leaves, address
/// bits 12..51; the two differ only in the bits the format value stores.
@usableFromInline enum X86Layout: FourKiBGeometry {
    @inlinable @inline(__always)
    static func checksTableBounds(_ f: PageTableFormat) -> Bool { false }
    @inlinable @inline(__always)
    static func blockTest(_ f: PageTableFormat) -> (mask: UInt64, value: UInt64) { (X86.pageSize, X86.pageSize) }
    @inlinable @inline(__always)
    static func addressMask(_ f: PageTableFormat) -> UInt64 { 0x000F_FFFF_FFFF_F000 }
    @inlinable @inline(__always)
    static func leafBits(_ f: PageTableFormat, prot: IOMMUProt, level: Int) -> UInt64 {
        f.x86LeafBits(prot: prot, level: level)
    }

    @inlinable @inline(__always)
    static func checkLeaf(_ f: PageTableFormat, _ pte: UInt64, at slot: UnsafeMutableRawPointer, level: Int,
                          access: WalkAccess, setAccessedDirty: Bool, tablesAll: UInt64,
                          tablesAny: UInt64) -> PageWalkResult? {
        // PS is a leaf at levels 2 and 3 only (reserved above).
        guard level < 4 else { return .notPresent(level: level) }
        let entry = PageTableEntrySlot(slot)
        var current = pte
        if setAccessedDirty && pte & f.accessedBit == 0
            && entry.compareExchange(expected: pte, desired: pte | f.accessedBit).exchanged {
            current = pte | f.accessedBit
        }
        guard f.x86Permits(access, allOf: tablesAll & pte, anyOf: tablesAny | pte) else {
            return .permission(level: level)
        }
        if setAccessedDirty && access.contains(.write) && current & f.dirtyBit == 0 {
            _ = entry.compareExchange(expected: current, desired: current | f.dirtyBit)
        }
        return nil
    }

    @inlinable @inline(__always)
    static func permissions(_ f: PageTableFormat, leaf: UInt64, tablesAll: UInt64, tablesAny: UInt64,
                            setAccessedDirty: Bool) -> IOMMUProt {
        f.x86Permissions(allOf: tablesAll & leaf, anyOf: tablesAny | leaf)
    }
}

/// LPAE with a 4K granule, a TTBR0 range and a root of at most one table (every IAS
/// up to 48 bits without concatenation: SMMUv3 stage 1, the arm64 CPU, unconcatenated
/// stage 2): constant geometry, block descriptors with bit 1 clear, output address bits
/// 12..47 (a 4K granule has no 52-bit output). The range check keeps the bits above the
/// IAS clear, so the root index needs no mask of its own.
@usableFromInline enum LPAE4KLayout: FourKiBGeometry {
    @inlinable @inline(__always)
    static func checksTableBounds(_ f: PageTableFormat) -> Bool { true }
    @inlinable @inline(__always)
    static func blockTest(_ f: PageTableFormat) -> (mask: UInt64, value: UInt64) { (LPAE.typeTableBit, 0) }
    @inlinable @inline(__always)
    static func addressMask(_ f: PageTableFormat) -> UInt64 { LPAE.addressMask }
    @inlinable @inline(__always)
    static func leafBits(_ f: PageTableFormat, prot: IOMMUProt, level: Int) -> UInt64 {
        f.lpaeLeafBits(prot: prot, level: level)
    }
    @inlinable @inline(__always)
    static func checkLeaf(_ f: PageTableFormat, _ pte: UInt64, at slot: UnsafeMutableRawPointer, level: Int,
                          access: WalkAccess, setAccessedDirty: Bool, tablesAll: UInt64,
                          tablesAny: UInt64) -> PageWalkResult? {
        f.lpaeCheckLeaf(pte, at: slot, level: level, access: access, setAccessedDirty: setAccessedDirty,
                        tablesAny: tablesAny)
    }
    @inlinable @inline(__always)
    static func permissions(_ f: PageTableFormat, leaf: UInt64, tablesAll: UInt64, tablesAny: UInt64,
                            setAccessedDirty: Bool) -> IOMMUProt {
        f.lpaeEffectivePermissions(tablesAny: tablesAny, leaf: leaf, hardwareDirty: setAccessedDirty)
    }
}

/// Every other LPAE table (16K and 64K granules, TTBR1 ranges, concatenated stage-2
/// roots): the geometry, the input range and the address packing (52-bit output with
/// 64K) come from the format value.
@usableFromInline enum LPAELayout: PageTableLayout {
    @inlinable @inline(__always)
    static func checksTableBounds(_ f: PageTableFormat) -> Bool { true }
    @inlinable @inline(__always)
    static func indexShift(_ f: PageTableFormat, level: Int) -> UInt64 { f.indexShift(level: level) }
    @inlinable @inline(__always)
    static func tableIndexMask(_ f: PageTableFormat) -> UInt64 {
        (1 &<< UInt64(truncatingIfNeeded: f.bitsPerLevel)) &- 1
    }
    @inlinable @inline(__always)
    static func rootIndexMask(_ f: PageTableFormat) -> UInt64 { f.rootIndexMask }
    @inlinable @inline(__always)
    static func blockTest(_ f: PageTableFormat) -> (mask: UInt64, value: UInt64) { (LPAE.typeTableBit, 0) }
    @inlinable @inline(__always)
    static func addressMask(_ f: PageTableFormat) -> UInt64 { LPAE.addressMask }
    @inlinable @inline(__always)
    static func decode(_ f: PageTableFormat, _ pte: UInt64, mask: UInt64) -> UInt64 { f.decodeAddress(pte) }
    @inlinable @inline(__always)
    static func encode(_ f: PageTableFormat, _ pa: UInt64) -> UInt64 { f.encodeAddress(pa) }
    @inlinable @inline(__always)
    static func inputBase(_ f: PageTableFormat) -> UInt64 { f.inputBase }
    @inlinable @inline(__always)
    static func leafBits(_ f: PageTableFormat, prot: IOMMUProt, level: Int) -> UInt64 {
        f.lpaeLeafBits(prot: prot, level: level)
    }
    @inlinable @inline(__always)
    static func checkLeaf(_ f: PageTableFormat, _ pte: UInt64, at slot: UnsafeMutableRawPointer, level: Int,
                          access: WalkAccess, setAccessedDirty: Bool, tablesAll: UInt64,
                          tablesAny: UInt64) -> PageWalkResult? {
        f.lpaeCheckLeaf(pte, at: slot, level: level, access: access, setAccessedDirty: setAccessedDirty,
                        tablesAny: tablesAny)
    }
    @inlinable @inline(__always)
    static func permissions(_ f: PageTableFormat, leaf: UInt64, tablesAll: UInt64, tablesAny: UInt64,
                            setAccessedDirty: Bool) -> IOMMUProt {
        f.lpaeEffectivePermissions(tablesAny: tablesAny, leaf: leaf, hardwareDirty: setAccessedDirty)
    }
}

extension PageTableLayout {
    /// Mask of an index at `level`.
    @inlinable @inline(__always)
    static func indexMask(_ f: PageTableFormat, level: Int) -> UInt64 {
        level == f.levels ? rootIndexMask(f) : tableIndexMask(f)
    }

    /// Bytes covered by one entry at `level`.
    @inlinable @inline(__always)
    static func entrySpan(_ f: PageTableFormat, level: Int) -> UInt64 { 1 &<< indexShift(f, level: level) }

    /// Whether a present entry above the last level is a leaf.
    @inlinable @inline(__always)
    static func isBlock(_ f: PageTableFormat, _ pte: UInt64) -> Bool {
        let test = blockTest(f)
        return pte & test.mask == test.value
    }

    /// The address an entry points to.
    @inlinable @inline(__always)
    static func decode(_ f: PageTableFormat, _ pte: UInt64) -> UInt64 { decode(f, pte, mask: addressMask(f)) }

    /// The level whose leaves have size `pgsize`, or 0 if it is not one of the format's.
    @inlinable @inline(__always)
    static func leafLevel(_ f: PageTableFormat, pageSize pgsize: UInt64) -> Int {
        guard pgsize & f.pageSizes != 0 else { return 0 }
        if pgsize == entrySpan(f, level: 1) { return 1 }
        if pgsize == entrySpan(f, level: 2) { return 2 }
        if pgsize == entrySpan(f, level: 3) { return 3 }
        return 0
    }

    /// Whether `[iova, iova + size)` lies in the input range. Overflow-free.
    @inlinable @inline(__always)
    static func inputRangeContains(_ f: PageTableFormat, iova: UInt64, size: UInt64) -> Bool {
        let offset = iova &- inputBase(f)
        let limit = UInt64(1) &<< UInt64(truncatingIfNeeded: f.vaBits)
        return offset < limit && size <= limit &- offset
    }
}

extension PageTableFormat {
    /// The leaf bits of the x86-64 and VT-d formats.
    @inlinable @inline(__always)
    func x86LeafBits(prot: IOMMUProt, level: Int) -> UInt64 {
        var bits: UInt64 = level > 1 ? X86.pageSize : 0
        if kind == .vtdSecondStage {
            if prot.contains(.read) { bits |= VTdSS.read }
            if prot.contains(.write) { bits |= VTdSS.write }
            if !prot.contains(.noexec) { bits |= VTdSS.execute }
            if prot.contains(.cache) { bits |= VTdSS.snoop }
            return bits
        }
        // x86 cannot express write-only: a present entry is always readable.
        bits |= X86.present
        if prot.contains(.write) { bits |= X86.writable }
        if !prot.contains(.priv) { bits |= X86.user }
        if prot.contains(.noexec) { bits |= X86.executeDisable }
        if prot.contains(.mmio) { bits |= X86.cacheDisable }
        return bits
    }

    /// The x86-64 and VT-d permission check, from the AND (`allOf`) and OR (`anyOf`) of
    /// every entry on the path: x86 writes need R/W at every level, user requests U/S at
    /// every level, fetches XD clear everywhere (CR0.WP = 1: supervisor writes to
    /// read-only pages fault too). VT-d SS: reads need R, writes W (at every level),
    /// fetches the leaf's X; no user/supervisor distinction.
    @inlinable @inline(__always)
    func x86Permits(_ access: WalkAccess, allOf: UInt64, anyOf: UInt64) -> Bool {
        if kind == .vtdSecondStage {
            if access.contains(.read) && allOf & VTdSS.read == 0 { return false }
            if access.contains(.write) && allOf & VTdSS.write == 0 { return false }
            if access.contains(.execute) && anyOf & VTdSS.execute == 0 { return false }
            return true
        }
        if access.contains(.write) && allOf & X86.writable == 0 { return false }
        if access.contains(.user) && allOf & X86.user == 0 { return false }
        if access.contains(.execute) && anyOf & X86.executeDisable != 0 { return false }
        return true
    }

    /// The x86-64 and VT-d effective permissions: x86 needs R/W and U/S at every level
    /// and is non-executable if XD is set at any level; VT-d SS ANDs R and W, and takes
    /// X from the leaf (non-leaf entries are written R|W only, so the OR is the leaf's X).
    @inlinable @inline(__always)
    func x86Permissions(allOf: UInt64, anyOf: UInt64) -> IOMMUProt {
        var p: IOMMUProt = []
        if kind == .vtdSecondStage {
            if allOf & VTdSS.read != 0 { p.insert(.read) }
            if allOf & VTdSS.write != 0 { p.insert(.write) }
            if anyOf & VTdSS.execute == 0 { p.insert(.noexec) }
            if anyOf & VTdSS.snoop != 0 { p.insert(.cache) }
            return p
        }
        p.insert(.read)
        if allOf & X86.writable != 0 { p.insert(.write) }
        if allOf & X86.user == 0 { p.insert(.priv) }
        if anyOf & X86.executeDisable != 0 { p.insert(.noexec) }
        if anyOf & X86.cacheDisable != 0 { p.insert(.mmio) }
        return p
    }
}
