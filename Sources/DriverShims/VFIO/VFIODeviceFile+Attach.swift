import IOMMUCore
import IOMMUFD

extension VFIODeviceFile {
    /// `VFIO_DEVICE_ATTACH_IOMMUFD_PT` (`vfio_df_ioctl_attach_pt`), checks in the
    /// kernel's order:
    /// 1. the first 12 bytes cannot be read → `EFAULT`; `argsz` < 12 → `EINVAL`;
    /// 2. unknown `flags` → `EINVAL` (the model also refuses `ATTACH_PASID` together
    ///    with its ``VFIODeviceFlag/attachAllPasids``);
    /// 3. `VFIO_DEVICE_ATTACH_PASID` on a driver without `pasid_attach_ioas` →
    ///    `EOPNOTSUPP`; `argsz` < 16 → `EINVAL`; `pasid` cannot be read → `EFAULT`;
    /// 4. the driver's attach: the RID, one PASID, or (model) the RID and all PASIDs. A
    ///    second attach of the same target is a replace, never `EBUSY`;
    /// 5. `pt_id` is written back: the attached HWPT (the auto domain for an IOAS).
    ///    `EFAULT` there detaches what was just attached. Mainline detaches the RID even
    ///    after a PASID attach (`vfio_df_ioctl_attach_pt`'s unwind); the model detaches the
    ///    PASID it attached.
    func attachPT(_ arg: UInt64, _ memory: any UserMemory) throws(Errno) -> Int32 {
        let minsz = VFIODeviceAttachIOMMUFDPT.minSize
        var image = UAPIBytes(count: VFIODeviceAttachIOMMUFDPT.size)
        image.bytes.replaceSubrange(0..<minsz, with: try memory.copyFromUser(arg, count: minsz))
        var attach = VFIODeviceAttachIOMMUFDPT(image)
        guard Int(attach.argsz) >= minsz else { throw .invalidArgument }
        let known = VFIODeviceFlag.attachPasid | VFIODeviceFlag.attachAllPasids
        guard attach.flags & ~known == 0, attach.flags != known else { throw .invalidArgument }
        let pasidOps = device as? any VFIOPasidOps
        if attach.flags & VFIODeviceFlag.attachPasid != 0 {
            guard pasidOps != nil else { throw .notSupported }
            guard Int(attach.argsz) >= VFIODeviceAttachIOMMUFDPT.size else { throw .invalidArgument }
            let at = UInt64(VFIODeviceAttachIOMMUFDPT.offset(of: "pasid"))
            attach.pasid = UAPIBytes(try memory.copyFromUser(arg + at, count: 4)).u32(0)
        }
        let allOps = device as? any VFIOAllPasidsOps
        if attach.flags & VFIODeviceFlag.attachAllPasids != 0, allOps == nil { throw .notSupported }

        var ptID = PageTableObjectID(rawValue: attach.ptId)
        if let pasidOps, attach.flags & VFIODeviceFlag.attachPasid != 0 {
            try pasidOps.pasidAttachIOAS(PASID(rawValue: attach.pasid), &ptID)
        } else if let allOps, attach.flags & VFIODeviceFlag.attachAllPasids != 0 {
            try allOps.allPasidsAttachIOAS(&ptID)
        } else {
            try device.attachIOAS(&ptID)
        }
        do throws(Errno) {
            var out = UAPIBytes(count: 4)
            out.setU32(0, ptID.rawValue)
            try memory.copyToUser(arg + UInt64(VFIODeviceAttachIOMMUFDPT.offset(of: "pt_id")), out.bytes)
        } catch {
            if let pasidOps, attach.flags & VFIODeviceFlag.attachPasid != 0 {
                pasidOps.pasidDetachIOAS(PASID(rawValue: attach.pasid))
            } else {
                device.detachIOAS()
            }
            throw error
        }
        return 0
    }

    /// `VFIO_DEVICE_DETACH_IOMMUFD_PT` (`vfio_df_ioctl_detach_pt`):
    /// 1. the first 8 bytes cannot be read → `EFAULT`; `argsz` < 8 → `EINVAL`;
    /// 2. unknown `flags` → `EINVAL`;
    /// 3. `VFIO_DEVICE_DETACH_PASID` on a driver without `pasid_detach_ioas` →
    ///    `EOPNOTSUPP`; `argsz` < 12 → `EINVAL`; `pasid` unreadable → `EFAULT`;
    /// 4. detach the PASID or the RID; detaching what is not attached succeeds.
    func detachPT(_ arg: UInt64, _ memory: any UserMemory) throws(Errno) -> Int32 {
        let minsz = VFIODeviceDetachIOMMUFDPT.minSize
        var image = UAPIBytes(count: VFIODeviceDetachIOMMUFDPT.size)
        image.bytes.replaceSubrange(0..<minsz, with: try memory.copyFromUser(arg, count: minsz))
        var detach = VFIODeviceDetachIOMMUFDPT(image)
        guard Int(detach.argsz) >= minsz else { throw .invalidArgument }
        guard detach.flags & ~VFIODeviceFlag.detachPasid == 0 else { throw .invalidArgument }
        if detach.flags & VFIODeviceFlag.detachPasid != 0 {
            guard let pasidOps = device as? any VFIOPasidOps else { throw .notSupported }
            guard Int(detach.argsz) >= VFIODeviceDetachIOMMUFDPT.size else { throw .invalidArgument }
            let at = UInt64(VFIODeviceDetachIOMMUFDPT.offset(of: "pasid"))
            detach.pasid = UAPIBytes(try memory.copyFromUser(arg + at, count: 4)).u32(0)
            pasidOps.pasidDetachIOAS(PASID(rawValue: detach.pasid))
        } else {
            device.detachIOAS()
        }
        return 0
    }
}
