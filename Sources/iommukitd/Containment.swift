import CIOMMUKitd
import Glibc
import IOMMUCore

/// What happens when a request hits a trap (an overflow, a bounds check or a failed
/// precondition in the model, or a memory error).
///
/// Swift cannot unwind a trap, so the thread that hit it is parked for good
/// (`ikd_containment_install`): its stack and whatever locks it held stay as they were,
/// and nothing touches what it was working on again. The I/O thread is told, and:
/// the request is answered with `EIO` and logged (the Swift runtime's own message is in
/// the log just before, since stderr is the log); the context it ran in and the process
/// it came from are *poisoned* (every later request on them gets `EIO`, their release
/// is skipped, their memory leaks, their pin counters are never read again); a fresh
/// thread takes over the channel, or the releaser. Every other client carries on
/// (unless the trap struck while a lock shared by all was held: then the service stops
/// answering, and SIGTERM still ends it). A trap on the I/O thread itself is not
/// contained (the process dies as it would have), which is why that thread never enters
/// the model.
final class Containment: @unchecked Sendable {
    let notifyRead: Int32
    private let notifyWrite: Int32
    private let lock = Lock()
    private var nextSlot: Int32 = 0
    private var channels: [Int32: TaskChannel] = [:]
    private var releaserSlot: Int32 = -1
    /// What each slot's thread is doing now.
    private var requests: [Int32: (channel: TaskChannel, context: ServedContext?, client: Client?, what: String)] = [:]
    private var releasing: [Int32: ServedContext?] = [:]

    init() {
        var p: [Int32] = [-1, -1]
        pipe(&p)
        for fd in p { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        _ = fcntl(p[0], F_SETFL, O_NONBLOCK)
        notifyRead = p[0]
        notifyWrite = p[1]
    }

    func install(service: Service) {
        if ikd_containment_install(notifyWrite) != 0 {
            service.log.line("trap containment unavailable: \(errnoName(errno))")
        }
    }

    func newSlot(for channel: TaskChannel) -> Int32 {
        lock.withLock {
            nextSlot += 1
            channels[nextSlot] = channel
            return nextSlot
        }
    }

    func newReleaserSlot() -> Int32 {
        lock.withLock {
            nextSlot += 1
            releaserSlot = nextSlot
            return nextSlot
        }
    }

    func forget(_ channel: TaskChannel) {
        lock.withLock { channels = channels.filter { $0.value !== channel } }
    }

    /// The calling thread starts serving a request.
    func beginRequest(_ channel: TaskChannel, context: ServedContext?, client: Client?, what: String) {
        let slot = ikd_worker_slot()
        lock.withLock { requests[slot] = (channel, context, client, what) }
    }

    func endRequest() {
        let slot = ikd_worker_slot()
        _ = lock.withLock { requests.removeValue(forKey: slot) }
    }

    /// The calling thread starts a claimed release (see ``Releases``).
    func beginRelease(_ context: ServedContext?) {
        let slot = ikd_worker_slot()
        lock.withLock { releasing[slot] = .some(context) }
    }

    func endRelease() {
        let slot = ikd_worker_slot()
        _ = lock.withLock { releasing.removeValue(forKey: slot) }
    }

    /// I/O thread: handles every parked thread reported since the last call.
    func drain(service: Service) {
        var record: (Int32, Int32) = (0, 0)
        while withUnsafeMutableBytes(of: &record, { read(notifyRead, $0.baseAddress, $0.count) }) == 8 {
            contained(slot: record.0, signal: record.1, service: service)
        }
    }

    private func contained(slot: Int32, signal: Int32, service: Service) {
        let (request, release, channel, wasReleaser) = lock.withLock {
            (requests.removeValue(forKey: slot), releasing.removeValue(forKey: slot), channels.removeValue(forKey: slot),
             slot == releaserSlot)
        }
        let sig = signal == SIGILL || signal == SIGTRAP ? "a Swift runtime trap" : "signal \(signal)"
        if let release {
            if let sc = release {
                service.state.withLock {
                    sc.poisoned = true
                    service.poisonedAccounting.insert(ObjectIdentifier(sc.ctx.accounting))
                }
            }
            service.releases.finished()
            service.log.line("a release\(release.map { " of ctx \($0.id)" } ?? "") hit \(sig); its thread is parked and the context leaked")
        }
        if let r = request {
            service.state.withLock {
                r.context?.poisoned = true
                r.client?.poisoned = true
                for a in [r.context?.ctx.accounting, r.client?.accounting].compactMap({ $0 }) {
                    service.poisonedAccounting.insert(ObjectIdentifier(a))
                }
            }
            service.log.line("\(r.channel.task): \(r.what) hit \(sig) → -EIO; its thread is parked\(r.context.map { ", ctx \($0.id) disabled" } ?? ""), pid \(r.channel.task.pid) gets EIO from now on")
            _ = sendPacket(r.channel.socket, Wire.reply(err: EIO, ret: 0), timeout: 0)
        }
        if let channel {
            if !channel.start(slot: newSlot(for: channel)) { channel.end() }
        }
        if wasReleaser { _ = service.releases.restartReleaser(service: service) }
    }
}
