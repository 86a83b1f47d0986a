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
/// report (x86 #PF error code / VT-d fault reason: not present vs. permission).
public enum PageWalkResult: Sendable, Hashable {
    /// Translated. `pa` is the full output address (page base + offset), `pageSize` the
    /// leaf size, `perms` the effective permissions of the whole path.
    case translated(pa: PhysicalAddress, pageSize: UInt64, perms: IOMMUProt)
    /// No present entry at `level` (1 = leaf table; `levels` = root). An input address
    /// beyond the format's `vaBits` reports the root level.
    case notPresent(level: Int)
    /// The leaf at `level` was found but its path does not allow the access.
    case permission(level: Int)
}

extension IOPageTable {
    /// Walks a table as the hardware does: the page walker of an IOMMU model (VT-d DMA
    /// remapping, the first-stage walk for SVA) and of the CPU model. No kernel function
    /// corresponds; it is the hardware the kernel programs.
    ///
    /// Allocation-free and lock-free: it reads entries the way hardware does, while
    /// software updates them with single 64-bit stores. With `setAccessedDirty` it sets
    /// A on every entry it uses and D on the leaf of a permitted write (x86 A/D; VT-d
    /// SSADE). The flag updates are plain stores made only when the bit is clear, not
    /// locked read-modify-writes; the model's users serialise a table's walkers against
    /// its dirty-bit harvest.
    @inlinable
    public static func walk(memory: PhysicalMemory, format: PageTableFormat, root: PhysicalAddress, iova: IOVA,
                            access: WalkAccess, setAccessedDirty: Bool) -> PageWalkResult {
        let iova = iova.rawValue
        var level = format.levels
        guard iova &>> UInt64(truncatingIfNeeded: format.vaBits) == 0 else { return .notPresent(level: level) }
        let base = memory.base
        let present = format.presentMask
        let accessed = format.accessedBit
        var table = root.rawValue
        var allOf: UInt64 = ~0
        var anyOf: UInt64 = 0
        while true {
            let shift = UInt64(truncatingIfNeeded: 3 &+ 9 &* level)
            let slot = base + Int(truncatingIfNeeded: table | (((iova &>> shift) & 511) &<< 3))
            let pte = slot.load(as: UInt64.self)
            if pte & present == 0 { return .notPresent(level: level) }
            allOf &= pte
            anyOf |= pte
            if setAccessedDirty && pte & accessed == 0 { slot.storeBytes(of: pte | accessed, as: UInt64.self) }
            if level == 1 || pte & PageTableFormat.pageSizeBit != 0 {
                guard format.permits(access, allOf: allOf, anyOf: anyOf) else { return .permission(level: level) }
                if setAccessedDirty && access.contains(.write) {
                    let now = slot.load(as: UInt64.self)
                    if now & format.dirtyBit == 0 { slot.storeBytes(of: now | format.dirtyBit, as: UInt64.self) }
                }
                let size = UInt64(1) &<< shift
                let pa = (pte & PageTableFormat.addressMask & ~(size - 1)) | (iova & (size - 1))
                return .translated(pa: PhysicalAddress(rawValue: pa), pageSize: size,
                                   perms: format.effectivePermissions(allOf: allOf, anyOf: anyOf))
            }
            table = pte & PageTableFormat.addressMask
            level &-= 1
        }
    }
}
