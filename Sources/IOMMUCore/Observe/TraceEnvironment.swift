#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The trace file named by `IOMMUKIT_TRACE`: any program or test that uses IOMMUKit
/// writes the events of every machine it creates while the variable is set there, as
/// `trace-cmd report` lines (see ``Event/traceLine(task:)``), each machine's part
/// starting with a `# machine N` line.
///
/// The file is opened (and truncated) when the process creates its first machine; `%p`
/// in the name is replaced by the process id, so that several processes can trace side
/// by side (`IOMMUKIT_TRACE=/tmp/trace.%p`). Every line is written with one `write(2)`
/// the moment its event is recorded: nothing is buffered, so the file is complete at any
/// point, even if the program crashes or exits without returning from `main`.
///
/// `IOMMUKIT_TRACE_EVENT` (`system:event`, `event` or `system:`), `IOMMUKIT_TRACE_DEVICE`
/// (`bb:dd.f`) and `IOMMUKIT_TRACE_PASID` restrict what goes to the file, as ftrace's
/// `set_event` and event filters do (see ``TraceFilter``); the machines' in-memory logs
/// keep everything.
public final class TraceFile: @unchecked Sendable {
    /// The file's path, `%p` replaced.
    public let path: String
    /// Which events are written.
    public let filter: TraceFilter
    private let fd: Int32
    private let lock = Lock()
    private var machines = 0

    private init?(pattern: String) {
        path = pattern.replacingPercentP()
        filter = TraceFilter(event: environment("IOMMUKIT_TRACE_EVENT"),
                             device: environment("IOMMUKIT_TRACE_DEVICE").flatMap { RID(parsing: $0) },
                             pasid: environment("IOMMUKIT_TRACE_PASID").flatMap { UInt32($0) }.map(PASID.init(rawValue:)))
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o644)
        if fd < 0 {
            let message = "iommukit: IOMMUKIT_TRACE: cannot open \(path): errno \(errno)\n"
            _ = message.withCString { rawWrite(2, $0, strlen($0)) }
            return nil
        }
    }

    /// The process's trace file, if `IOMMUKIT_TRACE` names one that could be opened.
    public static let shared: TraceFile? = environment("IOMMUKIT_TRACE").flatMap { TraceFile(pattern: $0) }

    /// Appends `line` and a newline.
    func write(_ line: String) {
        var bytes = Array(line.utf8)
        bytes.append(0x0a)
        lock.withLock {
            bytes.withUnsafeBytes { buf in
                var done = 0
                while done < buf.count {
                    let n = rawWrite(fd, buf.baseAddress! + done, buf.count - done)
                    if n <= 0 { break }
                    done += n
                }
            }
        }
    }

    /// The next machine's number in this process, from 1.
    func nextMachine() -> Int {
        lock.withLock {
            machines += 1
            return machines
        }
    }
}

/// `IOMMUKIT_GRAPH=<file>` and `IOMMUKIT_GRAPH_AT=<step>`: write the object graph (DOT)
/// of the machine at a step of the scenario to a file, which is how `iommukit graph`
/// gets a picture out of any program.
///
/// A program names its steps with ``Machine/step(_:)``. With `IOMMUKIT_GRAPH_AT` set (a
/// step number, counted per machine from 1, or a part of a step's name, case ignored),
/// the graph is written at the first step that matches, once. Without it, the graph is
/// rewritten at every step, so the file ends with the state at the last step; a program
/// that names no steps gets the graph of its most recently created machine, written when
/// the process exits.
final class GraphRequest: @unchecked Sendable {
    let path: String
    let step: String?
    private let lock = Lock()
    private var written = false
    private weak var lastMachine: Machine?

    private init(path: String, step: String?) {
        self.path = path.replacingPercentP()
        self.step = step
    }

    static let shared: GraphRequest? = {
        guard let path = environment("IOMMUKIT_GRAPH") else { return nil }
        let request = GraphRequest(path: path, step: environment("IOMMUKIT_GRAPH_AT").flatMap { $0.isEmpty ? nil : $0 })
        if request.step == nil { atexit { GraphRequest.shared?.writeAtExit() } }
        return request
    }()

    func machineCreated(_ machine: Machine) { lock.withLock { lastMachine = machine } }

    /// Called at every step of every machine.
    func stepReached(_ machine: Machine, number: Int, name: String) {
        let wanted: Bool = lock.withLock {
            if let step {
                guard !written, Self.matches(step, number: number, name: name) else { return false }
            }
            written = true
            return true
        }
        if wanted { save(machine.graph(title: "step \(number): \(name)")) }
    }

    /// Whether `step` (a number, or text) picks the step `number` called `name`: the
    /// number, the whole name, or a part of the name (case ignored).
    static func matches(_ step: String, number: Int, name: String) -> Bool {
        step == "\(number)" || name.lowercased().contains(step.lowercased())
    }

    private func writeAtExit() {
        let machine: Machine? = lock.withLock { written ? nil : lastMachine }
        if let machine { save(machine.graph(title: "at exit")) }
    }

    private func save(_ graph: ObjectGraph) {
        let text = graph.dot()
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        bytes.withUnsafeBytes { buf in
            var done = 0
            while done < buf.count {
                let n = rawWrite(fd, buf.baseAddress! + done, buf.count - done)
                if n <= 0 { break }
                done += n
            }
        }
    }
}

private func environment(_ name: String) -> String? {
    guard let v = getenv(name) else { return nil }
    let s = String(cString: v)
    return s.isEmpty ? nil : s
}

private func rawWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int {
    write(fd, p, n)
}

extension String {
    /// `%p` replaced by the process id.
    fileprivate func replacingPercentP() -> String {
        var out = ""
        var percent = false
        for c in self {
            if percent {
                out += c == "p" ? String(getpid()) : "%" + String(c)
                percent = false
            } else if c == "%" {
                percent = true
            } else {
                out.append(c)
            }
        }
        return percent ? out + "%" : out
    }
}
