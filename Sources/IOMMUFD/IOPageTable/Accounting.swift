import IOMMUCore

/// `enum iopt_pages_account_mode`: how pinned pages are charged.
public enum IOPTAccountMode: UInt8, Sendable {
    /// `IOPT_PAGES_ACCOUNT_NONE`: the mapper has `CAP_IPC_LOCK`; nothing is charged to
    /// `locked_vm` (only `pinned_vm`).
    case none = 0
    /// `IOPT_PAGES_ACCOUNT_USER`: charged to `user->locked_vm` against `RLIMIT_MEMLOCK`.
    case user = 1
    /// `IOPT_PAGES_ACCOUNT_MM`: charged to `mm->locked_vm` as VFIO type1 does.
    case mm = 2
}

/// The credentials of the task that opened the context (the capabilities iommufd tests).
public struct IOMMUFDCredentials: Sendable, Hashable {
    /// `CAP_IPC_LOCK`: pinned pages are not charged to `locked_vm`.
    public var capIPCLock: Bool
    /// `CAP_SYS_RESOURCE`: may change `IOMMU_OPTION_RLIMIT_MODE`.
    public var capSysResource: Bool
    /// `RLIMIT_MEMLOCK` in pages.
    public var memlockLimitPages: UInt64
    /// Credentials.
    public init(capIPCLock: Bool = true, capSysResource: Bool = true, memlockLimitPages: UInt64 = .max) {
        self.capIPCLock = capIPCLock
        self.capSysResource = capSysResource
        self.memlockLimitPages = memlockLimitPages
    }
    /// root: every capability, no limit.
    public static let root = IOMMUFDCredentials()
}

/// The pinned-memory counters of the caller: `user->locked_vm`, `mm->locked_vm`
/// (`VmLck`) and `mm->pinned_vm` (`VmPin`), in pages. Shared by the contexts of one user.
public final class PinAccounting: @unchecked Sendable {
    private let lock = Lock()
    private var _userLocked: UInt64 = 0
    private var _mmLocked: UInt64 = 0
    private var _pinned: UInt64 = 0

    /// Fresh counters.
    public init() {}

    /// `user->locked_vm` in pages.
    public var userLockedPages: UInt64 { lock.withLock { _userLocked } }
    /// `mm->locked_vm` (`VmLck`) in pages.
    public var mmLockedPages: UInt64 { lock.withLock { _mmLocked } }
    /// `mm->pinned_vm` (`VmPin`) in pages.
    public var pinnedPages: UInt64 { lock.withLock { _pinned } }

    /// `iopt_pages_update_pinned` (increment): charge `n` pages in `mode`.
    /// - Throws: `ENOMEM` when the new total exceeds `limit` (`RLIMIT_MEMLOCK`).
    func charge(_ n: UInt64, mode: IOPTAccountMode, limit: UInt64) throws(Errno) {
        try lock.withLock { () throws(Errno) in
            switch mode {
            case .none: break
            case .user:
                guard _userLocked + n <= limit else { throw .noMemory }
                _userLocked += n
            case .mm:
                guard _mmLocked + n <= limit else { throw .noMemory }
                _mmLocked += n
            }
            _pinned += n
        }
    }

    /// `iopt_pages_update_pinned` (decrement).
    func uncharge(_ n: UInt64, mode: IOPTAccountMode) {
        lock.withLock {
            switch mode {
            case .none: break
            case .user: _userLocked -= n
            case .mm: _mmLocked -= n
            }
            _pinned -= n
        }
    }
}
