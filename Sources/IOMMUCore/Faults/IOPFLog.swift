/// Counters of the I/O page-fault path of one machine.
public struct IOPFCounters: Hashable, Sendable {
    /// Page requests reported with `iommu_report_device_fault`.
    public var reported = 0
    /// Non-last requests queued as partials.
    public var partials = 0
    /// Groups handed to a domain's handler.
    public var groups = 0
    /// Requests refused because no handle or no handler was found (answered `INVALID`).
    public var unhandled = 0
    /// Responses delivered, by code.
    public var responses: [IOMMUPageResponseCode: Int] = [:]
    /// `iopf_group_response` calls that sent nothing because the group was no longer
    /// pending (already answered, or its device left the queue).
    public var suppressedResponses = 0
    /// Creates zeroed counters.
    public init() {}
}

/// The machine's record of page responses and I/O page-fault counters; reached as
/// ``IOMMUSubsystem/faultLog``.
public final class IOPFLog: @unchecked Sendable {
    private let lock = Lock()
    private var _records: [IOPFResponseRecord] = []
    private var _counters = IOPFCounters()

    init() {}

    /// Every response sent through a driver's `page_response`, oldest first.
    public var responses: [IOPFResponseRecord] { lock.withLock { _records } }
    /// The counters.
    public var counters: IOPFCounters { lock.withLock { _counters } }

    /// Responses sent for the group with ``IOPFGroup/serial`` `serial`.
    public func responses(forGroup serial: Int) -> [IOPFResponseRecord] {
        responses.filter { $0.group == serial }
    }

    /// Forgets the records (counters are kept).
    public func clear() { lock.withLock { _records.removeAll() } }

    func noteResponse(_ r: IOPFResponseRecord) {
        lock.withLock {
            _records.append(r)
            _counters.responses[r.code, default: 0] += 1
        }
    }

    func noteSuppressedResponse() { lock.withLock { _counters.suppressedResponses += 1 } }
    func noteReported(partial: Bool) {
        lock.withLock {
            _counters.reported += 1
            if partial { _counters.partials += 1 }
        }
    }
    func noteGroup() { lock.withLock { _counters.groups += 1 } }
    func noteUnhandled() { lock.withLock { _counters.unhandled += 1 } }
}
