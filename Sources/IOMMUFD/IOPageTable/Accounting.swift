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

/// The pinned-memory counters: `user->locked_vm` per user, and per address space
/// `mm->locked_vm` (`VmLck`) and `mm->pinned_vm` (`VmPin`), in pages, the mm named by its
/// process ID. Shared by the contexts of one host.
///
/// The arithmetic is the kernel's, so no counter can trap:
/// - `user->locked_vm` (`decr_user_locked_vm`): taking away more than is charged is a
///   WARN and changes nothing;
/// - `mm->locked_vm` (`__account_locked_vm`): taking away more than is charged is a WARN,
///   and the unsigned counter wraps, as the kernel's `unsigned long` does;
/// - `mm->pinned_vm` is an `atomic64_t`: it may go below zero without a WARN (an
///   `IOPT_PAGES_ACCOUNT_NONE` mapping moved by `IOMMU_IOAS_CHANGE_PROCESS` is uncharged
///   from its new mm, which never got the charge). `/proc/<pid>/status` prints it as an
///   unsigned number, and so does ``pinnedPages(pid:)``.
/// A WARN is returned to the caller, who records it on its context.
public final class PinAccounting: @unchecked Sendable {
    private let lock = Lock()
    private var _userLocked: [UInt32: UInt64] = [:]
    private var _mmLocked: [Int32: UInt64] = [:]
    private var _pinned: [Int32: Int64] = [:]

    /// Fresh counters.
    public init() {}

    /// `user->locked_vm` in pages, summed over every user.
    public var userLockedPages: UInt64 { lock.withLock { _userLocked.values.reduce(0, &+) } }
    /// `user->locked_vm` of `uid`, in pages.
    public func userLockedPages(uid: UInt32) -> UInt64 { lock.withLock { _userLocked[uid] ?? 0 } }
    /// `mm->locked_vm` (`VmLck`) in pages, summed over every mm.
    public var mmLockedPages: UInt64 { lock.withLock { _mmLocked.values.reduce(0, &+) } }
    /// `mm->pinned_vm` (`VmPin`) in pages, summed over every mm.
    public var pinnedPages: UInt64 { lock.withLock { UInt64(bitPattern: _pinned.values.reduce(0, &+)) } }
    /// `VmLck` of the process `pid` (`/proc/<pid>/status`), in pages.
    public func mmLockedPages(pid: Int32) -> UInt64 { lock.withLock { _mmLocked[pid] ?? 0 } }
    /// `VmPin` of the process `pid` (`/proc/<pid>/status`), in pages: the `atomic64_t`
    /// read as unsigned, as `/proc` prints it.
    public func pinnedPages(pid: Int32) -> UInt64 { lock.withLock { UInt64(bitPattern: _pinned[pid] ?? 0) } }

    /// `iopt_pages_update_pinned` (increment, `do_update_pinned`): charge `n` pages in
    /// `mode` to user `uid` (USER) or to the mm of process `pid` (MM), and always to that
    /// mm's `pinned_vm`.
    /// - Throws: `ENOMEM` when the new total exceeds `limit` (`RLIMIT_MEMLOCK` of the
    ///   task that made the mapping): the user's `locked_vm` in USER mode, the mm's in MM
    ///   mode. Nothing is charged then.
    func charge(_ n: UInt64, mode: IOPTAccountMode, limit: UInt64, uid: UInt32, pid: Int32) throws(Errno) {
        try lock.withLock { () throws(Errno) in
            switch mode {
            case .none: break
            case .user:
                let (total, o) = _userLocked[uid, default: 0].addingReportingOverflow(n)
                guard !o, total <= limit else {
                    throw .noMemory.from("incr_user_locked_vm", "\(n) more pages exceed RLIMIT_MEMLOCK (\(limit) pages) of uid \(uid)")
                }
                _userLocked[uid] = total
            case .mm:
                let (total, o) = _mmLocked[pid, default: 0].addingReportingOverflow(n)
                guard !o, total <= limit else {
                    throw .noMemory.from("account_locked_vm", "\(n) more pages exceed RLIMIT_MEMLOCK (\(limit) pages) of pid \(pid)")
                }
                _mmLocked[pid] = total
            }
            Self.add(&_pinned, pid, Int64(truncatingIfNeeded: n))
        }
    }

    /// `iopt_pages_update_pinned` (decrement) for user `uid` and the mm of process `pid`.
    /// - Returns: the WARN the kernel would print (`function: message`), or nil.
    func uncharge(_ n: UInt64, mode: IOPTAccountMode, uid: UInt32, pid: Int32) -> (String, String)? {
        lock.withLock {
            var warning: (String, String)?
            switch mode {
            case .none: break
            case .user:
                let locked = _userLocked[uid] ?? 0
                guard locked >= n else {
                    // decr_user_locked_vm: WARN and leave the counter alone.
                    return ("decr_user_locked_vm", "user \(uid) locked_vm \(locked) < \(n) pages")
                }
                _userLocked[uid] = locked == n ? nil : locked - n
            case .mm:
                let locked = _mmLocked[pid] ?? 0
                if n > locked { warning = ("__account_locked_vm", "mm of pid \(pid) locked_vm \(locked) < \(n) pages") }
                let left = locked &- n
                _mmLocked[pid] = left == 0 ? nil : left
            }
            Self.add(&_pinned, pid, -Int64(truncatingIfNeeded: n))
            return warning
        }
    }

    /// `atomic64_add` on one mm's `pinned_vm`; an mm back at zero leaves no entry.
    private static func add(_ counters: inout [Int32: Int64], _ pid: Int32, _ delta: Int64) {
        let v = (counters[pid] ?? 0) &+ delta
        counters[pid] = v == 0 ? nil : v
    }
}
