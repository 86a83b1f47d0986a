import IOMMUCore

/// Who wrote an SMMUv2 register: the CPU (the kernel's driver), or a bus master with its
/// own path to a context bank's registers, as the Adreno GPU's command processor has to
/// context bank 0 (`CP_SMMU_TABLE_UPDATE`).
public enum SMMUv2Accessor: String, Hashable, Sendable {
    /// The CPU, through the driver.
    case cpu
    /// A client device through its private register path.
    case client
}

/// One TLB maintenance operation the hardware performed, in order: what the checks on
/// invalidation coverage and the Adreno comparison read.
public struct SMMUv2TLBOperation: Hashable, Sendable, CustomStringConvertible {
    /// The operation's register name.
    public enum Kind: String, Hashable, Sendable {
        /// `TLBIVA`: one VA of one ASID, every level.
        case tlbiVA = "TLBIVA"
        /// `TLBIVAL`: one VA of one ASID, last level.
        case tlbiVAL = "TLBIVAL"
        /// `TLBIVAA`: one VA of every ASID.
        case tlbiVAA = "TLBIVAA"
        /// `TLBIASID`: every entry of one ASID in one context bank.
        case tlbiASID = "TLBIASID"
        /// `TLBIALL`: every entry of one context bank.
        case tlbiAll = "TLBIALL"
        /// `TLBIVMID`: every entry of the context banks with one VMID.
        case tlbiVMID = "TLBIVMID"
        /// `TLBIALLNSNH`: every entry.
        case tlbiAllNSNH = "TLBIALLNSNH"
        /// `TLBSYNC` / `sTLBGSYNC`: wait for the maintenance before it to complete.
        case sync = "TLBSYNC"
    }

    /// The operation.
    public let kind: Kind
    /// The context bank, nil for a global operation.
    public let contextBank: Int?
    /// The ASID (TLBIVA, TLBIVAL, TLBIASID) or VMID (TLBIVMID), nil otherwise.
    public let asid: UInt16?
    /// The VA (TLBIVA, TLBIVAL, TLBIVAA), nil otherwise.
    public let address: IOVA?
    /// Who wrote the register.
    public let accessor: SMMUv2Accessor

    /// An operation record.
    public init(kind: Kind, contextBank: Int?, asid: UInt16? = nil, address: IOVA? = nil,
                accessor: SMMUv2Accessor = .cpu) {
        self.kind = kind
        self.contextBank = contextBank
        self.asid = asid
        self.address = address
        self.accessor = accessor
    }

    /// `TLBIVA cb0 asid=0 va=0x1000 (client)`.
    public var description: String {
        var s = kind.rawValue
        if let cb = contextBank { s += " cb\(cb)" }
        if let asid { s += " asid=\(asid)" }
        if let address { s += " va=\(address)" }
        if accessor == .client { s += " (client)" }
        return s
    }
}

/// How a stalled transaction ended: the value software wrote to `CB_RESUME`.
public enum SMMUv2ResumeOutcome: Hashable, Sendable {
    /// RESUME with TnR clear: the transaction is retried (and translates, or faults again).
    case retried
    /// RESUME with TnR set: the transaction is aborted towards the client.
    case terminated
}

/// A transaction held by a context bank in stall mode (`FSR.SS`), waiting for RESUME.
public struct SMMUv2StalledTransaction: Hashable, Sendable {
    /// The context bank holding it.
    public let contextBank: Int
    /// The stream ID of the client.
    public let streamID: UInt16
    /// The input address.
    public let address: IOVA
    /// Whether it was a write.
    public let write: Bool
}

/// The reasons the SMMUv2 model gives a client for a transaction it does not complete:
/// the FSR bit of the context fault (or the sGFSR bit of a global one), as
/// `FaultReason.code`, and whether the transaction is stalled.
public enum SMMUv2Fault {
    /// Added to a context fault's code when the transaction stalled instead of aborting.
    public static let stalledFlag: UInt16 = 0x8000

    /// `FSR.TF`: no valid translation (hole, disabled range, address outside both ranges).
    public static let translation = FaultReason(code: 0x02, text: "translation fault (FSR.TF)")
    /// `FSR.AFF`: the leaf's access flag is clear.
    public static let accessFlag = FaultReason(code: 0x04, text: "access flag fault (FSR.AFF)")
    /// `FSR.PF`: the leaf does not allow the access.
    public static let permission = FaultReason(code: 0x08, text: "permission fault (FSR.PF)")
    /// `FSR.EF`: the walk could not read a table.
    public static let external = FaultReason(code: 0x10, text: "external fault (FSR.EF)")
    /// HUPCF clear and a transaction stalled: everything behind it waits too.
    public static let blockedBehindStall =
        FaultReason(code: 0x40, text: "context bank stalled (FSR.SS, HUPCF clear): waiting for RESUME")
    /// `sGFSR.ICF`: the stream's S2CR is of type fault, or names a context bank that is
    /// not a stage-1 context.
    public static let invalidContext = FaultReason(code: 0x1000, text: "invalid context fault (sGFSR.ICF)")
    /// `sGFSR.USF`: no SMR matched the stream ID and unmatched streams fault (sCR0.USFCFG).
    public static let unidentifiedStream = FaultReason(code: 0x1001, text: "unidentified stream fault (sGFSR.USF)")
    /// `sGFSR.SMCF`: more than one SMR matched the stream ID.
    public static let streamMatchConflict = FaultReason(code: 0x1002, text: "stream match conflict (sGFSR.SMCF)")

    /// The context fault `reason` as seen by a transaction that stalled.
    static func stalled(_ reason: FaultReason) -> FaultReason {
        FaultReason(code: reason.code | stalledFlag, text: reason.text + ", stalled (FSR.SS): waiting for RESUME")
    }

    /// Whether a fault reason is a stalled transaction's.
    public static func isStalled(_ reason: FaultReason) -> Bool {
        reason.code & stalledFlag != 0
    }
}
