import IOMMUCore

/// A scalable-mode root entry (`struct root_entry` with `DMA_RTADDR_SMT`): 128 bits per
/// bus; `lo` points at the context table of devfn 0x00–0x7f, `hi` at 0x80–0xff, each
/// with its own present bit.
public struct VTdRootEntry: Hashable, Sendable {
    /// Low 64 bits: LP (bit 0) | LCTP (12–63).
    public var lo: UInt64
    /// High 64 bits: UP (bit 0) | UCTP (12–63).
    public var hi: UInt64
    /// Bytes per entry.
    public static let size: UInt64 = 16

    /// The context-table pointer word for `devfn` (lo below 0x80, hi from 0x80).
    public func word(for devfn: UInt8) -> UInt64 { devfn < 0x80 ? lo : hi }

    /// Address of the root entry of `bus` in the root table at `root`.
    public static func address(root: PhysicalAddress, bus: UInt8) -> PhysicalAddress { root + UInt64(bus) * size }
}

/// A scalable-mode context entry (`struct context_entry`, 256 bits, index
/// `(devfn & 0x7f) * 2` in 128-bit units): PASID-directory pointer, PDTS, RID_PASID and
/// the per-device enables.
public struct VTdContextEntry: Hashable, Sendable {
    /// The four 64-bit words (`lo`, `hi` and two reserved words).
    public var words: [UInt64]

    /// An all-zero (not present) entry.
    public init() { words = [0, 0, 0, 0] }

    /// Bytes per entry.
    public static let size: UInt64 = 32

    /// Present (lo bit 0).
    public var present: Bool {
        get { words[0] & 1 != 0 }
        set { words[0] = newValue ? words[0] | 1 : words[0] & ~1 }
    }
    /// Fault processing disable (lo bit 1).
    public var fpd: Bool {
        get { words[0] & 2 != 0 }
        set { words[0] = newValue ? words[0] | 2 : words[0] & ~2 }
    }
    /// Device-TLB enable (lo bit 2, `context_set_sm_dte`).
    public var dte: Bool {
        get { words[0] & 4 != 0 }
        set { words[0] = newValue ? words[0] | 4 : words[0] & ~4 }
    }
    /// PASID enable (lo bit 3).
    public var paside: Bool {
        get { words[0] & 8 != 0 }
        set { words[0] = newValue ? words[0] | 8 : words[0] & ~8 }
    }
    /// Page-request enable (lo bit 4, `context_set_sm_pre`).
    public var pre: Bool {
        get { words[0] & 16 != 0 }
        set { words[0] = newValue ? words[0] | 16 : words[0] & ~16 }
    }
    /// PASID-directory size: the directory has `2^(pdts + 7)` entries (lo bits 9–11).
    public var pdts: Int {
        get { Int((words[0] >> 9) & 7) }
        set { words[0] = (words[0] & ~(7 << 9)) | (UInt64(newValue & 7) << 9) }
    }
    /// PASID-directory pointer (lo bits 12–63).
    public var pasidDirectory: PhysicalAddress {
        get { PhysicalAddress(rawValue: words[0] & ~0xFFF) }
        set { words[0] = (words[0] & 0xFFF) | (newValue.rawValue & ~0xFFF) }
    }
    /// RID_PASID: the PASID used for requests without a PASID (hi bits 0–19).
    public var ridPasid: UInt32 {
        get { UInt32(words[1] & 0xF_FFFF) }
        set { words[1] = (words[1] & ~0xF_FFFF) | UInt64(newValue & 0xF_FFFF) }
    }

    /// Address of the context entry of `devfn` in the context table at `table`.
    public static func address(table: PhysicalAddress, devfn: UInt8) -> PhysicalAddress {
        table + UInt64(devfn & 0x7f) * size
    }

    /// Reads an entry from memory.
    public static func load(_ memory: PhysicalMemory, _ pa: PhysicalAddress) -> VTdContextEntry {
        var e = VTdContextEntry()
        e.words = [memory.load64(pa), memory.load64(pa + 8), memory.load64(pa + 16), memory.load64(pa + 24)]
        return e
    }

    /// Writes the entry with the present word last, as software must.
    public func store(_ memory: PhysicalMemory, _ pa: PhysicalAddress) {
        memory.store64(pa + 24, words[3])
        memory.store64(pa + 16, words[2])
        memory.store64(pa + 8, words[1])
        memory.store64(pa, words[0])
    }
}

/// The PGTT field of a PASID-table entry: which translation the entry selects.
public enum VTdPGTT: UInt8, Hashable, Sendable {
    /// `PASID_ENTRY_PGTT_FL_ONLY` (1).
    case firstStage = 1
    /// `PASID_ENTRY_PGTT_SL_ONLY` (2).
    case secondStage = 2
    /// `PASID_ENTRY_PGTT_NESTED` (3).
    case nested = 3
    /// `PASID_ENTRY_PGTT_PT` (4).
    case passThrough = 4
}

/// A scalable-mode PASID-table entry (`struct pasid_entry { u64 val[8]; }`, 512 bits),
/// with accessors for the fields at their real bit positions.
public struct VTdPASIDEntry: Hashable, Sendable {
    /// The eight 64-bit words `val[0] ... val[7]`.
    public var val: [UInt64]

    /// An all-zero entry.
    public init() { val = [UInt64](repeating: 0, count: 8) }

    /// Bytes per entry.
    public static let size: UInt64 = 64

    private func bits(_ word: Int, _ shift: UInt64, _ width: UInt64) -> UInt64 {
        (val[word] >> shift) & ((1 << width) - 1)
    }
    private mutating func setBits(_ word: Int, _ shift: UInt64, _ width: UInt64, _ value: UInt64) {
        let mask = ((UInt64(1) << width) - 1) << shift
        val[word] = (val[word] & ~mask) | ((value << shift) & mask)
    }

    /// P, bit 0 (`PASID_PTE_PRESENT`).
    public var present: Bool {
        get { bits(0, 0, 1) != 0 }
        set { setBits(0, 0, 1, newValue ? 1 : 0) }
    }
    /// FPD, bit 1 (`PASID_PTE_FPD`).
    public var fpd: Bool {
        get { bits(0, 1, 1) != 0 }
        set { setBits(0, 1, 1, newValue ? 1 : 0) }
    }
    /// AW, bits 2–4: 1 = 39-bit, 2 = 48-bit, 3 = 57-bit second stage.
    public var aw: UInt8 {
        get { UInt8(bits(0, 2, 3)) }
        set { setBits(0, 2, 3, UInt64(newValue)) }
    }
    /// PGTT, bits 6–8; nil for a reserved value.
    public var pgtt: VTdPGTT? {
        get { VTdPGTT(rawValue: UInt8(bits(0, 6, 3))) }
        set { setBits(0, 6, 3, UInt64(newValue?.rawValue ?? 0)) }
    }
    /// SSADE, bit 9: second-stage accessed/dirty enable.
    public var ssade: Bool {
        get { bits(0, 9, 1) != 0 }
        set { setBits(0, 9, 1, newValue ? 1 : 0) }
    }
    /// SLPTPTR, bits 12–63: second-stage table root.
    public var slptptr: PhysicalAddress {
        get { PhysicalAddress(rawValue: val[0] & ~0xFFF) }
        set { val[0] = (val[0] & 0xFFF) | (newValue.rawValue & ~0xFFF) }
    }
    /// DID, bits 64–79.
    public var did: UInt16 {
        get { UInt16(bits(1, 0, 16)) }
        set { setBits(1, 0, 16, UInt64(newValue)) }
    }
    /// PWSNP, bit 87: page-walk snoop.
    public var pwsnp: Bool {
        get { bits(1, 23, 1) != 0 }
        set { setBits(1, 23, 1, newValue ? 1 : 0) }
    }
    /// PGSNP, bit 88: page snoop.
    public var pgsnp: Bool {
        get { bits(1, 24, 1) != 0 }
        set { setBits(1, 24, 1, newValue ? 1 : 0) }
    }
    /// SRE, bit 128: supervisor requests enabled.
    public var sre: Bool {
        get { bits(2, 0, 1) != 0 }
        set { setBits(2, 0, 1, newValue ? 1 : 0) }
    }
    /// FLPM, bits 130–131: 0 = 4-level, 1 = 5-level first stage.
    public var flpm: UInt8 {
        get { UInt8(bits(2, 2, 2)) }
        set { setBits(2, 2, 2, UInt64(newValue)) }
    }
    /// WPE, bit 132: supervisor writes honour read-only entries.
    public var wpe: Bool {
        get { bits(2, 4, 1) != 0 }
        set { setBits(2, 4, 1, newValue ? 1 : 0) }
    }
    /// EAFE, bit 135: extended accessed flag.
    public var eafe: Bool {
        get { bits(2, 7, 1) != 0 }
        set { setBits(2, 7, 1, newValue ? 1 : 0) }
    }
    /// FLPTPTR, bits 140–191: first-stage table root.
    public var flptptr: PhysicalAddress {
        get { PhysicalAddress(rawValue: val[2] & ~0xFFF) }
        set { val[2] = (val[2] & 0xFFF) | (newValue.rawValue & ~0xFFF) }
    }

    /// Whether every bit is clear (`pasid_pte_is_zero`-like).
    public var isZero: Bool { val.allSatisfy { $0 == 0 } }

    /// Reads the entry at `pa`.
    public static func load(_ memory: PhysicalMemory, _ pa: PhysicalAddress) -> VTdPASIDEntry {
        var e = VTdPASIDEntry()
        for i in 0..<8 { e.val[i] = memory.load64(pa + UInt64(i) * 8) }
        return e
    }

    /// Writes the entry with word 0 (the present bit) last, so the hardware never sees a
    /// present entry with half-written fields.
    public func store(_ memory: PhysicalMemory, _ pa: PhysicalAddress) {
        for i in stride(from: 7, through: 0, by: -1) { memory.store64(pa + UInt64(i) * 8, val[i]) }
    }
}

/// PASID-directory entry bits (`PASID_PTE_PRESENT`, `PDE_PFN_MASK`): 64-bit entries,
/// index `pasid >> 6`, each pointing at one 4 KiB PASID table of 64 entries.
public enum VTdPASIDDirectory {
    /// Directory index of a PASID (`pasid >> PASID_PDE_SHIFT`).
    @inline(__always) public static func index(_ pasid: UInt32) -> UInt64 { UInt64(pasid >> 6) }
    /// Table index of a PASID (`pasid & PASID_PTE_MASK`).
    @inline(__always) public static func tableIndex(_ pasid: UInt32) -> UInt64 { UInt64(pasid & 0x3F) }
    /// Present bit.
    public static let present: UInt64 = 1
    /// Table pointer mask.
    public static let pointerMask: UInt64 = ~0xFFF
}
