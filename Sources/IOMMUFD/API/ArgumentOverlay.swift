import IOMMUCore

/// The typed API's argument window: buffers the Swift caller passes (the command
/// structure, input arrays, output buffers) placed at addresses in the kernel half of the
/// address space, where no user mapping can be, and laid over the caller's memory. The
/// dispatcher reads and writes them through the same ``UserMemory`` interface as any
/// user pointer, so the typed API exercises exactly the raw path.
final class ArgumentOverlay: UserMemory, @unchecked Sendable {
    /// First address of the window (`0xffff_a000_0000_0000`): never a user address.
    static let base: UInt64 = 0xffff_a000_0000_0000
    private(set) var regions: [(address: UInt64, bytes: [UInt8])] = []
    private(set) var next: any UserMemory

    init(over next: any UserMemory) { self.next = next }

    /// The first region's bytes from the previous call, kept for ``place(encoding:)``.
    private var spareBytes: [UInt8] = []

    /// Empties the window and lays it over `next`, for reuse by the next typed call.
    func reset(over next: any UserMemory) {
        // Most typed calls place one command structure first: its buffer is kept for the
        // next call's, saving an allocation per call.
        // (Only a structure-sized one: a large input array is not held on to.)
        if let first = regions.first, spareBytes.isEmpty, first.bytes.count <= 256 { spareBytes = first.bytes }
        regions.removeAll(keepingCapacity: true)
        self.next = next
    }

    /// Places the `sizeof`-long byte image of `value` (as ``place(_:)`` with
    /// `value.bytes`), reusing the spare buffer when there is one.
    func place<T: UAPIStruct>(encoding value: T) -> UInt64 {
        var b = UAPIBytes(spareBytes)
        spareBytes = []
        if b.bytes.count == T.size {
            // The usual case (the same structure as last time): zeroed in place.
            _ = b.bytes.withUnsafeMutableBytes { $0.initializeMemory(as: UInt8.self, repeating: 0) }
        } else {
            b.bytes.removeAll(keepingCapacity: true)
            b.bytes.append(contentsOf: repeatElement(0, count: T.size))
        }
        value.encode(into: &b)
        return place(b.bytes)
    }

    /// Places `bytes` in the window and returns their address.
    func place(_ bytes: [UInt8]) -> UInt64 {
        let address = regions.last.map { ($0.address + UInt64($0.bytes.count) + 63) & ~63 } ?? Self.base
        regions.append((address, bytes))
        return address
    }

    /// The current contents of the region at `address`.
    func bytes(at address: UInt64) -> [UInt8] { regions.first { $0.address == address }?.bytes ?? [] }

    private func region(_ address: UInt64, _ count: Int) throws(Errno) -> Int? {
        guard address >= Self.base else { return nil }
        for (i, r) in regions.enumerated()
        where address >= r.address && address - r.address < UInt64(max(r.bytes.count, 1)) {
            guard UInt64(count) <= UInt64(r.bytes.count) - (address - r.address) else {
                throw .badAddress.from("copy_from_user", "\(count) bytes at 0x\(String(address, radix: 16)) run past the argument buffer")
            }
            return i
        }
        throw .badAddress.from("copy_from_user", "0x\(String(address, radix: 16)) is in no argument buffer")
    }

    func copyFromUser(_ address: UInt64, count: Int) throws(Errno) -> [UInt8] {
        if count == 0 { return [] }
        guard let i = try region(address, count) else { return try next.copyFromUser(address, count: count) }
        let o = Int(address - regions[i].address)
        return Array(regions[i].bytes[o..<o + count])
    }

    // The buffer forms copy straight between the window and the caller's buffer: the
    // dispatcher reads every typed call's size word and structure, and writes its
    // answer, through them.
    func copyFromUser(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(Errno) {
        if buffer.isEmpty { return }
        guard let i = try region(address, buffer.count) else { return try next.copyFromUser(address, into: buffer) }
        let o = Int(address - regions[i].address)
        regions[i].bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[o..<o + buffer.count])) }
    }

    func copyToUser(_ address: UInt64, from buffer: UnsafeRawBufferPointer) throws(Errno) {
        if buffer.isEmpty { return }
        guard let i = try region(address, buffer.count) else { return try next.copyToUser(address, from: buffer) }
        let o = Int(address - regions[i].address)
        regions[i].bytes.withUnsafeMutableBytes {
            UnsafeMutableRawBufferPointer(rebasing: $0[o..<o + buffer.count]).copyMemory(from: buffer)
        }
    }

    func copyToUser(_ address: UInt64, _ bytes: [UInt8]) throws(Errno) {
        if bytes.isEmpty { return }
        guard let i = try region(address, bytes.count) else { return try next.copyToUser(address, bytes) }
        let o = Int(address - regions[i].address)
        regions[i].bytes.replaceSubrange(o..<o + bytes.count, with: bytes)
    }
}

extension IOMMUFD {
    /// A fresh (empty) argument window over the caller's memory: the spare one kept from
    /// the last typed call when there is one (none while a typed call is running, so a
    /// nested call gets its own), saving two allocations per typed call.
    private func takeOverlay() -> ArgumentOverlay {
        guard let o = spareOverlay else { return ArgumentOverlay(over: callerMemory) }
        spareOverlay = nil
        o.reset(over: callerMemory)
        return o
    }

    /// Keeps `o` as the spare window, emptied and laid over the opener's memory so that
    /// it holds on to neither the call's buffers nor another caller's memory.
    private func keepOverlay(_ o: ArgumentOverlay) {
        o.reset(over: openerMemory)
        spareOverlay = o
    }

    /// Runs one ioctl of the typed API: `prepare` places the command structure (and any
    /// arrays) in a fresh argument window and returns the command's address; the raw
    /// dispatcher runs; `finish` reads results back from the window.
    func typedCall<R>(_ cmd: UInt32, prepare: (ArgumentOverlay) -> UInt64,
                      finish: (ArgumentOverlay, UInt64) -> R) -> Result<R, Errno> {
        runTyped(cmd, prepare) { r, o, arg in r.map { _ in finish(o, arg) } }
    }

    /// As ``typedCall(_:prepare:finish:)`` but reads the results back on failure too (for
    /// commands that write output on every path, such as `IOMMU_HWPT_INVALIDATE`).
    func typedCallAlways<R>(_ cmd: UInt32, prepare: (ArgumentOverlay) -> UInt64,
                            finish: (ArgumentOverlay, UInt64) -> R) -> (Result<Int32, Errno>, R) {
        runTyped(cmd, prepare) { r, o, arg in (r, finish(o, arg)) }
    }

    /// The one path both typed forms share: a kept argument window, the raw dispatcher
    /// with the window as user memory, then `result` while the window is still valid.
    private func runTyped<T>(_ cmd: UInt32, _ prepare: (ArgumentOverlay) -> UInt64,
                             _ result: (Result<Int32, Errno>, ArgumentOverlay, UInt64) -> T) -> T {
        lock.withLock {
            let o = takeOverlay()
            defer { keepOverlay(o) }
            let arg = prepare(o)
            overlay = o
            let r = ioctlResult(cmd, arg)
            overlay = nil
            return result(r, o, arg)
        }
    }

    /// Encode `s` → dispatch → decode: the typed API's single path for a command structure.
    func typedCall<T: UAPIStruct>(_ cmd: UInt32, _ s: T) -> Result<T, Errno> {
        typedCall(cmd, prepare: { $0.place(encoding: s) }, finish: { o, a in T(bytes: o.bytes(at: a)) })
    }
}
