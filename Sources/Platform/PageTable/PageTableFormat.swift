/// A page-table format: the radix geometry and the bit layout of its entries.
///
/// Models the format half of `struct io_pgtable_cfg` / generic_pt's per-format headers
/// (`drivers/iommu/generic_pt/fmt/x86_64.h`, `vtdss.h`) and io-pgtable-arm's LPAE
/// formats (`drivers/iommu/io-pgtable-arm.c`). One radix engine (``IOPageTable``) drives
/// every format; a format only answers "how is the address split into indices, and how
/// is an entry encoded and decoded".
///
/// The geometry is a value: the page shift (12, 14 or 16), the index bits per level (9,
/// 11 or 13: a table is one page of 8-byte entries), the level count and the root's
/// index bits (smaller than a page, or several pages for a concatenated stage-2 root).
/// Level numbers count from the leaf table (1) up to the root (``levels``), whatever the
/// architecture calls them (an LPAE table starting at ARM level 0 has its root at
/// level 4 here). The per-kind encoders live in `PageTableLayout.swift` (x86-64, VT-d)
/// and `PageTableFormat+LPAE.swift`; a `PageTableLayout` says which of a format's
/// numbers the engine's hot loops may treat as constants.
public struct PageTableFormat: Hashable, Sendable, CustomStringConvertible {
    /// The hardware format family.
    public enum Kind: Hashable, Sendable {
        /// x86-64 first-stage (CPU / VT-d first-level / AMD v2) paging,
        /// `drivers/iommu/generic_pt/fmt/x86_64.h`.
        case x86_64FirstStage
        /// Intel VT-d second-stage paging, `drivers/iommu/generic_pt/fmt/vtdss.h`.
        case vtdSecondStage
        /// ARM VMSAv8-64 (LPAE) stage 1, io-pgtable's `ARM_64_LPAE_S1`: the arm64 CPU's
        /// own format, SMMUv3 context descriptors, SMMUv2 stage-1 context banks.
        case armLPAEStage1
        /// ARM VMSAv8-64 (LPAE) stage 2, io-pgtable's `ARM_64_LPAE_S2`: SMMUv3 STE S2TTB,
        /// SMMUv2 stage-2 context banks.
        case armLPAEStage2
    }

    // Storage is compact (64 bytes): hardware models copy a format into every walk.

    /// The format family.
    public let kind: Kind
    /// Which of the engine's loop layouts reads this format.
    @usableFromInline let layout: PageTableLayoutKind
    @usableFromInline let _levels: UInt8
    @usableFromInline let _vaBits: UInt8
    @usableFromInline let _outputBits: UInt8
    @usableFromInline let _pageShift: UInt8
    @usableFromInline let _presentMask: UInt8
    @usableFromInline let _blockLevels: UInt8
    /// The quirks the table was built with (LPAE; empty for x86-64 and VT-d).
    @usableFromInline let quirks: IOPageTableQuirks
    /// Supported leaf sizes as a bitmap (`pgsize_bitmap`).
    public let pageSizes: UInt64
    /// Mask of a root-table index (2^rootBits - 1). Masking also drops the sign-extended
    /// upper bits of a TTBR1 address.
    @usableFromInline let rootIndexMask: UInt64
    /// First input address: 0, or 2^64 - 2^vaBits for a TTBR1 (upper-range) table.
    @usableFromInline let inputBase: UInt64
    /// Bits of a non-leaf entry besides the address.
    @usableFromInline let tableBits: UInt64
    /// The accessed bit a walk with access/dirty management sets on the entries it uses
    /// (x86: 5; VT-d SS: 8). LPAE's AF (leaves only) is in `PageTableFormat+LPAE.swift`.
    @usableFromInline let accessedBit: UInt64
    /// The dirty bit (x86: 6; VT-d SS: 9). LPAE stage 1 marks dirtiness by clearing AP[2]
    /// of a DBM leaf.
    @usableFromInline let dirtyBit: UInt64

    /// Number of table levels (root included).
    @inlinable public var levels: Int { Int(truncatingIfNeeded: _levels) }
    /// Input address bits (the aperture): 12 + 9 × levels for x86-64 and VT-d, the IAS
    /// for LPAE (`io_pgtable_cfg.ias`).
    @inlinable public var vaBits: Int { Int(truncatingIfNeeded: _vaBits) }
    /// Output address bits: a physical address at or above 2^outputBits is refused with
    /// `ERANGE` (52 for x86-64 and VT-d, the OAS for LPAE: `io_pgtable_cfg.oas`).
    @inlinable public var outputBits: Int { Int(truncatingIfNeeded: _outputBits) }
    /// log2 of the page (granule) size: 12, 14 or 16.
    @inlinable var pageShift: Int { Int(truncatingIfNeeded: _pageShift) }
    /// Index bits of a table below the root: pageShift - 3 (a table is one page of
    /// 8-byte entries).
    @inlinable var bitsPerLevel: Int { pageShift &- 3 }
    /// Bits any of which make an entry present (x86: P; VT-d SS: R or W; LPAE: valid).
    @inlinable var presentMask: UInt64 { UInt64(truncatingIfNeeded: _presentMask) }
    /// Whether this is an LPAE (ARM) format rather than x86-64 or VT-d.
    @inlinable var isLPAE: Bool { kind == .armLPAEStage1 || kind == .armLPAEStage2 }
    /// Bit `L` set: a leaf above the last level (a block / PS page) is valid at level `L`
    /// (what the hardware accepts, whatever `pageSizes` allows the software to create).
    @inlinable var blockLevels: UInt64 { UInt64(truncatingIfNeeded: _blockLevels) }

    /// The LPAE configuration (granule, IAS/OAS, start level, concatenation, quirks and
    /// the register encodings a driver programs); nil for x86-64 and VT-d.
    public var lpae: LPAEConfig? {
        guard isLPAE, let granule = LPAEGranule(rawValue: 1 << pageShift) else { return nil }
        let rootBits = (Int(truncatingIfNeeded: rootIndexMask) + 1).trailingZeroBitCount
        return LPAEConfig(granule: granule, ias: vaBits, oas: outputBits, startLevel: 4 - levels,
                          concatenatedTables: rootBits > bitsPerLevel ? 1 << (rootBits - bitsPerLevel) : 1,
                          quirks: quirks)
    }

    /// x86-64 first-stage paging with 4 (48-bit) or 5 (57-bit) levels.
    /// Other level counts are a programming error (precondition).
    ///
    /// Inlinable, with the initializer, so that a hardware model's `static let` of a
    /// fixed format folds into its walks as constants.
    @inlinable
    public static func x86_64(levels: Int) -> PageTableFormat {
        precondition(levels == 4 || levels == 5, "x86-64 paging has 4 or 5 levels")
        return PageTableFormat(x86Kind: .x86_64FirstStage, levels: levels)
    }

    /// VT-d second-stage paging with 3 (39-bit), 4 (48-bit) or 5 (57-bit) levels
    /// (the driver's AGAW). Other level counts are a programming error (precondition).
    @inlinable
    public static func vtdSecondStage(levels: Int) -> PageTableFormat {
        precondition((3...5).contains(levels), "VT-d second stage has 3, 4 or 5 levels")
        return PageTableFormat(x86Kind: .vtdSecondStage, levels: levels)
    }

    /// The two 4 KiB-page formats of x86 machines: 9 index bits per level, leaves at
    /// levels 1 (4 KiB), 2 (2 MiB, PS) and 3 (1 GiB, PS), 52-bit output addresses.
    @inlinable
    init(x86Kind kind: Kind, levels: Int) {
        self.kind = kind
        layout = .x86
        _levels = UInt8(levels)
        _vaBits = UInt8(12 + 9 * levels)
        _outputBits = 52
        _pageShift = 12
        _blockLevels = 1 << 2 | 1 << 3
        quirks = []
        pageSizes = PageTableFormat.size4K | PageTableFormat.size2M | PageTableFormat.size1G
        rootIndexMask = 511
        inputBase = 0
        if kind == .vtdSecondStage {
            _presentMask = UInt8(VTdSS.read | VTdSS.write)
            tableBits = VTdSS.read | VTdSS.write
            accessedBit = VTdSS.accessed
            dirtyBit = VTdSS.dirty
        } else {
            _presentMask = UInt8(X86.present)
            tableBits = X86.present | X86.writable | X86.user | X86.accessed
            accessedBit = X86.accessed
            dirtyBit = X86.dirty
        }
    }

    /// The memberwise initializer of the LPAE constructors (`PageTableFormat+LPAE.swift`).
    init(lpaeKind kind: Kind, config: LPAEConfig, pageSizes: UInt64) {
        let shift = config.granule.shift
        let bpl = shift - 3
        let rootBits = config.ias - (shift + bpl * (3 - config.startLevel))
        self.kind = kind
        layout = config.granule == .size4K && !config.quirks.contains(.armTTBR1) && rootBits <= bpl ? .lpae4K : .lpae
        _levels = UInt8(4 - config.startLevel)
        _vaBits = UInt8(config.ias)
        _outputBits = UInt8(config.oas)
        _pageShift = UInt8(shift)
        // Blocks sit at ARM levels 1 and 2 with a 4K granule, at level 2 with 16K and at
        // levels 1 (4 TiB, 52-bit output only) and 2 with 64K: engine levels 3 and 2.
        var blocks: UInt8 = 1 << 2
        if config.granule == .size4K || (config.granule == .size64K && config.oas > 48) { blocks |= 1 << 3 }
        _blockLevels = blocks
        _presentMask = UInt8(LPAE.valid)
        quirks = config.quirks
        self.pageSizes = pageSizes
        rootIndexMask = (1 << UInt64(rootBits)) - 1
        inputBase = config.quirks.contains(.armTTBR1) ? 0 &- (1 << UInt64(config.ias)) : 0
        tableBits = LPAE.typeTable | (config.quirks.contains(.armNS) ? LPAE.nsTable : 0)
        accessedBit = 0
        dirtyBit = 0
    }

    /// A readable name for logs and test failures, e.g. `x86_64/4`, `vtd-ss/3`,
    /// `lpae-s1/4K/48/ttbr1` or `lpae-s2/16K/40x16` (16 concatenated root tables).
    public var description: String {
        switch kind {
        case .x86_64FirstStage: return "x86_64/\(levels)"
        case .vtdSecondStage: return "vtd-ss/\(levels)"
        case .armLPAEStage1, .armLPAEStage2:
            let c = lpae!
            var s = "\(kind == .armLPAEStage1 ? "lpae-s1" : "lpae-s2")/\(c.granule.size >> 10)K/\(vaBits)"
            if c.concatenatedTables > 1 { s += "x\(c.concatenatedTables)" }
            if c.quirks.contains(.armTTBR1) { s += "/ttbr1" }
            return s
        }
    }

    @inlinable static var size4K: UInt64 { 1 << 12 }
    @inlinable static var size2M: UInt64 { 1 << 21 }
    @inlinable static var size1G: UInt64 { 1 << 30 }

    /// Bytes of a table below the root: one page (granule).
    @inlinable public var tableBytes: Int { 1 &<< pageShift }
    /// Bytes of the root table: 8 × 2^rootBits, at least one 4 KiB frame (the model's
    /// allocation unit; a small LPAE root only uses the start of it).
    @inlinable public var rootTableBytes: Int { max(8 &* (Int(truncatingIfNeeded: rootIndexMask) &+ 1), 4096) }
    /// Entries of a table below the root.
    @inlinable var tableEntries: Int { 1 &<< bitsPerLevel }
    /// Entries of the root table.
    @inlinable var rootEntries: Int { Int(truncatingIfNeeded: rootIndexMask) &+ 1 }
    /// The first input address: 0, or for a TTBR1 table 2^64 - 2^``vaBits``.
    @inlinable public var inputStart: IOVA { IOVA(rawValue: inputBase) }

    /// Right shift of an input address to the index bits of `level`.
    @inlinable @inline(__always)
    func indexShift(level: Int) -> UInt64 {
        UInt64(truncatingIfNeeded: pageShift &+ bitsPerLevel &* (level &- 1))
    }

    /// Mask of an index at `level` (the root's may be wider or narrower).
    @inlinable @inline(__always)
    func indexMask(level: Int) -> UInt64 {
        level == levels ? rootIndexMask : (1 &<< UInt64(truncatingIfNeeded: bitsPerLevel)) &- 1
    }

    /// Bytes covered by one entry at `level` (a page at level 1).
    @inlinable @inline(__always)
    func entrySpan(level: Int) -> UInt64 { 1 &<< indexShift(level: level) }

    /// The level whose leaves have size `pgsize`, or 0 if `pgsize` is not one of
    /// ``pageSizes``.
    @inlinable @inline(__always)
    func leafLevel(forPageSize pgsize: UInt64) -> Int {
        guard pgsize & pageSizes != 0, pgsize & (pgsize &- 1) == 0 else { return 0 }
        let page = UInt64(1) &<< UInt64(truncatingIfNeeded: pageShift)
        if pgsize == page { return 1 }
        let bpl = UInt64(truncatingIfNeeded: bitsPerLevel)
        if pgsize == page &<< bpl { return 2 }
        if pgsize == page &<< (bpl &+ bpl) { return 3 }
        return 0
    }

    /// Whether a present entry at `level` is a leaf (x86 and VT-d: PS set above the last
    /// level; LPAE: a block descriptor, bit 1 clear).
    @inlinable @inline(__always)
    func isLeaf(_ pte: UInt64, level: Int) -> Bool {
        level == 1 || (isLPAE ? pte & LPAE.typeTableBit == 0 : pte & X86.pageSize != 0)
    }

    /// The entry bits holding physical address `pa` (page aligned, within ``outputBits``):
    /// bits 12..51 for x86-64 and VT-d; LPAE keeps bits 12..47 and, with a 64K granule
    /// and 52-bit output, packs bits 51:48 into entry bits 15:12 (`paddr_to_iopte`).
    @inlinable @inline(__always)
    func encodeAddress(_ pa: UInt64) -> UInt64 {
        isLPAE ? (pa | (pa &>> 36)) & LPAE.addressMask : pa & 0x000F_FFFF_FFFF_F000
    }

    /// The physical address an entry points to (a table, or the base of a leaf),
    /// aligned to the page size (`iopte_to_paddr`).
    @inlinable @inline(__always)
    func decodeAddress(_ pte: UInt64) -> UInt64 {
        if !isLPAE { return pte & 0x000F_FFFF_FFFF_F000 }
        let a = pte & LPAE.addressMask
        if pageShift == 16 { return (a | (a &<< 36)) & 0x000F_FFFF_FFFF_0000 }
        return a & ~((1 &<< UInt64(truncatingIfNeeded: pageShift)) &- 1)
    }
}

/// x86-64 entry bits (Intel SDM volume 3, section 4.5).
@usableFromInline enum X86 {
    @inlinable static var present: UInt64 { 1 << 0 }
    @inlinable static var writable: UInt64 { 1 << 1 }
    @inlinable static var user: UInt64 { 1 << 2 }
    @inlinable static var cacheDisable: UInt64 { 1 << 4 }
    @inlinable static var accessed: UInt64 { 1 << 5 }
    @inlinable static var dirty: UInt64 { 1 << 6 }
    /// PS: at levels 2 and 3 the entry maps a 2 MiB / 1 GiB page.
    @inlinable static var pageSize: UInt64 { 1 << 7 }
    @inlinable static var executeDisable: UInt64 { 1 << 63 }
}

/// VT-d second-stage entry bits (Intel VT-d architecture specification, section 9.8). PS is bit 7, as on x86.
@usableFromInline enum VTdSS {
    @inlinable static var read: UInt64 { 1 << 0 }
    @inlinable static var write: UInt64 { 1 << 1 }
    @inlinable static var execute: UInt64 { 1 << 2 }
    @inlinable static var accessed: UInt64 { 1 << 8 }
    @inlinable static var dirty: UInt64 { 1 << 9 }
    @inlinable static var snoop: UInt64 { 1 << 11 }
}

// Dirty state, for `read_and_clear_dirty` (a cold path, so a plain switch).
extension PageTableFormat {
    /// The non-address bits of a leaf at `level` carrying `prot`
    /// (io-pgtable-arm: `arm_lpae_prot_to_pte` plus the descriptor type).
    @inlinable @inline(__always)
    func leafBits(prot: IOMMUProt, level: Int) -> UInt64 {
        isLPAE ? lpaeLeafBits(prot: prot, level: level) : x86LeafBits(prot: prot, level: level)
    }

    /// Whether a leaf is dirty (`iommu_dirty_ops.read_and_clear_dirty`'s test): x86 and
    /// VT-d: D set; LPAE stage 1: writable-dirty, DBM set and AP[2] clear
    /// (`iopte_writeable_dirty`); LPAE stage 2 tables are never dirty-tracked here.
    func isDirty(_ pte: UInt64) -> Bool {
        switch kind {
        case .x86_64FirstStage, .vtdSecondStage: pte & dirtyBit != 0
        case .armLPAEStage1: pte & (LPAE.apReadOnly | LPAE.dbm) == LPAE.dbm
        case .armLPAEStage2: false
        }
    }

    /// The leaf with its dirty state cleared: D cleared, or for LPAE stage 1 AP[2] set
    /// (writable-clean, `iopte_set_writeable_clean`).
    func cleaned(_ pte: UInt64) -> UInt64 {
        switch kind {
        case .x86_64FirstStage, .vtdSecondStage: pte & ~dirtyBit
        case .armLPAEStage1: pte | LPAE.apReadOnly
        case .armLPAEStage2: pte
        }
    }
}
