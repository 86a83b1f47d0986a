import IOMMUCore
import IOMMUFD

/// A PCI function driven by vfio-pci (`struct vfio_pci_core_device`) with the
/// physical iommufd ops (`vfio_iommufd_physical_*`). vfio-pci is `driver_managed_dma`:
/// it never uses the default domain; binding an iommufd claims DMA ownership of the
/// whole group (the blocking domain), and unbinding gives the group back to its
/// default domain.
///
/// Attach shapes: the RID (an IOAS through an auto domain, or a HWPT); one PASID (a
/// HWPT allocated with `IOMMU_HWPT_ALLOC_PASID`); and the RID with every PASID (a
/// nested HWPT of a vendor that owns the PASID table — `EOPNOTSUPP` on VT-d, which
/// attaches per PASID).
public final class VFIOPCIDevice: VFIOPasidOps, VFIOAllPasidsOps, @unchecked Sendable {
    /// The common `struct vfio_device` state.
    public let vfio: VFIODeviceCore
    /// The PCI function (`vdev->pdev`).
    public let pci: PCIDevice
    /// `vdev->iommufd_device` and the context it belongs to.
    private var binding: (ictx: IOMMUFD, idev: DeviceObject)?
    /// `vdev->iommufd_attached`: the RID (or RID plus all PASIDs) is attached.
    public private(set) var ridAttached = false
    /// The RID attachment is the all-PASIDs shape.
    public private(set) var ownsAllPasids = false
    /// `vdev->pasids`: the PASIDs attached through this device.
    private var pasidSet: Set<PASID> = []

    /// `vfio_pci_core_register_device` for `pci`.
    public init(_ pci: PCIDevice) {
        self.pci = pci
        vfio = VFIODeviceCore(name: "vfio-pci \(pci.rid)")
    }

    /// The attached PASIDs, ascending.
    public var attachedPasids: [PASID] { vfio.devSetLock.withLock { pasidSet.sorted() } }

    /// The iommufd DEVICE object while bound.
    public var iommufdDevice: DeviceObject? { vfio.devSetLock.withLock { binding?.idev } }

    private func bound() throws(Errno) -> (ictx: IOMMUFD, idev: DeviceObject) {
        guard let binding else { throw .invalidArgument }
        return binding
    }

    /// `vfio_iommufd_physical_bind`: `iommufd_device_bind` (claims DMA ownership).
    /// - Throws: `EINVAL` no cache coherency; `ENODEV` no group; `EPERM` a kernel
    ///   driver or another owner uses the group; `EBUSY` the group is off its default
    ///   domain or has PASIDs attached; `ENOMEM`.
    /// - Returns: the DEVICE object ID (``iommufdDevice``'s typed `id`).
    public func bindIOMMUFD(_ ictx: IOMMUFD) throws(Errno) -> AnyIOMMUFDObjectID {
        let idev = try ictx.deviceBind(pci)
        binding = (ictx, idev)
        pasidSet = []
        return AnyIOMMUFDObjectID(idev.id)
    }

    /// `vfio_iommufd_physical_unbind`: detach every PASID (ascending), then the RID,
    /// then `iommufd_device_unbind` (DMA ownership released: the group is back on its
    /// default domain).
    public func unbindIOMMUFD() {
        guard let (ictx, idev) = binding else { return }
        for pasid in pasidSet.sorted() {
            ictx.deviceDetach(idev, pasid: pasid)
            pasidSet.remove(pasid)
        }
        if ridAttached {
            ictx.deviceDetach(idev, pasid: nil)
            ridAttached = false
            ownsAllPasids = false
        }
        ictx.deviceUnbind(idev)
        binding = nil
    }

    /// `vfio_iommufd_physical_attach_ioas`: `iommufd_device_attach` the first time,
    /// `iommufd_device_replace` after.
    /// - Throws: `EINVAL` not bound, wrong object type, PASID compatibility (a RID
    ///   attach of a non-PASID-compatible HWPT while PASIDs are attached); `ENOENT`;
    ///   `EADDRINUSE`; driver errors. Nothing changes on error.
    public func attachIOAS(_ ptID: inout PageTableObjectID) throws(Errno) {
        let (ictx, idev) = try bound()
        if ridAttached {
            ptID = PageTableObjectID(try ictx.deviceReplace(idev, pasid: nil, ptID: ptID))
        } else {
            ptID = PageTableObjectID(try ictx.deviceAttach(idev, pasid: nil, ptID: ptID))
        }
        ridAttached = true
        ownsAllPasids = false
    }

    /// `vfio_iommufd_physical_detach_ioas`: a no-op when the RID is not attached.
    public func detachIOAS() {
        guard let (ictx, idev) = binding, ridAttached else { return }
        ictx.deviceDetach(idev, pasid: nil)
        ridAttached = false
        ownsAllPasids = false
    }

    /// `vfio_iommufd_physical_pasid_attach_ioas`: replace when the PASID is attached
    /// (no blocked window), else reserve it and attach.
    /// - Throws: `EINVAL` not bound, `pasid` 0 or beyond the device's PASID width, a
    ///   HWPT without `IOMMU_HWPT_ALLOC_PASID`, the RID on a non-PASID-compatible HWPT,
    ///   or the RID owning all PASIDs; `ENOENT`; `EBUSY`; driver errors (a PASID that
    ///   was not attached stays unattached).
    public func pasidAttachIOAS(_ pasid: PASID, _ ptID: inout PageTableObjectID) throws(Errno) {
        let (ictx, idev) = try bound()
        guard pasid.rawValue != 0 else { throw .invalidArgument }
        if pasidSet.contains(pasid) {
            ptID = PageTableObjectID(try ictx.deviceReplace(idev, pasid: pasid, ptID: ptID))
            return
        }
        ptID = PageTableObjectID(try ictx.deviceAttach(idev, pasid: pasid, ptID: ptID))
        pasidSet.insert(pasid)
    }

    /// `vfio_iommufd_physical_pasid_detach_ioas`: a no-op for a PASID never attached.
    public func pasidDetachIOAS(_ pasid: PASID) {
        guard let (ictx, idev) = binding, pasidSet.contains(pasid) else { return }
        ictx.deviceDetach(idev, pasid: pasid)
        pasidSet.remove(pasid)
    }

    /// The third shape: the RID and every PASID on a nested HWPT
    /// (``/IOMMUFD/IOMMUFD/deviceAttachAllPasids(_:ptID:)``), replacing the RID's attachment.
    /// - Throws: `EINVAL` not bound or not a nested HWPT; `EOPNOTSUPP` the vendor
    ///   attaches per PASID (VT-d); `EBUSY` PASIDs are attached; `ENOENT`. Nothing
    ///   changes on error.
    public func allPasidsAttachIOAS(_ ptID: inout PageTableObjectID) throws(Errno) {
        let (ictx, idev) = try bound()
        ptID = PageTableObjectID(try ictx.deviceAttachAllPasids(idev, ptID: ptID))
        ridAttached = true
        ownsAllPasids = true
    }
}
