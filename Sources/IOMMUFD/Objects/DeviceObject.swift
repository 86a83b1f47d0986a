import IOMMUCore

/// `IOMMUFD_OBJ_DEVICE` (`struct iommufd_device`): a device bound to the context. Binding
/// claims DMA ownership of its group (the group goes to the blocking domain); a bound
/// device is attached to nothing until its driver attaches it.
public final class DeviceObject: IOMMUFDObject, @unchecked Sendable {
    /// The DEVICE ID (`obj->id`).
    public var id: DeviceObjectID { DeviceObjectID(rawValue: rawID) }
    /// The PCI device.
    public let dev: PCIDevice
    /// `idev->igroup`.
    let igroup: IOMMUFDGroup
    /// `idev->vdev`: the device's vDEVICE, which holds a reference on it.
    var vdev: VDeviceObject?
    /// `idev->destroying`: the device is being unbound; no new vDEVICE may point at it.
    var destroying = false

    init(dev: PCIDevice, igroup: IOMMUFDGroup) {
        self.dev = dev
        self.igroup = igroup
        super.init(type: .device)
    }

    func driver() throws(Errno) -> any IOMMUDriver {
        guard let d = dev.iommu?.driver else { throw .noDevice.from("iommufd_device", "\(dev.rid) has no IOMMU") }
        return d
    }

    /// `iommufd_device_destroy`: release DMA ownership and the group reference.
    override func destroy(_ ctx: IOMMUFD) {
        ctx.machine.iommu.deviceReleaseDMAOwner(dev)
        ctx.putGroup(igroup)
    }
}

/// The attach state of one PASID (or the RID, `IOMMU_NO_PASID`) of a group
/// (`struct iommufd_attach`): the HWPT and the bound devices attached through it.
final class IOMMUFDAttach {
    var hwpt: HWPTObject
    var devices: [DeviceObject]
    var handle: IOMMUFDAttachHandle
    init(hwpt: HWPTObject, devices: [DeviceObject], handle: IOMMUFDAttachHandle) {
        self.hwpt = hwpt
        self.devices = devices
        self.handle = handle
    }
}

/// `struct iommufd_group`: per iommu_group state of a context, shared by its bound devices.
final class IOMMUFDGroup {
    let group: IOMMUGroup
    var refs = 0
    /// `igroup->pasid_attach`.
    var pasidAttach: [PASID?: IOMMUFDAttach] = [:]
    init(group: IOMMUGroup) { self.group = group }
}

/// `struct iommufd_attach_handle`: what the core stores in the group's PASID array for an
/// iommufd attachment, so page faults find the device and its HWPT.
public final class IOMMUFDAttachHandle: AttachHandle, @unchecked Sendable {
    /// The device that made the attachment.
    unowned let idev: DeviceObject
    /// The HWPT attached.
    unowned let hwpt: HWPTObject
    init(idev: DeviceObject, hwpt: HWPTObject) {
        self.idev = idev
        self.hwpt = hwpt
        super.init()
    }
}

extension IOMMUFD {
    func getGroup(_ dev: PCIDevice) throws(Errno) -> IOMMUFDGroup {
        guard let g = dev.group else { throw .noDevice.from("iommufd_get_group", "\(dev.rid) has no IOMMU group") }
        let key = ObjectIdentifier(g)
        if let ig = groups[key] {
            ig.refs += 1
            return ig
        }
        if shouldFail() { throw .noMemory.from("iommufd_get_group", "allocation failed by injection") }
        let ig = IOMMUFDGroup(group: g)
        ig.refs = 1
        groups[key] = ig
        return ig
    }

    func putGroup(_ ig: IOMMUFDGroup) {
        ig.refs -= 1
        if ig.refs == 0 { groups[ObjectIdentifier(ig.group)] = nil }
    }

    /// `iommufd_device_bind(ictx, dev, &id)`: bind `dev`, claiming DMA ownership. The
    /// returned object holds a reference for the binder until ``deviceUnbind(_:)``.
    /// - Throws: `EINVAL` no IOMMU, or it cannot enforce cache coherency; `ENODEV` no
    ///   group; `EPERM`/`EBUSY` ownership cannot be claimed; `ENOMEM`; `EBADF` once the
    ///   context is closed. A failure is logged as `iommukit:error`.
    public func deviceBind(_ dev: PCIDevice) throws(Errno) -> DeviceObject {
        try entry("iommufd_device_bind") { () throws(Errno) -> DeviceObject in
            try checkOpen("iommufd_device_bind")
            guard let driver = dev.iommu?.driver else { throw .invalidArgument.from("iommufd_device_bind", "\(dev.rid) has no IOMMU") }
            guard driver.capable(dev, .cacheCoherency) else {
                throw .invalidArgument.from("iommufd_device_bind", "\(driver.name) does not enforce cache coherency for \(dev.rid)")
            }
            let ig = try getGroup(dev)
            do throws(Errno) {
                try machine.iommu.deviceClaimDMAOwner(dev, owner: self)
            } catch {
                putGroup(ig)
                throw error
            }
            let idev = DeviceObject(dev: dev, igroup: ig)
            do throws(Errno) { try allocObject(idev) } catch {
                machine.iommu.deviceReleaseDMAOwner(dev)
                putGroup(ig)
                throw error
            }
            ref(idev)
            finalize(idev)
            return idev
        }
    }

    /// `iommufd_device_unbind(idev)`: detach every PASID, then the RID, then destroy
    /// the device object (releasing DMA ownership).
    public func deviceUnbind(_ idev: DeviceObject) {
        lock.withLock {
            guard table.live(idev.rawID) === idev else { return }
            // PASIDs first, highest first, then the RID.
            let pasids = idev.igroup.pasidAttach.keys.compactMap { $0 }.sorted(by: >).map { Optional($0) }
            for pasid in pasids + [nil] where idev.igroup.pasidAttach.keys.contains(pasid) {
                if idev.igroup.pasidAttach[pasid]?.devices.contains(where: { $0 === idev }) == true {
                    hwptDetach(idev, pasid: pasid)
                }
            }
            // iommufd_device_pre_destroy: a vDEVICE still pointing at the device is destroyed
            // and its ID left as a tombstone; that also drops its reference on the device.
            idev.destroying = true
            if let vdev = idev.vdev, table.live(vdev.rawID) === vdev {
                destroyToTombstone(vdev)
            }
            unref(idev)
            if idev.users != 1 { warn("iommufd_device_unbind", "\(idev) still referenced") }
            table.release(idev.rawID)
            idev.users = 0
            idev.destroy(self)
        }
    }
}
