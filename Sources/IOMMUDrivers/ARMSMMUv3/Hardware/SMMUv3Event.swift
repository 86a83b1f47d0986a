import IOMMUCore

/// One record of the SMMUv3 event queue (Arm SMMUv3 architecture (IHI 0070), section 7.3; the driver's `EVTQ_*`): four
/// 64-bit words the SMMU writes when a transaction faults or a configuration is bad.
public struct SMMUv3Event: Hashable, Sendable, CustomStringConvertible {
    /// The four words.
    public var words: (UInt64, UInt64, UInt64, UInt64)

    /// Bytes per record (`EVTQ_ENT_DWORDS` words).
    public static let size: UInt64 = 32

    /// The event numbers the model records (`EVT_ID_*`).
    public enum ID: UInt8, Error, Hashable, Sendable, CaseIterable, CustomStringConvertible {
        /// `C_BAD_STREAMID`: the StreamID is beyond the stream table, or its level-1
        /// descriptor is invalid.
        case badStreamID = 0x02
        /// `F_STE_FETCH`: fetching the STE (or its level-1 descriptor) hit no memory.
        case steFetch = 0x03
        /// `C_BAD_STE`: the STE is invalid (V=0) or an illegal combination.
        case badSTE = 0x04
        /// `F_BAD_ATS_TREQ`: an ATS translation request on a stream whose STE does not
        /// allow ATS (EATS=0, or a bypass STE).
        case badATSTranslationRequest = 0x05
        /// `F_STREAM_DISABLED`: a transaction without SubstreamID on a CD-table stream
        /// whose S1DSS is TERMINATE.
        case streamDisabled = 0x06
        /// `C_BAD_SUBSTREAMID`: a SubstreamID on a stream without substreams, or beyond
        /// S1CDMax, or an invalid level-1 CD descriptor.
        case badSubstreamID = 0x08
        /// `F_CD_FETCH`: fetching the CD (or its level-1 descriptor) hit no memory.
        case cdFetch = 0x09
        /// `C_BAD_CD`: the CD is invalid (V=0) or illegal.
        case badCD = 0x0A
        /// `F_WALK_EABT`: a table walk read hit no memory.
        case walkAbort = 0x0B
        /// `F_TRANSLATION`: no valid descriptor maps the address.
        case translation = 0x10
        /// `F_ADDR_SIZE`: the address is beyond the input or output range.
        case addressSize = 0x11
        /// `F_ACCESS`: the access flag of the leaf is clear and hardware update is off.
        case accessFlag = 0x12
        /// `F_PERMISSION`: the descriptors do not allow the access.
        case permission = 0x13

        /// The spec's name, e.g. `F_TRANSLATION`.
        public var description: String {
            switch self {
            case .badStreamID: "C_BAD_STREAMID"
            case .steFetch: "F_STE_FETCH"
            case .badSTE: "C_BAD_STE"
            case .badATSTranslationRequest: "F_BAD_ATS_TREQ"
            case .streamDisabled: "F_STREAM_DISABLED"
            case .badSubstreamID: "C_BAD_SUBSTREAMID"
            case .cdFetch: "F_CD_FETCH"
            case .badCD: "C_BAD_CD"
            case .walkAbort: "F_WALK_EABT"
            case .translation: "F_TRANSLATION"
            case .addressSize: "F_ADDR_SIZE"
            case .accessFlag: "F_ACCESS"
            case .permission: "F_PERMISSION"
            }
        }

        /// The fault reason a DMA that hit this event reports.
        public var reason: FaultReason { FaultReason(code: UInt16(rawValue), text: description) }
    }

    /// A record from its words.
    public init(words: (UInt64, UInt64, UInt64, UInt64)) { self.words = words }

    /// A record of event `id` for (`sid`, `ssid`) at `address`: `stallTag` set for a
    /// stalled transaction, `stage2` for a stage-2 fault, with the access's read/write,
    /// instruction and privilege attributes.
    public init(id: ID, sid: UInt32, ssid: UInt32?, address: IOVA, read: Bool, instruction: Bool = false,
                privileged: Bool = false, stage2: Bool = false, stallTag: UInt16? = nil, ipa: IOVA = 0) {
        var w0 = UInt64(id.rawValue) | UInt64(sid) << 32
        if let ssid { w0 |= 1 << 11 | UInt64(ssid & 0xF_FFFF) << 12 }
        var w1: UInt64 = 0
        if let stallTag { w1 |= UInt64(stallTag) | 1 << 31 }
        if privileged { w1 |= 1 << 33 }
        if instruction { w1 |= 1 << 34 }
        if read { w1 |= 1 << 35 }
        if stage2 { w1 |= 1 << 39 }
        words = (w0, w1, address.rawValue, ipa.rawValue & 0x000F_FFFF_FFFF_F000)
    }

    /// The raw event number.
    public var rawID: UInt8 { UInt8(truncatingIfNeeded: words.0) }
    /// The event number, nil for one the model does not produce.
    public var id: ID? { ID(rawValue: rawID) }
    /// The StreamID.
    public var streamID: UInt32 { UInt32(truncatingIfNeeded: words.0 >> 32) }
    /// The SubstreamID, nil when SSV is clear.
    public var substreamID: UInt32? { words.0 & (1 << 11) != 0 ? UInt32(truncatingIfNeeded: (words.0 >> 12) & 0xF_FFFF) : nil }
    /// Stall: the transaction is held until a RESUME names ``stallTag``.
    public var stalled: Bool { words.1 & (1 << 31) != 0 }
    /// STAG.
    public var stallTag: UInt16 { UInt16(truncatingIfNeeded: words.1) }
    /// PnU: privileged.
    public var privileged: Bool { words.1 & (1 << 33) != 0 }
    /// InD: instruction fetch.
    public var instruction: Bool { words.1 & (1 << 34) != 0 }
    /// RnW: a read.
    public var read: Bool { words.1 & (1 << 35) != 0 }
    /// S2: a stage-2 fault.
    public var stage2: Bool { words.1 & (1 << 39) != 0 }
    /// The input address.
    public var address: IOVA { IOVA(rawValue: words.2) }
    /// The faulting IPA of a stage-2 fault.
    public var ipa: IOVA { IOVA(rawValue: words.3) }

    /// Equal words.
    public static func == (l: SMMUv3Event, r: SMMUv3Event) -> Bool {
        l.words.0 == r.words.0 && l.words.1 == r.words.1 && l.words.2 == r.words.2 && l.words.3 == r.words.3
    }

    /// Hashes the words.
    public func hash(into h: inout Hasher) {
        h.combine(words.0)
        h.combine(words.1)
        h.combine(words.2)
        h.combine(words.3)
    }

    /// `F_TRANSLATION sid=0x8 ssid=3 addr=0x1000 read stall(stag 2)`.
    public var description: String {
        var s = (id.map { "\($0)" } ?? "event 0x" + String(rawID, radix: 16)) + " sid=0x" + String(streamID, radix: 16)
        if let ssid = substreamID { s += " ssid=\(ssid)" }
        s += " addr=\(address)" + (read ? " read" : " write")
        if stage2 { s += " s2" }
        if stalled { s += " stall(stag \(stallTag))" }
        return s
    }
}

/// One record of the PRI queue (`PRIQ_*`): a PCIe page request the SMMU received.
public struct SMMUv3PRIEntry: Hashable, Sendable, CustomStringConvertible {
    /// Word 0: SID, SSID, permissions, last, SSID valid.
    public var w0: UInt64
    /// Word 1: group index and page address.
    public var w1: UInt64

    /// Bytes per record (`PRIQ_ENT_DWORDS` words).
    public static let size: UInt64 = 16

    /// A record from its words.
    public init(w0: UInt64, w1: UInt64) {
        self.w0 = w0
        self.w1 = w1
    }

    /// The record the SMMU writes for a PCIe page request.
    public init(sid: UInt32, request: PageRequest) {
        let address = request.address.rawValue
        var w0 = UInt64(sid)
        if let pasid = request.pasid { w0 |= UInt64(pasid.rawValue & 0xF_FFFF) << 32 | 1 << 63 }
        if request.access.contains(.priv) { w0 |= 1 << 58 }
        if request.access.contains(.exec) { w0 |= 1 << 59 }
        if request.access.contains(.read) { w0 |= 1 << 60 }
        if request.access.contains(.write) { w0 |= 1 << 61 }
        if request.isLastInGroup { w0 |= 1 << 62 }
        self.w0 = w0
        w1 = UInt64(request.groupIndex & 0x1FF) | (address & ~0xFFF)
    }

    /// The StreamID.
    public var streamID: UInt32 { UInt32(truncatingIfNeeded: w0) }
    /// The SubstreamID, nil without one.
    public var substreamID: UInt32? { w0 & (1 << 63) != 0 ? UInt32(truncatingIfNeeded: (w0 >> 32) & 0xF_FFFF) : nil }
    /// Last request of its group.
    public var last: Bool { w0 & (1 << 62) != 0 }
    /// The access asked for (`PRIQ_0_PERM_*`): read, write, execute, privileged.
    public var access: IOMMUFaultPerm {
        var p: IOMMUFaultPerm = []
        if w0 & (1 << 60) != 0 { p.insert(.read) }
        if w0 & (1 << 61) != 0 { p.insert(.write) }
        if w0 & (1 << 59) != 0 { p.insert(.exec) }
        if w0 & (1 << 58) != 0 { p.insert(.priv) }
        return p
    }
    /// The page-request group index.
    public var groupIndex: UInt16 { UInt16(truncatingIfNeeded: w1 & 0x1FF) }
    /// The page address.
    public var address: IOVA { IOVA(rawValue: w1 & ~0xFFF) }

    /// `sid=0x8 ssid=3 grp=2 addr=0x1000 last`.
    public var description: String {
        "sid=0x" + String(streamID, radix: 16) + (substreamID.map { " ssid=\($0)" } ?? "") + " grp=\(groupIndex) addr=\(address)"
            + (last ? " last" : "")
    }
}
