import IOMMUCore

/// A hardware page table object (`struct iommufd_hw_pagetable`): a core
/// ``/IOMMUCore/IOMMUDomain`` owned by the context, optionally delivering I/O page faults to a
/// FAULT object.
public class HWPTObject: IOMMUFDObject, @unchecked Sendable {
    /// The HWPT ID (`obj->id`).
    public var id: HWPTObjectID { HWPTObjectID(rawValue: rawID) }
    /// The domain (`hwpt->domain`); nil only while a paging HWPT is half built.
    package internal(set) var domain: IOMMUDomain?
    /// `hwpt->fault`.
    var fault: FaultObject?
    /// `hwpt->pasid_compat`: allocated with `IOMMU_HWPT_ALLOC_PASID`.
    var pasidCompat = false

    func dropFault(_ ctx: IOMMUFD) {
        if let f = fault { ctx.unref(f) }
        fault = nil
    }

    /// The paging HWPT whose IOAS holds this HWPT's mappings (itself, or a nested
    /// HWPT's parent).
    var pagingRoot: HWPTPagingObject? { nil }
}

/// `IOMMUFD_OBJ_HWPT_PAGING` (`struct iommufd_hwpt_paging`): a paging domain that
/// mirrors an IOAS.
public final class HWPTPagingObject: HWPTObject, @unchecked Sendable {
    /// `hwpt_paging->ioas` (a users reference is held).
    let ioas: IOASObject
    /// `auto_domain`: created by attaching a device to the IOAS; dies with its last device.
    var autoDomain = false
    /// `nest_parent`: allocated with `IOMMU_HWPT_ALLOC_NEST_PARENT`.
    var nestParent = false
    /// `enforce_cache_coherency`.
    var enforceCacheCoherency = false
    /// The domain was added to the IOAS's io_pagetable.
    var inIOPT = false

    init(ioas: IOASObject) {
        self.ioas = ioas
        super.init(type: .hwptPaging)
    }

    override var pagingRoot: HWPTPagingObject? { self }

    /// `iommufd_hwpt_paging_destroy`: leave the IOAS, free the domain, drop the IOAS and
    /// fault references.
    override func destroy(_ ctx: IOMMUFD) {
        if let d = domain {
            if inIOPT { ioas.iopt.removeDomain(d) }
            inIOPT = false
            ctx.machine.iommu.freeDomain(d)
            domain = nil
        }
        ioas.hwpts.removeAll { $0 === self }
        ctx.unref(ioas)
        dropFault(ctx)
    }
}

/// `IOMMUFD_OBJ_HWPT_NESTED` (`struct iommufd_hwpt_nested`): a user stage 1 built by
/// the vendor from user data, translated through a nesting-parent paging HWPT, either
/// named directly or through a vIOMMU over it.
public final class HWPTNestedObject: HWPTObject, @unchecked Sendable {
    /// `hwpt_nested->parent`: a users reference is held when the HWPT was allocated on
    /// the parent itself; through a vIOMMU, the vIOMMU holds the parent.
    let parent: HWPTPagingObject
    /// `hwpt_nested->viommu` (a users reference is held), for a nested HWPT allocated
    /// on a vIOMMU.
    let viommu: VIOMMUObject?

    init(parent: HWPTPagingObject, viommu: VIOMMUObject? = nil) {
        self.parent = parent
        self.viommu = viommu
        super.init(type: .hwptNested)
    }

    override var pagingRoot: HWPTPagingObject? { parent }

    /// `iommufd_hwpt_nested_destroy`: free the domain, drop the vIOMMU (or parent) and
    /// fault refs.
    override func destroy(_ ctx: IOMMUFD) {
        if let d = domain { ctx.machine.iommu.freeDomain(d) }
        domain = nil
        if let viommu { ctx.unref(viommu) } else { ctx.unref(parent) }
        dropFault(ctx)
    }
}

extension IOMMUFD {
    /// `iommufd_hwpt_paging_alloc(ictx, ioas, idev, pasid, flags, immediate_attach,
    /// user_data)`: a paging HWPT on `ioas` for `idev`'s driver, added to the IOAS (and,
    /// for auto domains, attached first). Returned unfinalized; on error nothing remains.
    /// - Throws: `EOPNOTSUPP` unknown flags, DIRTY_TRACKING on an incapable device,
    ///   FAULT_ID_VALID with NEST_PARENT, driver refusals; `ENOMEM`; attach errors;
    ///   `iopt_table_add_domain` errors (`EINVAL`, `EADDRINUSE`, pin errors).
    func hwptPagingAlloc(ioas: IOASObject, idev: DeviceObject, pasid: PASID?, flags: UInt32,
                         immediateAttach: Bool, userData: IOMMUUserData?) throws(Errno) -> HWPTPagingObject {
        let valid = IOMMUFDConstant.hwptAllocNestParent | IOMMUFDConstant.hwptAllocDirtyTracking
            | IOMMUFDConstant.hwptFaultIDValid | IOMMUFDConstant.hwptAllocPasid
        let f = "iommufd_hwpt_paging_alloc"
        guard flags & ~valid == 0 else { throw .notSupported.from(f, "unknown flags 0x\(String(flags & ~valid, radix: 16))") }
        let driver = try idev.driver()
        if flags & IOMMUFDConstant.hwptAllocDirtyTracking != 0 && !driver.capable(idev.dev, .dirtyTracking) {
            throw .notSupported.from(f, "\(driver.name) cannot track dirty pages for \(idev.dev.rid)")
        }
        if flags & IOMMUFDConstant.hwptFaultIDValid != 0 && flags & IOMMUFDConstant.hwptAllocNestParent != 0 {
            throw .notSupported.from(f, "a nesting parent cannot have a fault queue")
        }
        let hwpt = HWPTPagingObject(ioas: ioas)
        try allocObject(hwpt)
        ref(ioas)
        ioas.hwpts.append(hwpt)
        hwpt.nestParent = flags & IOMMUFDConstant.hwptAllocNestParent != 0
        hwpt.pasidCompat = flags & IOMMUFDConstant.hwptAllocPasid != 0
        let driverFlags = DomainAllocFlags(rawValue: flags & ~IOMMUFDConstant.hwptFaultIDValid)
        var attached = false
        do throws(Errno) {
            if let userData, userData.len != 0 {
                let bytes: [UInt8]
                if let ops = driver as? any IOMMUFDDriverOps {
                    bytes = try ops.pagingUserData(idev.dev, userData)
                } else {
                    bytes = try userData.user.copyFromUser(userData.uptr, count: Int(userData.len))
                }
                hwpt.domain = try driver.domainAllocPaging(idev.dev, flags: driverFlags, userData: bytes)
            } else {
                hwpt.domain = try machine.iommu.allocPagingDomain(for: idev.dev, flags: driverFlags)
            }
            hwpt.enforceCacheCoherency = driver.capable(idev.dev, .enforceCacheCoherency)
            if immediateAttach {
                try hwptAttach(hwpt, idev, pasid: pasid)
                attached = true
            }
            try ioas.iopt.addDomain(hwpt.domain!)
            hwpt.inIOPT = true
        } catch {
            if attached { hwptDetach(idev, pasid: pasid, putHWPT: false) }
            abortAndDestroy(hwpt)
            throw error
        }
        return hwpt
    }

    /// `iommufd_hwpt_nested_alloc(ictx, parent, idev, flags, user_data)`.
    /// - Throws: `EOPNOTSUPP` flags other than FAULT_ID_VALID|PASID, empty data, or the
    ///   driver's refusal of the data type; `EINVAL` an auto or non-parent parent, or a
    ///   parent from another driver, or bad data length; `EFAULT`; `ENOMEM`.
    func hwptNestedAlloc(parent: HWPTPagingObject, idev: DeviceObject, flags: UInt32,
                         userData: IOMMUUserData) throws(Errno) -> HWPTNestedObject {
        let valid = IOMMUFDConstant.hwptFaultIDValid | IOMMUFDConstant.hwptAllocPasid
        let f = "iommufd_hwpt_nested_alloc"
        guard flags & ~valid == 0 else { throw .notSupported.from(f, "unknown flags 0x\(String(flags & ~valid, radix: 16))") }
        guard userData.len != 0 else { throw .notSupported.from(f, "no vendor data") }
        let driver = try idev.driver()
        guard let parentDomain = parent.domain, !parent.autoDomain, parent.nestParent else {
            throw .invalidArgument.from(f, "\(parent) was not allocated with IOMMU_HWPT_ALLOC_NEST_PARENT")
        }
        guard parentDomain.owner === driver else { throw .invalidArgument.from(f, "\(parent) belongs to another driver") }
        let hwpt = HWPTNestedObject(parent: parent)
        try allocObject(hwpt)
        ref(parent)
        hwpt.pasidCompat = flags & IOMMUFDConstant.hwptAllocPasid != 0
        do throws(Errno) {
            let bytes: [UInt8]
            if let ops = driver as? any IOMMUFDDriverOps {
                bytes = try ops.nestedUserData(idev.dev, userData)
            } else {
                bytes = try userData.user.copyFromUser(userData.uptr, count: Int(userData.len))
            }
            let d = try driver.domainAllocNested(idev.dev, parent: parentDomain,
                                                  flags: DomainAllocFlags(rawValue: flags & ~IOMMUFDConstant.hwptFaultIDValid),
                                                  userData: bytes)
            hwpt.domain = d
            guard d.type == .nested else {
                warn("iommufd_hwpt_nested_alloc", "driver returned a \(d.type) domain")
                throw .invalidArgument.from(f, "the driver returned a \(d.type) domain")
            }
        } catch {
            abortAndDestroy(hwpt)
            throw error
        }
        return hwpt
    }

    /// `iommufd_viommu_alloc_hwpt_nested(viommu, flags, user_data)`: a nested HWPT whose
    /// domain the vIOMMU's driver builds (`alloc_domain_nested`), over the vIOMMU's parent.
    /// Returned unfinalized; on error nothing remains.
    /// - Throws: `EOPNOTSUPP` flags other than FAULT_ID_VALID|PASID, empty data, a vIOMMU
    ///   without `alloc_domain_nested`, the driver's refusal of the data type, or a domain
    ///   that is not nested (a WARN); `ENOMEM`; the driver's data errno.
    func viommuAllocHWPTNested(_ viommu: VIOMMUObject, flags: UInt32,
                               userData: IOMMUUserData) throws(Errno) -> HWPTNestedObject {
        let valid = IOMMUFDConstant.hwptFaultIDValid | IOMMUFDConstant.hwptAllocPasid
        guard flags & ~valid == 0, userData.len != 0, let ops = viommu.ops else { throw .notSupported }
        let hwpt = HWPTNestedObject(parent: viommu.hwpt, viommu: viommu)
        try allocObject(hwpt)
        hwpt.pasidCompat = flags & IOMMUFDConstant.hwptAllocPasid != 0
        ref(viommu)
        do throws(Errno) {
            let d = try ops.allocDomainNested(flags: DomainAllocFlags(rawValue: flags & ~IOMMUFDConstant.hwptFaultIDValid),
                                              userData: userData)
            hwpt.domain = d
            guard d.type == .nested else {
                warn("iommufd_viommu_alloc_hwpt_nested", "driver returned a \(d.type) domain")
                throw .notSupported
            }
        } catch {
            abortAndDestroy(hwpt)
            throw error
        }
        return hwpt
    }

    /// `iommufd_hw_pagetable_put`: drop an attachment's reference; an auto domain left
    /// with no device is destroyed.
    func hwptPut(_ hwpt: HWPTObject) {
        if let p = hwpt as? HWPTPagingObject, p.autoDomain {
            putAndTryDestroy(p)
        } else {
            unref(hwpt)
        }
    }
}
