import IOMMUCore

/// One command of the SMMUv3 command queue (`struct arm_smmu_cmd`, Arm SMMUv3 architecture (IHI 0070), section 4): two
/// 64-bit words in queue memory, the opcode in bits 7:0 of word 0. The builders are the
/// driver's `arm_smmu_make_cmd_*`; the accessors are how the hardware decodes them.
public struct SMMUv3Command: Hashable, Sendable, CustomStringConvertible {
    /// Word 0.
    public var w0: UInt64
    /// Word 1.
    public var w1: UInt64

    /// A command from its two words.
    public init(w0: UInt64, w1: UInt64) {
        self.w0 = w0
        self.w1 = w1
    }

    /// Bytes per queue entry (`CMDQ_ENT_DWORDS` words).
    public static let size: UInt64 = 16

    /// `enum arm_smmu_cmdq_opcode`.
    public enum Opcode: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
        /// `CMDQ_OP_PREFETCH_CFG`: a hint to fetch a stream's configuration.
        case prefetchConfig = 0x01
        /// `CMDQ_OP_CFGI_STE`: drop the cached STE of a StreamID (and, without Leaf, its CDs).
        case cfgiSTE = 0x03
        /// `CMDQ_OP_CFGI_ALL`: drop every cached STE and CD.
        case cfgiAll = 0x04
        /// `CMDQ_OP_CFGI_CD`: drop the cached CD of (StreamID, SubstreamID).
        case cfgiCD = 0x05
        /// `CMDQ_OP_CFGI_CD_ALL`: drop every cached CD of a StreamID.
        case cfgiCDAll = 0x06
        /// `CMDQ_OP_TLBI_NH_ALL`: every stage-1 TLB entry of a VMID.
        case tlbiNHAll = 0x10
        /// `CMDQ_OP_TLBI_NH_ASID`: every stage-1 TLB entry of (VMID, ASID).
        case tlbiNHASID = 0x11
        /// `CMDQ_OP_TLBI_NH_VA`: stage-1 entries of (VMID, ASID) for an address range.
        case tlbiNHVA = 0x12
        /// `CMDQ_OP_TLBI_NH_VAA`: stage-1 entries of a VMID for an address, any ASID.
        case tlbiNHVAA = 0x13
        /// `CMDQ_OP_TLBI_EL2_ALL`.
        case tlbiEL2All = 0x20
        /// `CMDQ_OP_TLBI_EL2_ASID`.
        case tlbiEL2ASID = 0x21
        /// `CMDQ_OP_TLBI_EL2_VA`.
        case tlbiEL2VA = 0x22
        /// `CMDQ_OP_TLBI_S12_VMALL`: every entry (stage 1, stage 2, combined) of a VMID.
        case tlbiS12VMAll = 0x28
        /// `CMDQ_OP_TLBI_S2_IPA`: stage-2 entries of a VMID for an IPA range.
        case tlbiS2IPA = 0x2A
        /// `CMDQ_OP_TLBI_NSNH_ALL`: every non-secure non-hypervisor entry.
        case tlbiNSNHAll = 0x30
        /// `CMDQ_OP_ATC_INV`: an ATS invalidation to the device of a StreamID.
        case atcInvalidate = 0x40
        /// `CMDQ_OP_PRI_RESP`: a PRI page-group response.
        case priResponse = 0x41
        /// `CMDQ_OP_RESUME`: retry or terminate a stalled transaction.
        case resume = 0x44
        /// `CMDQ_OP_CMD_SYNC`: completes when every earlier command has taken effect.
        case sync = 0x46

        /// The kernel's name without the prefix (`CFGI_STE`, `TLBI_NH_VA`, ...).
        public var description: String {
            switch self {
            case .prefetchConfig: "PREFETCH_CFG"
            case .cfgiSTE: "CFGI_STE"
            case .cfgiAll: "CFGI_ALL"
            case .cfgiCD: "CFGI_CD"
            case .cfgiCDAll: "CFGI_CD_ALL"
            case .tlbiNHAll: "TLBI_NH_ALL"
            case .tlbiNHASID: "TLBI_NH_ASID"
            case .tlbiNHVA: "TLBI_NH_VA"
            case .tlbiNHVAA: "TLBI_NH_VAA"
            case .tlbiEL2All: "TLBI_EL2_ALL"
            case .tlbiEL2ASID: "TLBI_EL2_ASID"
            case .tlbiEL2VA: "TLBI_EL2_VA"
            case .tlbiS12VMAll: "TLBI_S12_VMALL"
            case .tlbiS2IPA: "TLBI_S2_IPA"
            case .tlbiNSNHAll: "TLBI_NSNH_ALL"
            case .atcInvalidate: "ATC_INV"
            case .priResponse: "PRI_RESP"
            case .resume: "RESUME"
            case .sync: "CMD_SYNC"
            }
        }
    }

    /// `CMDQ_RESUME_0_RESP_*`: how a stalled transaction ends.
    public enum ResumeAction: UInt64, Hashable, Sendable {
        /// `CMDQ_RESUME_0_RESP_TERM`: terminate without reporting an abort.
        case terminate = 0
        /// `CMDQ_RESUME_0_RESP_RETRY`: retry the translation.
        case retry = 1
        /// `CMDQ_RESUME_0_RESP_ABORT`: terminate with an abort to the device.
        case abort = 2
    }

    /// `enum pri_resp`: the Resp field of PRI_RESP.
    public enum PRIResponse: UInt64, Hashable, Sendable {
        /// `PRI_RESP_DENY` (0): the driver's answer to a failed group.
        case deny = 0
        /// `PRI_RESP_FAIL` (1): the driver's answer to an invalid request.
        case fail = 1
        /// `PRI_RESP_SUCC` (2): the pages are there; the device retries.
        case success = 2
    }

    // MARK: decoding

    /// The raw opcode (bits 7:0).
    public var rawOpcode: UInt8 { UInt8(truncatingIfNeeded: w0) }
    /// The opcode, nil for one the model does not know (the SMMU reports CERROR_ILL).
    public var opcode: Opcode? { Opcode(rawValue: rawOpcode) }
    /// SSV (word 0 bit 11): the SubstreamID field is valid.
    public var substreamValid: Bool { w0 & (1 << 11) != 0 }
    /// StreamID (word 0 bits 63:32) of CFGI, ATC_INV, PRI_RESP, RESUME and PREFETCH_CFG.
    public var streamID: UInt32 {
        get { UInt32(truncatingIfNeeded: w0 >> 32) }
        set { w0 = w0 & 0xFFFF_FFFF | UInt64(newValue) << 32 }
    }
    /// SubstreamID (word 0 bits 31:12) of CFGI_CD and ATC_INV.
    public var substreamID: UInt32 { UInt32(truncatingIfNeeded: (w0 >> 12) & 0xF_FFFF) }
    /// Leaf (word 1 bit 0) of CFGI and TLBI: only the last level (TLBI) / only the STE (CFGI).
    public var leaf: Bool { w1 & 1 != 0 }
    /// ASID (word 0 bits 63:48) of TLBI.
    public var asid: UInt16 { UInt16(truncatingIfNeeded: w0 >> 48) }
    /// VMID (word 0 bits 47:32) of TLBI.
    public var vmid: UInt16 {
        get { UInt16(truncatingIfNeeded: w0 >> 32) }
        set { w0 = w0 & ~(0xFFFF << 32) | UInt64(newValue) << 32 }
    }
    /// NUM (word 0 bits 16:12) of a range TLBI.
    public var rangeNum: UInt64 { (w0 >> 12) & 0x1F }
    /// SCALE (word 0 bits 24:20) of a range TLBI.
    public var rangeScale: UInt64 { (w0 >> 20) & 0x1F }
    /// TG (word 1 bits 11:10) of a range TLBI: 0 = not a range; 1 = 4K, 2 = 16K, 3 = 64K.
    public var rangeGranule: UInt64 { (w1 >> 10) & 3 }
    /// The address of a TLBI (word 1 bits 63:12; IPA: bits 51:12).
    public var address: UInt64 { w1 & ~0xFFF }
    /// Size (word 1 bits 5:0) of ATC_INV: the range is 2^size pages.
    public var atcSize: UInt64 { w1 & 0x3F }
    /// STAG (word 1 bits 15:0) of RESUME.
    public var stallTag: UInt16 { UInt16(truncatingIfNeeded: w1) }
    /// RESP (word 0 bits 13:12) of RESUME.
    public var resumeAction: ResumeAction? { ResumeAction(rawValue: (w0 >> 12) & 3) }
    /// PRG index (word 1 bits 8:0) of PRI_RESP.
    public var priGroupIndex: UInt16 { UInt16(truncatingIfNeeded: w1 & 0x1FF) }
    /// RESP (word 1 bits 13:12) of PRI_RESP.
    public var priResponse: PRIResponse? { PRIResponse(rawValue: (w1 >> 12) & 3) }
    /// SubstreamID (word 0 bits 31:12) of PRI_RESP.
    public var priSubstreamID: UInt32 { substreamID }

    // MARK: builders (`arm_smmu_make_cmd_*`)

    private static func op(_ o: Opcode) -> UInt64 { UInt64(o.rawValue) }

    /// `arm_smmu_make_cmd_prefetch_cfg(sid)`.
    public static func prefetchConfig(sid: UInt32) -> SMMUv3Command {
        SMMUv3Command(w0: op(.prefetchConfig) | UInt64(sid) << 32, w1: 0)
    }

    /// `arm_smmu_make_cmd_cfgi_ste(sid, leaf)`.
    public static func cfgiSTE(sid: UInt32, leaf: Bool) -> SMMUv3Command {
        SMMUv3Command(w0: op(.cfgiSTE) | UInt64(sid) << 32, w1: leaf ? 1 : 0)
    }

    /// `arm_smmu_make_cmd_cfgi_cd(sid, ssid, leaf)`.
    public static func cfgiCD(sid: UInt32, ssid: UInt32, leaf: Bool) -> SMMUv3Command {
        SMMUv3Command(w0: op(.cfgiCD) | UInt64(ssid & 0xF_FFFF) << 12 | UInt64(sid) << 32, w1: leaf ? 1 : 0)
    }

    /// `arm_smmu_make_cmd_cfgi_all()`: Range 31 (every StreamID).
    public static var cfgiAll: SMMUv3Command { SMMUv3Command(w0: op(.cfgiAll), w1: 31) }

    /// `arm_smmu_make_cmd_tlbi(op, asid, vmid)`: a TLBI without an address.
    public static func tlbi(_ o: Opcode, asid: UInt16, vmid: UInt16) -> SMMUv3Command {
        SMMUv3Command(w0: op(o) | UInt64(asid) << 48 | UInt64(vmid) << 32, w1: 0)
    }

    /// A TLBI of one page or block at `address` (`TLBI_NH_VA`, `TLBI_S2_IPA`), with the
    /// Leaf hint: the single-command form the driver emits per granule when the SMMU has
    /// no range invalidation.
    public static func tlbiAddress(_ o: Opcode, asid: UInt16, vmid: UInt16, address: UInt64, leaf: Bool) -> SMMUv3Command {
        var c = tlbi(o, asid: asid, vmid: vmid)
        c.w1 = (address & ~0xFFF) | (leaf ? 1 : 0)
        return c
    }

    /// A range TLBI (`arm_smmu_tlbi_calc_range`): `(num + 1) << scale` granules of
    /// 2^`granuleShift` bytes from `address`.
    public static func tlbiRange(_ o: Opcode, asid: UInt16, vmid: UInt16, address: UInt64, granuleShift: Int, num: UInt64,
                                 scale: UInt64, leaf: Bool, ttl: UInt64) -> SMMUv3Command {
        var c = tlbi(o, asid: asid, vmid: vmid)
        c.w0 |= (num & 0x1F) << 12 | (scale & 0x1F) << 20
        let tg = UInt64((granuleShift - 10) / 2)
        c.w1 = (address & ~0xFFF) | (leaf ? 1 : 0) | (ttl & 3) << 8 | (tg & 3) << 10
        return c
    }

    /// `arm_smmu_make_cmd_atc_inv(sid, ssid, addr, size)`: SSV set for a non-zero SSID.
    public static func atcInvalidate(sid: UInt32, ssid: UInt32, address: UInt64, size: UInt64) -> SMMUv3Command {
        SMMUv3Command(w0: op(.atcInvalidate) | (ssid != 0 ? 1 << 11 : 0) | UInt64(ssid & 0xF_FFFF) << 12 | UInt64(sid) << 32,
                      w1: (size & 0x3F) | (address & ~0xFFF))
    }

    /// `ATC_INV_SIZE_ALL`: 2^52 pages, the whole address space.
    public static let atcSizeAll: UInt64 = 52

    /// `arm_smmu_make_cmd_atc_inv_all(sid, ssid)`.
    public static func atcInvalidateAll(sid: UInt32, ssid: UInt32) -> SMMUv3Command {
        atcInvalidate(sid: sid, ssid: ssid, address: 0, size: atcSizeAll)
    }

    /// `arm_smmu_make_cmd_pri_resp(sid, ssid, ssv, grpid, resp)`.
    public static func priResponse(sid: UInt32, ssid: UInt32, ssv: Bool, groupIndex: UInt16,
                                   response: PRIResponse) -> SMMUv3Command {
        SMMUv3Command(w0: op(.priResponse) | (ssv ? 1 << 11 : 0) | UInt64(ssid & 0xF_FFFF) << 12 | UInt64(sid) << 32,
                      w1: UInt64(groupIndex & 0x1FF) | response.rawValue << 12)
    }

    /// `arm_smmu_make_cmd_resume(sid, stag, resp)`.
    public static func resume(sid: UInt32, stallTag: UInt16, action: ResumeAction) -> SMMUv3Command {
        SMMUv3Command(w0: op(.resume) | action.rawValue << 12 | UInt64(sid) << 32, w1: UInt64(stallTag))
    }

    /// `arm_smmu_make_cmd_sync(CS_NONE, 0)`: completion is polled through CONS.
    public static var sync: SMMUv3Command {
        SMMUv3Command(w0: op(.sync) | 3 << 22 | 0xF << 24, w1: 0)
    }

    /// `CFGI_STE sid=0x8 leaf`, `TLBI_NH_VA asid=3 vmid=0 addr=0x1000`, ... or
    /// `unknown opcode 0x7f`.
    public var description: String {
        guard let opcode else { return "unknown opcode 0x" + String(rawOpcode, radix: 16) }
        let hex = { (v: UInt64) in "0x" + String(v, radix: 16) }
        switch opcode {
        case .prefetchConfig: return "\(opcode) sid=\(hex(UInt64(streamID)))"
        case .cfgiSTE: return "\(opcode) sid=\(hex(UInt64(streamID)))" + (leaf ? " leaf" : "")
        case .cfgiCD: return "\(opcode) sid=\(hex(UInt64(streamID))) ssid=\(substreamID)" + (leaf ? " leaf" : "")
        case .cfgiCDAll: return "\(opcode) sid=\(hex(UInt64(streamID)))"
        case .cfgiAll, .tlbiNSNHAll, .tlbiEL2All, .sync: return "\(opcode)"
        case .tlbiNHAll, .tlbiS12VMAll: return "\(opcode) vmid=\(vmid)"
        case .tlbiNHASID, .tlbiEL2ASID: return "\(opcode) asid=\(asid) vmid=\(vmid)"
        case .tlbiNHVA, .tlbiNHVAA, .tlbiEL2VA, .tlbiS2IPA:
            var s = "\(opcode) "
            if opcode != .tlbiS2IPA && opcode != .tlbiNHVAA { s += "asid=\(asid) " }
            s += "vmid=\(vmid) addr=\(hex(address))"
            if rangeGranule != 0 { s += " range=\((rangeNum + 1) << rangeScale)x\(1 << (10 + 2 * rangeGranule))" }
            return s + (leaf ? " leaf" : "")
        case .atcInvalidate:
            return "\(opcode) sid=\(hex(UInt64(streamID)))" + (substreamValid ? " ssid=\(substreamID)" : "")
                + (atcSize >= Self.atcSizeAll ? " all" : " addr=\(hex(address)) size=2^\(atcSize)p")
        case .priResponse:
            return "\(opcode) sid=\(hex(UInt64(streamID)))" + (substreamValid ? " ssid=\(substreamID)" : "")
                + " grp=\(priGroupIndex) resp=\(priResponse.map { "\($0)" } ?? "?")"
        case .resume:
            return "\(opcode) sid=\(hex(UInt64(streamID))) stag=\(stallTag) \(resumeAction.map { "\($0)" } ?? "?")"
        }
    }
}
