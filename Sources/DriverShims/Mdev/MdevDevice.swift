import IOMMUCore
import IOMMUFD

/// What an emulated (mdev) device driver provides (`struct vfio_device_ops` of a
/// device registered with `vfio_register_emulated_iommu_dev`).
public struct MdevDriverOps: Sendable {
    /// `ops->dma_unmap(vdev, iova, length)`: user space is unmapping
    /// `[iova, iova+length)`; the driver must stop using, and unpin, every page it
    /// pinned there before returning. A driver without it may use ``MdevDevice/dmaRW(iova:count:write:)``
    /// but not pin.
    public var dmaUnmap: (@Sendable (_ device: MdevDevice, _ iova: IOVA, _ length: UInt64) -> Void)?

    /// Ops with or without `dma_unmap`.
    public init(dmaUnmap: (@Sendable (MdevDevice, IOVA, UInt64) -> Void)?) {
        self.dmaUnmap = dmaUnmap
    }
}

/// An emulated device (mdev-like: a mediated vGPU or crypto queue) with the emulated
/// iommufd ops (`vfio_iommufd_emulated_*`). It never does DMA through an IOMMU: bind
/// creates an iommufd ACCESS (`needs_pin_pages`, unmap forwarded to the driver's
/// `dma_unmap`), attach points it at an IOAS, and the driver reaches guest memory by
/// IOVA with ``pinPages(iova:npage:write:)``, ``unpinPages(iova:npage:)`` and
/// ``dmaRW(iova:count:write:)``. No DMA ownership is claimed. The model has no PASID
/// ops for it (`VFIO_DEVICE_ATTACH_PASID` is `EOPNOTSUPP`), as mainline.
public final class MdevDevice: VFIODevice, @unchecked Sendable {
    /// The common `struct vfio_device` state.
    public let vfio: VFIODeviceCore
    /// The driver's ops.
    public let ops: MdevDriverOps
    /// Guards ``binding`` and ``attached`` for the pin/rw paths, which run without the
    /// device-set lock (an unmap callback may arrive while user space holds the iommufd).
    private let stateLock = Lock()
    /// `vdev->iommufd_access` and its context.
    private var binding: (ictx: IOMMUFD, access: AccessObject)?
    /// `vdev->iommufd_attached`.
    private var attached = false

    /// `vfio_register_emulated_iommu_dev` for a device called `name`.
    public init(name: String, ops: MdevDriverOps) {
        vfio = VFIODeviceCore(name: name)
        self.ops = ops
    }

    /// The iommufd ACCESS object while bound.
    public var access: AccessObject? { stateLock.withLock { binding?.access } }

    /// Whether the access is attached to an IOAS.
    public var isAttached: Bool { stateLock.withLock { attached } }

    /// `vfio_iommufd_emulated_bind`: `iommufd_access_create` with `needs_pin_pages` and
    /// an unmap op that forwards to `dma_unmap` (`vfio_emulated_unmap`).
    /// - Returns: the ACCESS object ID (``access``'s typed `id`).
    /// - Throws: `ENOMEM`.
    public func bindIOMMUFD(_ ictx: IOMMUFD) throws(Errno) -> AnyIOMMUFDObjectID {
        let forward = IOMMUFDAccessOps(needsPinPages: true) { [weak self] iova, length in
            guard let self, let dmaUnmap = self.ops.dmaUnmap else { return }
            dmaUnmap(self, iova, length)
        }
        let access = try ictx.accessCreate(ops: forward)
        stateLock.withLock {
            binding = (ictx, access)
            attached = false
        }
        return AnyIOMMUFDObjectID(access.id)
    }

    /// `vfio_iommufd_emulated_unbind`: `iommufd_access_destroy` (which detaches).
    public func unbindIOMMUFD() {
        let b = stateLock.withLock { () -> (ictx: IOMMUFD, access: AccessObject)? in
            defer { binding = nil; attached = false }
            return binding
        }
        if let b { b.ictx.accessDestroy(b.access) }
    }

    /// `vfio_iommufd_emulated_attach_ioas`: `iommufd_access_attach`, or
    /// `iommufd_access_replace` when attached. `ptID` must be an IOAS and is returned
    /// unchanged.
    /// - Throws: `EINVAL` not bound; `ENOENT` not an IOAS; `EADDRINUSE` the IOAS has
    ///   areas that are not page aligned.
    public func attachIOAS(_ ptID: inout PageTableObjectID) throws(Errno) {
        guard let (ictx, access) = stateLock.withLock({ binding }) else { throw .invalidArgument }
        if isAttached {
            try ictx.accessReplace(access, ioasID: IOASObjectID(rawValue: ptID.rawValue))
        } else {
            try ictx.accessAttach(access, ioasID: IOASObjectID(rawValue: ptID.rawValue))
        }
        stateLock.withLock { attached = true }
    }

    /// `vfio_iommufd_emulated_detach_ioas`: `iommufd_access_detach`; a no-op when not
    /// attached.
    public func detachIOAS() {
        guard let (ictx, access) = stateLock.withLock({ binding }), isAttached else { return }
        ictx.accessDetach(access)
        stateLock.withLock { attached = false }
    }

    private func openAccess() throws(Errno) -> (ictx: IOMMUFD, access: AccessObject) {
        guard let b = stateLock.withLock({ binding }) else { throw .invalidArgument }
        return b
    }

    /// `vfio_pin_pages(vdev, iova, npage, prot, pages)` on the iommufd path:
    /// `iommufd_access_pin_pages(ALIGN_DOWN(iova, PAGE_SIZE), npage * PAGE_SIZE)`. The
    /// sub-page offset of `iova` is the caller's to add back.
    /// - Returns: the physical address of each pinned page, in order.
    /// - Throws: `EINVAL` `npage` ≤ 0, the device is not open (not bound), the driver
    ///   has no `dma_unmap` (it could not honour an unmap), or the area is being
    ///   unmapped; `ENOENT` the access is not attached, or the range has a hole;
    ///   `EPERM` a write pin of a read-only mapping; `EOVERFLOW`. Nothing stays pinned
    ///   on error.
    public func pinPages(iova: IOVA, npage: Int, write: Bool) throws(Errno) -> [PhysicalAddress] {
        guard npage > 0 else { throw .invalidArgument }
        let (ictx, access) = try openAccess()
        guard ops.dmaUnmap != nil else { throw .invalidArgument }
        let page = UInt64(4096)
        let (length, o) = UInt64(npage).multipliedReportingOverflow(by: page)
        guard !o else { throw .overflow }
        return try ictx.accessPinPages(access, iova: iova.alignedDown(to: page), length: length, write: write)
    }

    /// `vfio_unpin_pages(vdev, iova, npage)`: undo a ``pinPages(iova:npage:write:)``
    /// of exactly the same range. Ignored (as the kernel's WARN) for a device that is
    /// not open, has no `dma_unmap`, or an `npage` ≤ 0.
    public func unpinPages(iova: IOVA, npage: Int) {
        guard npage > 0, ops.dmaUnmap != nil, let (ictx, access) = try? openAccess() else { return }
        let page = UInt64(4096)
        ictx.accessUnpinPages(access, iova: iova.alignedDown(to: page), length: UInt64(npage) * page)
    }

    /// `vfio_dma_rw(vdev, iova, data, len, write)` → `iommufd_access_rw`: copy guest
    /// memory by IOVA, any alignment, without pinning (so no `dma_unmap` needed).
    /// - Parameters:
    ///   - iova: where in the IOAS the copy starts.
    ///   - count: bytes to read (ignored for a write, whose length is `write.count`).
    ///   - write: the bytes to write, or nil to read.
    /// - Returns: the bytes read (empty for a write).
    /// - Throws: `EINVAL` no data or the device is not open; `ENOENT` not attached or a
    ///   hole; `EPERM` protection; `EOVERFLOW`; `EFAULT`.
    @discardableResult
    public func dmaRW(iova: IOVA, count: Int = 0, write: [UInt8]? = nil) throws(Errno) -> [UInt8] {
        let n = write?.count ?? count
        guard n > 0 else { throw .invalidArgument }
        let (ictx, access) = try openAccess()
        return try ictx.accessRW(access, iova: iova, count: n, write: write)
    }
}
