import CIOMMUKitd
import Glibc

/// Credentials the kernel reported for a packet (`SCM_CREDENTIALS`) or a socket's peer
/// (`SO_PEERCRED`): a process, not a thread.
struct KernelCredentials: CustomStringConvertible {
    var pid: Int32
    var uid: UInt32
    var gid: UInt32

    init(_ c: ikd_cred) { pid = c.pid; uid = c.uid; gid = c.gid }

    /// `SO_PEERCRED` of `socket`.
    static func peer(of socket: Int32) -> KernelCredentials? {
        var c = ikd_cred()
        return ikd_peer_cred(socket, &c) == 0 ? KernelCredentials(c) : nil
    }

    var description: String { "pid \(pid) uid \(uid)" }
}

/// One packet received without blocking: the bytes, the sender's credentials as the
/// kernel attached them, and any fds passed with it (already ours: close them).
struct Packet {
    var bytes: [UInt8]
    var credentials: KernelCredentials?
    var fds: [Int32]

    /// `recvmsg` of one packet from `socket`; nil with `errno` set when none was read
    /// (`EAGAIN`: nothing queued); an empty packet with no credentials means hang-up.
    static func receive(_ socket: Int32, capacity: Int = 64) -> Packet? {
        var buf = [UInt8](repeating: 0, count: capacity)
        var cred = ikd_cred()
        var fds = [Int32](repeating: -1, count: 4)
        var nfds: Int32 = 0
        let n = buf.withUnsafeMutableBytes { b in
            fds.withUnsafeMutableBufferPointer { f in
                ikd_recv(socket, b.baseAddress, b.count, &cred, f.baseAddress, Int32(f.count), &nfds)
            }
        }
        guard n >= 0 else { return nil }
        return Packet(bytes: Array(buf[0..<n]), credentials: cred.present != 0 ? KernelCredentials(cred) : nil,
                      fds: Array(fds[0..<Int(nfds)]))
    }

    /// Closes the fds that came with the packet.
    func closeFDs() { for fd in fds { close(fd) } }
}

/// Sends one packet (with `fd` attached when given), never blocking for longer than
/// `timeout` seconds in all: a peer whose queue stays full is not read by anyone, and
/// the caller gives up on it. Returns false when the packet could not be delivered.
func sendPacket(_ socket: Int32, _ bytes: [UInt8], fd: Int32 = -1, timeout: Double = Service.replyTimeout) -> Bool {
    let deadline = monotonicNow() + timeout
    while true {
        let n = bytes.withUnsafeBytes { ikd_send(socket, $0.baseAddress, $0.count, fd) }
        if n == bytes.count { return true }
        guard n < 0, errno == EAGAIN || errno == EWOULDBLOCK else { return false }
        let left = deadline - monotonicNow()
        guard left > 0 else { return false }
        var p = pollfd(fd: socket, events: Int16(POLLOUT), revents: 0)
        _ = poll(&p, 1, Int32(max(1, min(left * 1000, 100))))
    }
}

/// Waits until `socket` is readable, at most `timeout` seconds; false on time-out.
func waitReadable(_ socket: Int32, timeout: Double) -> Bool {
    let deadline = monotonicNow() + timeout
    while true {
        var p = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        let left = deadline - monotonicNow()
        guard left > 0 else { return false }
        let n = poll(&p, 1, Int32(max(1, min(left * 1000, 100))))
        if n > 0 { return true }
    }
}

/// Seconds on the monotonic clock.
func monotonicNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// The inode number of an open fd (0 if it cannot be read).
func inode(of fd: Int32) -> UInt64 {
    var st = stat()
    return fstat(fd, &st) == 0 ? UInt64(st.st_ino) : 0
}

/// A process the service serves, held by a pidfd: pid reuse can never make it name
/// another process. Closed when the last reference goes.
final class ProcessHandle: @unchecked Sendable {
    let pid: Int32
    let pidfd: Int32

    /// Takes ownership of `pidfd`, which names process `pid`.
    init(pid: Int32, pidfd: Int32) {
        self.pid = pid
        self.pidfd = pidfd
    }

    /// The pidfd recorded by `socket` for its peer (`SO_PEERPIDFD`), else one opened now
    /// for `pid` (`pidfd_open`). nil when the process is already gone.
    static func peer(of socket: Int32, pid: Int32) -> ProcessHandle? {
        var fd = ikd_peer_pidfd(socket)
        if fd < 0 { fd = ikd_pidfd_open(pid) }
        guard fd >= 0 else { return nil }
        let handle = ProcessHandle(pid: pid, pidfd: fd)
        // The pidfd must name `pid` now: the process the kernel credited the packet to.
        return handle.isRunning && ikd_pidfd_pid(fd) == pid ? handle : nil
    }

    deinit { close(pidfd) }

    /// Whether the process is still running (its pidfd is not readable). While it runs
    /// (even as a zombie, before it is reaped) no other process can have its pid, so
    /// the pid still names it.
    var isRunning: Bool { ikd_pidfd_exited(pidfd) == 0 }

    /// `pidfd_getfd`: a duplicate of the process's descriptor `fd`, or -1 with errno.
    func duplicate(_ fd: Int32) -> Int32 { ikd_pidfd_getfd(pidfd, fd) }
}

/// Reads a small text file (procfs) whole; nil if it cannot be opened.
func readSmallFile(_ path: String, limit: Int = 1 << 20) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var data: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while data.count < limit {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        data += buf[0..<n]
    }
    return String(decoding: data, as: UTF8.self)
}

/// A condition variable with its own mutex, for the few places where a thread waits for
/// another (due releases in progress).
final class Condition: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        mutex.initialize(to: pthread_mutex_t())
        cond.initialize(to: pthread_cond_t())
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    /// Runs `body` with the mutex held.
    func withLock<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }

    /// Waits (mutex held) until signalled or `seconds` pass.
    func wait(seconds: Double) {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let ns = Int(ts.tv_nsec) + Int(seconds * 1e9)
        ts.tv_sec += ns / 1_000_000_000
        ts.tv_nsec = ns % 1_000_000_000
        _ = pthread_cond_timedwait(cond, mutex, &ts)
    }

    /// Wakes every waiter (mutex held).
    func broadcast() { pthread_cond_broadcast(cond) }
}

private final class ThreadBody {
    let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
}

/// Starts a detached thread running `body`.
func startThread(_ body: @escaping @Sendable () -> Void) -> Bool {
    let box = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    var attr = pthread_attr_t()
    pthread_attr_init(&attr)
    pthread_attr_setdetachstate(&attr, Int32(PTHREAD_CREATE_DETACHED))
    defer { pthread_attr_destroy(&attr) }
    var thread = pthread_t()
    let rc = pthread_create(&thread, &attr, { raw in
        Unmanaged<ThreadBody>.fromOpaque(raw!).takeRetainedValue().body()
        return nil
    }, box)
    if rc != 0 { Unmanaged<ThreadBody>.fromOpaque(box).release() }
    return rc == 0
}
