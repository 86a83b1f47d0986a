import IOMMUCore
import IOMMUFD

extension VFIODeviceFile {
    /// `VFIO_DEVICE_BIND_IOMMUFD` (`vfio_df_ioctl_bind_iommufd`), checks in the
    /// kernel's order:
    /// 1. `argsz` cannot be read → `EFAULT`; `argsz` < 16 (`offsetofend(out_devid)`) →
    ///    `EINVAL`; non-zero bytes past `sizeof` (24) → `E2BIG`; a short structure reads
    ///    as zero-extended;
    /// 2. `iommufd < 0` or unknown `flags` → `EINVAL`;
    /// 3. a file from the group path → `EINVAL`;
    /// 4. the group path has the device open (`vfio_device_block_group`) → `EBUSY`;
    /// 5. this file is already bound → `EINVAL`;
    /// 6. `VFIO_DEVICE_BIND_FLAG_TOKEN`: the token is read (`EFAULT`), and refused
    ///    (`EINVAL`): no modelled device is an SR-IOV PF or VF that expects one;
    /// 7. `iommufd_ctx_from_fd`: `EBADF`, `EBADFD`;
    /// 8. `vfio_df_open`: another cdev file has the device bound → `EINVAL`; the
    ///    driver's `bind_iommufd` errno (vfio-pci: `iommufd_device_bind`, which claims
    ///    DMA ownership: `EPERM`/`EBUSY`, `EINVAL` without cache coherency);
    /// 9. `out_devid` is written back (`EFAULT` undoes the bind).
    func bindIOMMUFD(_ arg: UInt64, _ memory: any UserMemory) throws(Errno) -> Int32 {
        let argsz = Int(UAPIBytes(try memory.copyFromUser(arg, count: 4)).u32(0))
        guard argsz >= VFIODeviceBindIOMMUFD.minSize else { throw .invalidArgument }
        let size = VFIODeviceBindIOMMUFD.size
        if argsz > size {
            let tail = try memory.copyFromUser(arg + UInt64(size), count: argsz - size)
            if tail.contains(where: { $0 != 0 }) { throw .tooBig }
        }
        var image = UAPIBytes(count: size)
        let head = try memory.copyFromUser(arg, count: min(argsz, size))
        image.bytes.replaceSubrange(0..<head.count, with: head)
        let bind = VFIODeviceBindIOMMUFD(image)

        guard bind.iommufd >= 0, bind.flags & ~VFIODeviceFlag.bindToken == 0 else { throw .invalidArgument }
        guard !isGroupFile else { throw .invalidArgument }
        guard device.vfio.groupOpens == 0 else { throw .busy }
        guard !accessGranted else { throw .invalidArgument }
        if bind.flags & VFIODeviceFlag.bindToken != 0 {
            _ = try memory.copyFromUser(bind.tokenUUIDPtr, count: 16)
            throw .invalidArgument
        }
        let ctx = try files.iommufd(bind.iommufd)
        guard device.vfio.openCount == 0 else { throw .invalidArgument }
        let id = try device.bindIOMMUFD(ctx)
        device.vfio.openCount += 1
        ictx = ctx
        devid = id
        accessGranted = true
        device.vfio.cdevOpened = true
        do throws(Errno) {
            var out = UAPIBytes(count: 4)
            out.setU32(0, id.rawValue)
            try memory.copyToUser(arg + UInt64(VFIODeviceBindIOMMUFD.offset(of: "out_devid")), out.bytes)
        } catch {
            unbindLocked()
            throw error
        }
        return 0
    }
}
