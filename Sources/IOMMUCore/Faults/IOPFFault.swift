/// The access a page request asks for: `IOMMU_FAULT_PERM_*` (`include/linux/iommu.h`).
public struct IOMMUFaultPerm: OptionSet, Hashable, Sendable {
    /// The raw flag bits.
    public let rawValue: UInt32
    /// Wraps raw bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// `IOMMU_FAULT_PERM_READ`.
    public static let read = IOMMUFaultPerm(rawValue: 1 << 0)
    /// `IOMMU_FAULT_PERM_WRITE`.
    public static let write = IOMMUFaultPerm(rawValue: 1 << 1)
    /// `IOMMU_FAULT_PERM_EXEC`.
    public static let exec = IOMMUFaultPerm(rawValue: 1 << 2)
    /// `IOMMU_FAULT_PERM_PRIV`: a privileged (supervisor) request.
    public static let priv = IOMMUFaultPerm(rawValue: 1 << 3)
}

/// Flags of a page request: `IOMMU_FAULT_PAGE_REQUEST_*` / `IOMMU_FAULT_PAGE_RESPONSE_*`.
public struct IOMMUFaultFlags: OptionSet, Hashable, Sendable {
    /// The raw flag bits.
    public let rawValue: UInt32
    /// Wraps raw bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// `IOMMU_FAULT_PAGE_REQUEST_PASID_VALID`: the request carried a PASID.
    public static let pasidValid = IOMMUFaultFlags(rawValue: 1 << 0)
    /// `IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE`: last request of its group; a response is due.
    public static let lastPage = IOMMUFaultFlags(rawValue: 1 << 1)
    /// `IOMMU_FAULT_PAGE_REQUEST_PRIV_DATA`: `private_data` is meaningful.
    public static let privateData = IOMMUFaultFlags(rawValue: 1 << 2)
    /// `IOMMU_FAULT_PAGE_RESPONSE_NEEDS_PASID`: the response must carry the PASID.
    public static let responseNeedsPasid = IOMMUFaultFlags(rawValue: 1 << 3)
}

/// One I/O page request as an IOMMU driver reports it: `struct iopf_fault` holding a
/// `struct iommu_fault` of type `IOMMU_FAULT_PAGE_REQ` (`struct iommu_fault_page_request`).
public struct IOPFFault: Hashable, Sendable, CustomStringConvertible {
    /// `prm.flags`; ``IOMMUFaultFlags/pasidValid`` follows ``pasid``.
    public var flags: IOMMUFaultFlags
    /// `prm.pasid`, nil for a request without a PASID (the kernel's `PASID_VALID`
    /// flag clear).
    public var pasid: PASID? {
        didSet { if pasid == nil { flags.remove(.pasidValid) } else { flags.insert(.pasidValid) } }
    }
    /// `prm.grpid`: the page-request group index.
    public var grpid: UInt32
    /// `prm.perm`: the access requested.
    public var perm: IOMMUFaultPerm
    /// `prm.addr`: the page address (under SVA, the process's virtual address).
    public var address: IOVA

    /// A page request.
    public init(flags: IOMMUFaultFlags, pasid: PASID? = nil, grpid: UInt32, perm: IOMMUFaultPerm, address: IOVA) {
        var f = flags
        if pasid == nil { f.remove(.pasidValid) } else { f.insert(.pasidValid) }
        self.flags = f
        self.pasid = pasid
        self.grpid = grpid
        self.perm = perm
        self.address = address
    }

    /// Whether the request carried a PASID.
    public var pasidValid: Bool { pasid != nil }
    /// Whether this is the last request of its group.
    public var isLastPage: Bool { flags.contains(.lastPage) }

    /// `prq pasid 5 grp 3 addr 0x1000 rw last`.
    public var description: String {
        let p = pasid.map { "\($0)" } ?? "-"
        var rights = ""
        if perm.contains(.read) { rights += "r" }
        if perm.contains(.write) { rights += "w" }
        if perm.contains(.exec) { rights += "x" }
        if perm.contains(.priv) { rights += "p" }
        return "prq pasid \(p) grp \(grpid) addr \(address) \(rights)\(isLastPage ? " last" : "")"
    }
}

/// `enum iommu_page_response_code`.
public enum IOMMUPageResponseCode: UInt32, Hashable, Sendable, CustomStringConvertible {
    /// `IOMMU_PAGE_RESP_SUCCESS`: the pages are present now; the device retries.
    case success = 0
    /// `IOMMU_PAGE_RESP_INVALID`: the request cannot be served; do not retry.
    case invalid = 1
    /// `IOMMU_PAGE_RESP_FAILURE`: a fatal error; the device stops issuing page requests.
    case failure = 2

    /// The kernel's name.
    public var description: String {
        switch self {
        case .success: "SUCCESS"
        case .invalid: "INVALID"
        case .failure: "FAILURE"
        }
    }
}

/// A page-group response (`struct iommu_page_response`): PASID, group and code.
public struct IOMMUPageResponse: Hashable, Sendable {
    /// `pasid`, nil for a group without a PASID.
    public var pasid: PASID?
    /// `grpid`.
    public var grpid: UInt32
    /// `code`.
    public var code: IOMMUPageResponseCode

    /// A response.
    public init(pasid: PASID?, grpid: UInt32, code: IOMMUPageResponseCode) {
        self.pasid = pasid
        self.grpid = grpid
        self.code = code
    }
}

/// The signature of `iommu_ops.page_response(dev, evt, msg)`: the driver delivers `msg`
/// for the group whose last request is `evt` to `dev`.
public typealias IOMMUPageResponseOp = @Sendable (_ dev: PCIDevice, _ evt: IOPFFault, _ msg: IOMMUPageResponse) -> Void

/// A domain's page-fault handler (`iommu_domain.iopf_handler`).
///
/// The core calls ``handleIOPF(_:)`` with each complete group. On success the handler
/// owns the group and must answer it once, now or later, with
/// ``IOPFGroup/respond(_:)`` (`iopf_group_response`), typically from work queued with
/// ``IOPFGroup/queueWork(_:)``. Throwing makes the core answer `FAILURE`.
public protocol IOPFHandler: AnyObject, Sendable {
    /// `iopf_handler(group)`.
    /// - Throws: any errno; the core then answers the group with `IOMMU_PAGE_RESP_FAILURE`.
    func handleIOPF(_ group: IOPFGroup) throws(Errno)
}
