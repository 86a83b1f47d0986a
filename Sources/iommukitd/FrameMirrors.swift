import Glibc
import IOMMUCore

/// Where the bytes behind mirrored frames really live: a client's memory, or a shared
/// object (a memfd, shared anonymous memory).
protocol FrameBacking: AnyObject, Sendable {
    /// Copies `count` bytes at `address` (the backing's own addressing: a virtual
    /// address, a file offset) into `buffer`; false when they cannot be read.
    func refresh(_ address: UInt64, into buffer: UnsafeMutableRawPointer, count: Int) -> Bool
    /// Copies `count` bytes from `buffer` to `address`; false when they cannot be written.
    func writeBack(_ address: UInt64, from buffer: UnsafeRawPointer, count: Int) -> Bool
    /// Whether the backing is gone for good (its process exited): after a failure, all
    /// its frames are let go rather than the one that failed.
    var isGone: Bool { get }
}

/// The service's mirrored frames: which model frame stands for which page of which
/// backing. It is the machine's ``ExternalFrameOwner``, so every device read and every
/// `iommufd_access_rw` read of a mirrored frame first refreshes it from its backing,
/// and every write to one is written back at once: the device sees what the client
/// last stored, and the client sees a device's write as soon as it completes, as with
/// a pinned page. A frame whose backing fails stops mirroring (all the backing's frames
/// when it is gone, its client having exited) and becomes ordinary memory that keeps
/// its last contents, as the pinned pages of a process that exited do. A frame freed by
/// the model is forgotten at once.
///
/// One slot per backing, never reused; per frame a slot number and the backing's
/// address of the frame's first byte, in flat tables indexed by frame number (reserved
/// lazily, as ``PhysicalMemory``'s own), so registering a gigabyte of frames costs no
/// hashing.
final class FrameMirrors: ExternalFrameOwner, @unchecked Sendable {
    private let memory: PhysicalMemory
    private let lock = Lock()
    private let slotOf: UnsafeMutablePointer<UInt32>
    private let addressOf: UnsafeMutablePointer<UInt64>
    private let frames: Int
    private var backings: [UInt32: any FrameBacking] = [:]
    private var nextSlot: UInt32 = 1
    /// Frames registered (with a live or dropped slot).
    private var registered = 0

    init(memory: PhysicalMemory) {
        self.memory = memory
        frames = Int(memory.size / UInt64(PhysicalMemory.frameSize))
        slotOf = Self.reserve(frames, as: UInt32.self)
        addressOf = Self.reserve(frames, as: UInt64.self)
        memory.setExternalFrameOwner(self)
    }

    deinit {
        memory.setExternalFrameOwner(nil)
        munmap(slotOf, frames * MemoryLayout<UInt32>.stride)
        munmap(addressOf, frames * MemoryLayout<UInt64>.stride)
    }

    private static func reserve<T>(_ count: Int, as: T.Type) -> UnsafeMutablePointer<T> {
        let bytes = count * MemoryLayout<T>.stride
        guard let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
              p != MAP_FAILED else { fatalError("FrameMirrors: cannot reserve \(bytes) bytes") }
        return p.bindMemory(to: T.self, capacity: count)
    }

    /// A slot for a new backing.
    func slot(for backing: any FrameBacking) -> UInt32 {
        lock.withLock {
            let s = nextSlot
            nextSlot += 1
            backings[s] = backing
            return s
        }
    }

    /// Drops a backing: its frames stop mirroring anything (they keep their bytes).
    func drop(_ slot: UInt32) {
        _ = lock.withLock { backings.removeValue(forKey: slot) }
    }

    @inline(__always)
    private func index(_ pa: PhysicalAddress) -> Int { Int(truncatingIfNeeded: pa.rawValue / UInt64(PhysicalMemory.frameSize)) }

    /// Marks the frame holding `pa` as mirroring the backing of `slot` at `address`.
    func register(_ pa: PhysicalAddress, slot: UInt32, address: UInt64) {
        lock.withLock {
            let i = index(pa)
            if slotOf[i] == 0 { registered += 1 }
            slotOf[i] = slot
            addressOf[i] = address & ~UInt64(PhysicalMemory.frameSize - 1)
            if registered == 1 { memory.setExternalFramesActive(true) }
        }
    }

    /// Forgets the frame holding `pa`.
    func unregister(_ pa: PhysicalAddress) {
        lock.withLock { forget(index(pa)) }
    }

    private func forget(_ i: Int) {
        guard slotOf[i] != 0 else { return }
        slotOf[i] = 0
        registered -= 1
        if registered == 0 { memory.setExternalFramesActive(false) }
    }

    /// Whether the frame holding `pa` mirrors `slot` at `address` (a live slot).
    func mirrors(_ pa: PhysicalAddress, slot: UInt32, address: UInt64) -> Bool {
        lock.withLock {
            let i = index(pa)
            return slotOf[i] == slot && addressOf[i] == address & ~UInt64(PhysicalMemory.frameSize - 1)
                && backings[slot] != nil
        }
    }

    /// Frames registered now.
    var count: Int { lock.withLock { registered } }

    // MARK: ExternalFrameOwner

    func refresh(_ pa: PhysicalAddress, count: Int) {
        forEachMirrored(pa, count) { b, address, at, n in
            b.refresh(address, into: memory.pointer(at), count: n)
        }
    }

    func writeBack(_ pa: PhysicalAddress, count: Int) {
        forEachMirrored(pa, count) { b, address, at, n in
            b.writeBack(address, from: memory.pointer(at), count: n)
        }
    }

    func released(_ pa: PhysicalAddress, frames n: Int) {
        lock.withLock {
            let first = index(pa)
            for i in first..<first + n { forget(i) }
        }
    }

    /// Calls `body` for each mirrored part of `[pa, pa + count)`, with the lock released;
    /// a part that fails stops mirroring (its whole backing when that is gone).
    private func forEachMirrored(_ pa: PhysicalAddress, _ count: Int,
                                 _ body: (any FrameBacking, UInt64, PhysicalAddress, Int) -> Bool) {
        let size = UInt64(PhysicalMemory.frameSize)
        var at = pa.rawValue
        let end = pa.rawValue + UInt64(count)
        while at < end {
            let frame = at & ~(size - 1)
            let n = Int(min(frame + size, end) - at)
            let found: (UInt32, any FrameBacking, UInt64)? = lock.withLock {
                let i = index(PhysicalAddress(rawValue: frame))
                let s = slotOf[i]
                guard s != 0, let b = backings[s] else { return nil }
                return (s, b, addressOf[i])
            }
            if let (slot, backing, address) = found,
               !body(backing, address + (at - frame), PhysicalAddress(rawValue: at), n) {
                if backing.isGone { drop(slot) } else { unregister(PhysicalAddress(rawValue: frame)) }
            }
            at += UInt64(n)
        }
    }
}
