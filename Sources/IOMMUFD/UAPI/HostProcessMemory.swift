#if canImport(Glibc)
import Glibc
import IOMMUCore

/// ``/IOMMUFDDriver/UserMemory`` over a real host process: `copy_from_user` and `copy_to_user` on
/// another process's address space with `process_vm_readv(2)` / `process_vm_writev(2)`,
/// as the model as a service (`iommukitd`) reaches the task that issued an ioctl.
///
/// Any byte that cannot be moved is `EFAULT`, as in the kernel: an unmapped address, a
/// read-only page for a write, a `PROT_NONE` page, and a partial transfer all count.
/// The host must allow the service to reach the caller (`ptrace` access mode
/// `PTRACE_MODE_ATTACH_REALCREDS`: same user and Yama `ptrace_scope` 0, the caller's
/// `prctl(PR_SET_PTRACER)`, or `CAP_SYS_PTRACE`); a refusal (`EPERM`) is also `EFAULT`,
/// and ``lastError`` keeps the host's errno for the log.
///
/// A host that mirrors the process's pages in model frames (the model as a service)
/// also moves whole pages with ``refresh(_:into:count:)`` and
/// ``writeBack(_:from:count:)``.
public final class HostProcessMemory: UserMemory, @unchecked Sendable {
    /// The host process ID (`task->pid`).
    public let pid: Int32
    private let lock = Lock()
    private var _lastError: Int32 = 0

    /// `process_vm_readv` / `process_vm_writev` (glibc declares them only under
    /// `_GNU_SOURCE`, which the Swift Glibc module does not set, so they are looked up).
    typealias VMCall = @convention(c) (pid_t, UnsafePointer<iovec>?, UInt, UnsafePointer<iovec>?, UInt, UInt) -> Int
    static let readv: VMCall = lookup("process_vm_readv")
    static let writev: VMCall = lookup("process_vm_writev")
    private static func lookup(_ name: String) -> VMCall {
        guard let sym = dlsym(nil, name) else {  // RTLD_DEFAULT
            fatalError("HostProcessMemory: the C library has no \(name)")
        }
        return unsafeBitCast(sym, to: VMCall.self)
    }

    /// Memory of host process `pid`.
    public init(pid: Int32) { self.pid = pid }

    /// The host errno of the last failed transfer (`ESRCH` the process is gone, `EPERM`
    /// refused by the host, `EFAULT` a bad address), 0 if none failed.
    public var lastError: Int32 { lock.withLock { _lastError } }

    /// Whether the process still exists (`kill(pid, 0)`).
    public var isAlive: Bool { kill(pid, 0) == 0 || errno == EPERM }

    private func move(_ address: UInt64, _ local: UnsafeMutableRawPointer, _ count: Int, write: Bool) -> Bool {
        guard count > 0 else { return true }
        // The address must not wrap, as access_ok() refuses.
        guard address.addingReportingOverflow(UInt64(count)).overflow == false else { return false }
        var l = iovec(iov_base: local, iov_len: count)
        var r = iovec(iov_base: UnsafeMutableRawPointer(bitPattern: UInt(address)), iov_len: count)
        let n = (write ? Self.writev : Self.readv)(pid, &l, 1, &r, 1, 0)
        if n == count { return true }
        let e = n < 0 ? errno : EFAULT
        lock.withLock { _lastError = e }
        return false
    }

    /// `copy_from_user` from the host process.
    /// - Throws: `EFAULT` if any byte cannot be read.
    public func copyFromUser(_ address: UInt64, count: Int) throws(Errno) -> [UInt8] {
        guard count > 0 else { return [] }
        var out = [UInt8](repeating: 0, count: count)
        let ok = out.withUnsafeMutableBytes { move(address, $0.baseAddress!, count, write: false) }
        guard ok else {
            throw .badAddress.from("copy_from_user", "\(count) bytes at 0x\(String(address, radix: 16)) of host pid \(pid) (errno \(lastError))")
        }
        return out
    }

    /// `copy_to_user` into the host process.
    /// - Throws: `EFAULT` if any byte cannot be written.
    public func copyToUser(_ address: UInt64, _ bytes: [UInt8]) throws(Errno) {
        guard !bytes.isEmpty else { return }
        var b = bytes
        let ok = b.withUnsafeMutableBytes { move(address, $0.baseAddress!, $0.count, write: true) }
        guard ok else {
            throw .badAddress.from("copy_to_user", "\(bytes.count) bytes at 0x\(String(address, radix: 16)) of host pid \(pid) (errno \(lastError))")
        }
    }

    /// Reads `count` bytes at `address` into `buffer` (a page being mirrored); false when
    /// any byte cannot be read.
    public func refresh(_ address: UInt64, into buffer: UnsafeMutableRawPointer, count: Int) -> Bool {
        move(address, buffer, count, write: false)
    }

    /// Writes `count` bytes from `buffer` to `address` (a device write reaching the
    /// owner); false when any byte cannot be written.
    public func writeBack(_ address: UInt64, from buffer: UnsafeRawPointer, count: Int) -> Bool {
        move(address, UnsafeMutableRawPointer(mutating: buffer), count, write: true)
    }
}
#endif
