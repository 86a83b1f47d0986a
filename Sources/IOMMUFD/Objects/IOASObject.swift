import IOMMUCore

/// `IOMMUFD_OBJ_IOAS` (`struct iommufd_ioas`): an I/O address space, the IOVA → user
/// memory map that paging HWPTs and accesses mirror.
public final class IOASObject: IOMMUFDObject, @unchecked Sendable {
    /// The IOAS ID (`obj->id`).
    public var id: IOASObjectID { IOASObjectID(rawValue: rawID) }
    package let iopt: IOPageTableState
    /// `ioas->hwpt_list`: paging HWPTs built on this IOAS (auto and manual).
    var hwpts: [HWPTPagingObject] = []

    init(ctx: IOMMUFD) {
        iopt = IOPageTableState(ctx: ctx)
        super.init(type: .ioas)
    }

    /// `iommufd_ioas_destroy`: unmap everything (releasing pins), drop the allowed and
    /// test-reserved ranges.
    override func destroy(_ ctx: IOMMUFD) {
        let (e, _) = iopt.unmapAll()
        if let e { ctx.warn("iommufd_ioas_destroy", "unmap all failed: \(e)") }
        iopt.allowed = []
        iopt.removeReserved(owner: nil)
    }
}

extension IOMMUFD {
    /// `iommufd_ioas_alloc`: a new IOAS object, not yet finalized.
    /// - Throws: `ENOMEM`.
    func ioasAlloc() throws(Errno) -> IOASObject {
        let ioas = IOASObject(ctx: self)
        try allocObject(ioas)
        return ioas
    }
}
