import IOMMUCore

// Added by the vfio-pci shim work (branch vfio): the third attach shape of the seed's
// proposal, "attach page table to the RID and all PASIDs", for drivers such as vfio-pci.
// Mainline iommufd has no separate entry point: on SMMUv3 a nested HWPT attached to the
// RID carries the user's CD table and so covers every PASID. The model makes the shape
// explicit through the core's `attachDeviceAllPasids`.

extension IOMMUFD {
    /// Attach the RID **and every PASID** of `idev`'s device to a nested HWPT whose
    /// vendor hands the whole PASID table to the user (`iommu_ops.user_pasid_table`; on
    /// SMMUv3, an STE pointing at a user CD table). The attachment is recorded as the RID
    /// attachment: ``deviceDetach(_:pasid:)`` with a nil pasid undoes it, and a second call
    /// with another nested HWPT replaces it with no blocked window. The kernel's
    /// counterpart is `iommufd_device_attach(idev, IOMMU_NO_PASID, &pt_id)` on a nested
    /// HWPT of such a vendor, made explicit.
    /// - Returns: the HWPT ID.
    /// - Throws: `ENOENT` unknown `ptID`, or `idev` was unbound; `ENODEV` the device has no IOMMU;
    ///   `EOPNOTSUPP` the vendor attaches per PASID (Intel VT-d); `EINVAL` `ptID` is not
    ///   a nested HWPT; `EBUSY` PASIDs are attached individually, or another device of
    ///   the group holds the RID attachment; `EADDRINUSE` reserved regions in the
    ///   parent's IOAS; the core's and driver's attach errno. Nothing changes on error.
    public func deviceAttachAllPasids<PT: IOMMUFDPageTableKind>(_ idev: DeviceObject,
                                                                ptID: IOMMUFDObjectID<PT>) throws(Errno) -> HWPTObjectID {
        HWPTObjectID(rawValue: try attachAllPasids(idev, ptID: ptID.rawValue))
    }

    private func attachAllPasids(_ idev: DeviceObject, ptID: UInt32) throws(Errno) -> UInt32 {
        try entry("iommufd_device_attach_all_pasids") { () throws(Errno) -> UInt32 in
            let f = "iommufd_device_attach_all_pasids"
            try checkLive(idev, f)
            let pt = try getObject(ptID, .any)
            defer { put(pt) }
            guard let driver = idev.dev.iommu?.driver else { throw .noDevice.from(f, "\(idev.dev.rid) has no IOMMU") }
            guard driver.userPasidTable else {
                throw .notSupported.from(f, "\(driver.name) attaches per PASID (no user PASID table)")
            }
            guard let hwpt = pt as? HWPTNestedObject, let domain = hwpt.domain else {
                throw .invalidArgument.from(f, "pt_id \(ptID) is a \(pt.type), not a nested HWPT")
            }
            let ig = idev.igroup
            if ig.pasidAttach.keys.contains(where: { $0 != nil }) {
                throw .busy.from(f, "PASIDs of \(idev.dev.rid)'s group are attached one by one")
            }
            let existing = ig.pasidAttach[nil]
            if let existing {
                guard existing.devices.count == 1, existing.devices[0] === idev else {
                    throw .busy.from(f, "another device of the group holds the RID attachment")
                }
                if existing.hwpt === hwpt && ig.group.ridOwnsAllPasids { return hwpt.rawID }
            }
            let newIOAS = hwpt.parent.ioas
            let oldIOAS = existing?.hwpt.pagingRoot?.ioas
            let enforce = oldIOAS !== newIOAS
            if enforce { try enforceReservedRegions(idev, in: newIOAS) }
            do throws(Errno) {
                try machine.iommu.attachDeviceAllPasids(domain, to: idev.dev)
            } catch {
                if enforce { newIOAS.iopt.removeReserved(owner: ObjectIdentifier(idev)) }
                throw error
            }
            let handle = IOMMUFDAttachHandle(idev: idev, hwpt: hwpt)
            if let existing {
                if enforce, let oldIOAS { oldIOAS.iopt.removeReserved(owner: ObjectIdentifier(idev)) }
                let old = existing.hwpt
                old.fault?.autoRespond(existing.handle)
                existing.hwpt = hwpt
                existing.handle = handle
                ref(hwpt)
                hwptPut(old)
            } else {
                ig.pasidAttach[nil] = IOMMUFDAttach(hwpt: hwpt, devices: [idev], handle: handle)
                ref(hwpt)
                ref(idev)
            }
            return hwpt.rawID
        }
    }

    /// Whether the RID attachment of `idev`'s group is the all-PASIDs shape of
    /// ``deviceAttachAllPasids(_:ptID:)`` (the core's `ridOwnsAllPasids`).
    public func deviceOwnsAllPasids(_ idev: DeviceObject) -> Bool {
        lock.withLock { idev.igroup.pasidAttach[nil] != nil && idev.igroup.group.ridOwnsAllPasids }
    }
}
