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

/// The pinned-memory counters of the caller: `user->locked_vm`, and per address space
/// `mm->locked_vm` (`VmLck`) and `mm->pinned_vm` (`VmPin`), in pages, the mm named by its
/// process ID. Shared by the contexts of one user.
public final class PinAccounting: @unchecked Sendable {
    private let lock = Lock()
    private var _userLocked: UInt64 = 0
    private var _mmLocked: [Int32: UInt64] = [:]
    private var _pinned: [Int32: UInt64] = [:]

    /// Fresh counters.
    public init() {}

    /// `user->locked_vm` in pages.
    public var userLockedPages: UInt64 { lock.withLock { _userLocked } }
    /// `mm->locked_vm` (`VmLck`) in pages, summed over every mm.
    public var mmLockedPages: UInt64 { lock.withLock { _mmLocked.values.reduce(0, +) } }
    /// `mm->pinned_vm` (`VmPin`) in pages, summed over every mm.
    public var pinnedPages: UInt64 { lock.withLock { _pinned.values.reduce(0, +) } }
    /// `VmLck` of the process `pid` (`/proc/<pid>/status`), in pages.
    public func mmLockedPages(pid: Int32) -> UInt64 { lock.withLock { _mmLocked[pid] ?? 0 } }
    /// `VmPin` of the process `pid` (`/proc/<pid>/status`), in pages.
    public func pinnedPages(pid: Int32) -> UInt64 { lock.withLock { _pinned[pid] ?? 0 } }

    /// `iopt_pages_update_pinned` (increment): charge `n` pages in `mode` to the mm of
    /// process `pid` (and to the user).
    /// - Throws: `ENOMEM` when the new total exceeds `limit` (`RLIMIT_MEMLOCK`): the
    ///   user's `locked_vm` in USER mode, that mm's in MM mode. Nothing is charged then.
    func charge(_ n: UInt64, mode: IOPTAccountMode, limit: UInt64, pid: Int32) throws(Errno) {
        try lock.withLock { () throws(Errno) in
            switch mode {
            case .none: break
            case .user:
                guard _userLocked + n <= limit else { throw .noMemory }
                _userLocked += n
            case .mm:
                guard _mmLocked[pid, default: 0] + n <= limit else { throw .noMemory }
                _mmLocked[pid, default: 0] += n
            }
            _pinned[pid, default: 0] += n
        }
    }

    /// `iopt_pages_update_pinned` (decrement) for the mm of process `pid`.
    func uncharge(_ n: UInt64, mode: IOPTAccountMode, pid: Int32) {
        lock.withLock {
            switch mode {
            case .none: break
            case .user: _userLocked -= n
            case .mm: _mmLocked[pid] = Self.minus(_mmLocked[pid], n)
            }
            _pinned[pid] = Self.minus(_pinned[pid], n)
        }
    }

    /// `value - n`, nil at zero so that an mm with nothing charged leaves no entry.
    private static func minus(_ value: UInt64?, _ n: UInt64) -> UInt64? {
        let v = (value ?? 0) - n
        return v == 0 ? nil : v
    }
}
