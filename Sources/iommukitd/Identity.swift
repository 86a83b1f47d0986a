import CIOMMUKitd
import Glibc
import IOMMUCore

/// A task that talks to the service: a process (its thread-group id, as the kernel
/// reports it for every packet) and one of its threads (verified when the thread's
/// reply channel was registered; see ``ChannelProof``).
struct TaskID: Hashable, CustomStringConvertible {
    let pid: Int32
    let tid: Int32
    var description: String { pid == tid ? "pid \(pid)" : "pid \(pid) tid \(tid)" }
}

/// A capability the model asks about (`include/uapi/linux/capability.h` bit numbers).
enum Capability: Int {
    /// `CAP_IPC_LOCK`: pinned pages are not charged to `RLIMIT_MEMLOCK`.
    case ipcLock = 14
    /// `CAP_SYS_RESOURCE`: may change `IOMMU_OPTION_RLIMIT_MODE`.
    case sysResource = 24
}

/// The credentials of the task behind one request, as the kernel reports them: one
/// object per request, the credential source for whatever the request does.
///
/// The pid, uid and gid are the kernel's (`SCM_CREDENTIALS` of the request's packet);
/// the tid is the one its reply channel was registered for. Capabilities are the
/// thread's effective set (`capable()` tests `current`'s), asked of the kernel with
/// `capget` the first time a request needs them, then confirmed: the tid is still a
/// thread of the pid (`/proc/<pid>/task/<tid>`) and the pidfd still names the process
/// that sent the request. So a capability dropped between two requests is seen by the
/// second. `RLIMIT_MEMLOCK` is the process's (`prlimit`, or `/proc/<pid>/limits` where
/// the service may not ask). Both are one or two syscalls, and nothing is asked for a
/// request that never needs them; a procfs read and parse per map made 100,000 maps
/// take 17 s instead of under 3.
final class RequestCredentials: @unchecked Sendable {
    let task: TaskID
    let uid: UInt32
    let gid: UInt32
    let process: ProcessHandle
    private let lock = Lock()
    private var capEff: UInt64?
    private var memlock: UInt64?

    init(task: TaskID, uid: UInt32, gid: UInt32, process: ProcessHandle) {
        self.task = task
        self.uid = uid
        self.gid = gid
        self.process = process
    }

    /// Whether the task has `capability` in its effective set now. A task that cannot be
    /// asked about (it exited) has none.
    func capable(_ capability: Capability) -> Bool {
        lock.withLock {
            if capEff == nil {
                var value: UInt64 = 0
                if ikd_capget_effective(task.tid, &value) != 0 || !isStillTheRequester { value = 0 }
                capEff = value
            }
            return capEff! & (1 << UInt64(capability.rawValue)) != 0
        }
    }

    /// The process's `RLIMIT_MEMLOCK` soft limit, in pages (unlimited: `UInt64.max`).
    var memlockLimitPages: UInt64 {
        lock.withLock {
            if memlock == nil {
                var bytes = UInt64.max
                if ikd_memlock_limit(task.pid, &bytes) != 0 {
                    bytes = UInt64.max
                    if let limits = readSmallFile("/proc/\(task.pid)/limits"),
                       let line = limits.split(separator: "\n").first(where: { $0.hasPrefix("Max locked memory") }),
                       let soft = line.dropFirst("Max locked memory".count).split(separator: " ").first,
                       let value = UInt64(soft) {
                        bytes = value
                    }
                }
                memlock = isStillTheRequester ? (bytes == .max ? .max : bytes / 4096) : .max
            }
            return memlock!
        }
    }

    /// Whether what was just read still describes the requester: the tid is a thread of
    /// the pid and the pid was not reused (the pidfd's process is alive). Checked after
    /// the read, so a task that exits and is replaced in between is not believed.
    private var isStillTheRequester: Bool {
        var st = stat()
        return stat("/proc/\(task.pid)/task/\(task.tid)", &st) == 0 && process.isRunning
    }
}

/// The registration of a reply channel for one thread, from facts the kernel reports
/// (the full argument is in `iommukit_wire.h`, "How the kernel vouches for a thread"):
/// the claimed tid is a task of the process the kernel credited the `CHANNEL` packet
/// to; the fd passed with the packet is the shim's end of this very connection (a probe
/// sent through it arrives here); and that thread is seen, in
/// `/proc/<pid>/task/<tid>/syscall`, blocked in a receive call on that same file.
enum ChannelProof {
    /// How long a thread may take to start waiting for its registration's answer.
    static let patience = 2.0

    /// Checks the registration of `channel` (the service's end) for `task`; `shimEnd`
    /// is the fd the shim passed with the packet. Returns nil when proven, else why not.
    static func verify(channel: Int32, shimEnd: Int32, task: TaskID, process: ProcessHandle) -> String? {
        var st = stat()
        guard stat("/proc/\(task.pid)/task/\(task.tid)", &st) == 0 else {
            return "tid \(task.tid) is not a thread of pid \(task.pid)"
        }
        // The passed fd's peer is this connection.
        let probe: [UInt8] = [0x1D]
        guard probe.withUnsafeBytes({ ikd_send(shimEnd, $0.baseAddress, $0.count, -1) }) == 1 else {
            return "the fd passed with CHANNEL is not a connected socket"
        }
        guard let echo = Packet.receive(channel), echo.bytes == probe else {
            return "the fd passed with CHANNEL is not this connection's other end"
        }
        echo.closeFDs()
        // The thread waits on that very file.
        let shimInode = inode(of: shimEnd)
        let deadline = monotonicNow() + patience
        var pause = 20.0e-6
        while monotonicNow() < deadline {
            var fd: Int32 = -1
            let r = ikd_task_in_receive(task.pid, task.tid, &fd)
            if r < 0 { return "cannot read /proc/\(task.pid)/task/\(task.tid)/syscall: \(errnoName(errno))" }
            if r == 1 {
                let copy = process.duplicate(fd)
                let same = copy >= 0 && inode(of: copy) == shimInode
                if copy >= 0 { close(copy) }
                if same { return nil }
            }
            usleep(UInt32(pause * 1e6))
            pause = min(pause * 2, 2e-3)
        }
        return "tid \(task.tid) was never seen waiting on the channel it registers"
    }
}

extension Substring {
    var trimmingCharacters: String { String(self).trimmingWhitespace }
}

extension String {
    var trimmingWhitespace: String {
        let ws: Set<Character> = [" ", "\n", "\t", "\0", "\r"]
        var s = Substring(self)
        while let f = s.first, ws.contains(f) { s.removeFirst() }
        while let l = s.last, ws.contains(l) { s.removeLast() }
        return String(s)
    }
}
