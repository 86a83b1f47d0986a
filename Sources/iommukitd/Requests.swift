import CIOMMUKitd
import Glibc
import IOMMUCore
import IOMMUDrivers
import IOMMUFD

/// The request a service thread is serving: its channel (for upcalls) and the files it
/// installed so far.
final class RequestScope {
    let channel: TaskChannel
    var installed: [(number: Int32, connection: Connection)] = []
    init(channel: TaskChannel) { self.channel = channel }
}

extension ThreadState {
    private static let scopeKey: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        return k
    }()

    /// The request the calling service thread is serving.
    static var scope: RequestScope? {
        get { pthread_getspecific(scopeKey).map { Unmanaged<RequestScope>.fromOpaque($0).takeUnretainedValue() } }
        set { pthread_setspecific(scopeKey, newValue.map { Unmanaged.passUnretained($0).toOpaque() }) }
    }
}

extension Service {
    /// Serves one request of `channel`'s thread and returns the reply packet.
    func serve(_ r: Request, on channel: TaskChannel) -> [UInt8] {
        epoch.advance()
        let what = r.op == .ioctl ? ioctlName(r.wire.cmd) : "\(r.op)"
        containment.beginRequest(channel, context: nil, client: channel.client, what: what)
        defer { containment.endRequest() }
        // Releases the kernel made due come first (see ``Releases``); then the file the
        // request is about (a connection whose client end is gone must not be taken for
        // a new one that reuses its inode or name).
        releases.drain(service: self)
        var connection: Connection?
        if let fd = r.passed {
            guard let conn = self.connection(passed: fd) else {
                log.limited("badfile \(channel.task)", "\(channel.task): \(what) with an fd that is no file of this service → -EBADF")
                return Wire.reply(err: EBADF, ret: 0)
            }
            connection = conn
        }
        let context = connection.flatMap { conn in state.withLock { conn.kind.context } }
        containment.beginRequest(channel, context: context, client: channel.client, what: what)
        guard let client = channel.client else { return Wire.reply(err: ESRCH, ret: 0) }
        if state.withLock({ client.poisoned || context?.poisoned == true }) { return Wire.reply(err: EIO, ret: 0) }
        let credentials = RequestCredentials(task: channel.task, uid: r.credentials.uid, gid: r.credentials.gid,
                                             process: client.process)
        let scope = RequestScope(channel: channel)
        ThreadState.scope = scope
        defer { ThreadState.scope = nil }
        let (ret, err) = handle(r, connection: connection, client: client, credentials: credentials)
        // Files installed by a request that then failed were never the caller's.
        var toClose: [Int32] = []
        for (number, conn) in scope.installed {
            guard case .file(let sc, _) = state.withLock({ conn.kind }), !sc.ctx.fileNumbers.contains(number) else { continue }
            releases.claim(conn, service: self)
            toClose.append(number)
        }
        if !toClose.isEmpty { releases.drain(service: self) }
        return Wire.reply(err: err, ret: ret, close: toClose)
    }

    /// Serves one request; returns (ret, errno).
    private func handle(_ r: Request, connection: Connection?, client c: Client,
                        credentials: RequestCredentials) -> (Int64, Int32) {
        let req = r.wire
        guard let conn = connection else {
            switch r.op {
            case .release: return (0, 0)     // the drain before serving did it
            case .vmStatus: return vmStatus(pid: Int32(truncatingIfNeeded: req.len), caller: req.pid)
            default: return (0, EINVAL)
            }
        }
        let kind = state.withLock { conn.released ? nil : conn.kind }
        guard let kind else { return (0, EBADF) }
        switch (kind, r.op) {
        case (.fresh, .open):
            return open(conn, req, client: c, credentials: credentials)
        case (.context(let sc), .ioctl):
            return ioctl(sc, req, client: c, credentials: credentials)
        case (.context(let sc), .mmap):
            guard req.len == UInt64(ContextMappings.Request.size),
                  let b = try? c.memory.copyFromUser(req.arg, count: ContextMappings.Request.size) else { return (0, EFAULT) }
            let r = contextMappings.map(sc.ctx, c, ContextMappings.Request(b), machine: machine)
            if r.1 != 0 { log.line("pid \(req.pid) ctx \(sc.id): mmap → -\(errnoName(r.1))") }
            return r
        case (.context, .munmap):
            return contextMappings.unmap(c, address: req.arg, length: req.len)
        case (.file(let sc, let number), .read), (.file(let sc, let number), .write):
            let reading = r.op == .read
            let n = sc.ctx.withCaller(c.mm, memory: c.memory, credentials: served(credentials)) {
                withFailNth(sc.ctx, tid: req.tid) {
                    reading ? sc.ctx.readFile(number, buffer: req.arg, count: Int(clamping: req.len))
                            : sc.ctx.writeFile(number, buffer: req.arg, count: Int(clamping: req.len))
                }
            }
            if n < 0 {
                log.line("pid \(req.pid) ctx \(sc.id) fd \(number): \(reading ? "read" : "write") → -\(errnoName(Int32(-n)))")
                return (0, Int32(-n))
            }
            return (Int64(n), 0)
        case (.file(let sc, let number), .poll):
            let r = sc.ctx.pollFile(number)
            return r < 0 ? (0, -r) : (Int64(r), 0)
        case (.failNth, .read), (.knob, .read):
            var text: String
            switch kind {
            case .knob(let path): text = state.withLock { knobs[path] } ?? "0"
            case .failNth(let tid): text = "\(state.withLock { failNth[tid] } ?? 0)"
            default: text = ""
            }
            text += "\n"
            let bytes = Array(text.utf8.prefix(Int(clamping: req.len)))
            do { try c.memory.copyToUser(req.arg, bytes) } catch { return (0, EFAULT) }
            return (Int64(bytes.count), 0)
        case (.failNth, .write), (.knob, .write):
            guard req.len <= 64, let bytes = try? c.memory.copyFromUser(req.arg, count: Int(req.len)) else {
                return (0, req.len > 64 ? EINVAL : EFAULT)
            }
            let text = String(decoding: bytes, as: UTF8.self).trimmingWhitespace
            switch kind {
            case .knob(let path):
                state.withLock { knobs[path] = text }
            case .failNth(let tid):
                // kstrtouint(buf, 0, &n): decimal, 0x-hex or 0-octal.
                guard let n = Self.parseUInt(text) else { return (0, EINVAL) }
                state.withLock { failNth[tid] = n }
            default:
                break
            }
            return (Int64(req.len), 0)
        default:
            return (0, r.op == .ioctl ? ENOTTY : EINVAL)
        }
    }

    static func parseUInt(_ s: String) -> Int? {
        if s.hasPrefix("0x") || s.hasPrefix("0X") { return Int(s.dropFirst(2), radix: 16) }
        if s.count > 1, s.hasPrefix("0") { return Int(s.dropFirst(), radix: 8) }
        return Int(s)
    }

    private func open(_ conn: Connection, _ req: Wire.Request, client c: Client,
                      credentials: RequestCredentials) -> (Int64, Int32) {
        guard let what = Wire.OpenKind(rawValue: req.cmd) else { return (0, EINVAL) }
        let kind: ConnKind
        switch what {
        case .iommu, .vfioContainer:
            let creds = IOMMUFDCredentials(capIPCLock: options.capIPCLock.grants(.ipcLock, to: credentials),
                                           capSysResource: options.capSysResource.grants(.sysResource, to: credentials),
                                           memlockLimitPages: credentials.memlockLimitPages)
            let ctx = IOMMUFD(machine: machine, process: c.mm, user: c.memory, credentials: creds,
                              accounting: c.accounting, testBackend: backend,
                              vfioContainer: what == .vfioContainer)
            let sc = state.withLock { () -> ServedContext in
                defer { nextContextID += 1 }
                return ServedContext(id: nextContextID, ctx: ctx)
            }
            ctx.fileInstaller = { [unowned self] kind in self.install(kind, for: sc) }
            kind = .context(sc)
            log.line("conn \(conn.fd) \(credentials.task): open \(what == .iommu ? "/dev/iommu" : "/dev/vfio/vfio") → ctx \(sc.id)")
        case .failNth:
            kind = .failNth(Int32(truncatingIfNeeded: req.len))
        case .debugfsKnob:
            guard req.len > 0, req.len < 4096, let bytes = try? c.memory.copyFromUser(req.arg, count: Int(req.len)) else {
                return (0, EFAULT)
            }
            let path = String(decoding: bytes, as: UTF8.self)
            guard path.hasPrefix("/sys/kernel/debug/") else { return (0, ENOENT) }
            kind = .knob(path)
        }
        let opened = state.withLock { () -> Bool in
            guard case .fresh = conn.kind, !conn.released else { return false }
            conn.kind = kind
            return true
        }
        if !opened { log.line("conn \(conn.fd) \(credentials.task): OPEN of a connection already open or released → -EBADF") }
        return opened ? (0, 0) : (0, EBADF)
    }

    /// `VmPin` (`mm->pinned_vm`) and `VmLck` (`mm->locked_vm`) the model charged to the
    /// mm of `pid`, in pages, packed as `VmPin | VmLck << 32` for the shim's
    /// `/proc/<pid>/status`. Summed over every client's accounting, since a context
    /// opened by one process charges whichever process pins (a forked child, or the
    /// caller of `IOMMU_IOAS_CHANGE_PROCESS`). `ESRCH` for a pid the service does not
    /// know (neither the caller, nor a client, nor charged): the shim then shows the
    /// real file unchanged.
    private func vmStatus(pid: Int32, caller: Int32) -> (Int64, Int32) {
        let (all, known, poisoned) = state.withLock { (Array(clients.values) + retired, clients[pid] != nil, poisonedAccounting) }
        var seen = poisoned
        var pinned: UInt64 = 0, locked: UInt64 = 0
        for c in all where seen.insert(ObjectIdentifier(c.accounting)).inserted {
            pinned += c.accounting.pinnedPages(pid: pid)
            locked += c.accounting.mmLockedPages(pid: pid)
        }
        guard pid == caller || known || pinned + locked > 0 else { return (0, ESRCH) }
        return (Int64(min(pinned, 0xFFFF_FFFF) | min(locked, 0xFFFF_FFFF) << 32), 0)
    }

    /// Arms the task's `fail_nth` around one request (call with the context's lock held,
    /// inside ``IOMMUFD/withCaller(_:memory:credentials:_:)``), as the kernel's per-task counter runs
    /// through every injection point the task reaches.
    private func withFailNth<R>(_ ctx: IOMMUFD, tid: Int32, _ body: () -> R) -> R {
        guard let n = state.withLock({ failNth[tid] }), n > 0 else { return body() }
        ctx.faultInjection.arm(n)
        let r = body()
        let reached = ctx.faultInjection.reached
        let fired = ctx.faultInjection.disarm()
        state.withLock { failNth[tid] = fired ? 0 : max(0, n - reached) }
        return r
    }

    /// The credential source for the model while it serves one request.
    private func served(_ credentials: RequestCredentials) -> ServedCredentials {
        ServedCredentials(task: credentials, capIPCLock: options.capIPCLock, capSysResource: options.capSysResource)
    }

    private func ioctl(_ sc: ServedContext, _ req: Wire.Request, client c: Client,
                       credentials: RequestCredentials) -> (Int64, Int32) {
        // User memory is mirrored by each client's pager when the model pins it (see
        // Client). IOAS_MAP_FILE pins the file, not the mm: the caller's descriptor is
        // installed under its own number first (see SharedObjects).
        let nr = req.cmd & 0xff, type = (req.cmd >> 8) & 0xff
        var installed: Int32?
        if type == 0x3B, nr == 0x8F, let b = try? c.memory.copyFromUser(req.arg, count: 40) {
            let fd = Int32(bitPattern: UInt32(truncatingIfNeeded: le64(b, 8) >> 32))   // iommu_ioas_map_file.fd
            installed = objects.prepareMapFile(c, fd: fd, start: le64(b, 16), length: le64(b, 24))
        }
        let rc = sc.ctx.withCaller(c.mm, memory: c.memory, credentials: served(credentials)) {
            withFailNth(sc.ctx, tid: req.tid) { sc.ctx.ioctl(req.cmd, req.arg) }
        }
        if let installed { try? c.mm.close(fd: installed) }
        // Unmaps and destroys may have dropped the last pins of many pages.
        if type == 0x3B, rc >= 0, nr == 0x80 || nr == 0x86 || nr == 114 { returnMemoryAfterUnmap() }
        if rc < 0 {
            log.line("pid \(req.pid) ctx \(sc.id): \(ioctlName(req.cmd)) → -\(errnoName(-rc))")
            return (0, -rc)
        }
        if log.verbose { log.line("pid \(req.pid) ctx \(sc.id): \(ioctlName(req.cmd)) → \(rc)") }
        return (Int64(rc), 0)
    }

    /// ``returnMemory()`` after an unmap, at most every 100 ms (a program that unmaps
    /// page by page does not pay a scan per page).
    private func returnMemoryAfterUnmap() {
        let now = monotonicNow()
        let due = state.withLock { () -> Bool in
            guard now - lastMemoryReturn >= 0.1 else { return false }
            lastMemoryReturn = now
            return true
        }
        if due { returnMemory() }
    }

    private func le64(_ b: [UInt8], _ o: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[o + $1]) << (8 * $1) } }

    // MARK: files

    /// The context's ``IOMMUFDFileInstaller``: a new socket pair, one end kept as the
    /// file's connection, the other sent to the calling thread (`INSTALL` upcall on its
    /// channel); the caller's fd number comes back.
    private func install(_ kind: IOMMUFDFileKind, for sc: ServedContext) -> Result<Int32, Errno> {
        guard let scope = ThreadState.scope else { return .failure(.tooManyOpenFiles) }
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            return .failure(.tooManyOpenFiles)
        }
        _ = fcntl(pair[0], F_SETFL, O_NONBLOCK)
        _ = ikd_set_passcred(pair[0])
        let clientInode = inode(of: pair[1])
        let answer = scope.channel.upcallInstall(kind, fd: pair[1])
        close(pair[1])
        guard let number = answer, number >= 0 else {
            close(pair[0])
            return .failure(answer.map { Errno(rawValue: -$0) } ?? .tooManyOpenFiles)
        }
        let conn = Connection(fd: pair[0], kind: .file(sc, number))
        conn.clientInode = clientInode
        state.withLock {
            conns[pair[0]] = conn
            connByInode[conn.clientInode] = conn
            sc.holders += 1
        }
        pokeIOThread()
        scope.installed.append((number, conn))
        return .success(number)
    }
}
