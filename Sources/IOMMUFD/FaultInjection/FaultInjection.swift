#if canImport(Glibc)
import Glibc
#endif
import IOMMUCore

/// The fail-nth knob (`/proc/self/task/<tid>/fail-nth` with `fail_iommufd`,
/// `failslab` and `fail_page_alloc`): when armed with N, the Nth injection point reached
/// fails. Injection points are iommufd's own (`iommufd_should_fail()`: object
/// allocation → `ENOMEM`, object lookup → `ENOENT`, the pin path → `EFAULT`, pin
/// accounting → `ENOMEM`, device reserved regions → `EINVAL`) plus every frame
/// allocation of the machine's ``/Platform/PhysicalMemory`` (→ `ENOMEM`, through
/// `PhysicalMemory.failAllocation`).
public final class FaultInjection: @unchecked Sendable {
    private let lock = Lock()
    private let memory: PhysicalMemory
    private var target = 0
    private var count = 0
    private var _fired = false
    private var _warnings: [String] = []

    init(memory: PhysicalMemory) { self.memory = memory }

    /// Arms the knob: the `n`th injection point from now fails (`echo n > fail-nth`).
    /// `n == 0` disarms.
    public func arm(_ n: Int) {
        lock.withLock {
            target = n
            count = 0
            _fired = false
        }
        if n > 0 {
            // Like the kernel's per-task fail_nth, only the arming thread's allocations
            // count: a host serving other callers on other threads (the model as a
            // service) must not see their allocations fail, nor have them use up N.
            let armer = pthread_self()
            memory.failAllocation = { [weak self] _ in
                pthread_equal(pthread_self(), armer) != 0 && (self?.shouldFail() ?? false)
            }
        } else {
            memory.failAllocation = nil
        }
    }

    /// Disarms the knob and reports whether the armed point fired (reading `fail-nth`
    /// back as 0).
    @discardableResult
    public func disarm() -> Bool {
        memory.failAllocation = nil
        return lock.withLock {
            target = 0
            return _fired
        }
    }

    /// Injection points reached since the knob was last armed (what the kernel's
    /// per-task `fail_nth` counts down).
    public var reached: Int { lock.withLock { count } }

    /// Whether the armed point has fired.
    public var fired: Bool { lock.withLock { _fired } }

    /// Kernel WARNs the iommufd model raised (refcount bugs found at close, stuck
    /// accesses); a fail-nth sweep asserts there are none.
    public var warnings: [String] { lock.withLock { _warnings } }

    func noteWarning(_ w: String) { lock.withLock { _warnings.append(w) } }

    /// One injection point: true when it is the armed Nth.
    func shouldFail() -> Bool {
        lock.withLock {
            guard target > 0, !_fired else { return false }
            count += 1
            if count == target {
                _fired = true
                return true
            }
            return false
        }
    }
}
