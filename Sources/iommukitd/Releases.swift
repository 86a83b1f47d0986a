import CIOMMUKitd
import Glibc
import IOMMUCore
import IOMMUFD

/// File releases and process exits, finished when the kernel makes them due.
///
/// In the kernel, closing the last reference to a file runs its release before
/// `close()` returns, and a process's files are released before its parent's `wait()`
/// returns. Here the kernel tells the service that a connection's last reference went
/// away (the service's end polls `POLLHUP`) and that a process exited (its pidfd polls
/// readable) at the same moments, so every request first finishes every release that
/// is due (``drain(service:)``): a parent that waited for its child, or a thread whose
/// `close()` sent `RELEASE`, then finds the state the kernel would show. Releases nobody
/// asks about are finished by the releaser thread, which the I/O thread wakes when it
/// sees a hang-up.
final class Releases: @unchecked Sendable {
    private let cond = Condition()
    /// Claimed releases not finished yet (under `cond`).
    private var inProgress = 0
    /// Claimed releases nobody has started yet (under `cond`).
    private var pending: [Connection] = []
    private var wake: (read: Int32, write: Int32) = (-1, -1)

    /// Starts the releaser thread.
    func startReleaser(service: Service) -> Bool {
        var p: [Int32] = [-1, -1]
        pipe(&p)
        for fd in p { _ = fcntl(fd, F_SETFD, FD_CLOEXEC); _ = fcntl(fd, F_SETFL, O_NONBLOCK) }
        wake = (p[0], p[1])
        return restartReleaser(service: service)
    }

    /// (Re)starts the releaser thread with a fresh containment slot.
    func restartReleaser(service: Service) -> Bool {
        let slot = service.containment.newReleaserSlot()
        return startThread { [self] in
            _ = ikd_worker_enter(slot)
            while true {
                var p = pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0)
                _ = poll(&p, 1, 1000)
                var b = [UInt8](repeating: 0, count: 64)
                while read(wake.read, &b, b.count) > 0 {}
                drain(service: service)
            }
        }
    }

    /// Wakes the releaser thread.
    func poke() {
        var b: UInt8 = 1
        _ = write(wake.write, &b, 1)
    }

    /// Finishes every release that is due now, and waits for those other threads are
    /// finishing.
    func drain(service: Service) {
        // Connections whose last reference is gone, then processes that exited (a
        // process's files are released before its exit is reported, as in do_exit).
        // One poll over every connection (hang-up) and every client's pidfd (exit).
        let (watched, clients) = service.state.withLock {
            (service.conns.values.filter { !$0.released }, Array(service.clients.values))
        }
        var pfds = watched.map { pollfd(fd: $0.fd, events: 0, revents: 0) }
            + clients.map { pollfd(fd: $0.process.pidfd, events: Int16(POLLIN), revents: 0) }
        var exited: [Client] = []
        if !pfds.isEmpty, poll(&pfds, nfds_t(pfds.count), 0) > 0 {
            for (conn, p) in zip(watched, pfds) where p.revents & Int16(POLLHUP) != 0 {
                claim(conn, service: service)
            }
            exited = zip(clients, pfds.dropFirst(watched.count)).filter { $0.1.revents != 0 }.map(\.0)
        }
        while let conn = cond.withLock({ pending.isEmpty ? nil : pending.removeFirst() }) {
            perform(conn, service: service)
        }
        if !exited.isEmpty {
            let gone = service.state.withLock { () -> [Client] in
                let gone = exited.filter { service.clients[$0.pid] === $0 }
                for c in gone { service.clients[c.pid] = nil }
                return gone
            }
            for c in gone { service.retire(c) }
        }
        // Releases other threads claimed: this request may depend on them.
        cond.withLock { while inProgress > 0 { cond.wait(seconds: 1) } }
    }

    /// Makes the release of `conn` due (once): the next ``drain(service:)``, on whichever
    /// thread, performs it.
    func claim(_ conn: Connection, service: Service) {
        let mine = service.state.withLock { () -> Bool in
            guard !conn.released else { return false }
            conn.released = true
            return true
        }
        if mine {
            cond.withLock {
                inProgress += 1
                pending.append(conn)
            }
        }
    }

    /// One connection's release (claimed): stray packets still queued on it are refused,
    /// then the file's release runs in the model, then the I/O thread closes the
    /// service's end.
    private func perform(_ conn: Connection, service: Service) {
        defer { finished() }
        while let p = Packet.receive(conn.fd), !(p.bytes.isEmpty && p.credentials == nil) {
            service.route(p, on: conn)
        }
        let kind = service.state.withLock { () -> ConnKind in
            service.conns[conn.fd] = nil
            service.forgetLocked(conn)
            service.toClose.append(conn.fd)
            return conn.kind
        }
        service.pokeIOThread()
        service.containment.beginRelease(kind.context)
        defer { service.containment.endRelease() }
        switch kind {
        case .context(let sc):
            service.log.line("conn \(conn.fd): ctx \(sc.id) /dev/iommu closed")
            drop(sc, service: service)
        case .file(let sc, let number):
            if !service.state.withLock({ sc.poisoned }) { _ = sc.ctx.closeFile(number) }
            drop(sc, service: service)
        case .fresh, .failNth, .knob:
            break
        }
    }

    /// A release claimed elsewhere (``claim(_:service:)``) is finished or abandoned.
    func finished() {
        cond.withLock {
            inProgress -= 1
            cond.broadcast()
        }
    }

    /// One holder of a context went away; the last one releases it
    /// (`iommufd_fops_release`).
    private func drop(_ sc: ServedContext, service: Service) {
        let (last, poisoned) = service.state.withLock { () -> (Bool, Bool) in
            sc.holders -= 1
            return (sc.holders == 0, sc.poisoned)
        }
        guard last else { return }
        guard !poisoned else {
            service.log.line("ctx \(sc.id) released without teardown (a request trapped in it)")
            return
        }
        sc.ctx.fileInstaller = nil
        sc.ctx.close()
        service.returnMemory()
        service.log.line("ctx \(sc.id) released (iommufd_fops_release)")
    }
}

extension ConnKind {
    /// The context a connection belongs to, if any.
    var context: ServedContext? {
        switch self {
        case .context(let sc), .file(let sc, _): sc
        case .fresh, .failNth, .knob: nil
        }
    }
}
