/// Collects the machines created while it is active, with their event logs switched
/// on, so that a failure can show what those machines did last. The conformance runner
/// watches each check with one and appends ``failureContext(lines:)`` to the check's
/// failure messages.
///
/// A watch holds its machines until ``stop()``, so their events outlive a check's local
/// rig. Any thread's machines count; watches are meant for one test at a time.
public final class MachineWatch: @unchecked Sendable {
    private static let registry = Lock()
    nonisolated(unsafe) private static var active: [MachineWatch] = []

    private let lock = Lock()
    private var machines: [Machine] = []

    /// A watch, not yet started.
    public init() {}

    /// From now on, every new machine is collected and records its events.
    public func start() { Self.registry.withLock { Self.active.append(self) } }

    /// Stops collecting and lets the collected machines go.
    public func stop() {
        Self.registry.withLock { Self.active.removeAll { $0 === self } }
        lock.withLock { machines.removeAll() }
    }

    /// The machines created since ``start()``, oldest first.
    public var watched: [Machine] { lock.withLock { machines } }

    /// Called by every new machine.
    static func machineCreated(_ machine: Machine) {
        let watches = registry.withLock { active }
        guard !watches.isEmpty else { return }
        machine.events.isEnabled = true
        for w in watches { w.lock.withLock { w.machines.append(machine) } }
    }

    /// The newest `lines` events of each watched machine as `trace-cmd report` lines,
    /// under a heading per machine, ready to append to a failure message; empty when no
    /// machine was created or none recorded anything.
    public func failureContext(lines: Int = 20) -> String {
        let all = watched
        var out = ""
        for (i, m) in all.enumerated() {
            let tail = m.events.tail(lines)
            guard !tail.isEmpty else { continue }
            let which = all.count > 1 ? " \(i + 1) of \(all.count)" : ""
            out += "\nlast \(tail.count) events of machine\(which):\n" + tail.joined(separator: "\n")
        }
        return out
    }
}
