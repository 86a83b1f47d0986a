import Synchronization

/// One logged event: a tracepoint hit, in the shape ftrace keeps it.
///
/// `system` and `event` are the kernel's names where the kernel has the tracepoint
/// (`iommu:map`, `iommu:attach_device_to_domain`, `intel_iommu:qi_submit`); events only
/// the model has use the `iommukit` system (`iommukit:attach_device_pasid`). `message`
/// is the text the kernel's `TP_printk` prints for the event, so ``traceLine(task:)``
/// reads like a line of `trace-cmd report` from a real machine; `fields` carry the same
/// values one by one, plus what the model knows beyond the kernel's record (the domain of
/// an attach, the reason of a DMA fault), for tests and tools.
public struct Event: Hashable, Sendable, CustomStringConvertible {
    /// Position in the machine's log, from 1; keeps counting across ``EventLog/clear()``.
    public let sequence: Int
    /// The machine's virtual clock when the event was recorded, in nanoseconds: one
    /// microsecond per event, so traces are the same on every run.
    public let timestamp: UInt64
    /// Trace system (`iommu`, `intel_iommu`, `iommukit`).
    public let system: String
    /// Event name within the system (`map`).
    public let event: String
    /// Fields as `TP_STRUCT__entry` names them, values formatted as `TP_printk` prints
    /// them, followed by the model's extra fields.
    public let fields: [Field]
    /// The `TP_printk` text.
    public let message: String
    /// The device the event is about, if any (what `iommukit trace --device` matches).
    public let device: RID?
    /// The PASID the event is about, if any (what `iommukit trace --pasid` matches).
    public let pasid: PASID?

    /// A `key=value` pair.
    public struct Field: Hashable, Sendable {
        /// Field name.
        public let key: String
        /// Field value, formatted.
        public let value: String
        /// A field.
        public init(_ key: String, _ value: String) {
            self.key = key
            self.value = value
        }
    }

    /// `system:event`, the name `set_event` and `trace-cmd record -e` take.
    public var name: String { system + ":" + event }

    /// The value of field `key`, if present.
    public subscript(key: String) -> String? { fields.first { $0.key == key }?.value }

    /// `system:event: message`.
    public var description: String { "\(name): \(message)" }

    init(sequence: Int, timestamp: UInt64, record r: TraceRecord) {
        self.sequence = sequence
        self.timestamp = timestamp
        system = r.system
        event = r.event
        fields = r.fields
        message = r.message
        device = r.device
        pasid = r.pasid
    }
}

/// What a recording site hands the log: an event before it has a place in the log.
/// The upstream tracepoints have constructors that format their fields exactly as the
/// kernel does (``map(iova:paddr:size:)``, ...); vendors add their own in their module.
public struct TraceRecord: Sendable {
    /// Trace system (`iommu`, `intel_iommu`, `iommukit`).
    public var system: String
    /// Event name within the system.
    public var event: String
    /// Fields, see ``Event/fields``.
    public var fields: [Event.Field]
    /// The `TP_printk` text.
    public var message: String
    /// The device the event is about.
    public var device: RID?
    /// The PASID the event is about.
    public var pasid: PASID?

    /// An event with its printed text given.
    public init(system: String, event: String, fields: [Event.Field], message: String,
                device: RID? = nil, pasid: PASID? = nil) {
        self.system = system
        self.event = event
        self.fields = fields
        self.message = message
        self.device = device
        self.pasid = pasid
    }

    /// An event the kernel has no tracepoint for: system `iommukit`, printed as its
    /// fields, `key=value` separated by spaces.
    public static func model(_ event: String, device: RID? = nil, pasid: PASID? = nil,
                             _ fields: [Event.Field]) -> TraceRecord {
        TraceRecord(system: TraceRecord.modelSystem, event: event, fields: fields,
                    message: fields.map { "\($0.key)=\($0.value)" }.joined(separator: " "),
                    device: device, pasid: pasid)
    }

    /// The trace system of the model's own events.
    public static let modelSystem = "iommukit"
}

/// The machine's event log. Off by default; when off, recording costs one branch (the
/// record is an autoclosure and is never built: no string is formatted, nothing is
/// allocated). A machine created while `IOMMUKIT_TRACE` is set records from the start
/// and also writes every event to that file (see ``TraceFile``).
public final class EventLog: @unchecked Sendable {
    private let lock = Lock()
    private var events: [Event] = []
    private var recorded = 0
    private var steps: [String] = []
    private var _task = TraceTask()
    private var _isEnabled = false
    private var file: TraceFile?
    // Read without the lock on the hot path (an atomic: the log may be switched on or
    // off while devices DMA); a stale read only drops or keeps one event.
    @usableFromInline let enabledFlag = Atomic<Bool>(false)

    /// Creates an empty, disabled log.
    public init() {}

    /// Whether events are being recorded.
    public var isEnabled: Bool {
        get { lock.withLock { _isEnabled } }
        set { lock.withLock { _isEnabled = newValue; enabledFlag.store(newValue, ordering: .relaxed) } }
    }

    /// The task, CPU and flags every line of this log shows.
    public var task: TraceTask {
        get { lock.withLock { _task } }
        set { lock.withLock { _task = newValue } }
    }

    /// Records an event if the log is enabled.
    @inlinable
    public func record(_ record: @autoclosure () -> TraceRecord) {
        if isOn { append(record()) }
    }

    /// Records an event named `system:event` whose text is its fields (see
    /// ``TraceRecord/model(_:device:pasid:_:)``) if the log is enabled. A name without a
    /// system goes to the model's `iommukit` system.
    @inlinable
    public func record(_ name: @autoclosure () -> String, _ fields: @autoclosure () -> [Event.Field]) {
        if isOn { append(TraceRecord.named(name(), fields())) }
    }

    @usableFromInline var isOn: Bool { enabledFlag.load(ordering: .relaxed) }

    @usableFromInline func append(_ record: TraceRecord) {
        let (event, task, file) = lock.withLock { () -> (Event, TraceTask, TraceFile?) in
            recorded += 1
            let e = Event(sequence: recorded, timestamp: UInt64(recorded) * 1000, record: record)
            events.append(e)
            return (e, _task, self.file)
        }
        if let file, file.filter.matches(event) { file.write(event.traceLine(task: task)) }
    }

    /// Every event recorded so far.
    public var all: [Event] { lock.withLock { events } }

    /// Events whose name matches `name` (`iommu:map`).
    public func named(_ name: String) -> [Event] { all.filter { $0.name == name } }

    /// Events that `filter` selects.
    public func events(matching filter: TraceFilter) -> [Event] { all.filter(filter.matches) }

    /// The events as `trace-cmd report` lines, oldest first.
    public func traceLines(matching filter: TraceFilter = TraceFilter()) -> [String] {
        let task = self.task
        return events(matching: filter).map { $0.traceLine(task: task) }
    }

    /// The newest `count` events as `trace-cmd report` lines, oldest first: what led up
    /// to a failure, for a test's message.
    public func tail(_ count: Int) -> [String] {
        let (last, task) = lock.withLock { (events.suffix(max(0, count)), _task) }
        return last.map { $0.traceLine(task: task) }
    }

    /// Forgets every event (the virtual clock keeps running).
    public func clear() { lock.withLock { events.removeAll() } }

    /// Starts writing every recorded event to `file` as well (and records from now on).
    func write(to file: TraceFile, machineSerial: Int) {
        file.write("# machine \(machineSerial)")
        lock.withLock {
            self.file = file
            _isEnabled = true
            enabledFlag.store(true, ordering: .relaxed)
        }
    }

    /// Numbers and records a scenario step; returns its number (from 1).
    func noteStep(_ name: String) -> Int {
        let number = lock.withLock { () -> Int in
            steps.append(name)
            return steps.count
        }
        record(.model("step", [.init("step", "\(number)"), .init("name", "\"\(name)\"")]))
        return number
    }

    /// The names of the steps marked so far, in order (step 1 first).
    public var stepNames: [String] { lock.withLock { steps } }
}

extension TraceRecord {
    /// A record named `system:event` (or `event`, in the model's system) whose text is
    /// its fields.
    @usableFromInline static func named(_ name: String, _ fields: [Event.Field]) -> TraceRecord {
        let parts = name.split(separator: ":", maxSplits: 1).map(String.init)
        var r = TraceRecord.model(parts.last ?? name, fields)
        if parts.count == 2 { r.system = parts[0] }
        return r
    }
}
