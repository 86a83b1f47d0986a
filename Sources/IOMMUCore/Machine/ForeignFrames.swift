/// Where the bytes of a foreign frame really live: a page of another host process that
/// the model mirrors in one of its own frames (the model as a service maps a client's
/// real memory into an IOAS this way). There is no kernel counterpart: in the kernel the
/// pinned page *is* the user's page; here the model frame is a shadow of it, kept
/// coherent by ``ForeignFrames``.
public protocol ForeignFrameBacking: AnyObject, Sendable {
    /// Copies `count` bytes of the owner's memory at `address` into `buffer`.
    /// - Returns: false when the owner's memory cannot be read (the owner exited, the
    ///   page went away); the frame then keeps its last contents.
    func refresh(_ address: UInt64, into buffer: UnsafeMutableRawPointer, count: Int) -> Bool
    /// Copies `count` bytes from `buffer` to the owner's memory at `address`.
    /// - Returns: false when the owner's memory cannot be written; the bytes then stay
    ///   in the model frame only.
    func writeBack(_ address: UInt64, from buffer: UnsafeRawPointer, count: Int) -> Bool
}

/// The registry of foreign frames of one machine and the single place where their
/// coherence rule is applied.
///
/// **Coherence rule.** A foreign frame is a model frame that mirrors one page of another
/// process (`backing` at `address`). Whoever moves bytes of physical memory on behalf of a
/// device or of the kernel (the DMA engine, `iommufd_access_rw`) calls
/// ``willRead(_:count:)`` before reading and ``didWrite(_:count:)`` after writing. A
/// read first refreshes the bytes it covers from the owner; a write is written back to
/// the owner at once. So the device sees what the owner last stored, and the owner sees
/// each device write as soon as it completes, as with a pinned page. A backing that
/// fails (its owner exited) is dropped, and the frame becomes ordinary pinned memory:
/// DMA still works on it, as on the pinned pages of a process that exited.
///
/// Free when unused: the DMA hot path reads one atomic `Bool` (`active`).
public final class ForeignFrames: @unchecked Sendable {
    private let lock = Lock()
    private let memory: PhysicalMemory
    private var frames: [UInt64: (backing: any ForeignFrameBacking, address: UInt64)] = [:]
    /// True while any frame is registered; read without the lock by the DMA engine
    /// (an atomic: frames come and go while devices DMA).
    package let active = AtomicFlag()

    /// The registry of `memory`'s frames.
    public init(memory: PhysicalMemory) {
        self.memory = memory
    }

    private static func frame(_ pa: UInt64) -> UInt64 { pa & ~UInt64(PhysicalMemory.frameSize - 1) }

    /// Marks the frame holding `pa` as mirroring the page at `address` of `backing`.
    public func register(_ pa: UInt64, backing: any ForeignFrameBacking, address: UInt64) {
        lock.withLock {
            frames[Self.frame(pa)] = (backing, address & ~UInt64(PhysicalMemory.frameSize - 1))
            active.set(true)
        }
    }

    /// Forgets the frame holding `pa` (before it is freed or when its owner is gone).
    public func unregister(_ pa: UInt64) {
        lock.withLock {
            frames[Self.frame(pa)] = nil
            active.set(!frames.isEmpty)
        }
    }

    /// Forgets every frame of `backing`.
    public func unregisterAll(_ backing: any ForeignFrameBacking) {
        lock.withLock {
            frames = frames.filter { $0.value.backing !== backing }
            active.set(!frames.isEmpty)
        }
    }

    /// Number of foreign frames registered.
    public var count: Int { lock.withLock { frames.count } }

    /// The owner and address behind the frame holding `pa`, if it is foreign.
    public func owner(of pa: UInt64) -> (backing: any ForeignFrameBacking, address: UInt64)? {
        lock.withLock { frames[Self.frame(pa)] }
    }

    /// Before bytes `[pa, pa+count)` are read: refresh the foreign parts from their owners.
    public func willRead(_ pa: UInt64, count: Int) {
        guard active.isSet, count > 0 else { return }
        forEachForeign(pa, count) { b, address, at, n in
            if !b.refresh(address, into: memory.pointer(PhysicalAddress(rawValue: at)), count: n) { unregisterAll(b) }
        }
    }

    /// After bytes `[pa, pa+count)` were written: write the foreign parts back.
    public func didWrite(_ pa: UInt64, count: Int) {
        guard active.isSet, count > 0 else { return }
        forEachForeign(pa, count) { b, address, at, n in
            if !b.writeBack(address, from: memory.pointer(PhysicalAddress(rawValue: at)), count: n) { unregisterAll(b) }
        }
    }

    private func forEachForeign(_ pa: UInt64, _ count: Int,
                                _ body: (any ForeignFrameBacking, UInt64, UInt64, Int) -> Void) {
        let size = UInt64(PhysicalMemory.frameSize)
        var at = pa
        let end = pa + UInt64(count)
        while at < end {
            let f = Self.frame(at)
            let n = Int(min(f + size, end) - at)
            if let (b, address) = lock.withLock({ frames[f] }) { body(b, address + (at - f), at, n) }
            at += UInt64(n)
        }
    }
}
