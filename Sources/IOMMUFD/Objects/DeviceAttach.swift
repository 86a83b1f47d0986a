import IOMMUCore

extension IOMMUFD {
    /// `iopt_table_enforce_dev_resv_regions`: reserve the device's reserved regions in
    /// `ioas`, owned by the device. An injection point (`EINVAL`).
    /// - Throws: `EADDRINUSE` against areas or allowed ranges; `EINVAL`.
    func enforceReservedRegions(_ idev: DeviceObject, in ioas: IOASObject) throws(Errno) {
        if shouldFail() { throw .invalidArgument.from("iopt_table_enforce_dev_resv_regions", "failed by injection") }
        guard let driver = idev.dev.iommu?.driver else { return }
        let owner = ObjectIdentifier(idev)
        do throws(Errno) {
            for r in driver.reservedRegions(idev.dev) where r.kind != .directRelaxable && r.length > 0 {
                try ioas.iopt.reserve(r.start.rawValue, r.start.rawValue &+ (r.length - 1), owner: owner)
            }
        } catch {
            ioas.iopt.removeReserved(owner: owner)
            throw error
        }
    }

    /// `iommufd_hwpt_pasid_compat`.
    /// - Throws: `EINVAL`.
    func pasidCompat(_ hwpt: HWPTObject, _ idev: DeviceObject, _ pasid: PASID?) throws(Errno) {
        let ig = idev.igroup
        let f = "iommufd_hwpt_pasid_compat"
        if pasid == nil {
            if !hwpt.pasidCompat && ig.pasidAttach.keys.contains(where: { $0 != nil }) {
                throw .invalidArgument.from(f, "PASIDs are attached, and \(hwpt) was not allocated with IOMMU_HWPT_ALLOC_PASID")
            }
        } else {
            guard idev.dev.maxPasids > 0 else { throw .invalidArgument.from(f, "\(idev.dev.rid) has no PASIDs") }
            guard hwpt.pasidCompat else {
                throw .invalidArgument.from(f, "\(hwpt) was not allocated with IOMMU_HWPT_ALLOC_PASID")
            }
            if let rid = ig.pasidAttach[nil], !rid.hwpt.pasidCompat {
                throw .invalidArgument.from(f, "the RID is on \(rid.hwpt), not allocated with IOMMU_HWPT_ALLOC_PASID")
            }
        }
    }

    /// `iommufd_hwpt_compatible_device`: a HWPT with a fault queue cannot serve a PCI VF
    /// with PRI. The model has no VFs, so every device is compatible.
    func compatibleDevice(_ hwpt: HWPTObject, _ idev: DeviceObject) -> Bool { true }

    /// `iommufd_hw_pagetable_attach(hwpt, idev, pasid)`.
    /// - Throws: `EBUSY` this device already has `pasid` attached; `EINVAL` the group has
    ///   it on another HWPT, or compatibility; `EADDRINUSE` reserved regions; the core's
    ///   and driver's attach errno.
    func hwptAttach(_ hwpt: HWPTObject, _ idev: DeviceObject, pasid: PASID?) throws(Errno) {
        let ig = idev.igroup
        let existing = ig.pasidAttach[pasid]
        let f = "iommufd_hw_pagetable_attach"
        let at = pasid.map { "PASID \($0)" } ?? "the RID"
        if let existing {
            if existing.devices.contains(where: { $0 === idev }) { throw .busy.from(f, "\(at) of \(idev.dev.rid) is already attached") }
            if existing.hwpt !== hwpt {
                throw .invalidArgument.from(f, "\(at) of \(idev.dev.rid)'s group is on \(existing.hwpt)")
            }
        }
        guard let domain = hwpt.domain, let root = hwpt.pagingRoot else {
            throw .invalidArgument.from(f, "\(hwpt) has no domain or paging parent")
        }
        if pasid == nil { try enforceReservedRegions(idev, in: root.ioas) }
        if existing == nil {
            do throws(Errno) {
                guard compatibleDevice(hwpt, idev) else {
                    throw .invalidArgument.from("iommufd_hwpt_compatible_device", "\(idev.dev.rid) cannot use \(hwpt)")
                }
                try pasidCompat(hwpt, idev, pasid)
                let handle = IOMMUFDAttachHandle(idev: idev, hwpt: hwpt)
                if let pasid {
                    try machine.iommu.attachDevicePasid(domain, to: idev.dev, pasid: pasid, handle: handle)
                } else {
                    try machine.iommu.attachGroupHandle(domain, to: ig.group, handle: handle)
                }
                ig.pasidAttach[pasid] = IOMMUFDAttach(hwpt: hwpt, devices: [idev], handle: handle)
            } catch {
                if pasid == nil { root.ioas.iopt.removeReserved(owner: ObjectIdentifier(idev)) }
                throw error
            }
        } else {
            existing!.devices.append(idev)
        }
        ref(hwpt)
        ref(idev)
    }

    /// `iommufd_hw_pagetable_detach` + `iommufd_hw_pagetable_put`: remove `idev` from
    /// `pasid`; the hardware is detached when the group's last device leaves. A PASID
    /// that is not attached is a silent no-op.
    package func hwptDetach(_ idev: DeviceObject, pasid: PASID?, putHWPT: Bool = true) {
        let ig = idev.igroup
        guard let attach = ig.pasidAttach[pasid], attach.devices.contains(where: { $0 === idev }) else { return }
        let hwpt = attach.hwpt
        attach.devices.removeAll { $0 === idev }
        if attach.devices.isEmpty {
            if let domain = hwpt.domain {
                if let pasid {
                    machine.iommu.detachDevicePasid(domain, from: idev.dev, pasid: pasid)
                } else {
                    machine.iommu.detachGroupHandle(domain, from: ig.group)
                }
            }
            ig.pasidAttach[pasid] = nil
            hwpt.fault?.autoRespond(attach.handle)
        }
        if pasid == nil, let root = hwpt.pagingRoot {
            root.ioas.iopt.removeReserved(owner: ObjectIdentifier(idev))
        }
        if putHWPT { hwptPut(hwpt) } else { unref(hwpt) }
        unref(idev)
    }

    /// `iommufd_device_do_replace`: move `pasid` of the device's group to `hwpt` with no
    /// blocked window. Returns the old HWPT, or nil for a same-HWPT no-op.
    /// - Throws: `EINVAL` nothing attached at `pasid`, this device not in the attachment,
    ///   or compatibility; `EADDRINUSE` reserved regions in a new IOAS; driver errors
    ///   (the old attachment stays exactly as it was).
    func doReplace(_ hwpt: HWPTObject, _ idev: DeviceObject, pasid: PASID?) throws(Errno) -> HWPTObject? {
        let ig = idev.igroup
        let f = "iommufd_device_do_replace"
        guard let attach = ig.pasidAttach[pasid], attach.devices.contains(where: { $0 === idev }) else {
            throw .invalidArgument.from(f, "\(pasid.map { "PASID \($0)" } ?? "the RID") of \(idev.dev.rid) is not attached")
        }
        let old = attach.hwpt
        if old === hwpt { return nil }
        guard let domain = hwpt.domain, let newRoot = hwpt.pagingRoot else {
            throw .invalidArgument.from(f, "\(hwpt) has no domain or paging parent")
        }
        let oldIOAS = old.pagingRoot?.ioas
        let ioasChanged = pasid == nil && newRoot.ioas !== oldIOAS
        var enforced: [DeviceObject] = []
        do throws(Errno) {
            if ioasChanged {
                for d in attach.devices {
                    try enforceReservedRegions(d, in: newRoot.ioas)
                    enforced.append(d)
                }
            }
            guard compatibleDevice(hwpt, idev) else {
                throw .invalidArgument.from("iommufd_hwpt_compatible_device", "\(idev.dev.rid) cannot use \(hwpt)")
            }
            try pasidCompat(hwpt, idev, pasid)
            let handle = IOMMUFDAttachHandle(idev: idev, hwpt: hwpt)
            if let pasid {
                try machine.iommu.replaceDevicePasid(domain, on: idev.dev, pasid: pasid, handle: handle)
            } else {
                try machine.iommu.replaceGroupHandle(domain, of: ig.group, handle: handle)
            }
            old.fault?.autoRespond(attach.handle)
            attach.handle = handle
        } catch {
            for d in enforced { newRoot.ioas.iopt.removeReserved(owner: ObjectIdentifier(d)) }
            throw error
        }
        if ioasChanged, let oldIOAS {
            for d in attach.devices { oldIOAS.iopt.removeReserved(owner: ObjectIdentifier(d)) }
        }
        attach.hwpt = hwpt
        for _ in attach.devices { ref(hwpt) }
        for _ in 1..<attach.devices.count { unref(old) }
        return old
    }

    package enum ChangeMode { case attach, replace }

    /// `iommufd_device_change_pt`: resolve `ptID` (a HWPT directly, or an IOAS through
    /// an auto domain) and attach or replace. Returns the HWPT ID now attached.
    /// - Throws: `ENOENT` unknown ID; `EINVAL` an ID of another type; the attach or
    ///   replace errno.
    package func changePT(_ idev: DeviceObject, pasid: PASID?, ptID: UInt32, mode: ChangeMode) throws(Errno) -> UInt32 {
        let pt = try getObject(ptID, .any)
        defer { put(pt) }
        switch pt {
        case let hwpt as HWPTObject:
            try attachOrReplace(hwpt, idev, pasid, mode)
            return hwpt.rawID
        case let ioas as IOASObject:
            return try autoDomain(ioas, idev, pasid, mode)
        default:
            throw .invalidArgument.from("iommufd_device_change_pt", "pt_id \(ptID) is a \(pt.type), neither an IOAS nor a HWPT")
        }
    }

    private func attachOrReplace(_ hwpt: HWPTObject, _ idev: DeviceObject, _ pasid: PASID?,
                                 _ mode: ChangeMode) throws(Errno) {
        switch mode {
        case .attach: try hwptAttach(hwpt, idev, pasid: pasid)
        case .replace: if let old = try doReplace(hwpt, idev, pasid: pasid) { hwptPut(old) }
        }
    }

    /// `iommufd_device_auto_get_domain`: reuse an auto HWPT of the IOAS that accepts the
    /// device (`EINVAL` means "incompatible, try the next"), else make a new one.
    private func autoDomain(_ ioas: IOASObject, _ idev: DeviceObject, _ pasid: PASID?,
                            _ mode: ChangeMode) throws(Errno) -> UInt32 {
        for hwpt in ioas.hwpts where hwpt.autoDomain && hwpt.users > 0 {
            do throws(Errno) {
                try attachOrReplace(hwpt, idev, pasid, mode)
                return hwpt.rawID
            } catch .invalidArgument {
                continue
            }
        }
        let immediate = mode == .attach
        let hwpt = try hwptPagingAlloc(ioas: ioas, idev: idev, pasid: pasid, flags: 0,
                                       immediateAttach: immediate, userData: nil)
        if !immediate {
            do throws(Errno) {
                try attachOrReplace(hwpt, idev, pasid, mode)
            } catch {
                abortAndDestroy(hwpt)
                throw error
            }
        }
        hwpt.autoDomain = true
        finalize(hwpt)
        return hwpt.rawID
    }

    /// `iommufd_device_attach(idev, pasid, &pt_id)`: attach the RID (`pasid` nil, the
    /// kernel's `IOMMU_NO_PASID`) or a PASID to a HWPT or, through an auto domain, to an
    /// IOAS. `ptID` is an ``IOASObjectID``, a ``HWPTObjectID`` or, when the kind is not
    /// known statically, a ``PageTableObjectID``.
    /// - Returns: the attached HWPT's ID.
    /// - Throws: `ENOENT` unknown `ptID`, or `idev` was unbound; `EINVAL` wrong type or
    ///   incompatible; `EBUSY` already attached; `EADDRINUSE`; driver errors.
    public func deviceAttach<PT: IOMMUFDPageTableKind>(_ idev: DeviceObject, pasid: PASID? = nil,
                                                        ptID: IOMMUFDObjectID<PT>) throws(Errno) -> HWPTObjectID {
        try entry("iommufd_device_attach") { () throws(Errno) -> HWPTObjectID in
            try checkLive(idev, "iommufd_device_attach")
            return HWPTObjectID(rawValue: try changePT(idev, pasid: pasid, ptID: ptID.rawValue, mode: .attach))
        }
    }

    /// `iommufd_device_replace(idev, pasid, &pt_id)`.
    /// - Returns: the attached HWPT's ID.
    /// - Throws: `EINVAL` nothing attached, wrong type, incompatible; `ENOENT` unknown
    ///   `ptID`, or `idev` was unbound; `EADDRINUSE`; driver errors (the old attachment
    ///   is kept).
    public func deviceReplace<PT: IOMMUFDPageTableKind>(_ idev: DeviceObject, pasid: PASID? = nil,
                                                         ptID: IOMMUFDObjectID<PT>) throws(Errno) -> HWPTObjectID {
        try entry("iommufd_device_replace") { () throws(Errno) -> HWPTObjectID in
            try checkLive(idev, "iommufd_device_replace")
            return HWPTObjectID(rawValue: try changePT(idev, pasid: pasid, ptID: ptID.rawValue, mode: .replace))
        }
    }

    /// `iommufd_device_detach(idev, pasid)`: silent when nothing is attached.
    public func deviceDetach(_ idev: DeviceObject, pasid: PASID? = nil) {
        lock.withLock { hwptDetach(idev, pasid: pasid) }
    }
}
