#if ENABLE_MOCKING
import IOMMUCore

/// A forced result for one command, checked after the size rules and before the handler
/// (debug builds only, like swift-system's `MockingDriver`).
public enum IOMMUFDForcedErrno: Sendable, Equatable {
    /// Every call fails with the errno.
    case always(Errno)
    /// The next `count` calls fail with the errno, then calls run normally.
    case counted(Errno, Int)
}

/// One dispatched ioctl as the trace records it: the command, the decoded argument bytes
/// (the kernel copy, after the size rules; empty for VFIO value commands) and the result.
public struct IOMMUFDTraceEntry: Sendable, Equatable {
    /// The command number.
    public var cmd: UInt32
    /// The kernel copy of the argument structure.
    public var argument: [UInt8]
    /// The return value (negative errno on failure).
    public var result: Int32
}

/// The ioctl trace and the forced-errno table of a context (debug builds only).
public final class IOMMUFDMocking: @unchecked Sendable {
    private let lock = Lock()
    private var _trace: [IOMMUFDTraceEntry] = []
    private var forced: [UInt32: IOMMUFDForcedErrno] = [:]
    /// Whether calls are recorded.
    public var tracing = false

    init() {}

    /// The calls recorded so far, oldest first.
    public var trace: [IOMMUFDTraceEntry] { lock.withLock { _trace } }

    /// Clears the trace.
    public func clearTrace() { lock.withLock { _trace = [] } }

    /// Forces the result of `cmd` (nil removes the rule).
    public func force(_ cmd: UInt32, _ rule: IOMMUFDForcedErrno?) { lock.withLock { forced[cmd] = rule } }

    func record(_ cmd: UInt32, _ argument: [UInt8], _ result: Int32) {
        guard tracing else { return }
        lock.withLock { _trace.append(IOMMUFDTraceEntry(cmd: cmd, argument: argument, result: result)) }
    }

    /// The forced errno for this call of `cmd`, consuming a counted rule.
    func forcedErrno(_ cmd: UInt32) -> Errno? {
        lock.withLock {
            switch forced[cmd] {
            case .always(let e)?: return e
            case .counted(let e, let n)? where n > 0:
                forced[cmd] = n > 1 ? .counted(e, n - 1) : nil
                return e
            default: return nil
            }
        }
    }
}
#endif
