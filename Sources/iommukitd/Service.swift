import CIOMMUKitd
import Glibc
import IOMMUCore
import IOMMUDrivers
import IOMMUFD
import IOMMUFDSelftest

/// How the service grants `CAP_SYS_RESOURCE` / `CAP_IPC_LOCK` to a context.
enum CapabilityPolicy: String {
    /// As the calling task has it (`CapEff`): the kernel's rule.
    case caller
    /// Always granted.
    case on
    /// Never granted.
    case off

    /// The grant for `capability` to the task behind `credentials`.
    func grants(_ capability: Capability, to credentials: RequestCredentials) -> Bool {
        switch self {
        case .on: true
        case .off: false
        case .caller: credentials.capable(capability)
        }
    }
}

/// What the model asks of the task behind one request (`capable()`, its
/// `RLIMIT_MEMLOCK`, `current_user()`), answered from that request's kernel-reported
/// credentials under the service's capability policies. Passed with every request, so
/// a task that drops `CAP_IPC_LOCK` after opening `/dev/iommu` has its next mapping
/// charged, as `iopt_alloc_pages` asks `capable()` at that moment.
struct ServedCredentials: IOMMUFDCredentialSource {
    let task: RequestCredentials
    let capIPCLock: CapabilityPolicy
    let capSysResource: CapabilityPolicy

    func capable(_ cap: IOMMUFDCapability) -> Bool {
        switch cap {
        case .ipcLock: capIPCLock.grants(.ipcLock, to: task)
        case .sysResource: capSysResource.grants(.sysResource, to: task)
        }
    }
    var memlockLimitPages: UInt64 { task.memlockLimitPages }
    var uid: UInt32 { task.uid }
}

/// The service's options (`iommukitd --help`).
struct ServiceOptions {
    var socketPath = ""
    var logPath: String?
    var verbose = false
    /// Exit after this many seconds without any connection (0: never).
    var idleExit: Double = 0
    var capSysResource = CapabilityPolicy.caller
    var capIPCLock = CapabilityPolicy.caller
}

/// An iommufd context served to clients: the model context and how many connections
/// hold it (the `/dev/iommu` connection and each file it handed out, as the kernel's
/// files hold `iommufd_ctx_get`). Released when the last one goes.
final class ServedContext: @unchecked Sendable {
    let id: Int
    let ctx: IOMMUFD
    /// Under the service's state lock.
    var holders = 1
    /// Set when a request trapped inside this context: nothing touches it again (its
    /// lock may be held by the parked thread); every request on it gets `EIO`.
    var poisoned = false
    init(id: Int, ctx: IOMMUFD) { self.id = id; self.ctx = ctx }
}

/// What one file connection is.
enum ConnKind {
    /// Connected, first packet not received yet.
    case fresh
    /// An open of `/dev/iommu` (or the VFIO container).
    case context(ServedContext)
    /// A file of a context (fault queue, selftest access) with its number in the model.
    case file(ServedContext, Int32)
    /// `/proc/.../task/<tid>/fail-nth`.
    case failNth(Int32)
    /// A debugfs fault-injection attribute.
    case knob(String)
}

/// One file connection: one open file of a client (see `iommukit_wire.h`).
final class Connection: @unchecked Sendable {
    let fd: Int32
    /// Under the service's state lock.
    var kind: ConnKind
    /// Set once its release was claimed: requests still arriving on it get `EBADF`.
    var released = false
    /// How a passed fd of its client end is recognised: the autobound name of a
    /// connection the shim made, the inode of one the service made.
    var clientName: [UInt8] = []
    var clientInode: UInt64 = 0
    init(fd: Int32, kind: ConnKind = .fresh) { self.fd = fd; self.kind = kind }
}

/// `iommukitd`: the model as a service. It plays the kernel for unmodified C programs:
/// one ``Machine`` with the mock IOMMU and the selftest backend (a kernel built with
/// `CONFIG_IOMMUFD_TEST`), one iommufd context per open of `/dev/iommu`, each client's
/// memory reached with `process_vm_readv`/`writev`.
///
/// Threads. One I/O thread accepts connections, registers reply channels (each gets a
/// service thread, ``TaskChannel``), refuses stray packets and watches connections for
/// hang-ups; it never blocks and never enters the model. Each client thread's service
/// thread reads that thread's requests from its channel and serves them in order. Releases run on the thread whose
/// request finds them due, or on the releaser thread when nobody asks. Signals
/// (SIGTERM, SIGINT) reach the I/O thread through a signalfd, so the service stops
/// within a second whatever its service threads are doing. A trap inside a request
/// parks only the thread that hit it (``Containment``).
final class Service: @unchecked Sendable {
    /// How long a reply may wait for a client's queue before the client is disconnected,
    /// and how long an `INSTALL` upcall waits for its answer.
    static let replyTimeout = 1.0

    let options: ServiceOptions
    let log: Log
    let machine = Machine(memory: 16 << 30)
    let backend: MockSelftestBackend
    /// The uid served: the service's own.
    let servedUID = geteuid()

    /// Everything below, under one short-held lock (never held across the model).
    let state = Lock()
    var conns: [Int32: Connection] = [:]
    /// Connections by their client end: its autobound name, its inode.
    var connByName: [[UInt8]: Connection] = [:]
    var connByInode: [UInt64: Connection] = [:]
    private let acceptLock = Lock()
    var channels: [TaskID: TaskChannel] = [:]
    var clients: [Int32: Client] = [:]
    /// Clients that exited while their pages were still charged (`VmPin` readers may
    /// still ask for those counters).
    var retired: [Client] = []
    /// `current->fail_nth` per task.
    var failNth: [Int32: Int] = [:]
    /// Values written to the emulated debugfs attributes.
    var knobs: [String: String] = [:]
    var nextContextID = 1
    /// Pin counters a trapped thread may have left locked (see ``Containment``): never
    /// read again.
    var poisonedAccounting: Set<ObjectIdentifier> = []
    /// When memory was last given back after an unmap.
    var lastMemoryReturn = 0.0
    /// Service-end fds of released connections, closed by the I/O thread (so that an fd
    /// number it may be polling is never reused behind its back).
    var toClose: [Int32] = []

    /// Which model frames stand for which client memory (the machine's external frame
    /// owner), the objects clients share memory through, and the request counter the
    /// clients' pagers validate against.
    let mirrors: FrameMirrors
    let objects: SharedObjects
    let epoch = RequestEpoch()
    let releases = Releases()
    /// Clients' mappings of the regions vIOMMUs offer (`mmap` of an iommufd).
    let contextMappings = ContextMappings()
    let containment: Containment
    private var listenFD: Int32 = -1
    private var signalFD: Int32 = -1
    /// Written to wake the I/O thread when the set of connections changes.
    private let wake: (read: Int32, write: Int32)

    init(options: ServiceOptions) {
        self.options = options
        log = Log(path: options.logPath, verbose: options.verbose)
        backend = MockSelftestBackend(machine: machine)
        mirrors = FrameMirrors(memory: machine.memory)
        objects = SharedObjects(machine: machine, mirrors: mirrors)
        machine.memory.returnFreeFrames()       // starts the bookkeeping of freed frames
        // A pin mirrors each client page into a fresh frame: with huge pages the host
        // faults once per 2 MiB of a large pin rather than once per 4 KiB frame.
        machine.memory.preferHugePages()
        var p: [Int32] = [-1, -1]
        pipe(&p)
        for fd in p { _ = fcntl(fd, F_SETFD, FD_CLOEXEC); _ = fcntl(fd, F_SETFL, O_NONBLOCK) }
        wake = (p[0], p[1])
        containment = Containment()
        objects.liveClients = { [unowned self] in
            state.withLock { clients.values.filter { $0.process.isRunning } }
        }
    }

    // MARK: socket

    /// Binds and listens on the socket path. A live service of the same user already
    /// there makes this one leave (false); a listener of another user is refused and
    /// logged; a stale socket of ours is replaced.
    func listen() -> Bool {
        let path = options.socketPath
        let dir = SocketDirectory.directory(of: path)
        if dir == SocketDirectory.defaultPath, let why = SocketDirectory.makePrivate(dir) {
            log.line("refusing to listen: \(why)")
            return false
        }
        if let fd = Self.connect(path) {
            let peer = KernelCredentials.peer(of: fd)
            close(fd)
            if peer?.uid == servedUID {
                log.line("another iommukitd already serves \(path); exiting")
            } else {
                log.line("\(path) is held by a listener of \(peer.map { "uid \($0.uid)" } ?? "an unknown user"); refusing to start")
            }
            return false
        }
        var st = stat()
        if lstat(path, &st) == 0 {
            guard st.st_mode & S_IFMT == S_IFSOCK, st.st_uid == servedUID else {
                log.line("\(path) exists and is not a socket of uid \(servedUID); refusing to replace it")
                return false
            }
            unlink(path)
        }
        listenFD = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard listenFD >= 0 else { log.line("socket: \(errnoName(errno))"); return false }
        // Every packet on every connection carries the sender's credentials (accepted
        // connections inherit this from the listener).
        guard ikd_set_passcred(listenFD) == 0 else { log.line("SO_PASSCRED: \(errnoName(errno))"); return false }
        var addr = Self.address(path)
        // The socket file: our user only (born 0700 under this umask, then 0600, before
        // anyone may connect: connecting needs write permission).
        let old = umask(0o077)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listenFD, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        umask(old)
        guard rc == 0, chmod(path, 0o600) == 0, Glibc.listen(listenFD, 128) == 0 else {
            log.line("bind/listen \(path): \(errnoName(errno))")
            return false
        }
        log.line("listening on \(path) for uid \(servedUID) (mock IOMMU, CONFIG_IOMMUFD_TEST, cap_sys_resource=\(options.capSysResource.rawValue), cap_ipc_lock=\(options.capIPCLock.rawValue), idle exit \(options.idleExit == 0 ? "off" : "\(options.idleExit)s"))")
        return true
    }

    static func address(_ path: String) -> sockaddr_un {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            let bytes = Array(path.utf8.prefix(raw.count - 1))
            raw.copyBytes(from: bytes)
        }
        return addr
    }

    static func connect(_ path: String) -> Int32? {
        let fd = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        var addr = address(path)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if rc == 0 { return fd }
        close(fd)
        return nil
    }

    // MARK: the I/O thread

    /// Serves until stopped (SIGTERM/SIGINT) or idle for `idleExit` seconds. Call with
    /// the signalfd from `ikd_block_signals`.
    func run(signals: Int32) {
        signalFD = signals
        containment.install(service: self)
        _ = releases.startReleaser(service: self)
        var idleSince = monotonicNow()
        while true {
            let pending = state.withLock { () -> [Int32] in let c = toClose; toClose = []; return c }
            for fd in pending { close(fd) }
            let watched = state.withLock { conns.values.filter { !$0.released }.map(\.fd) }
            var pfds = [pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0),
                        pollfd(fd: containment.notifyRead, events: Int16(POLLIN), revents: 0),
                        pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0),
                        pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)]
            for fd in watched { pfds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
            let n = poll(&pfds, nfds_t(pfds.count), 500)
            if n < 0 && errno != EINTR { log.line("poll: \(errnoName(errno))"); break }
            if pfds[0].revents != 0 { stop(); return }
            if pfds[1].revents != 0 { containment.drain(service: self) }
            if pfds[2].revents != 0 {
                var b = [UInt8](repeating: 0, count: 64)
                while read(wake.read, &b, b.count) > 0 {}
            }
            if pfds[3].revents != 0 { acceptAll() }
            var hungUp = false
            for p in pfds.dropFirst(4) where p.revents != 0 {
                guard let conn = state.withLock({ conns[p.fd] }), !conn.released else { continue }
                if readPackets(conn) { hungUp = true }
            }
            if hungUp { releases.poke() }
            if state.withLock({ !conns.isEmpty }) { idleSince = monotonicNow() }
            if options.idleExit > 0, monotonicNow() - idleSince >= options.idleExit,
               state.withLock({ conns.isEmpty }) {
                log.line("idle for \(options.idleExit)s with no connection; exiting")
                stop()
                return
            }
        }
        stop()
    }

    /// SIGTERM or SIGINT (or idle exit): the socket goes away and the process ends now,
    /// whatever its service threads are doing; clients see their connections hang up.
    private func stop() {
        close(listenFD)
        unlink(options.socketPath)
        log.line("stopped")
        _exit(0)
    }

    /// Wakes the I/O thread (the set of connections changed).
    func pokeIOThread() {
        var b: UInt8 = 1
        _ = write(wake.write, &b, 1)
    }

    /// Accepts every connection waiting on the listener (the I/O thread's job, also done
    /// by a service thread that meets a connection not accepted yet: a client sends its
    /// first request the moment `connect` returns).
    func acceptAll() {
        defer { pokeIOThread() }
        // Held from accept to record, so a thread that finds nothing to accept knows that
        // every connection accepted so far is recorded.
        acceptLock.withLock {
            while true {
                let fd = ikd_accept(listenFD)
                guard fd >= 0 else { return }
                let conn = Connection(fd: fd)
                conn.clientName = Self.socketName(fd, peer: true)
                state.withLock {
                    conns[fd] = conn
                    if !conn.clientName.isEmpty { connByName[conn.clientName] = conn }
                }
            }
        }
    }

    /// A unix socket's name (its peer's with `peer`): the autobound abstract name, or
    /// empty when unnamed.
    static func socketName(_ fd: Int32, peer: Bool) -> [UInt8] {
        var buf = [CChar](repeating: 0, count: 108)
        let n = ikd_socket_name(fd, peer ? 1 : 0, &buf, Int32(buf.count))
        return n > 0 ? buf[0..<Int(n)].map { UInt8(bitPattern: $0) } : []
    }

    /// The connection whose client end `fd` (passed with a request) is, if it is one of
    /// the service's: by inode, else by the autobound name (the inode is then recorded).
    func connection(passed fd: Int32) -> Connection? {
        let ino = inode(of: fd)
        let name = Self.socketName(fd, peer: false)
        // A connection found by inode must also carry the passed end's name (names and
        // inodes are both reused once a socket is gone; never both at once by one that
        // is still here).
        if let c = state.withLock({ connByInode[ino] }), !c.released, c.clientName == name { return c }
        guard !name.isEmpty else { return nil }
        func byName() -> Connection? {
            state.withLock {
                guard let c = connByName[name], !c.released else { return nil }
                if c.clientInode != 0, connByInode[c.clientInode] === c { connByInode[c.clientInode] = nil }
                c.clientInode = ino
                connByInode[ino] = c
                return c
            }
        }
        if let c = byName() { return c }
        acceptAll()
        return byName()
    }

    /// Forgets how a released connection's client end was recognised (state lock held).
    func forgetLocked(_ conn: Connection) {
        if !conn.clientName.isEmpty, connByName[conn.clientName] === conn { connByName[conn.clientName] = nil }
        if conn.clientInode != 0, connByInode[conn.clientInode] === conn { connByInode[conn.clientInode] = nil }
    }

    /// Reads what is queued on `conn` (a few packets at most, for fairness) and routes
    /// each; returns true when the connection hung up.
    private func readPackets(_ conn: Connection) -> Bool {
        for _ in 0..<8 {
            guard let p = Packet.receive(conn.fd) else { return false }
            if p.bytes.isEmpty && p.credentials == nil { return true }
            route(p, on: conn)
            // A connection that just became a reply channel is its service thread's to
            // read from now on.
            guard state.withLock({ conns[conn.fd] === conn }) else { return false }
        }
        return false
    }

    /// A packet on a connection the I/O thread watches: the `CHANNEL` packet that makes a
    /// new connection a thread's reply channel, or a packet that has no business there
    /// (requests travel on channels). Who sent it is the kernel's word: a packet from a
    /// uid this service does not serve, or whose claimed pid is not the sender's, is
    /// refused with `EPERM` (answered on the connection itself, never on anyone's
    /// channel) and logged.
    func route(_ p: Packet, on conn: Connection) {
        guard let wire = p.bytes.withUnsafeBytes({ Wire.Request($0) }), let op = Wire.Op(rawValue: wire.op) else {
            p.closeFDs()
            log.limited("malformed \(p.credentials?.pid ?? 0)",
                        "conn \(conn.fd)\(p.credentials.map { " (\($0))" } ?? ""): malformed request of \(p.bytes.count) bytes; dropping the connection")
            dropConnection(conn)
            return
        }
        guard let cred = p.credentials else {
            p.closeFDs()
            refuse(conn, "conn \(conn.fd): a packet without credentials", key: "nocred")
            return
        }
        guard cred.uid == servedUID else {
            p.closeFDs()
            refuse(conn, "conn \(conn.fd): \(cred) is not served (this service serves uid \(servedUID) only)",
                   key: "uid \(cred.pid)")
            return
        }
        guard wire.pid == cred.pid else {
            p.closeFDs()
            refuse(conn, "conn \(conn.fd): \(op) claims pid \(wire.pid), kernel says \(cred)", key: "claim \(cred.pid) \(op) \(wire.pid)")
            return
        }
        let task = TaskID(pid: cred.pid, tid: wire.tid)
        guard op == .channel else {
            p.closeFDs()
            refuse(conn, "\(task): \(op) on a file connection (requests travel on the thread's channel)",
                   key: "misplaced \(cred.pid)", errno: EINVAL)
            return
        }
        let isFresh = state.withLock { () -> Bool in
            guard case .fresh = conn.kind, !conn.released else { return false }
            conns[conn.fd] = nil        // from now on the channel's own thread reads it
            forgetLocked(conn)
            return true
        }
        guard isFresh, p.fds.count == 1 else {
            p.closeFDs()
            refuse(conn, "conn \(conn.fd): CHANNEL \(isFresh ? "without the shim's end" : "on a connection that is not new")",
                   key: "channel \(cred.pid)", errno: EINVAL)
            return
        }
        let channel = TaskChannel(task: task, socket: conn.fd, shimEnd: p.fds[0], service: self)
        if !channel.start(slot: containment.newSlot(for: channel)) {
            log.line("\(task): cannot start a service thread: \(errnoName(errno))")
            close(conn.fd)
            close(p.fds[0])
        }
    }

    /// Answers a refused packet with `errno` on the connection it came on (best effort:
    /// a connection nobody reads is not waited for) and logs why.
    func refuse(_ conn: Connection, _ why: String, key: String, errno e: Int32 = EPERM) {
        log.limited(key, "refused (\(errnoName(e))): \(why)")
        _ = sendPacket(conn.fd, Wire.reply(err: e, ret: 0), timeout: 0)
    }

    /// Releases a connection now, from the I/O thread (garbage, or a user not served).
    private func dropConnection(_ conn: Connection) {
        releases.claim(conn, service: self)
        releases.poke()
    }

    // MARK: channels and clients

    /// A proven channel: registers it for its task (replacing a previous one of the same
    /// task, whose thread must have ended) and returns its process's client, made on
    /// first contact.
    func register(_ channel: TaskChannel, process: ProcessHandle) -> Client? {
        // A new client is made with the state lock released (it allocates model memory).
        var fresh: Client?
        if state.withLock({ clients[process.pid].map { !($0.process.isRunning && $0.process.pid == process.pid) } ?? true }) {
            fresh = try? Client(process: process, machine: machine, objects: objects, mirrors: mirrors, epoch: epoch)
        }
        let (old, client, gone) = state.withLock { () -> (TaskChannel?, Client?, Client?) in
            let old = channels.updateValue(channel, forKey: channel.task)
            if let c = clients[process.pid], c.process.isRunning, c.process.pid == process.pid { return (old, c, nil) }
            let gone = clients.removeValue(forKey: process.pid)
            if let fresh { clients[process.pid] = fresh }
            return (old, fresh, gone)
        }
        if let fresh, client !== fresh { fresh.retire() }
        if let gone { retire(gone) }
        old?.end()
        log.line("\(channel.task): reply channel registered")
        return client
    }

    /// A channel's thread ended (the client thread exited or was disconnected).
    func channelEnded(_ channel: TaskChannel) {
        state.withLock {
            if channels[channel.task] === channel {
                channels[channel.task] = nil
                failNth[channel.task.tid] = nil
            }
        }
        containment.forget(channel)
    }

    /// A client that exited (already out of ``clients``): its shadow goes; its counters
    /// stay readable while anything is still charged to them.
    func retire(_ c: Client) {
        c.retire()
        contextMappings.forget(pid: c.pid)
        // The counters are read with the state lock released: a lock of the model must
        // never be waited for while holding it (the I/O thread takes it).
        let (kept, poisoned) = state.withLock { (retired + [c], poisonedAccounting) }
        let charged = Set(kept.filter {
            !poisoned.contains(ObjectIdentifier($0.accounting))
                && ($0.accounting.pinnedPages > 0 || $0.accounting.mmLockedPages > 0)
        }.map(ObjectIdentifier.init))
        state.withLock {
            retired.removeAll { !charged.contains(ObjectIdentifier($0)) }
            if charged.contains(ObjectIdentifier(c)) { retired.append(c) }
        }
        log.line("pid \(c.pid) exited")
    }

    /// Mirrored frames the service keeps without giving them back (32 MiB): a program
    /// that maps, unmaps and closes in a loop then finds its pages mirrored already.
    static let mirroredKept = 8192

    /// Gives memory back after pins went away, once more than ``mirroredKept`` frames are
    /// mirrored: every client's unpinned shadow pages, objects nothing uses, and the host
    /// memory behind the frames freed.
    func returnMemory() {
        objects.sweep()
        guard mirrors.count > Self.mirroredKept else { return }
        let all = state.withLock { Array(clients.values) }
        for c in all { c.trim() }
        objects.sweep()
        machine.memory.returnFreeFrames()
    }
}
