import CIOMMUKitd
import Glibc
import IOMMUCore
import IOMMUFD

/// A request on its way to be served: the packet's fields, the connection it came on
/// (nil for a request about the thread itself, read from its channel) and the
/// credentials the kernel attached to it.
struct Request {
    let wire: Wire.Request
    let op: Wire.Op
    let connection: Connection?
    let credentials: KernelCredentials
}

/// One thread of a client and the service thread that serves it.
///
/// Each registered reply channel (see ``ChannelProof``) gets a service thread of its
/// own, which serves the thread's requests one after the other, as the kernel runs one
/// task's system calls: requests from its file connections (queued here by the
/// service's I/O thread) and requests about the thread itself (read from the channel).
/// So a client that is slow, blocked or hostile holds up only its own thread's service
/// thread: never the I/O thread and never another client. Replies never block: a
/// client whose channel stays full for ``Service/replyTimeout`` is disconnected.
final class TaskChannel: @unchecked Sendable {
    let task: TaskID
    /// The service's end of the channel (closed when the channel ends).
    let socket: Int32
    unowned let service: Service
    /// The process, once the channel is registered.
    private(set) var client: Client?
    private let lock = Lock()
    private var queue: [Request] = []
    /// Woken when a request is queued or the channel is to end.
    private let wake: (read: Int32, write: Int32)
    private var ending = false
    /// What the service thread is doing now (for trap reports), and its containment slot.
    private var _current: String?
    private var _slot: Int32 = -1
    /// The shim's end, passed with `CHANNEL`, until the registration is proven.
    private var shimEnd: Int32

    /// Requests a well-behaved thread can have queued (it waits for each reply before
    /// the next); more mean a client that does not read its replies.
    static let queueLimit = 16

    init(task: TaskID, socket: Int32, shimEnd: Int32, service: Service) {
        self.task = task
        self.socket = socket
        self.shimEnd = shimEnd
        self.service = service
        var p: [Int32] = [-1, -1]
        pipe(&p)
        for fd in p { _ = fcntl(fd, F_SETFD, FD_CLOEXEC); _ = fcntl(fd, F_SETFL, O_NONBLOCK) }
        wake = (p[0], p[1])
    }

    deinit {
        close(wake.read)
        close(wake.write)
    }

    var current: String? { lock.withLock { _current } }
    var slot: Int32 { lock.withLock { _slot } }

    enum Enqueued { case queued, full, ending }

    /// Queues a request from a file connection: `.full` when the thread already has
    /// ``queueLimit`` waiting, `.ending` (dropped) once the channel is ending.
    func enqueue(_ r: Request) -> Enqueued {
        let result = lock.withLock { () -> Enqueued in
            guard !ending else { return .ending }
            guard queue.count < Self.queueLimit else { return .full }
            queue.append(r)
            return .queued
        }
        if result == .queued { poke() }
        return result
    }

    /// Asks the service thread to end the channel (it closes the socket on its way out).
    func end() {
        lock.withLock { ending = true }
        poke()
    }

    private func poke() {
        var b: UInt8 = 1
        _ = write(wake.write, &b, 1)
    }

    /// Starts a service thread for this channel with containment slot `slot`: the first
    /// one registers the channel, a replacement (after a trap) carries on serving.
    func start(slot: Int32) -> Bool {
        lock.withLock { _slot = slot; _current = nil }
        return startThread { [self] in self.run(slot: slot) }
    }

    private func run(slot: Int32) {
        _ = ikd_worker_enter(slot)
        defer { ikd_worker_leave() }
        ThreadState.channel = self
        if shimEnd >= 0 {
            let proven = register()
            close(shimEnd)
            shimEnd = -1
            guard proven else { finish(); return }
        }
        while true {
            if lock.withLock({ ending }) { break }
            if let r = lock.withLock({ queue.isEmpty ? nil : queue.removeFirst() }) {
                serve(r)
                continue
            }
            var fds = [pollfd(fd: socket, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0)]
            guard poll(&fds, 2, 1000) > 0 else { continue }
            if fds[1].revents != 0 {
                var b = [UInt8](repeating: 0, count: 64)
                while read(wake.read, &b, b.count) > 0 {}
            }
            if fds[0].revents != 0 {
                guard let p = Packet.receive(socket) else { continue }
                p.closeFDs()
                guard !p.bytes.isEmpty || p.credentials != nil else { break }   // hang-up: the thread is gone
                readFromChannel(p)
            }
        }
        finish()
    }

    /// The registration (see ``ChannelProof``); answers the `CHANNEL` packet.
    private func register() -> Bool {
        guard let process = ProcessHandle.peer(of: socket, pid: task.pid) else {
            service.log.line("\(task): channel refused: the process is gone")
            return false
        }
        if let why = ChannelProof.verify(channel: socket, shimEnd: shimEnd, task: task, process: process) {
            service.log.line("\(task): channel refused (EPERM): \(why)")
            _ = sendPacket(socket, Wire.reply(err: EPERM, ret: 0))
            return false
        }
        client = service.register(self, process: process)
        return sendPacket(socket, Wire.reply(err: 0, ret: 0))
    }

    /// A packet the thread sent on its channel: a request about itself.
    private func readFromChannel(_ p: Packet) {
        guard let wire = p.bytes.withUnsafeBytes({ Wire.Request($0) }), let op = Wire.Op(rawValue: wire.op),
              op == .release || op == .vmStatus else {
            // An FD_INSTALLED outside an upcall, or garbage: not a request.
            service.log.limited("unexpected \(task)", "\(task): unexpected packet of \(p.bytes.count) bytes on the channel; ignored")
            return
        }
        guard let cred = p.credentials, cred.pid == task.pid, wire.pid == task.pid, wire.tid == task.tid else {
            service.log.limited("chanclaim \(task)", "\(task): refused (EPERM): channel request claims pid \(wire.pid) tid \(wire.tid), kernel says \(p.credentials.map { "\($0)" } ?? "nothing")")
            _ = reply(Wire.reply(err: EPERM, ret: 0))
            return
        }
        serve(Request(wire: wire, op: op, connection: nil, credentials: cred))
    }

    private func serve(_ r: Request) {
        lock.withLock { _current = "\(r.connection == nil ? "" : "ctx request ")\(r.op)\(r.op == .ioctl ? " \(ioctlName(r.wire.cmd))" : "")" }
        defer { lock.withLock { _current = nil } }
        let answer = service.serve(r, on: self)
        _ = reply(answer)
    }

    /// Sends a reply or upcall on the channel (``sendPacket(_:_:fd:timeout:)``); a
    /// thread that does not read its channel is disconnected.
    @discardableResult
    func reply(_ bytes: [UInt8], fd: Int32 = -1) -> Bool {
        if sendPacket(socket, bytes, fd: fd) { return true }
        service.log.line("\(task): does not read its replies (\(errnoName(errno))); disconnected")
        end()
        return false
    }

    /// The `INSTALL` upcall: sends `fd` to the thread and waits, bounded, for the fd
    /// number it installed it under. nil when the thread did not answer (it is then
    /// disconnected).
    func upcallInstall(_ kind: IOMMUFDFileKind, fd: Int32) -> Int32? {
        guard reply(Wire.reply(kind: .install, err: 0, ret: Int64(kind.rawValue)), fd: fd) else { return nil }
        let deadline = monotonicNow() + Service.replyTimeout
        while waitReadable(socket, timeout: max(0, deadline - monotonicNow())) {
            guard let p = Packet.receive(socket) else { continue }
            p.closeFDs()
            if p.bytes.isEmpty && p.credentials == nil { break }
            if let a = p.bytes.withUnsafeBytes({ Wire.Request($0) }), a.op == Wire.Op.fdInstalled.rawValue,
               p.credentials?.pid == task.pid {
                return Int32(truncatingIfNeeded: Int64(bitPattern: a.arg))
            }
        }
        service.log.line("\(task): did not answer an INSTALL upcall; disconnected")
        end()
        return nil
    }

    private func finish() {
        lock.withLock { ending = true; queue = [] }
        service.channelEnded(self)
        close(socket)
    }
}

/// Per-thread state of the service's own threads.
enum ThreadState {
    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        return k
    }()

    /// The channel whose request the calling service thread is serving.
    static var channel: TaskChannel? {
        get { pthread_getspecific(key).map { Unmanaged<TaskChannel>.fromOpaque($0).takeUnretainedValue() } }
        set { pthread_setspecific(key, newValue.map { Unmanaged.passUnretained($0).toOpaque() }) }
    }
}
