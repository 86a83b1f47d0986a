import IOMMUCore

extension IOMMUFD {
    /// `get_compat_ioas`.
    /// - Throws: `ENODEV` when no compat IOAS is set.
    func compatIOAS() throws(Errno) -> IOASObject {
        guard let ioas = vfioIOAS, table.live(ioas.rawID) === ioas else {
            throw .noDevice.from("iommufd_vfio_compat_ioas_get", "no compat IOAS is set (IOMMU_VFIO_IOAS)")
        }
        ref(ioas)
        return ioas
    }

    /// `IOMMU_VFIO_IOAS` (`iommufd_vfio_ioas`).
    func ioctlVFIOIOAS(_ u: inout UCmd) throws(Errno) -> Int32 {
        var c = u.decode(IOMMUVFIOIOAS.self)
        guard c.reserved == 0 else { throw .notSupported.from("iommufd_vfio_ioas", "__reserved is not zero") }
        switch c.op {
        case IOMMUFDConstant.vfioIOASGet:
            let ioas = try compatIOAS()
            defer { unref(ioas) }
            c.ioasId = ioas.rawID
            try u.respond(c)
        case IOMMUFDConstant.vfioIOASSet:
            let ioas = try get(c.ioasId, .ioas, as: IOASObject.self)
            vfioIOAS = ioas
            put(ioas)
        case IOMMUFDConstant.vfioIOASClear:
            vfioIOAS = nil
        default:
            throw .notSupported.from("iommufd_vfio_ioas", "unknown op \(c.op)")
        }
        return 0
    }

    /// `iommufd_vfio_ioctl`: the VFIO type1 container ioctls on an iommufd. Anything
    /// else (including `VFIO_IOMMU_DIRTY_PAGES`) is `ENOTTY`.
    func vfioIoctl(_ cmd: UInt32, _ arg: UInt64) -> Result<Int32, Errno> {
        do throws(Errno) {
            switch cmd {
            case IOMMUFDCommand.vfioGetAPIVersion: return .success(VFIOConstant.apiVersion)
            case IOMMUFDCommand.vfioSetIOMMU: return .success(try vfioSetIOMMU(arg))
            case IOMMUFDCommand.vfioCheckExtension: return .success(try vfioCheckExtension(arg))
            case IOMMUFDCommand.vfioIOMMUGetInfo: return .success(try vfioGetInfo(arg))
            case IOMMUFDCommand.vfioIOMMUMapDMA: return .success(try vfioMapDMA(arg))
            case IOMMUFDCommand.vfioIOMMUUnmapDMA: return .success(try vfioUnmapDMA(arg))
            default: return .failure(.notTTY.from("iommufd_vfio_ioctl", "no VFIO command 0x\(String(cmd, radix: 16))"))
            }
        } catch {
            return .failure(error)
        }
    }

    /// `VFIO_CHECK_EXTENSION` (`iommufd_vfio_check_extension`).
    func vfioCheckExtension(_ type: UInt64) throws(Errno) -> Int32 {
        switch type {
        case VFIOConstant.type1IOMMU, VFIOConstant.type1v2IOMMU, VFIOConstant.unmapAll: return 1
        case VFIOConstant.dmaCCIOMMU:
            let ioas = try compatIOAS()
            defer { unref(ioas) }
            return ioas.hwpts.allSatisfy { $0.enforceCacheCoherency } ? 1 : 0
        default: return 0
        }
    }

    /// `VFIO_SET_IOMMU` (`iommufd_vfio_set_iommu`): TYPE1 turns large pages off so that
    /// unmaps may split mappings.
    func vfioSetIOMMU(_ type: UInt64) throws(Errno) -> Int32 {
        guard type == VFIOConstant.type1IOMMU || type == VFIOConstant.type1v2IOMMU else {
            throw .invalidArgument.from("iommufd_vfio_set_iommu", "IOMMU type \(type) is neither VFIO_TYPE1_IOMMU nor VFIO_TYPE1v2_IOMMU")
        }
        let ioas = try compatIOAS()
        defer { unref(ioas) }
        if type == VFIOConstant.type1IOMMU { try ioas.iopt.disableLarge() }
        return 0
    }

    /// `VFIO_IOMMU_MAP_DMA` (`iommufd_vfio_map_dma`).
    func vfioMapDMA(_ arg: UInt64) throws(Errno) -> Int32 {
        let minsz = VFIOIOMMUType1DMAMap.size
        let m = VFIOIOMMUType1DMAMap(bytes: try user.copyFromUser(arg, count: minsz))
        guard Int(m.argsz) >= minsz, m.flags & ~(VFIOConstant.dmaMapFlagRead | VFIOConstant.dmaMapFlagWrite) == 0 else {
            throw .invalidArgument.from("iommufd_vfio_map_dma", Int(m.argsz) < minsz ? "argsz \(m.argsz) is below \(minsz)"
                                                                                  : "unknown flags 0x\(String(m.flags, radix: 16))")
        }
        var prot: IOMMUProt = [.cache]
        if m.flags & VFIOConstant.dmaMapFlagRead != 0 { prot.insert(.read) }
        if m.flags & VFIOConstant.dmaMapFlagWrite != 0 { prot.insert(.write) }
        let ioas = try compatIOAS()
        defer { unref(ioas) }
        var iova = m.iova
        try mapUserPages(ioas, iova: &iova, uptr: m.vaddr, length: m.size, prot: prot, allocIOVA: false)
        return 0
    }

    /// `VFIO_IOMMU_UNMAP_DMA` (`iommufd_vfio_unmap_dma`). An empty range succeeds with
    /// size 0 (mainline `afb47765`); `size` is written back even on error.
    func vfioUnmapDMA(_ arg: UInt64) throws(Errno) -> Int32 {
        let minsz = VFIOIOMMUType1DMAUnmap.size
        var m = VFIOIOMMUType1DMAUnmap(bytes: try user.copyFromUser(arg, count: minsz))
        guard Int(m.argsz) >= minsz, m.flags & ~VFIOConstant.dmaUnmapFlagAll == 0 else {
            throw .invalidArgument.from("iommufd_vfio_unmap_dma", Int(m.argsz) < minsz ? "argsz \(m.argsz) is below \(minsz)"
                                                                                    : "unknown flags 0x\(String(m.flags, radix: 16))")
        }
        let ioas = try compatIOAS()
        defer { unref(ioas) }
        var rc: Errno?
        var unmapped: UInt64 = 0
        if m.flags & VFIOConstant.dmaUnmapFlagAll != 0 {
            guard m.iova == 0, m.size == 0 else {
                throw .invalidArgument.from("iommufd_vfio_unmap_dma", "VFIO_DMA_UNMAP_FLAG_ALL with a non-zero iova or size")
            }
            (rc, unmapped) = ioas.iopt.unmapAll()
        } else {
            if ioas.iopt.disableLargePages {
                try ioas.iopt.split(at: m.iova &+ m.size &- 1)
                if m.iova != 0 { try ioas.iopt.split(at: m.iova - 1) }
            }
            (rc, unmapped) = ioas.iopt.unmap(iova: m.iova, length: m.size)
            if rc == .noEntry, unmapped == 0, m.size != 0,
               !ioas.iopt.anyArea(intersecting: m.iova, m.iova &+ (m.size - 1)) {
                rc = nil
            }
        }
        m.size = unmapped
        try user.copyToUser(arg, m.bytes)
        if let rc { throw rc }
        return 0
    }

    /// `iommufd_get_pagesizes`.
    func vfioPageSizes(_ ioas: IOASObject) -> UInt64 {
        var bitmap = UInt64.max
        for d in ioas.iopt.domains { bitmap &= d.pgsizeBitmap }
        let pageMask = ~(IOPTPages.pageSize - 1)
        if bitmap & ~pageMask != 0 {
            bitmap &= pageMask
            bitmap |= IOPTPages.pageSize
        }
        return max(bitmap, ioas.iopt.iovaAlignment)
    }

    /// `VFIO_IOMMU_GET_INFO` (`iommufd_vfio_iommu_get_info`): page sizes plus the
    /// DMA_AVAIL and IOVA_RANGE capabilities, as far as `argsz` allows; `argsz` out is
    /// the size needed for all of them.
    func vfioGetInfo(_ arg: UInt64) throws(Errno) -> Int32 {
        let minsz = VFIOIOMMUType1Info.minSize
        var info = VFIOIOMMUType1Info(bytes: try user.copyFromUser(arg, count: minsz))
        guard Int(info.argsz) >= minsz else {
            throw .invalidArgument.from("iommufd_vfio_iommu_get_info", "argsz \(info.argsz) is below \(minsz)")
        }
        let outsz = min(Int(info.argsz), VFIOIOMMUType1Info.size)
        let ioas = try compatIOAS()
        defer { unref(ioas) }
        info.flags = VFIOConstant.infoPgsizes
        info.iovaPgsizes = vfioPageSizes(ioas)
        info.capOffset = 0
        let argsz = UInt64(info.argsz)
        var total = UInt64(VFIOIOMMUType1Info.size)
        var lastCap: UInt64?
        for fill in 0..<2 {
            let avail = argsz > total ? argsz - total : 0
            let at = arg + total
            var capSize: UInt64
            if fill == 0 {
                let cap = VFIOIOMMUType1InfoDMAAvail(header: VFIOInfoCapHeader(id: VFIOConstant.capDMAAvail, version: 1),
                                                    avail: UInt32.max)
                capSize = UInt64(VFIOIOMMUType1InfoDMAAvail.size)
                if avail >= capSize { try user.copyToUser(at, cap.bytes) }
            } else {
                let ranges = ioas.iopt.iovaRanges()
                let head = UInt64(VFIOIOMMUType1InfoCapIOVARange.size), element = UInt64(VFIOIOVARange.size)
                for (i, r) in ranges.enumerated() where avail >= head + element * UInt64(i + 1) {
                    try user.copyToUser(at + head + element * UInt64(i), VFIOIOVARange(start: r.start, end: r.last).bytes)
                }
                capSize = head + element * UInt64(ranges.count)
                if avail >= capSize {
                    let cap = VFIOIOMMUType1InfoCapIOVARange(
                        header: VFIOInfoCapHeader(id: VFIOConstant.capIOVARange, version: 1), nrIovas: UInt32(ranges.count))
                    try user.copyToUser(at, cap.bytes)
                }
            }
            capSize = (capSize + 7) & ~7
            if let lastCap, argsz >= total {
                // The previous capability's `header.next` (every capability starts with its header).
                var next = UAPIBytes(count: 4)
                next.setU32(0, UInt32(total))
                try user.copyToUser(lastCap + UInt64(VFIOInfoCapHeader.offset(of: "next")), next.bytes)
            }
            lastCap = at
            total += capSize
        }
        if argsz >= total { info.capOffset = UInt32(VFIOIOMMUType1Info.size) }
        info.argsz = UInt32(total)
        info.flags |= VFIOConstant.infoCaps
        try user.copyToUser(arg, Array(info.bytes.prefix(outsz)))
        return 0
    }
}
