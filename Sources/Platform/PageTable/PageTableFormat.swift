/// A page-table format: the radix geometry and the bit layout of its entries.
///
/// Models the format half of `struct io_pgtable_cfg` / generic_pt's per-format headers
/// (`drivers/iommu/generic_pt/fmt/x86_64.h`, `vtdss.h`). One radix engine
/// (``IOPageTable``) drives every format; a format only answers "how is an entry
/// encoded and decoded". The per-kind knowledge lives in the few `switch`es of this
/// file, so a new kind (ARM LPAE stage 1/2 with a 4K granule, AMD v1) is a new case here
/// and nothing else. Every supported format today is 9 bits per level over 4 KiB pages
/// with leaves at levels 1 (4 KiB), 2 (2 MiB, PS) and 3 (1 GiB, PS); level numbers count
/// from the leaf table (1) up to the root (``levels``).
public struct PageTableFormat: Hashable, Sendable, CustomStringConvertible {
    /// The hardware format family.
    public enum Kind: Hashable, Sendable {
        /// x86-64 first-stage (CPU / VT-d first-level / AMD v2) paging,
        /// `drivers/iommu/generic_pt/fmt/x86_64.h`.
        case x86_64FirstStage
        /// Intel VT-d second-stage paging, `drivers/iommu/generic_pt/fmt/vtdss.h`.
        case vtdSecondStage
    }

    /// The format family.
    public let kind: Kind
    /// Number of table levels (root included).
    public let levels: Int

    // Derived masks, computed once per format so the hot paths are branch-free.
    /// Bits any of which make an entry present (x86: P; VT-d SS: R or W).
    @usableFromInline let presentMask: UInt64
    /// Bits of a non-leaf entry besides the address.
    @usableFromInline let tableBits: UInt64
    /// The accessed bit (x86: 5; VT-d SS: 8).
    @usableFromInline let accessedBit: UInt64
    /// The dirty bit (x86: 6; VT-d SS: 9).
    @usableFromInline let dirtyBit: UInt64

    /// x86-64 first-stage paging with 4 (48-bit) or 5 (57-bit) levels.
    /// Other level counts are a programming error (precondition).
    public static func x86_64(levels: Int) -> PageTableFormat {
        precondition(levels == 4 || levels == 5, "x86-64 paging has 4 or 5 levels")
        return PageTableFormat(kind: .x86_64FirstStage, levels: levels)
    }

    /// VT-d second-stage paging with 3 (39-bit), 4 (48-bit) or 5 (57-bit) levels
    /// (the driver's AGAW). Other level counts are a programming error (precondition).
    public static func vtdSecondStage(levels: Int) -> PageTableFormat {
        precondition((3...5).contains(levels), "VT-d second stage has 3, 4 or 5 levels")
        return PageTableFormat(kind: .vtdSecondStage, levels: levels)
    }

    init(kind: Kind, levels: Int) {
        self.kind = kind
        self.levels = levels
        switch kind {
        case .x86_64FirstStage:
            presentMask = X86.present
            tableBits = X86.present | X86.writable | X86.user | X86.accessed
            accessedBit = X86.accessed
            dirtyBit = X86.dirty
        case .vtdSecondStage:
            presentMask = VTdSS.read | VTdSS.write
            tableBits = VTdSS.read | VTdSS.write
            accessedBit = VTdSS.accessed
            dirtyBit = VTdSS.dirty
        }
    }

    /// Input address width: 12 + 9 × levels (`pt_max_va_bits`, the domain aperture).
    @inlinable public var vaBits: Int { 12 &+ 9 &* levels }

    /// Supported leaf sizes as a bitmap (`pgsize_bitmap`): 4 KiB | 2 MiB | 1 GiB.
    @inlinable public var pageSizes: UInt64 { PageTableFormat.size4K | PageTableFormat.size2M | PageTableFormat.size1G }

    /// A readable name for logs and test failures, e.g. `x86_64/4` or `vtd-ss/3`.
    public var description: String {
        switch kind {
        case .x86_64FirstStage: "x86_64/\(levels)"
        case .vtdSecondStage: "vtd-ss/\(levels)"
        }
    }

    @inlinable static var size4K: UInt64 { 1 << 12 }
    @inlinable static var size2M: UInt64 { 1 << 21 }
    @inlinable static var size1G: UInt64 { 1 << 30 }
    /// Output address bits 12..51, shared by both formats.
    @inlinable static var addressMask: UInt64 { 0x000F_FFFF_FFFF_F000 }
    /// Page-size bit: at levels 2 and 3 the entry is a leaf (both formats use bit 7).
    @inlinable static var pageSizeBit: UInt64 { 1 << 7 }

    /// The level whose leaves have size `pgsize`, or 0 if `pgsize` is not a leaf size.
    @inlinable @inline(__always)
    static func leafLevel(forPageSize pgsize: UInt64) -> Int {
        switch pgsize {
        case size4K: 1
        case size2M: 2
        case size1G: 3
        default: 0
        }
    }

    /// Bytes covered by one entry at `level` (4 KiB at level 1).
    @inlinable @inline(__always)
    static func entrySpan(level: Int) -> UInt64 { 1 &<< UInt64(truncatingIfNeeded: 3 &+ 9 &* level) }

    /// Whether a present entry at `level` is a leaf.
    @inlinable @inline(__always)
    static func isLeaf(_ pte: UInt64, level: Int) -> Bool { level == 1 || pte & pageSizeBit != 0 }
}

/// x86-64 entry bits (Intel SDM vol. 3 §4.5).
@usableFromInline enum X86 {
    @inlinable static var present: UInt64 { 1 << 0 }
    @inlinable static var writable: UInt64 { 1 << 1 }
    @inlinable static var user: UInt64 { 1 << 2 }
    @inlinable static var cacheDisable: UInt64 { 1 << 4 }
    @inlinable static var accessed: UInt64 { 1 << 5 }
    @inlinable static var dirty: UInt64 { 1 << 6 }
    @inlinable static var executeDisable: UInt64 { 1 << 63 }
}

/// VT-d second-stage entry bits (VT-d spec §9.8).
@usableFromInline enum VTdSS {
    @inlinable static var read: UInt64 { 1 << 0 }
    @inlinable static var write: UInt64 { 1 << 1 }
    @inlinable static var execute: UInt64 { 1 << 2 }
    @inlinable static var accessed: UInt64 { 1 << 8 }
    @inlinable static var dirty: UInt64 { 1 << 9 }
    @inlinable static var snoop: UInt64 { 1 << 11 }
}

// The per-kind encoders and decoders. Everything format-specific is in these functions.
extension PageTableFormat {
    /// The non-address bits of a leaf at `level` carrying `prot`.
    @inlinable
    func leafBits(prot: IOMMUProt, level: Int) -> UInt64 {
        var bits: UInt64 = level > 1 ? PageTableFormat.pageSizeBit : 0
        switch kind {
        case .x86_64FirstStage:
            // x86 cannot express write-only: a present entry is always readable.
            bits |= X86.present
            if prot.contains(.write) { bits |= X86.writable }
            if !prot.contains(.priv) { bits |= X86.user }
            if prot.contains(.noexec) { bits |= X86.executeDisable }
            if prot.contains(.mmio) { bits |= X86.cacheDisable }
        case .vtdSecondStage:
            if prot.contains(.read) { bits |= VTdSS.read }
            if prot.contains(.write) { bits |= VTdSS.write }
            if !prot.contains(.noexec) { bits |= VTdSS.execute }
            if prot.contains(.cache) { bits |= VTdSS.snoop }
        }
        return bits
    }

    /// Effective permissions of a translation, from the AND of every entry on the path
    /// (`allOf`) and the OR (`anyOf`): x86 needs R/W and U/S at every level and is
    /// non-executable if XD is set at any level; VT-d SS ANDs R and W, and takes X from
    /// the leaf (non-leaf entries are written R|W only, so the OR is the leaf's X).
    @inlinable @inline(__always)
    func effectivePermissions(allOf: UInt64, anyOf: UInt64) -> IOMMUProt {
        var p: IOMMUProt = []
        switch kind {
        case .x86_64FirstStage:
            p.insert(.read)
            if allOf & X86.writable != 0 { p.insert(.write) }
            if allOf & X86.user == 0 { p.insert(.priv) }
            if anyOf & X86.executeDisable != 0 { p.insert(.noexec) }
            if anyOf & X86.cacheDisable != 0 { p.insert(.mmio) }
        case .vtdSecondStage:
            if allOf & VTdSS.read != 0 { p.insert(.read) }
            if allOf & VTdSS.write != 0 { p.insert(.write) }
            if anyOf & VTdSS.execute == 0 { p.insert(.noexec) }
            if anyOf & VTdSS.snoop != 0 { p.insert(.cache) }
        }
        return p
    }

    /// Whether an access is allowed by a translation's effective permissions.
    /// x86: writes need R/W, user requests need U/S, fetches need XD clear (CR0.WP = 1:
    /// supervisor writes to read-only pages fault too). VT-d SS: reads need R, writes W,
    /// fetches the leaf's X; it has no user/supervisor distinction.
    @inlinable @inline(__always)
    func permits(_ access: WalkAccess, allOf: UInt64, anyOf: UInt64) -> Bool {
        switch kind {
        case .x86_64FirstStage:
            if access.contains(.write) && allOf & X86.writable == 0 { return false }
            if access.contains(.user) && allOf & X86.user == 0 { return false }
            if access.contains(.execute) && anyOf & X86.executeDisable != 0 { return false }
            return true
        case .vtdSecondStage:
            if access.contains(.read) && allOf & VTdSS.read == 0 { return false }
            if access.contains(.write) && allOf & VTdSS.write == 0 { return false }
            if access.contains(.execute) && anyOf & VTdSS.execute == 0 { return false }
            return true
        }
    }
}
