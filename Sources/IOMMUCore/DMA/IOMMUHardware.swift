/// The access a DMA request asks for: the read/write/execute bits of a PCIe request.
public struct DMAAccess: OptionSet, Hashable, Sendable {
    /// The raw flag bits.
    public let rawValue: UInt8
    /// Wraps raw bits.
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// A memory read (device reads host memory).
    public static let read = DMAAccess(rawValue: 1 << 0)
    /// A memory write (device writes host memory).
    public static let write = DMAAccess(rawValue: 1 << 1)
    /// An instruction fetch (PASID prefix Execute Requested).
    public static let execute = DMAAccess(rawValue: 1 << 2)
}

/// One translation the IOMMU hardware is asked for: who asks, in which address space,
/// with which rights, for which address.
public struct TranslationRequest: Hashable, Sendable {
    /// Requester ID of the device.
    public var rid: RID
    /// PASID of the request, or nil for a request without a PASID prefix.
    public var pasid: PASID?
    /// Privileged Mode Requested (PASID prefix PR bit).
    public var privileged: Bool
    /// What the request does.
    public var access: DMAAccess
    /// The input address: an IOVA (under SVA, the process's virtual address).
    public var address: IOVA
    /// An ATS Translation Request: the device asks for a translation to keep in its ATC
    /// (it has ATS enabled). An IOMMU may refuse these where it serves plain requests (an
    /// SMMUv3 STE without EATS).
    public var ats: Bool

    /// A translation request.
    public init(rid: RID, pasid: PASID?, privileged: Bool, access: DMAAccess, address: IOVA, ats: Bool = false) {
        self.rid = rid
        self.pasid = pasid
        self.privileged = privileged
        self.access = access
        self.address = address
        self.ats = ats
    }
}

/// Why the hardware refused a request: the vendor's fault reason code and its text
/// (VT-d "fault reason" numbers, SMMU event IDs).
public struct FaultReason: Hashable, Sendable, CustomStringConvertible {
    /// The vendor's code.
    public let code: UInt16
    /// The vendor's short explanation.
    public let text: String
    /// A fault reason.
    public init(code: UInt16, text: String) {
        self.code = code
        self.text = text
    }
    /// `0xCODE: text`.
    public var description: String { "0x\(String(code, radix: 16)): \(text)" }
}

/// The hardware's answer to a ``TranslationRequest``.
public enum TranslationResult: Hashable, Sendable {
    /// Translated: `address` is the physical address, valid for `length` more bytes
    /// (to the end of the page). `cached` tells whether the IOTLB answered.
    case translated(address: PhysicalAddress, length: UInt64, cached: Bool)
    /// The request faults; the hardware has recorded it with `reason`.
    case fault(FaultReason)
}

/// What a hardware IOMMU model must provide to the DMA engine and the invariant checker.
///
/// The DMA engine holds ``IOMMUDevice/hardwareLock`` around every call, so a model needs
/// no lock of its own on the translation path.
public protocol IOMMUHardware: AnyObject, Sendable {
    /// Translates one request through the caches and, on a miss, the tables in memory.
    func translate(_ request: TranslationRequest) -> TranslationResult

    /// Whether a translation entry for (`rid`, `pasid`) is live in the hardware tables
    /// (`pasid` nil: the entry for requests without PASID). Used by the checker for
    /// ``Invariant/entryVisibility``.
    func hasLiveEntry(rid: RID, pasid: PASID?) -> Bool

    /// Whether page requests with `pasid` (nil: without PASID) are still queued in the
    /// hardware (``Invariant/pasidLifetime``).
    func hasPendingPageRequests(pasid: PASID?) -> Bool

    /// The always-on counters of this unit.
    var counters: HardwareCounters { get }
}

/// Always-on counters of a hardware model, cheap enough for every translation.
public struct HardwareCounters: Hashable, Sendable {
    /// Translation requests served.
    public var translations = 0
    /// Table walks performed (IOTLB misses that reached memory).
    public var walks = 0
    /// IOTLB hits.
    public var iotlbHits = 0
    /// IOTLB misses.
    public var iotlbMisses = 0
    /// Faults recorded.
    public var faults = 0
    /// Invalidation commands executed, by kind (`"iotlb-psi"`, `"pasid-cache"`, ...).
    public var invalidations: [String: Int] = [:]
    /// Creates zeroed counters.
    public init() {}

    /// Adds another unit's counters to these.
    public mutating func add(_ other: HardwareCounters) {
        translations += other.translations
        walks += other.walks
        iotlbHits += other.iotlbHits
        iotlbMisses += other.iotlbMisses
        faults += other.faults
        invalidations.merge(other.invalidations, uniquingKeysWith: +)
    }
}
