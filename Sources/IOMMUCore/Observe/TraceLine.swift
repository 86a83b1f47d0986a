/// The task, CPU and context flags a trace line shows. The model runs everything on one
/// task, so these are the same for every line of a log; a program can name its own
/// (`machine.events.task = TraceTask(comm: "qemu", pid: 4242)`).
public struct TraceTask: Hashable, Sendable {
    /// The task's `comm` (at most 16 characters are shown).
    public var comm: String
    /// The task's pid.
    public var pid: Int
    /// The CPU the events ran on.
    public var cpu: Int
    /// The latency flags column (irqs-off, need-resched, hard/soft irq, preempt depth,
    /// migrate-disable): `.....` for plain process context.
    public var flags: String

    /// A task; the default is `iommukit-1` on CPU 0 in process context.
    public init(comm: String = "iommukit", pid: Int = 1, cpu: Int = 0, flags: String = ".....") {
        self.comm = comm
        self.pid = pid
        self.cpu = cpu
        self.flags = flags
    }
}

extension Event {
    /// The event as a line of `trace-cmd report` output:
    ///
    ///     iommukit-1     [000] .....     0.000004: iommu:map:            IOMMU: iova=0x...
    ///
    /// task-pid (`%16s-%-5d`), the CPU (`[%03d]`), the flags, the timestamp in seconds
    /// with microseconds (`%5lu.%06lu`), the event with its system, padded as
    /// `trace-cmd` pads event names to 20 characters, then the `TP_printk` text.
    public func traceLine(task: TraceTask = TraceTask()) -> String {
        let comm = String(task.comm.prefix(16))
        var line = String(repeating: " ", count: 16 - comm.count) + comm + "-"
        let pid = String(task.pid)
        line += pid + String(repeating: " ", count: max(0, 5 - pid.count))
        line += " [" + Self.zeroPadded(task.cpu, 3) + "] " + task.flags + " "
        let secs = String(timestamp / 1_000_000_000)
        line += String(repeating: " ", count: max(0, 5 - secs.count)) + secs + "."
        line += Self.zeroPadded(Int((timestamp % 1_000_000_000) / 1000), 6) + ": "
        let name = self.name
        line += name + ": " + String(repeating: " ", count: max(0, 20 - name.count)) + message
        return line
    }

    private static func zeroPadded(_ v: Int, _ width: Int) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, width - s.count)) + s
    }
}

/// Which events to show: the `--event`, `--device` and `--pasid` options of
/// `iommukit trace`. An empty filter selects everything.
public struct TraceFilter: Hashable, Sendable {
    /// `system:event`, `event`, or a whole system as `system:` or `system:*`.
    public var event: String?
    /// Only events about this device.
    public var device: RID?
    /// Only events about this PASID.
    public var pasid: PASID?

    /// A filter; nil parts select everything.
    public init(event: String? = nil, device: RID? = nil, pasid: PASID? = nil) {
        self.event = event
        self.device = device
        self.pasid = pasid
    }

    /// Whether `e` passes.
    public func matches(_ e: Event) -> Bool {
        if let device, e.device != device { return false }
        if let pasid, e.pasid != pasid { return false }
        guard let event else { return true }
        if event.hasSuffix(":") || event.hasSuffix(":*") {
            return e.system == event.prefix { $0 != ":" }
        }
        return event.contains(":") ? e.name == event : e.event == event
    }
}

extension RID {
    /// `dev_name()` of the PCI device: `0000:bb:dd.f` (PCI segment 0).
    public var devName: String { "0000:\(self)" }

    /// Parses `bb:dd.f` or `ssss:bb:dd.f` (segment 0 only), hexadecimal as `lspci`
    /// prints it; nil for anything else.
    public init?(parsing text: String) {
        var parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        if parts.count == 3 {
            guard UInt16(parts[0], radix: 16) == 0 else { return nil }
            parts.removeFirst()
        }
        guard parts.count == 2 else { return nil }
        let devfn = parts[1].split(separator: ".", omittingEmptySubsequences: false)
        guard devfn.count == 2, let bus = UInt8(parts[0], radix: 16), let dev = UInt8(devfn[0], radix: 16),
              let fn = UInt8(devfn[1], radix: 16), dev < 32, fn < 8 else { return nil }
        self.init(bus: bus, device: dev, function: fn)
    }
}
