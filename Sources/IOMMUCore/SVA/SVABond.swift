/// A device bound to a process address space: `struct iommu_sva`, returned by
/// ``IOMMUSubsystem/svaBindDevice(_:mm:)``. It is also the attach handle stored at the
/// mm's PASID, so page requests for that PASID route to the SVA domain's handler.
///
/// Binding the same (device, mm) again returns this same object with ``users`` raised;
/// each bind needs one ``IOMMUSubsystem/svaUnbindDevice(_:)``.
public final class SVABond: AttachHandle, @unchecked Sendable, CustomStringConvertible {
    /// The bound device (`handle->dev`).
    public let device: PCIDevice
    /// The bound address space (`domain->mm`).
    public let mm: Process
    /// The mm's PASID the bond is attached at.
    let pasid: PASID
    /// Binds not yet undone (`handle->users`); guarded by the core's lock.
    var _users = 0

    init(device: PCIDevice, mm: Process, pasid: PASID) {
        self.device = device
        self.mm = mm
        self.pasid = pasid
        super.init()
    }

    /// `refcount_read(&handle->users)`: binds of this (device, mm) not yet unbound; 0
    /// once fully unbound.
    public var users: Int { device.machine?.iommu.lock.withLock { _users } ?? _users }

    /// `sva dev [rid] pid p pasid n`.
    public var description: String { "sva \(device.rid) pid \(mm.pid) pasid \(pasid)" }
}
