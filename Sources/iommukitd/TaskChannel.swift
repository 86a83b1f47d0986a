import CIOMMUKitd
import Glibc
import IOMMUCore
import IOMMUFD

/// A request on its way to be served: the packet's fields, the file it is about (the
/// client's fd passed with it; nil for a request about the thread itself) and the
/// credentials the kernel attached to it.
struct Request {
    let wire: Wire.Request
    let op: Wire.Op
    let passed: Int32?
    let credentials: KernelCredentials
}

/// One thread of a client and the service thread that serves it.
///
/// Each registered reply channel (see ``ChannelProof``) gets a service thread of its
/// own, which reads the thread's requests from the channel and serves them one after
/// the other, as the kernel runs one task's system calls. So a client that is slow,
/// blocked or hostile holds up only its own thread's service thread: never the I/O
/// thread and never another client. Replies never block: a client whose channel stays
/// full for ``Service/replyTimeout`` is disconnected. After a request the service thread
/// polls its channel for a short while before sleeping, as the shim polls for its reply:
/// back-to-back ioctls then pay no wake-up. Polling pays only while the client runs on
/// another core; on a loaded machine it burns the time slice the client needs. So the
/// rule is the shim's (`recv_reply` in `preload.c`): each empty poll yields the CPU;
/// after ``spinMisses`` polls in a row that found nothing the thread sleeps at once,
/// probing with a poll once every ``spinProbe`` requests, and a poll that catches the
/// next request resumes polling.
final class TaskChannel: @unchecked Sendable {
    let task: TaskID
    /// The service's end of the channel (closed when the channel ends).
    let socket: Int32
    unowned let service: Service
    /// The process, once the channel is registered.
    private(set) var client: Client?
    private let lock = Lock()
    /// Woken when the channel is to end.
    private let wake: (read: Int32, write: Int32)
    private var ending = false
    /// The shim's end, passed with `CHANNEL`, until the registration is proven.
    private var shimEnd: Int32

    /// How long the service thread polls its channel after a request before sleeping.
    static let spin = 50e-6
    /// Polls in a row that found nothing before the thread stops polling.
    static let spinMisses = 2
    /// While not polling, one request in this many is followed by a probing poll.
    static let spinProbe = 8

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

    /// Asks the service thread to end the channel (it closes the socket on its way out).
    func end() {
        lock.withLock { ending = true }
        var b: UInt8 = 1
        _ = write(wake.write, &b, 1)
    }

    /// Starts a service thread for this channel with containment slot `slot`: the first
    /// one registers the channel, a replacement (after a trap) carries on serving.
    func start(slot: Int32) -> Bool {
        startThread { [self] in self.run(slot: slot) }
    }

    private func run(slot: Int32) {
        _ = ikd_worker_enter(slot)
        defer { ikd_worker_leave() }
        if shimEnd >= 0 {
            let proven = register()
            close(shimEnd)
            shimEnd = -1
            guard proven else { finish(); return }
        }
        var spinUntil = 0.0       // 0: not polling
        var misses = 0, skipped = 0
        var fds = [pollfd(fd: socket, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0)]
        while !lock.withLock({ ending }) {
            // Right after a request, look without sleeping while that pays; then sleep
            // until something comes.
            var spinning = false
            if spinUntil > 0 {
                spinning = monotonicNow() < spinUntil
                if !spinning {
                    spinUntil = 0
                    misses = min(misses + 1, Self.spinMisses)
                }
            }
            fds[0].revents = 0
            fds[1].revents = 0
            guard poll(&fds, 2, spinning ? 0 : 1000) > 0 else {
                if spinning { sched_yield() }
                continue
            }
            if spinning && fds[0].revents != 0 { misses = 0 }
            spinUntil = 0
            if fds[1].revents != 0 {
                var b = [UInt8](repeating: 0, count: 64)
                while read(wake.read, &b, b.count) > 0 {}
            }
            guard fds[0].revents != 0 else { continue }
            guard let p = Packet.receive(socket) else {
                if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { continue }
                break
            }
            guard !p.bytes.isEmpty || p.credentials != nil else { break }   // hang-up: the thread is gone
            readFromChannel(p)
            skipped += 1
            if misses < Self.spinMisses || skipped >= Self.spinProbe {
                skipped = 0
                spinUntil = monotonicNow() + Self.spin
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

    /// One packet the thread sent on its channel: a request. Requests about a file carry
    /// it (the kernel vouches that the sender holds it); the service's end of its
    /// connection is found from it (``Service/connection(passed:)``).
    private func readFromChannel(_ p: Packet) {
        defer { p.closeFDs() }
        guard let wire = p.bytes.withUnsafeBytes({ Wire.Request($0) }), let op = Wire.Op(rawValue: wire.op),
              op != .channel, op != .fdInstalled else {
            // An FD_INSTALLED outside an upcall, or garbage: not a request.
            service.log.limited("unexpected \(task)", "\(task): unexpected packet of \(p.bytes.count) bytes on the channel; ignored")
            return
        }
        guard let cred = p.credentials, cred.pid == task.pid, wire.pid == task.pid, wire.tid == task.tid else {
            service.log.limited("chanclaim \(task)", "refused (EPERM): \(task): \(op) claims pid \(wire.pid) tid \(wire.tid) on its channel, kernel says \(p.credentials.map { "\($0)" } ?? "nothing")")
            _ = reply(Wire.reply(err: EPERM, ret: 0))
            return
        }
        var passed: Int32?
        if op != .release && op != .vmStatus {
            guard p.fds.count == 1 else {
                _ = reply(Wire.reply(err: EBADF, ret: 0))
                return
            }
            passed = p.fds[0]
        }
        // The passed fd stays open until the reply is sent: like a system call in
        // progress, the request holds the file.
        _ = reply(service.serve(Request(wire: wire, op: op, passed: passed, credentials: cred), on: self))
    }

    /// Sends a reply or upcall on the channel (``sendPacket(_:_:fd:timeout:)``); a
    /// thread that does not read its channel is disconnected.
    @discardableResult
    func reply(_ bytes: [UInt8], fd: Int32 = -1) -> Bool {
        if sendPacket(socket, bytes, fd: fd) { return true }
        let e = errno
        service.log.line(e == EPIPE || e == ECONNRESET ? "\(task): gone before its reply"
                                                        : "\(task): does not read its replies (\(errnoName(e))); disconnected")
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
        lock.withLock { ending = true }
        service.channelEnded(self)
        close(socket)
    }
}

/// Per-thread state of the service's own threads.
enum ThreadState {}
