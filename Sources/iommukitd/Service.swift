import Glibc
import IOMMUCore
import IOMMUDrivers
import IOMMUFD
import IOMMUFDSelftest

/// How the service grants `CAP_SYS_RESOURCE` / `CAP_IPC_LOCK` to a context.
enum CapabilityPolicy: String {
    /// As the opening process has it (`CapEff` in `/proc/<pid>/status`): the kernel's rule.
    case caller
    /// Always granted.
    case on
    /// Never granted.
    case off
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
/// files hold `iommufd_ctx_get`). Released when the last one hangs up.
final class ServedContext: @unchecked Sendable {
    let id: Int
    let ctx: IOMMUFD
    var holders = 1
    init(id: Int, ctx: IOMMUFD) { self.id = id; self.ctx = ctx }
}

/// What one connection is.
enum ConnKind {
    /// Connected, `OPEN` not received yet.
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

/// `iommukitd`: the model as a service. It plays the kernel for unmodified C programs:
/// one ``Machine`` with the mock IOMMU and the selftest backend (a kernel built with
/// `CONFIG_IOMMUFD_TEST`), one iommufd context per open of `/dev/iommu`, each client's
/// memory reached with `process_vm_readv`/`writev`. Single-threaded: requests are served
/// one at a time, in arrival order, which also makes every run deterministic.
final class Service: @unchecked Sendable {
    let options: ServiceOptions
    let log: Log
    let machine = Machine(memory: 16 << 30)
    let backend: MockSelftestBackend
    private var listenFD: Int32 = -1
    private var conns: [Int32: ConnKind] = [:]
    private var clients: [Int32: Client] = [:]
    /// Clients that exited with pages still pinned (their frames stay in use).
    private var retired: [Client] = []
    /// `current->fail_nth` per task.
    private var failNth: [Int32: Int] = [:]
    /// Values written to the emulated debugfs attributes.
    private var knobs: [String: String] = [:]
    private var nextContextID = 1
    /// Clients' memfds handed to `IOMMU_IOAS_MAP_FILE`, mirrored into model files.
    private lazy var clientFiles = ClientFiles(machine: machine)
    /// Clients' mappings of the regions vIOMMUs offer (`mmap` of an iommufd).
    private var contextMappings = ContextMappings()
    /// Reply channels by ``channelKey(_:_:)``: where replies to each client thread go.
    private var channels: [Int64: Int32] = [:]
    /// Where the request in progress is answered: its thread's channel, else its connection.
    private var replyFD: Int32 = -1
    /// Files installed in the caller during the request in progress: (model number, our end).
    private var installedNow: [(Int32, Int32)] = []

    init(options: ServiceOptions) {
        self.options = options
        log = Log(path: options.logPath, verbose: options.verbose)
        backend = MockSelftestBackend(machine: machine)
    }

    // MARK: socket

    /// Binds and listens on the socket path; a live service already there makes this one
    /// leave (exit status 0), a stale socket file is replaced.
    func listen() -> Bool {
        if let fd = Self.connect(options.socketPath) {
            close(fd)
            log.line("another iommukitd already serves \(options.socketPath); exiting")
            return false
        }
        unlink(options.socketPath)
        listenFD = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listenFD >= 0 else { log.line("socket: \(errnoName(errno))"); return false }
        var addr = Self.address(options.socketPath)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listenFD, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0, Glibc.listen(listenFD, 128) == 0 else {
            log.line("bind/listen \(options.socketPath): \(errnoName(errno))")
            return false
        }
        chmod(options.socketPath, 0o666)
        log.line("listening on \(options.socketPath) (mock IOMMU, CONFIG_IOMMUFD_TEST, cap_sys_resource=\(options.capSysResource.rawValue), idle exit \(options.idleExit == 0 ? "off" : "\(options.idleExit)s"))")
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

    // MARK: loop

    /// Serves until stopped (SIGTERM/SIGINT) or idle for `idleExit` seconds.
    func run(stop: UnsafeMutablePointer<Int32>) {
        var idleSince = now()
        var busyUntil = 0.0
        while stop.pointee == 0 {
            var pfds = [pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)]
            for fd in conns.keys.sorted() { pfds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
            // Right after serving a request, poll without sleeping for a short while: the
            // next ioctl of a busy caller usually follows within microseconds, and a
            // sleeping service pays a cross-core wake-up (~50 µs when the core went idle).
            var n = Int32(0)
            if now() < busyUntil {
                n = poll(&pfds, nfds_t(pfds.count), 0)
                if n == 0 { continue }
            } else {
                n = poll(&pfds, nfds_t(pfds.count), 500)
            }
            if n > 0 { busyUntil = now() + 50e-6 }
            if n < 0 && errno != EINTR { log.line("poll: \(errnoName(errno))"); break }
            if n > 0 {
                if pfds[0].revents & Int16(POLLIN) != 0 { accept() }
                for p in pfds.dropFirst() where p.revents != 0 {
                    guard conns[p.fd] != nil else { continue }
                    serve(p.fd, revents: p.revents)
                }
            }
            if !conns.isEmpty { idleSince = now() }
            if options.idleExit > 0, conns.isEmpty, now() - idleSince >= options.idleExit {
                log.line("idle for \(options.idleExit)s with no connection; exiting")
                break
            }
        }
        shutdown()
    }

    private func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    private func shutdown() {
        for fd in conns.keys.sorted() { hangup(fd) }
        for fd in channels.values { close(fd) }
        channels = [:]
        close(listenFD)
        unlink(options.socketPath)
        log.line("stopped")
    }

    private func accept() {
        let fd = Glibc.accept(listenFD, nil, nil)
        guard fd >= 0 else { return }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        conns[fd] = .fresh
    }

    /// One readable (or hung-up) connection: at most one request served. The reply (and
    /// any `INSTALL` upcall) goes to the calling thread's reply channel (see Wire.swift),
    /// so concurrent callers sharing the connection never see each other's replies.
    private func serve(_ fd: Int32, revents: Int16) {
        var buf = [UInt8](repeating: 0, count: 64)
        var passed: Int32 = -1
        let n = receive(fd, &buf, fd: &passed)
        if n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) {
            if passed >= 0 { close(passed) }
            hangup(fd)
            return
        }
        guard n > 0 else { return }
        guard let req = Wire.Request(Array(buf[0..<n])), let op = Wire.Op(rawValue: req.op) else {
            log.line("conn \(fd): malformed request of \(n) bytes; dropping the connection")
            if passed >= 0 { close(passed) }
            hangup(fd)
            return
        }
        let key = Self.channelKey(req.pid, req.tid)
        if passed >= 0 {
            if let old = channels.updateValue(passed, forKey: key) { close(old) }
        }
        replyFD = channels[key] ?? fd
        installedNow = []
        let (ret, err) = handle(fd, op, req)
        // Files installed by a request that then failed were never the caller's.
        var toClose: [Int32] = []
        for (number, ours) in installedNow {
            guard case .file(let sc, _)? = conns[ours], !sc.ctx.fileNumbers.contains(number) else { continue }
            conns[ours] = nil
            close(ours)
            sc.holders -= 1
            toClose.append(number)
        }
        installedNow = []
        send(replyFD, Wire.reply(err: err, ret: ret, close: toClose))
    }

    /// `(pid, tid)` as one key of ``channels``.
    static func channelKey(_ pid: Int32, _ tid: Int32) -> Int64 {
        Int64(pid) << 32 | Int64(UInt32(bitPattern: tid))
    }

    /// `recvmsg` of one packet without blocking; an fd passed with it (`SCM_RIGHTS`: a
    /// reply channel) lands in `fd`. Extra fds are closed at once.
    private func receive(_ sock: Int32, _ buf: inout [UInt8], fd: inout Int32) -> Int {
        // Room for four fds: CMSG_SPACE(16) = 32 bytes.
        var control = [UInt8](repeating: 0, count: 32)
        var got: [Int32] = []
        let n = buf.withUnsafeMutableBytes { d in
            control.withUnsafeMutableBytes { c in
                var iov = iovec(iov_base: d.baseAddress, iov_len: d.count)
                return withUnsafeMutablePointer(to: &iov) { iovp in
                    var msg = msghdr(msg_name: nil, msg_namelen: 0, msg_iov: iovp, msg_iovlen: 1,
                                     msg_control: c.baseAddress, msg_controllen: c.count, msg_flags: 0)
                    let r = recvmsg(sock, &msg, Int32(MSG_DONTWAIT) | Int32(MSG_CMSG_CLOEXEC))
                    // struct cmsghdr { size_t len; int level; int type; } then the fds.
                    if r >= 0, msg.msg_controllen >= 16 {
                        let len = c.load(fromByteOffset: 0, as: Int.self)
                        let level = c.load(fromByteOffset: 8, as: Int32.self)
                        let type = c.load(fromByteOffset: 12, as: Int32.self)
                        if level == SOL_SOCKET, type == Int32(SCM_RIGHTS), len >= 20, len <= c.count {
                            for i in 0..<(len - 16) / 4 { got.append(c.load(fromByteOffset: 16 + 4 * i, as: Int32.self)) }
                        }
                    }
                    return r
                }
            }
        }
        let e = errno
        if let first = got.first { fd = first }
        for extra in got.dropFirst() { close(extra) }
        errno = e
        return n
    }

    /// Closes the reply channels of `pid` (it exited), or those whose thread closed its
    /// end (the shim closes a thread's channel when the thread exits).
    private func sweepChannels(pid: Int32? = nil) {
        for (key, fd) in channels {
            var hungUp = false
            if let pid { hungUp = Int32(truncatingIfNeeded: key >> 32) == pid } else {
                var p = pollfd(fd: fd, events: 0, revents: 0)
                hungUp = poll(&p, 1, 0) == 1 && p.revents & Int16(POLLHUP) != 0
            }
            if hungUp { close(fd); channels[key] = nil }
        }
    }

    private func send(_ fd: Int32, _ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    // MARK: requests

    private func client(_ pid: Int32) -> Client? {
        if let c = clients[pid] { return c }
        guard pid > 0, let c = try? Client(pid: pid, machine: machine) else { return nil }
        clients[pid] = c
        return c
    }

    /// Serves one request; returns (ret, errno).
    private func handle(_ fd: Int32, _ op: Wire.Op, _ req: Wire.Request) -> (Int64, Int32) {
        guard let kind = conns[fd] else { return (0, EBADF) }
        switch (kind, op) {
        case (.fresh, .open):
            return open(fd, req)
        case (.context(let sc), .ioctl):
            return ioctl(sc, req)
        case (.context(let sc), .mmap):
            guard let c = client(req.pid) else { return (0, ESRCH) }
            guard req.len == UInt64(ContextMappings.Request.size),
                  let b = try? c.memory.copyFromUser(req.arg, count: ContextMappings.Request.size) else { return (0, EFAULT) }
            let r = contextMappings.map(sc.ctx, c, ContextMappings.Request(b), machine: machine)
            if r.1 != 0 { log.line("pid \(req.pid) ctx \(sc.id): mmap → -\(errnoName(r.1))") }
            return r
        case (.context, .munmap):
            guard let c = client(req.pid) else { return (1, 0) }
            return contextMappings.unmap(c, address: req.arg, length: req.len)
        case (.file(let sc, let number), .read), (.file(let sc, let number), .write):
            guard let c = client(req.pid) else { return (0, ESRCH) }
            let r = withFailNth(sc.ctx, tid: req.tid) {
                sc.ctx.withCaller(c.mm, memory: c.memory) {
                    op == .read ? sc.ctx.readFile(number, buffer: req.arg, count: Int(clamping: req.len))
                                : sc.ctx.writeFile(number, buffer: req.arg, count: Int(clamping: req.len))
                }
            }
            if r < 0 {
                log.line("pid \(req.pid) ctx \(sc.id) fd \(number): \(op == .read ? "read" : "write") → -\(errnoName(Int32(-r)))")
                return (0, Int32(-r))
            }
            return (Int64(r), 0)
        case (.file(let sc, let number), .poll):
            let r = sc.ctx.pollFile(number)
            return r < 0 ? (0, -r) : (Int64(r), 0)
        case (.failNth, .read), (.knob, .read):
            guard let c = client(req.pid) else { return (0, ESRCH) }
            var text: String
            switch kind {
            case .knob(let path): text = knobs[path] ?? "0"
            case .failNth(let tid): text = "\(failNth[tid] ?? 0)"
            default: text = ""
            }
            text += "\n"
            let bytes = Array(text.utf8.prefix(Int(clamping: req.len)))
            do { try c.memory.copyToUser(req.arg, bytes) } catch { return (0, EFAULT) }
            return (Int64(bytes.count), 0)
        case (.failNth, .write), (.knob, .write):
            guard let c = client(req.pid) else { return (0, ESRCH) }
            guard req.len <= 64, let bytes = try? c.memory.copyFromUser(req.arg, count: Int(req.len)) else {
                return (0, req.len > 64 ? EINVAL : EFAULT)
            }
            let text = String(decoding: bytes, as: UTF8.self).trimmingWhitespace
            switch kind {
            case .knob(let path):
                knobs[path] = text
            case .failNth(let tid):
                // kstrtouint(buf, 0, &n): decimal, 0x-hex or 0-octal.
                guard let n = Self.parseUInt(text) else { return (0, EINVAL) }
                failNth[tid] = n
            default:
                break
            }
            return (Int64(req.len), 0)
        default:
            return (0, op == .ioctl ? ENOTTY : EINVAL)
        }
    }

    static func parseUInt(_ s: String) -> Int? {
        if s.hasPrefix("0x") || s.hasPrefix("0X") { return Int(s.dropFirst(2), radix: 16) }
        if s.count > 1, s.hasPrefix("0") { return Int(s.dropFirst(), radix: 8) }
        return Int(s)
    }

    private func open(_ fd: Int32, _ req: Wire.Request) -> (Int64, Int32) {
        guard let what = Wire.OpenKind(rawValue: req.cmd) else { return (0, EINVAL) }
        switch what {
        case .iommu, .vfioContainer:
            if let old = clients[req.pid], !old.isAlive { retire(old) }
            guard let c = client(req.pid) else { return (0, ESRCH) }
            let ctx = IOMMUFD(machine: machine, process: c.mm, user: c.memory, credentials: credentials(req.pid),
                              accounting: c.accounting, testBackend: backend,
                              vfioContainer: what == .vfioContainer)
            let sc = ServedContext(id: nextContextID, ctx: ctx)
            nextContextID += 1
            ctx.fileInstaller = { [unowned self] kind in self.install(kind, for: sc) }
            conns[fd] = .context(sc)
            log.line("conn \(fd) pid \(req.pid): open \(what == .iommu ? "/dev/iommu" : "/dev/vfio/vfio") → ctx \(sc.id)")
        case .failNth:
            conns[fd] = .failNth(Int32(truncatingIfNeeded: req.len))
        case .vmStatus:
            return vmStatus(pid: Int32(truncatingIfNeeded: req.len), caller: req.pid)
        case .debugfsKnob:
            guard let c = client(req.pid), req.len > 0, req.len < 4096,
                  let bytes = try? c.memory.copyFromUser(req.arg, count: Int(req.len)) else { return (0, EFAULT) }
            conns[fd] = .knob(String(decoding: bytes, as: UTF8.self))
        }
        return (0, 0)
    }

    /// `VmPin` (`mm->pinned_vm`) and `VmLck` (`mm->locked_vm`) the model charged to the
    /// mm of `pid`, in pages, packed as `VmPin | VmLck << 32` for the shim's
    /// `/proc/<pid>/status`. Summed over every client's accounting, since a context
    /// opened by one process charges whichever process pins (a forked child, or the
    /// caller of `IOMMU_IOAS_CHANGE_PROCESS`). `ESRCH` for a pid the service does not
    /// know (neither the caller, nor a client, nor charged): the shim then shows the
    /// real file unchanged.
    private func vmStatus(pid: Int32, caller: Int32) -> (Int64, Int32) {
        var seen = Set<ObjectIdentifier>()
        var pinned: UInt64 = 0, locked: UInt64 = 0
        for c in Array(clients.values) + retired where seen.insert(ObjectIdentifier(c.accounting)).inserted {
            pinned += c.accounting.pinnedPages(pid: pid)
            locked += c.accounting.mmLockedPages(pid: pid)
        }
        guard pid == caller || clients[pid] != nil || pinned + locked > 0 else { return (0, ESRCH) }
        return (Int64(min(pinned, 0xFFFF_FFFF) | min(locked, 0xFFFF_FFFF) << 32), 0)
    }

    /// The opener's capabilities and `RLIMIT_MEMLOCK`, as the policy says.
    private func credentials(_ pid: Int32) -> IOMMUFDCredentials {
        var capEff: UInt64 = ~0
        var memlock: UInt64 = .max
        if let status = readSmallFile("/proc/\(pid)/status"),
           let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }),
           let v = UInt64(line.dropFirst(7).trimmingCharacters, radix: 16) { capEff = v }
        if let limits = readSmallFile("/proc/\(pid)/limits"),
           let line = limits.split(separator: "\n").first(where: { $0.hasPrefix("Max locked memory") }) {
            let f = line.dropFirst("Max locked memory".count).split(separator: " ")
            if let soft = f.first, let bytes = UInt64(soft) { memlock = bytes / 4096 }
        }
        func grant(_ p: CapabilityPolicy, _ bit: UInt64) -> Bool {
            switch p { case .on: true; case .off: false; case .caller: capEff & (1 << bit) != 0 }
        }
        return IOMMUFDCredentials(capIPCLock: grant(options.capIPCLock, 14),
                                  capSysResource: grant(options.capSysResource, 24),
                                  memlockLimitPages: memlock)
    }

    /// Arms the task's `fail_nth` around one request, as the kernel's per-task counter
    /// runs through every injection point the task reaches.
    private func withFailNth<R>(_ ctx: IOMMUFD, tid: Int32, _ body: () -> R) -> R {
        guard let n = failNth[tid], n > 0 else { return body() }
        ctx.faultInjection.arm(n)
        let r = body()
        let reached = ctx.faultInjection.reached
        let fired = ctx.faultInjection.disarm()
        failNth[tid] = fired ? 0 : max(0, n - reached)
        return r
    }

    private func ioctl(_ sc: ServedContext, _ req: Wire.Request) -> (Int64, Int32) {
        guard let c = client(req.pid) else { return (0, ESRCH) }
        // Mirror the user memory an ioctl is about to pin (see Client.sync).
        let nr = req.cmd & 0xff, type = (req.cmd >> 8) & 0xff
        if type == 0x3B, nr == 0x85, let b = try? c.memory.copyFromUser(req.arg, count: 32) {
            c.sync(le64(b, 16), le64(b, 24))            // iommu_ioas_map.user_va, .length
        } else if type == 0x3B, nr == 113, let b = try? c.memory.copyFromUser(req.arg, count: 32) {
            c.sync(le64(b, 8), le64(b, 24))             // vfio_iommu_type1_dma_map.vaddr, .size
        } else if type == 0x3B, nr == 0xA0, let b = try? c.memory.copyFromUser(req.arg, count: 32),
                  le64(b, 0) >> 32 == UInt64(IOMMUTestOp.mdCheckRefs) {
            // MD_CHECK_REFS walks the pages as get_user_pages_fast: they must be there.
            c.sync(le64(b, 24), le64(b, 16))            // iommu_test_cmd.check_refs.uptr, .length
        }
        // IOAS_MAP_FILE: the caller's descriptor, under its own number (see ClientFiles).
        var installed: Int32?
        if type == 0x3B, nr == 0x8F, let b = try? c.memory.copyFromUser(req.arg, count: 40) {
            let fd = Int32(bitPattern: UInt32(truncatingIfNeeded: le64(b, 8) >> 32))   // iommu_ioas_map_file.fd
            installed = clientFiles.prepare(c, fd: fd, start: le64(b, 16), length: le64(b, 24))
        }
        let rc = withFailNth(sc.ctx, tid: req.tid) {
            sc.ctx.withCaller(c.mm, memory: c.memory) { sc.ctx.ioctl(req.cmd, req.arg) }
        }
        if let installed { try? c.mm.close(fd: installed) }
        if clientFiles.count > 0 { clientFiles.sweep() }
        if rc < 0 {
            log.line("pid \(req.pid) ctx \(sc.id): \(ioctlName(req.cmd)) → -\(errnoName(-rc))")
            return (0, -rc)
        }
        if log.verbose { log.line("pid \(req.pid) ctx \(sc.id): \(ioctlName(req.cmd)) → \(rc)") }
        return (Int64(rc), 0)
    }

    private func le64(_ b: [UInt8], _ o: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[o + $1]) << (8 * $1) } }

    // MARK: files

    /// The context's ``IOMMUFDFileInstaller``: a new socket pair, one end kept as the
    /// file's connection, the other sent to the caller (`INSTALL` upcall); the caller's
    /// fd number comes back.
    private func install(_ kind: IOMMUFDFileKind, for sc: ServedContext) -> Result<Int32, Errno> {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            return .failure(.tooManyOpenFiles)
        }
        defer { close(pair[1]) }
        let fd = replyFD
        guard sendFD(fd, pair[1], Wire.reply(kind: .install, err: 0, ret: Int64(kind.rawValue))) else {
            close(pair[0])
            return .failure(.tooManyOpenFiles)
        }
        // The shim answers at once; a caller that does not is refused after 5 s.
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        var buf = [UInt8](repeating: 0, count: 64)
        let n = poll(&p, 1, 5000) == 1 ? buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) } : -1
        guard n > 0, let ans = Wire.Request(Array(buf[0..<n])), ans.op == Wire.Op.fdInstalled.rawValue else {
            close(pair[0])
            return .failure(.tooManyOpenFiles)
        }
        let number = Int32(truncatingIfNeeded: Int64(bitPattern: ans.arg))
        guard number >= 0 else {
            close(pair[0])
            return .failure(Errno(rawValue: -number))
        }
        // A file of the same number whose last reference went away: release it first.
        reapHungUpFiles(sc)
        conns[pair[0]] = .file(sc, number)
        sc.holders += 1
        installedNow.append((number, pair[0]))
        return .success(number)
    }

    private func reapHungUpFiles(_ sc: ServedContext) {
        for (fd, kind) in conns {
            guard case .file(let s, _) = kind, s === sc else { continue }
            var p = pollfd(fd: fd, events: 0, revents: 0)
            if poll(&p, 1, 0) == 1, p.revents & Int16(POLLHUP) != 0 { hangup(fd) }
        }
    }

    private func sendFD(_ sock: Int32, _ fdToSend: Int32, _ payload: [UInt8]) -> Bool {
        // struct cmsghdr { size_t len; int level; int type; } + one int, padded: CMSG_SPACE(4).
        var control = [UInt8](repeating: 0, count: 24)
        control.withUnsafeMutableBytes { c in
            c.storeBytes(of: 20, toByteOffset: 0, as: Int.self)          // CMSG_LEN(sizeof(int))
            c.storeBytes(of: SOL_SOCKET, toByteOffset: 8, as: Int32.self)
            c.storeBytes(of: Int32(SCM_RIGHTS), toByteOffset: 12, as: Int32.self)
            c.storeBytes(of: fdToSend, toByteOffset: 16, as: Int32.self)
        }
        var data = payload
        return data.withUnsafeMutableBytes { d in
            control.withUnsafeMutableBytes { c in
                var iov = iovec(iov_base: d.baseAddress, iov_len: d.count)
                return withUnsafeMutablePointer(to: &iov) { iovp in
                    var msg = msghdr(msg_name: nil, msg_namelen: 0, msg_iov: iovp, msg_iovlen: 1,
                                     msg_control: c.baseAddress, msg_controllen: c.count, msg_flags: 0)
                    return sendmsg(sock, &msg, Int32(MSG_NOSIGNAL)) == d.count
                }
            }
        }
    }

    // MARK: release

    /// The last reference to a connection's file went away: the file's release.
    private func hangup(_ fd: Int32) {
        guard let kind = conns.removeValue(forKey: fd) else { return }
        close(fd)
        switch kind {
        case .context(let sc):
            log.line("conn \(fd): ctx \(sc.id) /dev/iommu closed")
            drop(sc)
            clientFiles.sweep()
        case .file(let sc, let number):
            _ = sc.ctx.closeFile(number)
            drop(sc)
        case .fresh, .failNth, .knob:
            break
        }
        sweepClients()
    }

    private func drop(_ sc: ServedContext) {
        sc.holders -= 1
        guard sc.holders == 0 else { return }
        sc.ctx.fileInstaller = nil
        sc.ctx.close()
        log.line("ctx \(sc.id) released (iommufd_fops_release)")
    }

    /// Clients that exited stop mirroring; those with nothing pinned are forgotten.
    private func sweepClients() {
        for (pid, c) in clients where !c.isAlive { clients[pid] = nil; retire(c); sweepChannels(pid: pid) }
        retired.removeAll { $0.retire() }
        sweepChannels()
    }

    private func retire(_ c: Client) {
        if clients[c.pid] === c { clients[c.pid] = nil }
        contextMappings.forget(pid: c.pid)
        if !c.retire() { retired.append(c) }
        log.line("pid \(c.pid) exited")
    }
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

extension Substring {
    var trimmingCharacters: String { String(self).trimmingWhitespace }
}
