/// One logged event. `name` is the kernel tracepoint name where one exists
/// (`iommu:map`, `iommu:unmap`, `iommu:attach_device_to_domain`, `iommu:io_page_fault`)
/// and a model name (`vtd:qi`, `core:pasid_attach`) otherwise.
public struct Event: Hashable, Sendable, CustomStringConvertible {
    /// Position in the log, from 1.
    public let sequence: Int
    /// Tracepoint or model event name.
    public let name: String
    /// Fields in the order the tracepoint prints them.
    public let fields: [Field]

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

    /// The value of field `key`, if present.
    public subscript(key: String) -> String? { fields.first { $0.key == key }?.value }

    /// `name: k=v k=v`, the shape of a trace line.
    public var description: String {
        "\(name): " + fields.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
    }
}

/// The machine's event log. Off by default; when off, recording costs one branch
/// (the arguments are autoclosures and are never built).
public final class EventLog: @unchecked Sendable {
    private let lock = Lock()
    private var events: [Event] = []
    private var _isEnabled = false
    // Read without the lock on the hot path: a stale read only drops or keeps one event.
    nonisolated(unsafe) private var enabledFlag = false

    /// Creates an empty, disabled log.
    public init() {}

    /// Whether events are being recorded.
    public var isEnabled: Bool {
        get { lock.withLock { _isEnabled } }
        set { lock.withLock { _isEnabled = newValue; enabledFlag = newValue } }
    }

    /// Records an event if the log is enabled.
    @inlinable
    public func record(_ name: @autoclosure () -> String, _ fields: @autoclosure () -> [Event.Field]) {
        if isOn { append(name(), fields()) }
    }

    @usableFromInline var isOn: Bool { enabledFlag }

    @usableFromInline func append(_ name: String, _ fields: [Event.Field]) {
        lock.withLock { events.append(Event(sequence: events.count + 1, name: name, fields: fields)) }
    }

    /// Every event recorded so far.
    public var all: [Event] { lock.withLock { events } }

    /// Events whose name matches `name`.
    public func named(_ name: String) -> [Event] { all.filter { $0.name == name } }

    /// Forgets every event.
    public func clear() { lock.withLock { events.removeAll() } }
}

/// A kernel `WARN_ON` that fired: the model records it instead of printing a stack.
public struct Warning: Hashable, Sendable, CustomStringConvertible {
    /// The kernel function that warns.
    public let function: String
    /// What went wrong.
    public let message: String
    /// A WARN fired in `function` (a kernel function name) because of `message`.
    public init(function: String, message: String) {
        self.function = function
        self.message = message
    }
    /// `function: message`.
    public var description: String { "WARNING in \(function): \(message)" }
}
