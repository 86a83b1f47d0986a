import IOMMUCore

/// The driver's command status (`enum idxd_scmd_stat`, `include/uapi/linux/idxd.h`): why
/// the last enable failed, as user space reads it from sysfs `cmd_status`.
public struct IDXDCommandStatus: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The 32-bit value (`IDXD_SCMD_SOFTERR_MASK` set for driver-side errors).
    public let rawValue: UInt32
    /// Wraps a raw status.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// 0: the last command succeeded.
    public static let ok = IDXDCommandStatus(rawValue: 0)
    /// `IDXD_SCMD_DEV_NOT_ENABLED`: WQ enable on a disabled device.
    public static let deviceNotEnabled = IDXDCommandStatus(rawValue: 0x8000_0020)
    /// `IDXD_SCMD_WQ_ENABLED`: the WQ is already enabled.
    public static let wqEnabled = IDXDCommandStatus(rawValue: 0x8000_0021)
    /// `IDXD_SCMD_WQ_NO_SVM`: a shared WQ without PASID support for its type
    /// (`wq_shared_supported` false).
    public static let wqNoSVM = IDXDCommandStatus(rawValue: 0x8005_0000)
    /// `IDXD_SCMD_WQ_NO_THRESH`: a shared WQ with threshold 0.
    public static let wqNoThreshold = IDXDCommandStatus(rawValue: 0x8006_0000)
    /// `IDXD_SCMD_WQ_NO_SIZE`: a WQ with size 0.
    public static let wqNoSize = IDXDCommandStatus(rawValue: 0x800e_0000)
    /// `IDXD_SCMD_WQ_NO_PRIV`: a dedicated kernel WQ with PASID while the PCI PASID
    /// capability lacks Privileged Mode.
    public static let wqNoPriv = IDXDCommandStatus(rawValue: 0x800f_0000)
    /// `IDXD_SCMD_WQ_USER_NO_IOMMU`: a user WQ while user PASID (SVA) is off.
    public static let wqUserNoIOMMU = IDXDCommandStatus(rawValue: 0x8011_0000)

    /// The uAPI name.
    public var description: String {
        switch self {
        case .ok: "0"
        case .deviceNotEnabled: "IDXD_SCMD_DEV_NOT_ENABLED"
        case .wqEnabled: "IDXD_SCMD_WQ_ENABLED"
        case .wqNoSVM: "IDXD_SCMD_WQ_NO_SVM"
        case .wqNoThreshold: "IDXD_SCMD_WQ_NO_THRESH"
        case .wqNoSize: "IDXD_SCMD_WQ_NO_SIZE"
        case .wqNoPriv: "IDXD_SCMD_WQ_NO_PRIV"
        case .wqUserNoIOMMU: "IDXD_SCMD_WQ_USER_NO_IOMMU"
        default: "0x\(String(rawValue, radix: 16))"
        }
    }
}

/// Which accelerator the function is: DSA or IAA. They differ in the completion record
/// alignment the driver enforces (32 vs 64 bytes) and in whether BATCH exists.
public enum IDXDKind: Sendable, Hashable {
    /// Data Streaming Accelerator (`IDXD_TYPE_DSA`).
    case dsa
    /// In-memory Analytics Accelerator (`IDXD_TYPE_IAX`).
    case iaa

    /// Completion record alignment (`comp_addr_align` of `idxd_submit_user_descriptor`).
    public var completionAlignment: UInt64 { self == .dsa ? 0x20 : 0x40 }
}

/// Probe-time options: the module parameters and device properties the driver reads.
public struct IDXDOptions: Sendable, Hashable {
    /// DSA or IAA.
    public var kind: IDXDKind
    /// Module parameter `sva` (default on): allow user SVA and the kernel PASID.
    public var sva: Bool
    /// `idxd->user_submission_safe`: false on devices affected by INTEL-SA-01084, where
    /// user mmap needs `CAP_SYS_RAWIO` and user BATCH descriptors are refused.
    public var userSubmissionSafe: Bool
    /// Work queues the device has (`max_wqs`).
    public var workQueues: Int
    /// `wq->enqcmds_retries` (`IDXD_ENQCMDS_RETRIES`, 32): how often the kernel retries
    /// ENQCMDS on a full shared WQ before `EAGAIN`.
    public var enqcmdsRetries: Int
    /// `GENCAP.max_xfer_shift`: the largest transfer a descriptor may ask for.
    public var maxTransferBytes: UInt32

    /// The defaults of a current DSA: SVA on, submission safe, 4 WQs, 32 retries, 2 MiB.
    public init(kind: IDXDKind = .dsa, sva: Bool = true, userSubmissionSafe: Bool = true, workQueues: Int = 4,
                enqcmdsRetries: Int = 32, maxTransferBytes: UInt32 = 2 << 20) {
        self.kind = kind
        self.sva = sva
        self.userSubmissionSafe = userSubmissionSafe
        self.workQueues = workQueues
        self.enqcmdsRetries = enqcmdsRetries
        self.maxTransferBytes = maxTransferBytes
    }
}

/// A device command written to the command register (`IDXD_CMD_*`, `registers.h`).
public enum IDXDCommand: Hashable, Sendable, CustomStringConvertible {
    /// `IDXD_CMD_ENABLE_DEVICE`.
    case enableDevice
    /// `IDXD_CMD_DISABLE_DEVICE`.
    case disableDevice
    /// `IDXD_CMD_RESET_DEVICE`.
    case resetDevice
    /// `IDXD_CMD_ENABLE_WQ`.
    case enableWQ(Int)
    /// `IDXD_CMD_DISABLE_WQ` (drains the WQ first).
    case disableWQ(Int)
    /// `IDXD_CMD_DRAIN_WQ`.
    case drainWQ(Int)
    /// `IDXD_CMD_DRAIN_PASID`: complete every queued descriptor of one PASID.
    case drainPASID(PASID)

    /// `IDXD_CMD_NAME arg`.
    public var description: String {
        switch self {
        case .enableDevice: "IDXD_CMD_ENABLE_DEVICE"
        case .disableDevice: "IDXD_CMD_DISABLE_DEVICE"
        case .resetDevice: "IDXD_CMD_RESET_DEVICE"
        case .enableWQ(let w): "IDXD_CMD_ENABLE_WQ wq\(w)"
        case .disableWQ(let w): "IDXD_CMD_DISABLE_WQ wq\(w)"
        case .drainWQ(let w): "IDXD_CMD_DRAIN_WQ wq\(w)"
        case .drainPASID(let p): "IDXD_CMD_DRAIN_PASID pasid \(p)"
        }
    }
}

/// One step of the driver's trace: a device command, or a call into the IOMMU core (by its
/// kernel name), in order. Tests check sequences on it (checks 80, 82).
public enum IDXDTraceEntry: Hashable, Sendable, CustomStringConvertible {
    /// A command written to the device.
    case command(IDXDCommand)
    /// A call into the IOMMU API, e.g. `iommu_attach_device_pasid pasid 1`.
    case iommu(String)
    /// A driver message (`dev_warn`), e.g. "No in-kernel DMA with PASID".
    case message(String)

    /// The trace line.
    public var description: String {
        switch self {
        case .command(let c): c.description
        case .iommu(let s): s
        case .message(let s): "msg: " + s
        }
    }

    /// The IOMMU call name if this is one (`"iommu_sva_unbind_device"`).
    public var iommuCall: String? {
        if case .iommu(let s) = self { return String(s.split(separator: " ").first ?? "") }
        return nil
    }
}

/// What the engine did with one descriptor: where it ran, in which address space, and the
/// completion it wrote.
public struct IDXDCompletion: Hashable, Sendable {
    /// The WQ it was submitted to.
    public let wq: Int
    /// The PASID of its DMA (nil: requests without PASID, translated through the RID).
    public let pasid: PASID?
    /// Whether its DMA was privileged.
    public let privileged: Bool
    /// The operation.
    public let opcode: DSAOpcode
    /// The completion record it produced.
    public let record: DSACompletionRecord
    /// Whether the record reached memory (its own DMA may fault).
    public let recordWritten: Bool
}
