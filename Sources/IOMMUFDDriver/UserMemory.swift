import IOMMUCore

/// The one way the iommufd model touches the caller's memory: `copy_from_user`,
/// `copy_to_user` and `clear_user`. Every ioctl argument, array and vendor payload goes
/// through it, so a later backend can reach another host process's memory (as the kernel
/// reaches the calling task's) with `EFAULT` on a bad address.
public protocol UserMemory: AnyObject, Sendable {
    /// `copy_from_user`: `count` bytes at `address`.
    /// - Throws: `EFAULT` if any byte cannot be read.
    func copyFromUser(_ address: UInt64, count: Int) throws(Errno) -> [UInt8]
    /// `copy_to_user`: writes `bytes` at `address`.
    /// - Throws: `EFAULT` if any byte cannot be written.
    func copyToUser(_ address: UInt64, _ bytes: [UInt8]) throws(Errno)
    /// `copy_from_user` into a caller's buffer: `buffer.count` bytes at `address`. Every
    /// ioctl reads its size word and structure this way, into buffers it reuses, so the
    /// common path allocates no array. The default goes through
    /// ``copyFromUser(_:count:)``; a backend overrides it to copy directly.
    /// - Throws: `EFAULT` if any byte cannot be read (the buffer's contents are then
    ///   unspecified).
    func copyFromUser(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(Errno)
    /// `copy_to_user` from a caller's buffer: writes `buffer` at `address`. The default
    /// goes through ``copyToUser(_:_:)``.
    /// - Throws: `EFAULT` if any byte cannot be written.
    func copyToUser(_ address: UInt64, from buffer: UnsafeRawBufferPointer) throws(Errno)
}

extension UserMemory {
    /// Default: ``copyFromUser(_:count:)`` and a copy into `buffer`.
    public func copyFromUser(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(Errno) {
        guard buffer.count > 0 else { return }
        let bytes = try copyFromUser(address, count: buffer.count)
        guard bytes.count == buffer.count else {
            throw .badAddress.from("copy_from_user", "only \(bytes.count) of \(buffer.count) bytes at 0x\(String(address, radix: 16)) could be read")
        }
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
    }

    /// Default: ``copyToUser(_:_:)`` with the buffer's bytes as an array.
    public func copyToUser(_ address: UInt64, from buffer: UnsafeRawBufferPointer) throws(Errno) {
        guard buffer.count > 0 else { return }
        try copyToUser(address, Array(buffer))
    }

    /// `clear_user`: writes `count` zero bytes.
    /// - Throws: `EFAULT`.
    public func clearUser(_ address: UInt64, count: Int) throws(Errno) {
        guard count > 0 else { return }
        try copyToUser(address, [UInt8](repeating: 0, count: count))
    }
}

/// ``UserMemory`` over a model ``/Platform/Process`` (its mm): loads and stores as the CPU would,
/// faulting pages in. Any failure is `EFAULT`, as a failed `copy_*_user` is.
public final class ProcessUserMemory: UserMemory, @unchecked Sendable {
    /// The process whose memory is read and written.
    public let process: Process
    /// Wraps `process`.
    public init(_ process: Process) { self.process = process }

    /// `copy_from_user` on the process.
    public func copyFromUser(_ address: UInt64, count: Int) throws(Errno) -> [UInt8] {
        guard count > 0 else { return [] }
        do { return try process.readMemory(address: address, count: count) } catch {
            throw .badAddress.from("copy_from_user", "\(count) bytes at 0x\(String(address, radix: 16)) of pid \(process.pid): \(error)")
        }
    }

    /// `copy_to_user` on the process.
    public func copyToUser(_ address: UInt64, _ bytes: [UInt8]) throws(Errno) {
        guard !bytes.isEmpty else { return }
        do { try process.writeMemory(address: address, bytes: bytes) } catch {
            throw .badAddress.from("copy_to_user", "\(bytes.count) bytes at 0x\(String(address, radix: 16)) of pid \(process.pid): \(error)")
        }
    }
}
