/// The kind of memory access a hardware walk checks: the request attributes of a DMA
/// (VT-d: R/W/X request, PASID privileged bit) or of a CPU access.
public struct WalkAccess: OptionSet, Sendable, Hashable {
    /// The raw flag word.
    public let rawValue: UInt8
    /// Wraps a raw flag word.
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// A read.
    @inlinable public static var read: WalkAccess { WalkAccess(rawValue: 1 << 0) }
    /// A write.
    @inlinable public static var write: WalkAccess { WalkAccess(rawValue: 1 << 1) }
    /// An instruction fetch (execute-requested DMA).
    @inlinable public static var execute: WalkAccess { WalkAccess(rawValue: 1 << 2) }
    /// A user (unprivileged) request; a privileged request is the absence of this flag.
    @inlinable public static var user: WalkAccess { WalkAccess(rawValue: 1 << 3) }
}

/// The outcome of a hardware page walk: a translation or the fault the hardware would
/// report (x86 #PF error code / VT-d fault reason: not present vs. permission; LPAE:
/// translation, access flag or permission fault).
public enum PageWalkResult: Sendable, Hashable {
    /// Translated. `pa` is the full output address (page base + offset), `pageSize` the
    /// leaf size, `perms` the effective permissions of the whole path.
    case translated(pa: PhysicalAddress, pageSize: UInt64, perms: IOMMUProt)
    /// No valid entry at `level` (1 = leaf table; `levels` = root): a hole, a descriptor
    /// the format does not allow there (an LPAE block at a level without blocks, a
    /// reserved last-level encoding) or a table outside physical memory. An input
    /// address outside the format's range reports the root level.
    case notPresent(level: Int)
    /// LPAE: the leaf at `level` has its access flag (AF) clear and the walker does not
    /// manage it (an Access flag fault: SMMUv3 `F_ACCESS`, SMMUv2 FSR.AFF). Never
    /// reported for x86-64 or VT-d, whose walkers set A themselves.
    case accessFlag(level: Int)
    /// The leaf at `level` was found but its path does not allow the access.
    case permission(level: Int)
}

extension IOPageTable {
    /// Walks a table as the hardware does: the page walker of an IOMMU model (VT-d DMA
    /// remapping, the first-stage walk for SVA, an SMMU context's TTBR) and of the CPU
    /// model. No kernel function corresponds; it is the hardware the kernel programs.
    ///
    /// Allocation-free and lock-free: it reads each entry once, atomically, the way
    /// hardware does, while software maps and unmaps other ranges of the same table. With
    /// `setAccessedDirty` it is a
    /// walker that manages access and dirty state (x86 A/D; VT-d SSADE; LPAE HA/HD): it
    /// sets A on every entry it uses (x86, VT-d) or AF on the leaf (LPAE), and marks the
    /// leaf of a permitted write dirty (x86, VT-d: D; LPAE stage 1: clears AP[2] of a
    /// DBM leaf). Without it, an LPAE leaf with AF clear is an access flag fault. Each
    /// flag update is a compare-and-swap made only when something changes, as the
    /// hardware's locked update: if software changed the entry since the walk read it (an
    /// unmap cleared it), nothing is set, so a walk never brings back a cleared entry, and
    /// the walk's result is the translation it read. An LPAE stage-1 walk also honours the table entries'
    /// APTable/UXNTable/PXNTable limits.
    @inlinable @inline(__always)
    public static func walk(memory: PhysicalMemory, format: PageTableFormat, root: PhysicalAddress, iova: IOVA,
                            access: WalkAccess, setAccessedDirty: Bool) -> PageWalkResult {
        let root = root.rawValue, iova = iova.rawValue
        switch format.layout {
        case .x86:
            return walk(X86Layout.self, memory: memory, format: format, root: root, iova: iova, access: access,
                        setAccessedDirty: setAccessedDirty)
        case .lpae4K:
            return walk(LPAE4KLayout.self, memory: memory, format: format, root: root, iova: iova, access: access,
                        setAccessedDirty: setAccessedDirty)
        case .lpae:
            return walkGeneralLPAE(memory: memory, format: format, root: root, iova: iova, access: access,
                                    setAccessedDirty: setAccessedDirty)
        }
    }

    /// The walk of any other LPAE table (16K, 64K, TTBR1, concatenated), out of line:
    /// callers inline only the walks of the common layouts.
    @usableFromInline @inline(never)
    static func walkGeneralLPAE(memory: PhysicalMemory, format: PageTableFormat, root: UInt64, iova: UInt64,
                                 access: WalkAccess, setAccessedDirty: Bool) -> PageWalkResult {
        walk(LPAELayout.self, memory: memory, format: format, root: root, iova: iova, access: access,
             setAccessedDirty: setAccessedDirty)
    }

    /// The walk, for one layout. Transparent: every caller gets the loop of each 4 KiB
    /// layout inline, as the hardware models' per-translation paths need (an ordinary
    /// always-inline generic is not always inlined twice into one caller).
    @_transparent @usableFromInline
    static func walk<L: PageTableLayout>(_: L.Type, memory: PhysicalMemory, format: PageTableFormat, root: UInt64,
                                         iova: UInt64, access: WalkAccess, setAccessedDirty: Bool) -> PageWalkResult {
        var level = format.levels
        guard (iova &- L.inputBase(format)) &>> UInt64(truncatingIfNeeded: format.vaBits) == 0 else {
            return .notPresent(level: level)
        }
        let base = memory.base
        let checksBounds = L.checksTableBounds(format)
        let limit = memory.size
        let present = format.presentMask
        let accessed = format.accessedBit
        let block = L.blockTest(format)
        let addressMask = L.addressMask(format)
        var shift = L.indexShift(format, level: level)
        var mask = L.rootIndexMask(format)
        var table = root
        var tablesAll: UInt64 = ~0
        var tablesAny: UInt64 = 0
        while true {
            let entry = table | (((iova &>> shift) & mask) &<< 3)
            // A table outside physical memory (only a corrupt or hostile entry points
            // there) faults like a missing one rather than reading host memory.
            if checksBounds && entry >= limit { return .notPresent(level: level) }
            let slot = base + Int(truncatingIfNeeded: entry)
            let pte = PageTableEntrySlot(slot).load()
            if pte & present == 0 { return .notPresent(level: level) }
            if level == 1 || pte & block.mask == block.value {
                return leaf(L.self, format: format, pte, at: slot, level: level, shift: shift, iova: iova,
                            access: access, setAccessedDirty: setAccessedDirty,
                            tablesAll: tablesAll, tablesAny: tablesAny)
            }
            tablesAll &= pte
            tablesAny |= pte
            if setAccessedDirty && pte & accessed != accessed { markAccessed(slot, pte, accessed: accessed) }
            table = L.decode(format, pte, mask: addressMask)
            level &-= 1
            shift = L.indexShift(format, level: level)
            mask = L.tableIndexMask(format)
        }
    }

    /// The end of a walk at a leaf (or an entry of the last level): its access and
    /// permission checks, then the output address of `iova` within the leaf's span.
    /// Shared by the plain and the nested walk.
    @_transparent @usableFromInline
    static func leaf<L: PageTableLayout>(_: L.Type, format: PageTableFormat, _ pte: UInt64,
                                         at slot: UnsafeMutableRawPointer, level: Int, shift: UInt64, iova: UInt64,
                                         access: WalkAccess, setAccessedDirty: Bool,
                                         tablesAll: UInt64, tablesAny: UInt64) -> PageWalkResult {
        if let fault = L.checkLeaf(format, pte, at: slot, level: level, access: access,
                                   setAccessedDirty: setAccessedDirty, tablesAll: tablesAll,
                                   tablesAny: tablesAny) { return fault }
        let size = UInt64(1) &<< shift
        let pa = (L.decode(format, pte, mask: L.addressMask(format)) & ~(size &- 1)) | (iova & (size &- 1))
        return .translated(pa: PhysicalAddress(rawValue: pa), pageSize: size,
                           perms: L.permissions(format, leaf: pte, tablesAll: tablesAll, tablesAny: tablesAny,
                                                setAccessedDirty: setAccessedDirty))
    }

    /// Sets the accessed bit of the table entry at `slot`, as a walk that updates A/D
    /// does, with a compare-and-swap so that a concurrent change of the entry wins.
    @_transparent @usableFromInline
    static func markAccessed(_ slot: UnsafeMutableRawPointer, _ pte: UInt64, accessed: UInt64) {
        _ = PageTableEntrySlot(slot).compareExchange(expected: pte, desired: pte | accessed)
    }
}
