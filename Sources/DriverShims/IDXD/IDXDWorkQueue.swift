import IOMMUCore

/// How a WQ is shared (`WQ_FLAG_DEDICATED`, WQCFG `mode`).
public enum IDXDWQMode: Sendable, Hashable {
    /// One submitter; MOVDIR64B; the PASID comes from WQCFG.
    case dedicated
    /// Many submitters; ENQCMD/ENQCMDS; the PASID comes with each submission.
    case shared
}

/// Who uses a WQ (`enum idxd_wq_type`).
public enum IDXDWQType: Sendable, Hashable {
    /// Not bound to a driver (`IDXD_WQT_NONE`).
    case none
    /// dmaengine channel (`IDXD_WQT_KERNEL`).
    case kernel
    /// character device for user space (`IDXD_WQT_USER`).
    case user
}

/// The PASID part of a WQ's configuration register (`union wqcfg`: `pasid_en`, `pasid`,
/// `priv`): what a dedicated WQ stamps on every descriptor it accepts.
public struct IDXDWQConfig: Sendable, Hashable {
    /// `pasid_en`.
    public var pasidEnabled = false
    /// `pasid`, nil while no PASID is written.
    public var pasid: PASID?
    /// `priv`: privileged requests. The driver leaves it 0: kernel DMA on VT-d uses user
    /// privilege only.
    public var priv = false
    /// An empty configuration (PASID off).
    public init() {}
}

/// A descriptor accepted into a WQ, with the address space the device will use for it.
struct QueuedDescriptor {
    let wq: Int
    let descriptor: IDXDDescriptor
    let pasid: PASID?
    let privileged: Bool
}

/// One work queue (`struct idxd_wq`): its configuration, state and the descriptors it
/// holds. All state is guarded by the device's lock; read it through the accessors.
public final class IDXDWorkQueue: @unchecked Sendable {
    /// The WQ number (`wq->id`).
    public let id: Int
    unowned let device: IDXDDevice

    var _mode: IDXDWQMode = .dedicated
    var _type: IDXDWQType = .none
    var _enabled = false
    var _size = 16
    var _threshold = 0
    var _config = IDXDWQConfig()
    var _pasidAllowed = true
    var pending: [QueuedDescriptor] = []
    var contexts: [IDXDUserContext] = []

    init(id: Int, device: IDXDDevice) {
        self.id = id
        self.device = device
    }

    /// Dedicated or shared (sysfs `mode`).
    public var mode: IDXDWQMode { device.lock.withLock { _mode } }
    /// Kernel, user or none (sysfs `type`).
    public var type: IDXDWQType { device.lock.withLock { _type } }
    /// Whether the WQ is enabled (`IDXD_WQ_ENABLED`).
    public var isEnabled: Bool { device.lock.withLock { _enabled } }
    /// Entries the WQ holds (`wq->size`).
    public var size: Int { device.lock.withLock { _size } }
    /// Shared WQ: entries ENQCMD may fill (`wq->threshold`); ENQCMDS may use the rest.
    public var threshold: Int { device.lock.withLock { _threshold } }
    /// The WQCFG PASID fields as last written.
    public var config: IDXDWQConfig { device.lock.withLock { _config } }
    /// Descriptors accepted and not yet executed.
    public var occupancy: Int { device.lock.withLock { pending.count } }
    /// Open user contexts (character-device files) on this WQ.
    public var openCount: Int { device.lock.withLock { contexts.count } }
    /// The user PASIDs of the open files (`wq->upasid_xa`).
    public var userPasids: [PASID] { device.lock.withLock { contexts.compactMap(\.pasidIfBound) } }

    /// `wq_pasid_enabled`: a kernel WQ needs the kernel PASID, a user WQ user PASID.
    var pasidEnabledForType: Bool {
        (_type == .kernel && device._kernelPasid != nil) || (_type == .user && device._userPasidEnabled)
    }

    /// `wq_shared_supported`: ENQCMD support and a PASID for the WQ's type.
    var sharedSupported: Bool { pasidEnabledForType }
}
