import IOMMUCore

/// The scalable-mode fault reasons the model reports, with the codes and texts of the
/// VT-d specification's fault reason table (`dma_remap_sm_fault_reasons`, from 0x30).
public enum VTdFault {
    /// 0x39: the root entry of the bus is not present.
    public static let rootNotPresent = FaultReason(code: 0x39, text: "SM: Present bit in Root Entry is clear")
    /// 0x41: the context entry is not present.
    public static let contextNotPresent = FaultReason(code: 0x41, text: "SM: Present bit in Context Entry is clear")
    /// 0x45: a request with PASID to a context whose PASIDE is clear.
    public static let pasidDisabled = FaultReason(code: 0x45, text: "SM: PASID Enable field in Context Entry is clear")
    /// 0x46: the PASID is beyond the directory size the context entry declares.
    public static let pasidTooLarge = FaultReason(code: 0x46, text: "SM: PASID is larger than the max in Context Entry")
    /// 0x51: the PASID-directory entry is not present.
    public static let directoryNotPresent = FaultReason(code: 0x51, text: "SM: Present bit in Directory Entry is clear")
    /// 0x59: the PASID-table entry is not present.
    public static let pasidEntryNotPresent = FaultReason(code: 0x59, text: "SM: Present bit in PASID Table Entry is clear")
    /// 0x5B: the PASID-table entry is invalid (reserved PGTT, nested without a nesting
    /// model, DID 0 or beyond `cap_ndoms`).
    public static let invalidPASIDEntry = FaultReason(code: 0x5B, text: "SM: Invalid Scalable-Mode PASID Table Entry")
    /// 0x5B with the DID as the cause.
    public static let didInvalid = FaultReason(code: 0x5B, text: "SM: Invalid Scalable-Mode PASID Table Entry (DID out of range)")
    /// 0x5D: a privileged request to an entry with SRE clear.
    public static let supervisorDisabled = FaultReason(code: 0x5D, text: "SM: SRE field is clear in PASID Table Entry")
    /// 0x71: a first-stage entry on the path is not present.
    public static let firstStageNotPresent = FaultReason(code: 0x71, text: "SM: Present bit in first-level paging entry is clear")
    /// 0x71 when the device had PRI: a page request was queued instead of a fault record.
    public static let firstStagePageRequest = FaultReason(code: 0x71, text: "SM: Present bit in first-level paging entry is clear; page request issued")
    /// 0x78: a second-stage entry on the path is not present.
    public static let secondStageNotPresent = FaultReason(code: 0x78, text: "SM: Error attempting to access second-level paging entry (not present)")
    /// 0x78 when the device had PRI: a page request was queued.
    public static let secondStagePageRequest = FaultReason(code: 0x78, text: "SM: Error attempting to access second-level paging entry (not present); page request issued")
    /// 0x79: second-stage read/write permission error.
    public static let secondStagePermission = FaultReason(code: 0x79, text: "SM: Read/Write permission error in second-level paging entry")
    /// 0x81: a user request to a supervisor-only first-stage page.
    public static let userToSupervisor = FaultReason(code: 0x81, text: "SM: U/S set 0 for first-level translation with user privilege")
    /// 0x82: execute request without execute permission.
    public static let noExecute = FaultReason(code: 0x82, text: "SM: No execute permission for request with PASID and ER=1")
    /// 0x83: the address is beyond what the table can translate.
    public static let addressBeyondMax = FaultReason(code: 0x83, text: "SM: Address beyond the DMA hardware max")
    /// 0x85: write request without write permission.
    public static let noWrite = FaultReason(code: 0x85, text: "SM: No write permission for Write/AtomicOp request")
    /// 0x86: read request without read permission.
    public static let noRead = FaultReason(code: 0x86, text: "SM: No read permission for Read/AtomicOp request")
}

/// One fault the hardware recorded in its fault-recording registers (`DMAR_FRCD`).
public struct VTdFaultRecord: Hashable, Sendable {
    /// Source ID of the request.
    public let rid: RID
    /// PASID of the request, nil without PASID.
    public let pasid: PASID?
    /// Faulting address (page granular in hardware; the full address here).
    public let address: IOVA
    /// Whether the request was a write.
    public let write: Bool
    /// Fault reason.
    public let reason: FaultReason
}
