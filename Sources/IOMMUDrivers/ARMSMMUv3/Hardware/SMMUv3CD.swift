import IOMMUCore

/// A context descriptor (`struct arm_smmu_cd`, Arm SMMUv3 architecture (IHI 0070), section 5.4): the stage-1
/// configuration of one substream (PASID) of a stream: its page table (TTB0 with the
/// TCR fields of `TCR_EL1`), ASID and memory attributes. Eight 64-bit words in a
/// per-device CD table; the fields are the driver's `CTXDESC_CD_*`.
public struct SMMUv3CD: Hashable, Sendable, CustomStringConvertible {
    /// The descriptor's words, word 0 first.
    public var words: SMMUv3Words

    /// An all-zero descriptor (V = 0: a transaction of its substream is C_BAD_CD).
    public init() { words = SMMUv3Words() }
    /// A descriptor with `words`.
    public init(words: SMMUv3Words) { self.words = words }

    /// Bytes per descriptor.
    public static let size: UInt64 = 64

    // MARK: word 0

    /// T0SZ (bits 5:0): the TTB0 range is 2^(64 - t0sz) bytes.
    public static let t0szMask: UInt64 = 0x3F
    /// TG0 (bits 7:6): 0 = 4 KiB, 1 = 64 KiB, 2 = 16 KiB.
    public static let tg0Mask: UInt64 = 0x3 << 6
    /// IRGN0 (bits 9:8).
    public static let irgn0Mask: UInt64 = 0x3 << 8
    /// ORGN0 (bits 11:10).
    public static let orgn0Mask: UInt64 = 0x3 << 10
    /// SH0 (bits 13:12).
    public static let sh0Mask: UInt64 = 0x3 << 12
    /// EPD0 (bit 14): TTB0 walks disabled; every access through TTB0 faults and the TTB0
    /// fields (T0SZ, TG0, IRGN0, ORGN0, SH0, TTB0) are ignored.
    public static let epd0: UInt64 = 1 << 14
    /// ENDI (bit 15): big-endian table walks.
    public static let endi: UInt64 = 1 << 15
    /// EPD1 (bit 30): TTB1 walks disabled (the driver never uses TTB1).
    public static let epd1: UInt64 = 1 << 30
    /// V (bit 31).
    public static let valid: UInt64 = 1 << 31
    /// IPS (bits 34:32): the output size.
    public static let ipsMask: UInt64 = 0x7 << 32
    /// TBI0 (bit 38): top byte ignored.
    public static let tbi0: UInt64 = 1 << 38
    /// AA64 (bit 41): VMSAv8-64 tables.
    public static let aa64: UInt64 = 1 << 41
    /// HD (bit 42): hardware dirty-state update.
    public static let hd: UInt64 = 1 << 42
    /// HA (bit 43): hardware access-flag update.
    public static let ha: UInt64 = 1 << 43
    /// S (bit 44): stage-1 faults stall.
    public static let stall: UInt64 = 1 << 44
    /// R (bit 45): stage-1 faults are recorded.
    public static let record: UInt64 = 1 << 45
    /// A (bit 46): aborts are reported to the device.
    public static let abortReport: UInt64 = 1 << 46
    /// ASET (bit 47): the ASID is shared with no CPU (no broadcast TLB invalidation).
    public static let aset: UInt64 = 1 << 47
    /// ASID (bits 63:48).
    public static let asidMask: UInt64 = 0xFFFF << 48

    // MARK: words 1 and 3

    /// Word 1: TTB0 (bits 51:4).
    public static let ttb0Mask: UInt64 = 0x000F_FFFF_FFFF_FFF0
    /// The TTB0 part of word 0 that EPD0 makes ignored.
    public static let ttb0ControlMask: UInt64 = t0szMask | tg0Mask | irgn0Mask | orgn0Mask | sh0Mask

    // MARK: fields

    /// V.
    public var isValid: Bool { words[0] & Self.valid != 0 }
    /// EPD0: walks through TTB0 are disabled (the "fault everything" form).
    public var ttb0Disabled: Bool { words[0] & Self.epd0 != 0 }
    /// T0SZ.
    public var t0sz: UInt64 { words[0] & Self.t0szMask }
    /// TG0.
    public var tg0: UInt64 { (words[0] & Self.tg0Mask) >> 6 }
    /// IPS.
    public var ips: UInt64 { (words[0] & Self.ipsMask) >> 32 }
    /// AA64.
    public var isAArch64: Bool { words[0] & Self.aa64 != 0 }
    /// S: faults stall.
    public var stalls: Bool { words[0] & Self.stall != 0 }
    /// R: faults are recorded.
    public var recordsFaults: Bool { words[0] & Self.record != 0 }
    /// The ASID.
    public var asid: UInt16 { UInt16(truncatingIfNeeded: words[0] >> 48) }
    /// TTB0: the physical address of the stage-1 table.
    public var ttb0: PhysicalAddress { PhysicalAddress(rawValue: words[1] & Self.ttb0Mask) }
    /// MAIR (word 3).
    public var mair: UInt64 { words[3] }

    // MARK: memory

    /// Reads the descriptor at `pa`.
    public static func load(_ memory: PhysicalMemory, _ pa: PhysicalAddress) -> SMMUv3CD {
        SMMUv3CD(words: loadWords(memory, pa))
    }

    /// `V=1 asid=5 ttb0=0x… t0sz=16 tg0=0` or `V=1 asid=5 EPD0` or `V=0`.
    public var description: String {
        guard isValid else { return "V=0" }
        var s = "V=1 asid=\(asid)"
        if ttb0Disabled { s += " EPD0" } else { s += " ttb0=\(ttb0) t0sz=\(t0sz) tg0=\(tg0)" }
        if stalls { s += " S" }
        return s
    }
}

/// A level-1 context-descriptor table entry (`struct arm_smmu_cdtab_l1`,
/// `CTXDESC_L1_DESC_*`): points at a leaf table of 1024 CDs.
public enum SMMUv3CDL1 {
    /// V (bit 0).
    public static let valid: UInt64 = 1 << 0
    /// L2Ptr (bits 51:12).
    public static let pointerMask: UInt64 = 0x000F_FFFF_FFFF_F000
    /// `CTXDESC_L2_ENTRIES`: CDs per leaf table.
    public static let leafEntries: UInt32 = 1024
    /// `CTXDESC_LINEAR_CDMAX`: log2 of the CDs of a 64 KiB linear table, the largest the
    /// driver uses without two levels.
    public static let linearCDMax: UInt32 = 10
}

/// A level-1 stream table entry (`struct arm_smmu_strtab_l1`, `STRTAB_L1_DESC_*`):
/// points at a leaf table of 2^(span - 1) STEs.
public enum SMMUv3StreamTableL1 {
    /// Span (bits 4:0): the leaf holds 2^(span - 1) STEs; 0 = invalid.
    public static let spanMask: UInt64 = 0x1F
    /// L2Ptr (bits 51:6).
    public static let pointerMask: UInt64 = 0x000F_FFFF_FFFF_FFC0
    /// `STRTAB_SPLIT`: StreamID bits resolved by a leaf table (256 STEs: one PCI bus).
    public static let split: UInt32 = 8
    /// `STRTAB_MAX_L1_ENTRIES`.
    public static let maxL1Entries: UInt32 = 1 << 17
}
