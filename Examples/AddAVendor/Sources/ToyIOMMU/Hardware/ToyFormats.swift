import IOMMUCore

/// The toy IOMMU's sizes. One unit has a device table with one 16-byte entry per RID;
/// an entry's first word says what requests without PASID do, its second word points at
/// the device's PASID table (one 4 KiB frame: 512 entries of one word). A translating
/// entry points at a one-level page table: 65,536 eight-byte PTEs, each mapping 4 KiB,
/// so every domain covers IOVAs [0, 256 MiB).
public enum ToyLayout {
    /// Bytes per device-table entry (two words).
    public static let deviceEntrySize: UInt64 = 16
    /// Bytes of the device table: one entry per 16-bit RID.
    public static let deviceTableBytes = (1 << 16) * Int(deviceEntrySize)
    /// PASIDs a device can use (one PASID-table frame of 8-byte entries); PASID 0 is the
    /// RID's own, so a PASID table serves 1...511.
    public static let pasids: UInt32 = 512
    /// The page size, the only one.
    public static let pageSize: UInt64 = 4096
    /// PTEs per page table.
    public static let ptes = 1 << 16
    /// Bytes of one page table.
    public static let pageTableBytes = ptes * 8
    /// The IOVAs a page table covers: [0, apertureSize).
    public static let apertureSize = UInt64(ptes) * pageSize
    /// Bits 12...51 of an entry hold a physical address.
    static let addressMask: UInt64 = 0x000F_FFFF_FFFF_F000
}

/// A context entry: what the hardware does with requests of one RID (device table,
/// first word) or one (RID, PASID) (PASID table). Bit 0 valid, bits 1-2 the mode, bits
/// 12-51 the page-table root, bits 52-63 the domain ID that tags cached translations.
public struct ToyContextEntry: Hashable, Sendable {
    /// What a valid entry does.
    public enum Mode: UInt64, Sendable {
        /// Every request faults.
        case blocked = 0
        /// Requests are translated by the page table at ``ToyContextEntry/tableRoot``.
        case translate = 1
        /// Requests go through untranslated (IOVA = physical address).
        case passThrough = 2
    }

    /// The raw word as it sits in memory.
    public var raw: UInt64

    /// Decodes a word.
    public init(raw: UInt64) { self.raw = raw }

    /// A valid entry.
    public init(_ mode: Mode, tableRoot: PhysicalAddress = 0, domainID: UInt16 = 0) {
        raw = 1 | mode.rawValue << 1 | (tableRoot.rawValue & ToyLayout.addressMask) | UInt64(domainID & 0xFFF) << 52
    }

    /// The all-zero, invalid entry (requests fault).
    public static let invalid = ToyContextEntry(raw: 0)

    /// Bit 0.
    public var isValid: Bool { raw & 1 != 0 }
    /// Bits 1-2 (an unknown value reads as blocked).
    public var mode: Mode { Mode(rawValue: raw >> 1 & 3) ?? .blocked }
    /// Bits 12-51.
    public var tableRoot: PhysicalAddress { PhysicalAddress(rawValue: raw & ToyLayout.addressMask) }
    /// Bits 52-63.
    public var domainID: UInt16 { UInt16(raw >> 52) }
}

/// A page-table entry: bit 0 read, bit 1 write, bits 12-51 the page's physical address.
/// An entry with neither permission is not present.
public struct ToyPTE: Hashable, Sendable {
    /// The raw word.
    public var raw: UInt64

    /// Decodes a word.
    public init(raw: UInt64) { self.raw = raw }

    /// A present entry mapping `address` with `prot` (read and write bits only).
    public init(address: PhysicalAddress, prot: IOMMUProt) {
        raw = (address.rawValue & ToyLayout.addressMask) | (prot.contains(.read) ? 1 : 0) | (prot.contains(.write) ? 2 : 0)
    }

    /// Whether the entry maps anything.
    public var isPresent: Bool { raw & 3 != 0 }
    /// The page's physical address.
    public var address: PhysicalAddress { PhysicalAddress(rawValue: raw & ToyLayout.addressMask) }
    /// The permissions.
    public var prot: IOMMUProt {
        var p: IOMMUProt = []
        if raw & 1 != 0 { p.insert(.read) }
        if raw & 2 != 0 { p.insert(.write) }
        return p
    }
}

extension PhysicalMemory {
    /// The 64-bit word at `pa`, through the checked accessor. A table pointer that
    /// leads outside memory reads as an empty entry (not valid, not present), so the
    /// walk faults instead of the model trapping.
    func word(at pa: PhysicalAddress) -> UInt64 {
        (try? read64(at: pa)) ?? 0
    }

    /// Writes the 64-bit word `value` at `pa`; a write outside memory is dropped, as
    /// hardware drops a write that no one completes.
    func setWord(_ value: UInt64, at pa: PhysicalAddress) {
        try? write64(value, at: pa)
    }
}
