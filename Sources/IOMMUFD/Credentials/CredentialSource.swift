import IOMMUCore

/// A capability iommufd checks (`include/uapi/linux/capability.h`); the raw value is the
/// capability number.
public enum IOMMUFDCapability: UInt32, Sendable, Hashable, CustomStringConvertible {
    /// `CAP_IPC_LOCK` (14): pages the task maps are not charged to `locked_vm`.
    case ipcLock = 14
    /// `CAP_SYS_RESOURCE` (24): may change `IOMMU_OPTION_RLIMIT_MODE`.
    case sysResource = 24

    /// The kernel's name.
    public var description: String {
        switch self {
        case .ipcLock: "CAP_IPC_LOCK"
        case .sysResource: "CAP_SYS_RESOURCE"
        }
    }
}

/// Who is calling: the capabilities, `RLIMIT_MEMLOCK` and user of the task that issues an
/// iommufd call (the kernel's `current`).
///
/// A context never caches an answer; it asks at the moment the kernel asks:
/// - `capable(CAP_IPC_LOCK)` when a mapping's pages object is made (`iopt_alloc_pages`,
///   for `IOMMU_IOAS_MAP`, `IOMMU_IOAS_MAP_FILE` and VFIO `MAP_DMA`): it decides whether
///   the pages are charged at all (`IOPT_PAGES_ACCOUNT_NONE`). A task that drops the
///   capability after opening the fd is charged for what it maps afterwards.
/// - `capable(CAP_SYS_RESOURCE)` on every `IOMMU_OPTION` RLIMIT_MODE SET
///   (`iommufd_option_rlimit_mode`).
/// - ``memlockLimitPages`` of the task that made a mapping (`pages->source_task`) each
///   time its pages are charged, at pin time (`incr_user_locked_vm`,
///   `__account_locked_vm`), and of the caller on `IOMMU_IOAS_CHANGE_PROCESS`.
/// - ``uid`` (`current_user()`) when the pages object is made, and on
///   `IOMMU_IOAS_CHANGE_PROCESS` (`need_charge_update`): `user->locked_vm` is per user.
///
/// Two kinds of source plug in:
/// - in a process that uses the model directly, the context's own source, given when it
///   is opened (``IOMMUFD/credentials``): a fixed ``IOMMUFDCredentials`` value, or an
///   ``IOMMUFDTaskCredentials`` that changes as the task's would (`capset`, `setrlimit`);
/// - a host that serves other processes (the model as a service) passes each request's
///   credentials, as the kernel told it who sent the request, to
///   ``IOMMUFD/withCaller(_:memory:credentials:_:)``; they replace the context's own
///   source for that one call.
public protocol IOMMUFDCredentialSource: Sendable {
    /// `capable(cap)`: whether the task has `cap` in its effective set right now.
    func capable(_ cap: IOMMUFDCapability) -> Bool
    /// `task_rlimit(task, RLIMIT_MEMLOCK) >> PAGE_SHIFT`: the task's limit on locked
    /// memory, in pages, right now.
    var memlockLimitPages: UInt64 { get }
    /// `current_user()`: the user the task runs as (its uid).
    var uid: UInt32 { get }
}

/// Fixed credentials: a value that answers the same every time.
public struct IOMMUFDCredentials: IOMMUFDCredentialSource, Hashable {
    /// `CAP_IPC_LOCK`: pinned pages are not charged to `locked_vm`.
    public var capIPCLock: Bool
    /// `CAP_SYS_RESOURCE`: may change `IOMMU_OPTION_RLIMIT_MODE`.
    public var capSysResource: Bool
    /// `RLIMIT_MEMLOCK` in pages.
    public var memlockLimitPages: UInt64
    /// The uid.
    public var uid: UInt32

    /// Credentials.
    public init(capIPCLock: Bool = true, capSysResource: Bool = true, memlockLimitPages: UInt64 = .max,
                uid: UInt32 = 0) {
        self.capIPCLock = capIPCLock
        self.capSysResource = capSysResource
        self.memlockLimitPages = memlockLimitPages
        self.uid = uid
    }

    /// root: every capability, no limit, uid 0.
    public static let root = IOMMUFDCredentials()

    /// Whether `cap` is set.
    public func capable(_ cap: IOMMUFDCapability) -> Bool {
        switch cap {
        case .ipcLock: capIPCLock
        case .sysResource: capSysResource
        }
    }
}

/// The credentials of a task that may change while it holds an iommufd: the in-process
/// model of `capset(2)` (``drop(_:)``, ``raise(_:)``) and `setrlimit(RLIMIT_MEMLOCK)`
/// (``setMemlockLimit(pages:)``). A context opened with it sees every change at its next
/// call, as the kernel's checks of `current` do.
///
/// Thread-safe.
public final class IOMMUFDTaskCredentials: IOMMUFDCredentialSource, @unchecked Sendable {
    private let lock = Lock()
    private var value: IOMMUFDCredentials

    /// A task starting with `initial`.
    public init(_ initial: IOMMUFDCredentials = .root) { value = initial }

    /// What the task has right now.
    public var current: IOMMUFDCredentials { lock.withLock { value } }

    /// `capable(cap)` now.
    public func capable(_ cap: IOMMUFDCapability) -> Bool { current.capable(cap) }
    /// `RLIMIT_MEMLOCK` now, in pages.
    public var memlockLimitPages: UInt64 { current.memlockLimitPages }
    /// The uid now.
    public var uid: UInt32 { current.uid }

    /// Clears `cap` from the effective set (`cap_set_flag(CAP_EFFECTIVE, CAP_CLEAR)` +
    /// `cap_set_proc`).
    public func drop(_ cap: IOMMUFDCapability) { set(cap, false) }

    /// Sets `cap` in the effective set again.
    public func raise(_ cap: IOMMUFDCapability) { set(cap, true) }

    /// `setrlimit(RLIMIT_MEMLOCK)` with a limit of `pages` pages.
    public func setMemlockLimit(pages: UInt64) { lock.withLock { value.memlockLimitPages = pages } }

    private func set(_ cap: IOMMUFDCapability, _ on: Bool) {
        lock.withLock {
            switch cap {
            case .ipcLock: value.capIPCLock = on
            case .sysResource: value.capSysResource = on
            }
        }
    }
}
