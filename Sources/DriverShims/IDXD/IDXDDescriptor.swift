import IOMMUCore

/// A DSA operation code (`enum dsa_opcode`, `include/uapi/linux/idxd.h`). The model
/// executes ``noop``, ``memmove``, ``fill`` and ``compare``; ``batch`` exists so that the
/// INTEL-SA-01084 refusal of DSA v1 batch descriptors from user space can be shown; any
/// other value completes with ``DSACompletionStatus/badOpcode``.
public struct DSAOpcode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The 8-bit opcode field of `struct dsa_hw_desc`.
    public let rawValue: UInt8
    /// Wraps a raw opcode.
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// `DSA_OPCODE_NOOP` (0x00): only writes the completion record.
    public static let noop = DSAOpcode(rawValue: 0x00)
    /// `DSA_OPCODE_BATCH` (0x01): a list of descriptors in memory (not executed by the
    /// model; refused from user space on devices where submission is not safe).
    public static let batch = DSAOpcode(rawValue: 0x01)
    /// `DSA_OPCODE_MEMMOVE` (0x03): copy `xferSize` bytes from `source` to `destination`.
    public static let memmove = DSAOpcode(rawValue: 0x03)
    /// `DSA_OPCODE_MEMFILL` (0x04): fill `xferSize` bytes at `destination` with the
    /// 8-byte `pattern`.
    public static let fill = DSAOpcode(rawValue: 0x04)
    /// `DSA_OPCODE_COMPARE` (0x05): compare `xferSize` bytes at `source` and `source2`;
    /// the completion record's `result` is 0 when equal, 1 otherwise.
    public static let compare = DSAOpcode(rawValue: 0x05)

    /// The uAPI name (`"MEMMOVE"`).
    public var description: String {
        switch self {
        case .noop: "NOOP"
        case .batch: "BATCH"
        case .memmove: "MEMMOVE"
        case .fill: "MEMFILL"
        case .compare: "COMPARE"
        default: "opcode 0x\(String(rawValue, radix: 16))"
        }
    }
}

/// Descriptor flags (`IDXD_OP_FLAG_*`, `include/uapi/linux/idxd.h`) the model honours.
public struct IDXDDescriptorFlags: OptionSet, Hashable, Sendable {
    /// The 24-bit flags field.
    public let rawValue: UInt32
    /// Wraps raw flags.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// `IDXD_OP_FLAG_CRAV` (0x0004): the completion record address is valid.
    public static let completionRecordAddressValid = IDXDDescriptorFlags(rawValue: 0x0004)
    /// `IDXD_OP_FLAG_RCR` (0x0008): request a completion record.
    public static let requestCompletionRecord = IDXDDescriptorFlags(rawValue: 0x0008)
    /// `IDXD_OP_FLAG_RCI` (0x0010): request a completion interrupt.
    public static let requestCompletionInterrupt = IDXDDescriptorFlags(rawValue: 0x0010)
    /// What the kernel's dmaengine and the examples set: CRAV | RCR.
    public static let completionRecord: IDXDDescriptorFlags = [.completionRecordAddressValid, .requestCompletionRecord]
}

/// A 64-byte work descriptor (`struct dsa_hw_desc`): the fields the model uses. Addresses
/// are in the address space the descriptor's PASID (or the RID) selects: an IOVA of the
/// default domain, a process VA under user SVA, a kernel VA under supervisor SVA.
public struct IDXDDescriptor: Hashable, Sendable {
    /// `pasid:20`: the address space. Ignored for dedicated WQs (WQCFG supplies it) and
    /// replaced by the CPU for ENQCMD.
    public var pasid: PASID?
    /// `priv:1`: privileged (supervisor) request. Ignored for dedicated WQs; forced to 0
    /// by ENQCMD.
    public var priv: Bool
    /// `flags:24`.
    public var flags: IDXDDescriptorFlags
    /// `opcode:8`.
    public var opcode: DSAOpcode
    /// `completion_addr`: where the device writes the completion record; must be 32-byte
    /// (DSA) or 64-byte (IAA) aligned.
    public var completionAddress: IOVA
    /// `src_addr`.
    public var source: IOVA
    /// `dst_addr` (for compare: `src2_addr`).
    public var destination: IOVA
    /// `xfer_size`.
    public var transferSize: UInt32
    /// `pattern` of MEMFILL (little endian, repeated).
    public var pattern: UInt64

    /// A descriptor; every field defaults to zero.
    public init(opcode: DSAOpcode, source: IOVA = 0, destination: IOVA = 0, transferSize: UInt32 = 0,
                pattern: UInt64 = 0, completionAddress: IOVA = 0, flags: IDXDDescriptorFlags = .completionRecord,
                pasid: PASID? = nil, priv: Bool = false) {
        self.opcode = opcode
        self.source = source
        self.destination = destination
        self.transferSize = transferSize
        self.pattern = pattern
        self.completionAddress = completionAddress
        self.flags = flags
        self.pasid = pasid
        self.priv = priv
    }

    /// A MEMMOVE of `count` bytes.
    public static func memmove(from source: IOVA, to destination: IOVA, count: UInt32,
                               completion: IOVA) -> IDXDDescriptor {
        IDXDDescriptor(opcode: .memmove, source: source, destination: destination, transferSize: count,
                       completionAddress: completion)
    }

    /// A MEMFILL of `count` bytes with `pattern`.
    public static func fill(_ destination: IOVA, pattern: UInt64, count: UInt32, completion: IOVA) -> IDXDDescriptor {
        IDXDDescriptor(opcode: .fill, destination: destination, transferSize: count, pattern: pattern,
                       completionAddress: completion)
    }

    /// A COMPARE of `count` bytes at `a` and `b`.
    public static func compare(_ a: IOVA, _ b: IOVA, count: UInt32, completion: IOVA) -> IDXDDescriptor {
        IDXDDescriptor(opcode: .compare, source: a, destination: b, transferSize: count, completionAddress: completion)
    }
}

/// The status byte of a completion record (`DSA_COMP_*`, `include/uapi/linux/idxd.h`).
public struct DSACompletionStatus: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The status byte; bit 7 (`DSA_COMP_STATUS_WRITE`) marks a fault on a write.
    public let rawValue: UInt8
    /// Wraps a raw status.
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// `DSA_COMP_NONE` (0): not completed yet (what software polls on).
    public static let none = DSACompletionStatus(rawValue: 0x00)
    /// `DSA_COMP_SUCCESS` (1).
    public static let success = DSACompletionStatus(rawValue: 0x01)
    /// `DSA_COMP_PAGE_FAULT_NOBOF` (3): a page fault stopped the operation (block on fault
    /// off); `bytesCompleted` and `faultAddress` tell the submitter where to resume.
    public static let pageFault = DSACompletionStatus(rawValue: 0x03)
    /// `DSA_COMP_BAD_OPCODE` (0x10).
    public static let badOpcode = DSACompletionStatus(rawValue: 0x10)
    /// `DSA_COMP_XFER_ERANGE` (0x13): transfer size beyond the WQ's maximum.
    public static let transferSizeOutOfRange = DSACompletionStatus(rawValue: 0x13)
    /// `DSA_COMP_STATUS_WRITE` (0x80): OR-ed into a fault status when the faulting access
    /// was a write.
    public static let writeBit: UInt8 = 0x80

    /// The status without the write bit.
    public var code: DSACompletionStatus { DSACompletionStatus(rawValue: rawValue & 0x7f) }
    /// Whether a fault status names a write.
    public var faultedOnWrite: Bool { rawValue & Self.writeBit != 0 }

    /// The uAPI name, with `|WRITE` for the write bit.
    public var description: String {
        let name: String
        switch code {
        case .none: name = "DSA_COMP_NONE"
        case .success: name = "DSA_COMP_SUCCESS"
        case .pageFault: name = "DSA_COMP_PAGE_FAULT_NOBOF"
        case .badOpcode: name = "DSA_COMP_BAD_OPCODE"
        case .transferSizeOutOfRange: name = "DSA_COMP_XFER_ERANGE"
        default: name = "status 0x\(String(code.rawValue, radix: 16))"
        }
        return faultedOnWrite ? name + "|WRITE" : name
    }
}

/// A completion record (`struct dsa_completion_record`, 32 bytes) as the device writes it
/// by DMA: status (byte 0), result (byte 1), bytes completed (bytes 4–7), fault address
/// (bytes 8–15); the rest is zero.
public struct DSACompletionRecord: Hashable, Sendable {
    /// Size of the record the device writes.
    public static let size = 32
    /// `status`.
    public var status: DSACompletionStatus
    /// `result`: for COMPARE, 0 equal, 1 different.
    public var result: UInt8
    /// `bytes_completed`: how far the operation got before a fault.
    public var bytesCompleted: UInt32
    /// `fault_addr`: the address that faulted (in the descriptor's address space).
    public var faultAddress: IOVA

    /// A record.
    public init(status: DSACompletionStatus, result: UInt8 = 0, bytesCompleted: UInt32 = 0, faultAddress: IOVA = 0) {
        self.status = status
        self.result = result
        self.bytesCompleted = bytesCompleted
        self.faultAddress = faultAddress
    }

    /// Decodes the 32 bytes at a completion address.
    /// - Returns: nil if `bytes` is shorter than ``size``.
    public init?(bytes: [UInt8]) {
        guard bytes.count >= Self.size else { return nil }
        status = DSACompletionStatus(rawValue: bytes[0])
        result = bytes[1]
        bytesCompleted = (4..<8).reduce(UInt32(0)) { $0 | UInt32(bytes[$1]) << UInt32(8 * ($1 - 4)) }
        faultAddress = IOVA(rawValue: (8..<16).reduce(UInt64(0)) { $0 | UInt64(bytes[$1]) << UInt64(8 * ($1 - 8)) })
    }

    /// The 32 bytes the device writes.
    public var bytes: [UInt8] {
        var b = [UInt8](repeating: 0, count: Self.size)
        b[0] = status.rawValue
        b[1] = result
        for i in 0..<4 { b[4 + i] = UInt8(truncatingIfNeeded: bytesCompleted >> UInt32(8 * i)) }
        for i in 0..<8 { b[8 + i] = UInt8(truncatingIfNeeded: faultAddress.rawValue >> UInt64(8 * i)) }
        return b
    }
}
