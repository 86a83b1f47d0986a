import IOMMUCore

/// The eight 64-bit words of an SMMUv3 table entry: a stream table entry and a context
/// descriptor have this shape (`STRTAB_STE_DWORDS`, `CTXDESC_CD_DWORDS`). The hardware
/// reads each word with a single 64-bit access, which is why the driver updates entries
/// word by word (the hitless entry writer).
public typealias SMMUv3Words = SIMD8<UInt64>

/// A stream table entry (`struct arm_smmu_ste`, Arm SMMUv3 architecture (IHI 0070), section 5.2): what the SMMU does with
/// the transactions of one StreamID (a PCI function's RID). Eight 64-bit words in memory;
/// the fields below are the ones the kernel driver programs (`STRTAB_STE_*` in
/// `arm-smmu-v3.h`).
public struct SMMUv3STE: Hashable, Sendable, CustomStringConvertible {
    /// The entry's words, word 0 first.
    public var words: SMMUv3Words

    /// An all-zero entry (V = 0: the SMMU reports C_BAD_STE for its stream).
    public init() { words = SMMUv3Words() }
    /// An entry with `words`.
    public init(words: SMMUv3Words) { self.words = words }

    /// Bytes per entry.
    public static let size: UInt64 = 64

    /// `STRTAB_STE_0_CFG`: what the stream does.
    public enum Config: UInt64, Hashable, Sendable, CustomStringConvertible {
        /// `STRTAB_STE_0_CFG_ABORT`: every transaction is aborted (no event).
        case abort = 0
        /// `STRTAB_STE_0_CFG_BYPASS`: transactions pass untranslated.
        case bypass = 4
        /// `STRTAB_STE_0_CFG_S1_TRANS`: stage 1 through the stream's CD table.
        case stage1 = 5
        /// `STRTAB_STE_0_CFG_S2_TRANS`: stage 2 only (the S2 fields of words 2-3).
        case stage2 = 6
        /// `STRTAB_STE_0_CFG_NESTED`: stage 1 (a guest's CD table) nested in stage 2.
        case nested = 7
        /// `abort`, `bypass`, `s1`, `s2`, `nested`.
        public var description: String {
            switch self {
            case .abort: "abort"
            case .bypass: "bypass"
            case .stage1: "s1"
            case .stage2: "s2"
            case .nested: "nested"
            }
        }
    }

    /// `STRTAB_STE_1_S1DSS`: what a CD-table stream does with transactions without a
    /// substream (no PASID) once substreams are enabled (S1CDMax > 0).
    public enum S1DSS: UInt64, Hashable, Sendable, CustomStringConvertible {
        /// `STRTAB_STE_1_S1DSS_TERMINATE`: aborted (the RID is on a blocking domain).
        case terminate = 0
        /// `STRTAB_STE_1_S1DSS_BYPASS`: untranslated (the RID is on an identity domain;
        /// ATS still works: the SMMUv3 architecture's "Full ATS skipping stage 1", section 13.6.4).
        case bypass = 1
        /// `STRTAB_STE_1_S1DSS_SSID0`: translated by CD 0 (the RID's stage-1 domain).
        case ssid0 = 2
        /// `terminate`, `bypass`, `ssid0`.
        public var description: String {
            switch self {
            case .terminate: "terminate"
            case .bypass: "bypass"
            case .ssid0: "ssid0"
            }
        }
    }

    /// `STRTAB_STE_1_EATS`: whether the stream may use ATS.
    public enum EATS: UInt64, Hashable, Sendable {
        /// `STRTAB_STE_1_EATS_ABT`: ATS translation requests are refused.
        case abort = 0
        /// `STRTAB_STE_1_EATS_TRANS`: full ATS.
        case translate = 1
        /// `STRTAB_STE_1_EATS_S1CHK`: split-stage ATS.
        case stage1Check = 2
    }

    // MARK: field masks (word, mask)

    /// Word 0: V.
    public static let valid: UInt64 = 1 << 0
    /// Word 0: Config (bits 3:1).
    public static let configMask: UInt64 = 0x7 << 1
    /// Word 0: S1Fmt (bits 5:4): `STRTAB_STE_0_S1FMT_LINEAR` 0, `_64K_L2` 2.
    public static let s1FmtMask: UInt64 = 0x3 << 4
    /// Word 0: S1ContextPtr (bits 51:6).
    public static let s1ContextPtrMask: UInt64 = 0x000F_FFFF_FFFF_FFC0
    /// Word 0: S1CDMax (bits 63:59), log2 of the CD table's entries.
    public static let s1CDMaxMask: UInt64 = 0x1F << 59

    /// Word 1: S1DSS (bits 1:0).
    public static let s1dssMask: UInt64 = 0x3
    /// Word 1: S1CIR (bits 3:2), CD-fetch inner cacheability.
    public static let s1cirMask: UInt64 = 0x3 << 2
    /// Word 1: S1COR (bits 5:4).
    public static let s1corMask: UInt64 = 0x3 << 4
    /// Word 1: S1CSH (bits 7:6).
    public static let s1cshMask: UInt64 = 0x3 << 6
    /// Word 1: MEV (bit 19), merge events.
    public static let mev: UInt64 = 1 << 19
    /// Word 1: S2FWB (bit 25).
    public static let s2fwb: UInt64 = 1 << 25
    /// Word 1: S1STALLD (bit 27), stage-1 stall disable.
    public static let s1stalld: UInt64 = 1 << 27
    /// Word 1: EATS (bits 29:28).
    public static let eatsMask: UInt64 = 0x3 << 28
    /// Word 1: STRW (bits 31:30): `NSEL1` 0, `EL2` 2.
    public static let strwMask: UInt64 = 0x3 << 30
    /// Word 1: SHCFG (bits 45:44): `STRTAB_STE_1_SHCFG_INCOMING` is 1.
    public static let shcfgMask: UInt64 = 0x3 << 44

    /// Word 2: S2VMID (bits 15:0).
    public static let s2vmidMask: UInt64 = 0xFFFF
    /// Word 2: VTCR (bits 50:32), the stage-2 translation control (see ``VTCR``).
    public static let vtcrMask: UInt64 = 0x7FFFF << 32
    /// Word 2: S2AA64 (bit 51).
    public static let s2aa64: UInt64 = 1 << 51
    /// Word 2: S2ENDI (bit 52), big-endian stage-2 walks.
    public static let s2endi: UInt64 = 1 << 52
    /// Word 2: S2PTW (bit 54), stage-2 protected table walk.
    public static let s2ptw: UInt64 = 1 << 54
    /// Word 2: S2S (bit 57), stage-2 stall on fault.
    public static let s2s: UInt64 = 1 << 57
    /// Word 2: S2R (bit 58), stage-2 record faults.
    public static let s2r: UInt64 = 1 << 58

    /// Word 3: S2TTB (bits 51:4), the stage-2 table base.
    public static let s2ttbMask: UInt64 = 0x000F_FFFF_FFFF_FFF0

    /// `STRTAB_STE_0_NESTING_ALLOWED`: the word-0 bits a user's virtual STE may set.
    public static let nestingAllowed0: UInt64 = valid | configMask | s1FmtMask | s1ContextPtrMask | s1CDMaxMask
    /// `STRTAB_STE_1_NESTING_ALLOWED`: the word-1 bits a user's virtual STE may set.
    public static let nestingAllowed1: UInt64 = s1dssMask | s1cirMask | s1corMask | s1cshMask | s1stalld | eatsMask

    // MARK: fields

    /// V.
    public var isValid: Bool { words[0] & Self.valid != 0 }
    /// The raw Config field.
    public var rawConfig: UInt64 { (words[0] & Self.configMask) >> 1 }
    /// Config, nil for a reserved encoding (1-3).
    public var config: Config? { Config(rawValue: rawConfig) }
    /// S1Fmt.
    public var s1Fmt: UInt64 { (words[0] & Self.s1FmtMask) >> 4 }
    /// S1ContextPtr: the physical address of the CD table (or its level-1 table).
    public var s1ContextPointer: UInt64 { words[0] & Self.s1ContextPtrMask }
    /// S1CDMax: the CD table holds `2^s1CDMax` entries; 0 disables substreams.
    public var s1CDMax: UInt64 { (words[0] & Self.s1CDMaxMask) >> 59 }
    /// The raw S1DSS field.
    public var rawS1DSS: UInt64 { words[1] & Self.s1dssMask }
    /// S1DSS, nil for the reserved encoding 3.
    public var s1dss: S1DSS? { S1DSS(rawValue: rawS1DSS) }
    /// The raw EATS field.
    public var rawEATS: UInt64 { (words[1] & Self.eatsMask) >> 28 }
    /// SHCFG.
    public var shcfg: UInt64 { (words[1] & Self.shcfgMask) >> 44 }
    /// S2VMID.
    public var vmid: UInt16 { UInt16(truncatingIfNeeded: words[2] & Self.s2vmidMask) }
    /// VTCR.
    public var vtcr: VTCR { VTCR(rawValue: (words[2] & Self.vtcrMask) >> 32) }
    /// S2TTB: the physical address of the stage-2 table.
    public var s2TableBase: PhysicalAddress { PhysicalAddress(rawValue: words[3] & Self.s2ttbMask) }
    /// S2S: stage-2 faults stall.
    public var stage2Stalls: Bool { words[2] & Self.s2s != 0 }

    /// The stage-2 translation control in STE word 2 (bits 50:32; `STRTAB_STE_2_VTCR_*`),
    /// as the SMMU reads it: the same fields as the CPU's `VTCR_EL2`.
    public struct VTCR: Hashable, Sendable {
        /// The 19-bit field value.
        public var rawValue: UInt64
        /// The raw field.
        public init(rawValue: UInt64) { self.rawValue = rawValue & 0x7FFFF }
        /// The field from its parts.
        public init(t0sz: UInt64, sl0: UInt64, irgn0: UInt64, orgn0: UInt64, sh0: UInt64, tg: UInt64, ps: UInt64) {
            rawValue = (t0sz & 0x3F) | (sl0 & 3) << 6 | (irgn0 & 3) << 8 | (orgn0 & 3) << 10 | (sh0 & 3) << 12
                | (tg & 3) << 14 | (ps & 7) << 16
        }
        /// S2T0SZ: the input range is 2^(64 - t0sz) bytes.
        public var t0sz: UInt64 { rawValue & 0x3F }
        /// S2SL0: the starting level (its meaning depends on the granule).
        public var sl0: UInt64 { (rawValue >> 6) & 3 }
        /// S2TG: 0 = 4 KiB, 1 = 64 KiB, 2 = 16 KiB.
        public var tg: UInt64 { (rawValue >> 14) & 3 }
        /// S2PS: the output size (0 = 32 bits ... 5 = 48, 6 = 52).
        public var ps: UInt64 { (rawValue >> 16) & 7 }
    }

    // MARK: memory

    /// Reads the entry at `pa`.
    public static func load(_ memory: PhysicalMemory, _ pa: PhysicalAddress) -> SMMUv3STE {
        SMMUv3STE(words: loadWords(memory, pa))
    }

    /// Writes all eight words at `pa` (only for tables the SMMU does not use yet; a live
    /// entry is changed with the hitless entry writer).
    public func store(_ memory: PhysicalMemory, _ pa: PhysicalAddress) {
        for i in 0..<8 { memory.store64(pa + UInt64(i) * 8, words[i]) }
    }

    /// `V=1 s1 ctx=0x… cdmax=8 dss=ssid0 eats=1 vmid=0` and the like.
    public var description: String {
        guard isValid else { return "V=0" }
        guard let config else { return "V=1 config=\(rawConfig) (reserved)" }
        var parts = ["V=1 \(config)"]
        if config == .stage1 || config == .nested {
            parts.append("ctx=0x" + String(s1ContextPointer, radix: 16))
            parts.append("fmt=\(s1Fmt) cdmax=\(s1CDMax)")
            parts.append("dss=" + (s1dss.map { "\($0)" } ?? "\(rawS1DSS)"))
        }
        if config != .abort && config != .bypass || rawEATS != 0 { parts.append("eats=\(rawEATS)") }
        if config == .stage2 || config == .nested {
            parts.append("vmid=\(vmid) s2ttb=\(s2TableBase)")
        }
        return parts.joined(separator: " ")
    }
}

/// Reads eight consecutive 64-bit words at `pa`.
func loadWords(_ memory: PhysicalMemory, _ pa: PhysicalAddress) -> SMMUv3Words {
    var w = SMMUv3Words()
    for i in 0..<8 { w[i] = memory.load64(pa + UInt64(i) * 8) }
    return w
}
