import IOMMUCore

/// What an SMMUv2 implementation offers, as its ID registers report it (`ARM_SMMU_GR0_ID0`
/// to `ID2`, read by `arm_smmu_device_cfg_probe`). The model implements stage-1
/// translation in the AArch64 (VMSAv8-64) format with stream matching; the defaults are
/// those of a Qualcomm SMMU-500 in front of an Adreno GPU.
public struct SMMUv2Configuration: Hashable, Sendable {
    /// Context banks (`ID1.NUMCB`, at most 128).
    public var contextBanks: Int
    /// Stream match register groups (`ID0.NUMSMRG`, at most 128).
    public var streamMatchGroups: Int
    /// Stream ID bits (`ID0.NUMSIDB`, at most 15; 16 with extended IDs).
    public var streamIDBits: Int
    /// Upstream bus (input VA) bits of stage 1 (`ID2.UBS`): 32, 36, 40, 42, 44 or 48.
    public var inputBits: Int
    /// Intermediate (stage-1 output) address bits (`ID2.IAS`).
    public var intermediateBits: Int
    /// Physical output address bits (`ID2.OAS`).
    public var outputBits: Int
    /// The AArch64 translation granules the walker supports (`ID2.PTFS_4K/16K/64K`).
    public var granules: Set<LPAEGranule>
    /// Address translation operations (ATS1PR / PAR) are implemented (`ID0.ATOSNS` clear).
    public var translationOperations: Bool
    /// Entries of the TLB's 4 KiB bank (rounded up to a power of two).
    public var tlbEntries: Int

    /// A configuration; the defaults are 32 context banks, 64 stream match groups,
    /// 15-bit stream IDs, 48-bit addresses, the 4K and 64K granules, ATOS.
    public init(contextBanks: Int = 32, streamMatchGroups: Int = 64, streamIDBits: Int = 15, inputBits: Int = 48,
                intermediateBits: Int = 48, outputBits: Int = 48, granules: Set<LPAEGranule> = [.size4K, .size64K],
                translationOperations: Bool = true, tlbEntries: Int = 1024) {
        self.contextBanks = contextBanks
        self.streamMatchGroups = streamMatchGroups
        self.streamIDBits = streamIDBits
        self.inputBits = inputBits
        self.intermediateBits = intermediateBits
        self.outputBits = outputBits
        self.granules = granules
        self.translationOperations = translationOperations
        self.tlbEntries = tlbEntries
    }

    /// Whether the configuration is one the architecture allows.
    var isValid: Bool {
        (1...128).contains(contextBanks) && (1...128).contains(streamMatchGroups) && (1...16).contains(streamIDBits)
            && Self.sizeField(inputBits) != nil && Self.sizeField(intermediateBits) != nil
            && Self.sizeField(outputBits) != nil && !granules.isEmpty && tlbEntries > 0
    }

    /// `ARM_SMMU_GR0_ID0`: S1TS, SMS, ATOSNS, PTFS_NO_AARCH32(S), NUMSIDB, EXIDS, NUMSMRG.
    public var id0: UInt32 {
        var v: UInt32 = 1 << 30 | 1 << 27 | 1 << 25 | 1 << 24 | 1 << 14
        if !translationOperations { v |= 1 << 26 }
        if streamIDBits == 16 {
            v |= 1 << 8 | 15 << 9
        } else {
            v |= UInt32(streamIDBits) << 9
        }
        v |= UInt32(contextBanks) << 16 & 0xFF_0000   // NUMIRPT: one interrupt per bank
        return v | UInt32(streamMatchGroups & 0xFF)
    }

    /// `ARM_SMMU_GR0_ID1`: 4 KiB register pages, NUMPAGENDXB, no stage-2-only banks, NUMCB.
    public var id1: UInt32 {
        var pages = 0
        while (1 << (pages + 1)) < contextBanks { pages += 1 }
        return UInt32(min(pages, 7)) << 28 | UInt32(contextBanks & 0xFF)
    }

    /// `ARM_SMMU_GR0_ID2`: PTFS_4K/16K/64K, UBS, OAS, IAS.
    public var id2: UInt32 {
        var v: UInt32 = 0
        if granules.contains(.size4K) { v |= 1 << 12 }
        if granules.contains(.size16K) { v |= 1 << 13 }
        if granules.contains(.size64K) { v |= 1 << 14 }
        v |= (Self.sizeField(inputBits) ?? 5) << 8
        v |= (Self.sizeField(outputBits) ?? 5) << 4
        return v | (Self.sizeField(intermediateBits) ?? 5)
    }

    /// The ID2 size encoding (`arm_smmu_id_size_to_bits` inverted).
    static func sizeField(_ bits: Int) -> UInt32? {
        switch bits {
        case 32: 0
        case 36: 1
        case 40: 2
        case 42: 3
        case 44: 4
        case 48: 5
        default: nil
        }
    }
}
