import IOMMUCore

extension IOMMUFD {
    /// `IOMMU_HWPT_ALLOC` (`iommufd_hwpt_alloc`).
    func ioctlHWPTAlloc(_ u: inout UCmd) throws(Errno) -> Int32 {
        var c = u.decode(IOMMUHWPTAlloc.self)
        let f = "iommufd_hwpt_alloc"
        guard c.reserved == 0 else { throw .notSupported.from(f, "__reserved is not zero") }
        let none = c.dataType == IOMMUFDConstant.hwptDataNone
        if none && c.dataLen != 0 { throw .invalidArgument.from(f, "data_len \(c.dataLen) with IOMMU_HWPT_DATA_NONE") }
        if !none && c.dataLen == 0 { throw .invalidArgument.from(f, "data_type \(c.dataType) with data_len 0") }
        let idev = try get(c.devId, .device, as: DeviceObject.self)
        defer { put(idev) }
        let pt: IOMMUFDObject
        do { pt = try getObject(c.ptId, .any) } catch {
            throw .invalidArgument.from(f, "pt_id \(c.ptId): \(error.reason ?? "not found")")
        }
        defer { put(pt) }
        let userData = IOMMUUserData(type: c.dataType, uptr: c.dataUptr, len: c.dataLen, user: user)
        let hwpt: HWPTObject
        switch pt {
        case let ioas as IOASObject:
            hwpt = try hwptPagingAlloc(ioas: ioas, idev: idev, pasid: nil, flags: c.flags,
                                       immediateAttach: false, userData: none ? nil : userData)
        case let parent as HWPTPagingObject:
            hwpt = try hwptNestedAlloc(parent: parent, idev: idev, flags: c.flags, userData: userData)
        case let viommu as VIOMMUObject:
            guard viommu.unit === idev.dev.iommu else { throw .invalidArgument }
            hwpt = try viommuAllocHWPTNested(viommu, flags: c.flags, userData: userData)
        default:
            throw .invalidArgument.from(f, "pt_id \(c.ptId) is a \(pt.type), neither an IOAS nor a paging HWPT")
        }
        do throws(Errno) {
            if c.flags & IOMMUFDConstant.hwptFaultIDValid != 0 {
                let fault = try get(c.faultId, .fault, as: FaultObject.self)
                hwpt.fault = fault
                // Before any attach: the driver enables IOPF for a domain with a handler.
                hwpt.domain?.iopfHandler = IOMMUFDFaultHandler(fault: fault)
                ref(fault)
                put(fault)
            }
            c.outHwptId = hwpt.rawID
            try u.respond(c)
        } catch {
            abortAndDestroy(hwpt)
            throw error
        }
        finalize(hwpt)
        return 0
    }

    /// `IOMMU_GET_HW_INFO` (`iommufd_get_hw_info`).
    func ioctlGetHWInfo(_ u: inout UCmd) throws(Errno) -> Int32 {
        var c = u.decode(IOMMUHWInfo.self)
        guard c.flags & ~IOMMUFDConstant.hwInfoFlagInputType == 0 else {
            throw .notSupported.from("iommufd_get_hw_info", "unknown flags 0x\(String(c.flags, radix: 16))")
        }
        guard c.reserved0 == 0, c.reserved1 == 0, c.reserved2 == 0 else {
            throw .notSupported.from("iommufd_get_hw_info", "a __reserved field is not zero")
        }
        if c.flags & IOMMUFDConstant.hwInfoFlagInputType == 0 { c.dataType = IOMMUFDConstant.hwInfoTypeDefault }
        let idev = try get(c.devId, .device, as: DeviceObject.self)
        defer { put(idev) }
        let driver = try idev.driver()
        var type: UInt32 = IOMMUFDConstant.hwInfoTypeDefault
        var data: [UInt8] = []
        // A driver without `hw_info` reports IOMMU_HW_INFO_TYPE_NONE and no data.
        if let ops = driver as? any IOMMUFDDriverOps {
            (type, data) = try ops.hwInfo(idev.dev, type: c.dataType)
        }
        let copyLen = min(Int(c.dataLen), data.count)
        try user.copyToUser(c.dataUptr, Array(data.prefix(copyLen)))
        if copyLen < Int(c.dataLen) { try user.clearUser(c.dataUptr &+ UInt64(copyLen), count: Int(c.dataLen) - copyLen) }
        c.dataLen = UInt32(data.count)
        c.dataType = type
        c.outCapabilities = driver.capable(idev.dev, .dirtyTracking) ? IOMMUFDConstant.hwCapDirtyTracking : 0
        c.outMaxPasidLog2 = 0
        if idev.dev.maxPasids > 0 {
            c.outMaxPasidLog2 = UInt8(31 - UInt32(idev.dev.maxPasids).leadingZeroBitCount)
            if let cap = idev.dev.caps.pasid {
                if cap.execute { c.outCapabilities |= IOMMUFDConstant.hwCapPciPasidExec }
                if cap.privileged { c.outCapabilities |= IOMMUFDConstant.hwCapPciPasidPriv }
            }
        }
        try u.respond(c)
        return 0
    }

    /// `IOMMU_HWPT_SET_DIRTY_TRACKING` (`iommufd_hwpt_set_dirty_tracking`).
    func ioctlHWPTSetDirtyTracking(_ u: inout UCmd) throws(Errno) -> Int32 {
        let c = u.decode(IOMMUHWPTSetDirtyTracking.self)
        let f = "iommufd_hwpt_set_dirty_tracking"
        guard c.flags & ~IOMMUFDConstant.dirtyTrackingEnable == 0 else {
            throw .notSupported.from(f, "unknown flags 0x\(String(c.flags, radix: 16))")
        }
        let hwpt = try get(c.hwptId, .hwptPaging, as: HWPTPagingObject.self)
        defer { put(hwpt) }
        guard let d = hwpt.domain, d.ops.contains(.dirtyTracking) else {
            throw .notSupported.from(f, "\(hwpt) was not allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING")
        }
        let enable = c.flags & IOMMUFDConstant.dirtyTrackingEnable != 0
        // The kernel clears the dirty bits of every area (a read with no bitmap) and then
        // turns tracking on. Model drivers may refuse any read while tracking is off, so
        // tracking goes on first; with the context locked and no DMA in between the
        // result is the same: a clean snapshot with tracking enabled.
        try d.setDirtyTracking(enable)
        if enable {
            do throws(Errno) {
                for area in hwpt.ioas.iopt.areas {
                    try d.readAndClearDirty(iova: IOVA(rawValue: area.iova), size: area.length, clear: true) { _, _ in }
                }
            } catch {
                try? d.setDirtyTracking(false)
                throw error
            }
            machine.iommu.flushIOTLBAll(d)
        }
        return 0
    }

    /// `IOMMU_HWPT_GET_DIRTY_BITMAP` (`iommufd_hwpt_get_dirty_bitmap`). The user bitmap is
    /// worked on a page of it at a time, as `iova_bitmap` maps it: each piece is read
    /// (`EFAULT` when it is not there), the areas under its IOVAs are walked (`EINVAL` for
    /// a hole), their dirty bits are set, and it is written back. Bits are only ever set.
    func ioctlHWPTGetDirtyBitmap(_ u: inout UCmd) throws(Errno) -> Int32 {
        let c = u.decode(IOMMUHWPTGetDirtyBitmap.self)
        let f = "iommufd_hwpt_get_dirty_bitmap"
        guard c.flags & ~IOMMUFDConstant.getDirtyBitmapNoClear == 0 else {
            throw .notSupported.from(f, "unknown flags 0x\(String(c.flags, radix: 16))")
        }
        guard c.reserved == 0 else { throw .notSupported.from(f, "__reserved is not zero") }
        let hwpt = try get(c.hwptId, .hwptPaging, as: HWPTPagingObject.self)
        defer { put(hwpt) }
        let iopt = hwpt.ioas.iopt
        let (lastIOVA, o) = c.iova.addingReportingOverflow(c.length &- 1)
        guard !o else { throw .overflow.from(f, "iova 0x\(String(c.iova, radix: 16)) + length 0x\(String(c.length, radix: 16)) overflows") }
        let align = iopt.iovaAlignment
        guard c.iova & (align - 1) == 0, (lastIOVA &+ 1) & (align - 1) == 0 else {
            throw .invalidArgument.from(f, "the range is not aligned to the IOAS's IOVA alignment 0x\(String(align, radix: 16))")
        }
        guard c.pageSize != 0 else { throw .invalidArgument.from(f, "page_size is 0") }
        guard c.iova % c.pageSize == 0, (lastIOVA &+ 1) % c.pageSize == 0 else {
            throw .invalidArgument.from(f, "the range is not a whole number of page_size 0x\(String(c.pageSize, radix: 16)) pages")
        }
        guard let d = hwpt.domain, d.ops.contains(.dirtyTracking) else {
            throw .notSupported.from(f, "\(hwpt) was not allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING")
        }
        let clear = c.flags & IOMMUFDConstant.getDirtyBitmapNoClear == 0
        // Bit b stands for [iova + b * page_size, + page_size); `lastBit` is the last one
        // (no `+ 1`, which wraps for a range of the whole space).
        let lastBit = (lastIOVA - c.iova) / c.pageSize
        let bitsPerPiece: UInt64 = 8 * 4096
        var firstBit: UInt64 = 0
        while true {
            let pieceLastBit = min(lastBit, firstBit + (bitsPerPiece - 1))
            let byteCount = Int((pieceLastBit - firstBit) / 8 + 1)
            let bitmapAddress = c.data &+ firstBit / 8
            var piece = try user.copyFromUser(bitmapAddress, count: byteCount)
            let start = c.iova + firstBit * c.pageSize
            let last = c.iova + pieceLastBit * c.pageSize + (c.pageSize - 1)
            var cur = start
            while true {
                guard let area = iopt.areas.area(containing: cur) else {
                    throw .invalidArgument.from(f, "iova 0x\(String(cur, radix: 16)) is not mapped")
                }
                let end = min(last, area.last)
                try d.readAndClearDirty(iova: IOVA(rawValue: cur), size: end - cur + 1, clear: clear) { leaf, size in
                    let iova = leaf.rawValue
                    let lo = max(iova, start), hi = min(iova &+ (size &- 1), last)
                    guard lo <= hi else { return }
                    for bit in ((lo - c.iova) / c.pageSize)...((hi - c.iova) / c.pageSize) {
                        let b = bit - firstBit
                        piece[Int(b / 8)] |= UInt8(1) << UInt8(b % 8)
                    }
                }
                if end == last { break }
                cur = end + 1
            }
            try user.copyToUser(bitmapAddress, piece)
            if pieceLastBit == lastBit { break }
            firstBit = pieceLastBit + 1
        }
        if clear { machine.iommu.flushIOTLBAll(d) }
        return 0
    }

    /// `IOMMU_HWPT_INVALIDATE` (`iommufd_hwpt_invalidate`) on a nested HWPT (its domain's
    /// `cache_invalidate_user`) or a vIOMMU (its `cache_invalidate`); anything else is
    /// `EINVAL`. `entry_num` is written back on every path.
    func ioctlHWPTInvalidate(_ u: inout UCmd) throws(Errno) -> Int32 {
        var c = u.decode(IOMMUHWPTInvalidate.self)
        let f = "iommufd_hwpt_invalidate"
        guard c.reserved == 0 else { throw .notSupported.from(f, "__reserved is not zero") }
        var handled: UInt32 = 0
        var rc: Errno?
        if c.entryNum != 0 && (c.dataUptr == 0 || c.entryLen == 0) {
            rc = .invalidArgument.from(f, "\(c.entryNum) entries but data_uptr or entry_len is 0")
        } else {
            do throws(Errno) {
                let pt = try getObject(c.hwptId, .any)
                defer { put(pt) }
                if let nested = pt as? HWPTNestedObject, let d = nested.domain {
                    guard let ops = d.owner as? any IOMMUFDDriverOps, d.ops.contains(.cacheInvalidateUser) else {
                        throw Errno.notSupported.from(f, "\(nested)'s driver has no cache_invalidate_user")
                    }
                    let array = IOMMUUserDataArray(type: c.dataType, uptr: c.dataUptr, entryLen: c.entryLen,
                                                   entryNum: c.entryNum, user: user)
                    try ops.cacheInvalidateUser(d, array, handled: &handled)
                } else if let viommu = pt as? VIOMMUObject {
                    guard let ops = viommu.ops else { throw Errno.notSupported }
                    let array = IOMMUUserDataArray(type: c.dataType, uptr: c.dataUptr, entryLen: c.entryLen,
                                                   entryNum: c.entryNum, user: user)
                    try ops.cacheInvalidate(array, handled: &handled)
                } else {
                    throw Errno.invalidArgument.from(f, "hwpt_id \(c.hwptId) is a \(pt.type), not a nested HWPT")
                }
            } catch {
                rc = error
            }
        }
        c.entryNum = handled
        do { try u.respond(c) } catch { throw .badAddress.from(f, "entry_num cannot be written back") }
        if let rc { throw rc }
        return 0
    }

    /// `IOMMU_FAULT_QUEUE_ALLOC` (`iommufd_fault_alloc`): a FAULT object and its fd; the
    /// fd holds a reference until closed.
    func ioctlFaultQueueAlloc(_ u: inout UCmd) throws(Errno) -> Int32 {
        var c = u.decode(IOMMUFaultAlloc.self)
        guard c.flags == 0 else { throw .notSupported.from("iommufd_fault_alloc", "unknown flags 0x\(String(c.flags, radix: 16))") }
        let fault = FaultObject()
        try allocObject(fault)
        let fd: Int32
        do { fd = try installFile(.fault(fault)) } catch {
            abortAndDestroy(fault)
            throw error
        }
        fault.fdOpen = true
        ref(fault)
        c.outFaultId = fault.rawID
        c.outFaultFd = UInt32(bitPattern: fd)
        do { try u.respond(c) } catch {
            files[fd] = nil
            unref(fault)
            abortAndDestroy(fault)
            throw error
        }
        finalize(fault)
        return 0
    }
}
