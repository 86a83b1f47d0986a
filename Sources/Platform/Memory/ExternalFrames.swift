#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An owner, outside the model, of the bytes of some frames of physical memory.
///
/// The model as a service mirrors its clients' pages in model frames (a pinned page of
/// a real process is one of the service's frames standing for it); the bytes then
/// really live with the owner. There is no kernel counterpart: in the kernel the pinned
/// page *is* the user's page. Whoever moves bytes of physical memory on behalf of a
/// device or of the kernel side (the DMA engine, `iommufd_access_rw`) calls
/// ``PhysicalMemory/willRead(_:count:)`` before reading and
/// ``PhysicalMemory/didWrite(_:count:)`` after writing; the owner refreshes or writes
/// back the parts it owns and ignores the rest. When a frame goes back to the
/// allocator the owner is told, so a frame reused for something else is never
/// refreshed from its old owner.
///
/// Free when unused: the callers read one flag (`PhysicalMemory.externalFramesActive`),
/// which the owner raises while it owns any frame.
public protocol ExternalFrameOwner: AnyObject, Sendable {
    /// Before bytes `[pa, pa + count)` are read: refresh the owned parts.
    func refresh(_ pa: PhysicalAddress, count: Int)
    /// After bytes `[pa, pa + count)` were written: write the owned parts back.
    func writeBack(_ pa: PhysicalAddress, count: Int)
    /// `frames` frames from `pa` went back to the allocator: they are no longer owned.
    func released(_ pa: PhysicalAddress, frames: Int)
}

extension PhysicalMemory {
    /// Sets the owner of external frames (one per memory; nil removes it). The owner
    /// raises `externalFramesActive` itself, with ``setExternalFramesActive(_:)``.
    public func setExternalFrameOwner(_ owner: (any ExternalFrameOwner)?) {
        externalLock.withLock { _externalOwner = owner }
        if owner == nil { externalFramesActive.set(false) }
    }

    /// Raised by the owner while it owns any frame; read without a lock by the DMA path.
    public func setExternalFramesActive(_ active: Bool) { externalFramesActive.set(active) }

    var externalOwner: (any ExternalFrameOwner)? { externalLock.withLock { _externalOwner } }

    /// Before a device or the kernel side reads bytes `[pa, pa + count)`: the owner of
    /// external frames among them refreshes them. One flag test when there is none.
    @inline(__always)
    public func willRead(_ pa: PhysicalAddress, count: Int) {
        guard externalFramesActive.isSet, count > 0 else { return }
        externalOwner?.refresh(pa, count: count)
    }

    /// After a device or the kernel side wrote bytes `[pa, pa + count)`: the owner of
    /// external frames among them writes them back. One flag test when there is none.
    @inline(__always)
    public func didWrite(_ pa: PhysicalAddress, count: Int) {
        guard externalFramesActive.isSet, count > 0 else { return }
        externalOwner?.writeBack(pa, count: count)
    }

    /// Frames went back to the allocator (called with the allocator lock released).
    func noteReleased(_ pa: UInt64, frames: Int) {
        guard externalFramesActive.isSet else { return }
        externalOwner?.released(PhysicalAddress(rawValue: pa), frames: frames)
    }
}
