import IOMMUCore

/// `enum iommufd_ioas_map_flags`.
public struct IOASMapFlags: OptionSet, Hashable, Sendable {
    /// The raw `flags` bits.
    public let rawValue: UInt32
    /// Wraps raw flag bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// `IOMMU_IOAS_MAP_FIXED_IOVA` (set by the API when an IOVA is given).
    public static let fixedIOVA = IOASMapFlags(rawValue: IOMMUFDConstant.mapFixedIOVA)
    /// `IOMMU_IOAS_MAP_WRITEABLE`.
    public static let writeable = IOASMapFlags(rawValue: IOMMUFDConstant.mapWriteable)
    /// `IOMMU_IOAS_MAP_READABLE`.
    public static let readable = IOASMapFlags(rawValue: IOMMUFDConstant.mapReadable)
}

/// What `IOMMU_GET_HW_INFO` reports.
public struct IOMMUFDHWInfo: Hashable, Sendable {
    /// `out_data_type` (`enum iommu_hw_info_type`).
    public var type: UInt32
    /// The vendor structure, at most the requested length.
    public var data: [UInt8]
    /// The kernel's full vendor structure length (`data_len` out).
    public var dataLength: UInt32
    /// `out_capabilities` (`IOMMU_HW_CAP_*`).
    public var capabilities: UInt64
    /// `out_max_pasid_log2`.
    public var maxPasidLog2: UInt8
}

// The typed Swift face of the iommufd uAPI. Every call encodes the kernel structure,
// goes through the raw dispatcher (`ioctl(_:_:)`) and decodes the answer, so the two can
// never disagree. Each public entry is one line over an internal `_op() -> Result`.
extension IOMMUFD {
    /// `IOMMU_DESTROY`: destroy object `id`, of any kind.
    /// - Throws: `ENOENT` no such object (or a tombstone); `EBUSY` still referenced.
    public func destroy<Kind: IOMMUFDObjectKind>(_ id: IOMMUFDObjectID<Kind>) throws(Errno) {
        try _destroy(id.rawValue).get()
    }
    func _destroy(_ id: UInt32) -> Result<Void, Errno> {
        typedCall(IOMMUFDCommand.destroy, IOMMUDestroy(id: id)).map { _ in () }
    }

    /// `IOMMU_IOAS_ALLOC`: a new, empty IOAS.
    /// - Returns: its ID.
    /// - Throws: `ENOMEM`.
    public func allocIOAS() throws(Errno) -> IOASObjectID { try _allocIOAS().get() }
    func _allocIOAS() -> Result<IOASObjectID, Errno> {
        typedCall(IOMMUFDCommand.ioasAlloc, IOMMUIOASAlloc()).map { IOASObjectID(rawValue: $0.outIoasId) }
    }

    /// `IOMMU_IOAS_MAP`: map `length` bytes of the caller's memory at `userVA`, at `iova`
    /// (FIXED_IOVA) or at an IOVA the IOAS chooses.
    /// - Returns: the IOVA.
    /// - Throws: `EOPNOTSUPP` unknown flags; `EOVERFLOW`; `EINVAL` no R/W, zero or
    ///   misaligned length/IOVA, reserved IOVA; `ENOENT` no IOAS; `EEXIST` overlap;
    ///   `ENOSPC` no free IOVA; `EFAULT` bad user memory (when a domain pins it);
    ///   `ENOMEM` over `RLIMIT_MEMLOCK`.
    public func map(ioas: IOASObjectID, userVA: UInt64, length: UInt64, iova: IOVA? = nil,
                    flags: IOASMapFlags = [.readable, .writeable]) throws(Errno) -> IOVA {
        try _map(ioas, userVA, length, iova, flags).get()
    }
    func _map(_ ioas: IOASObjectID, _ va: UInt64, _ length: UInt64, _ iova: IOVA?, _ flags: IOASMapFlags) -> Result<IOVA, Errno> {
        let f = iova == nil ? flags.subtracting(.fixedIOVA) : flags.union(.fixedIOVA)
        return typedCall(IOMMUFDCommand.ioasMap, IOMMUIOASMap(flags: f.rawValue, ioasId: ioas.rawValue, userVa: va, length: length,
                                                              iova: iova?.rawValue ?? 0)).map { IOVA(rawValue: $0.iova) }
    }

    /// `IOMMU_IOAS_MAP_FILE`: map `length` bytes of the caller's memfd `fd` from byte
    /// `start`, at `iova` (FIXED_IOVA) or at an IOVA the IOAS chooses.
    /// - Returns: the IOVA.
    /// - Throws: as ``map(ioas:userVA:length:iova:flags:)``, plus `EBADF` when `fd` is not
    ///   open in the caller, and `EINVAL` for a zero length or, when a domain pins it, a
    ///   range reaching past the end of the file.
    public func mapFile(ioas: IOASObjectID, fd: Int32, start: UInt64, length: UInt64, iova: IOVA? = nil,
                        flags: IOASMapFlags = [.readable, .writeable]) throws(Errno) -> IOVA {
        try _mapFile(ioas, fd, start, length, iova, flags).get()
    }
    func _mapFile(_ ioas: IOASObjectID, _ fd: Int32, _ start: UInt64, _ length: UInt64, _ iova: IOVA?,
                  _ flags: IOASMapFlags) -> Result<IOVA, Errno> {
        let f = iova == nil ? flags.subtracting(.fixedIOVA) : flags.union(.fixedIOVA)
        return typedCall(IOMMUFDCommand.ioasMapFile, IOMMUIOASMapFile(flags: f.rawValue, ioasId: ioas.rawValue, fd: fd, start: start,
                                                                      length: length, iova: iova?.rawValue ?? 0))
            .map { IOVA(rawValue: $0.iova) }
    }

    /// `IOMMU_IOAS_CHANGE_PROCESS`: make the calling process the owner (and the one
    /// charged) of every pinned page of the context.
    /// - Throws: `EINVAL` when any area is not file-backed; `ENOMEM` over
    ///   `RLIMIT_MEMLOCK`. Nothing changes on error.
    public func changeProcess() throws(Errno) { try _changeProcess().get() }
    func _changeProcess() -> Result<Void, Errno> {
        typedCall(IOMMUFDCommand.ioasChangeProcess, IOMMUIOASChangeProcess()).map { _ in () }
    }

    /// `IOMMU_IOAS_COPY`: map in `dst` the pages mapped at `[srcIOVA, srcIOVA+length)` of
    /// `src`, without pinning again.
    /// - Returns: the destination IOVA.
    /// - Throws: as ``map(ioas:userVA:length:iova:flags:)``, plus `ENOENT` when the source
    ///   range is not fully mapped; `EPERM` writeable copy of read-only pages.
    public func copy(from src: IOASObjectID, srcIOVA: IOVA, to dst: IOASObjectID, dstIOVA: IOVA? = nil, length: UInt64,
                     flags: IOASMapFlags = [.readable, .writeable]) throws(Errno) -> IOVA {
        try _copy(src, srcIOVA, dst, dstIOVA, length, flags).get()
    }
    func _copy(_ src: IOASObjectID, _ srcIOVA: IOVA, _ dst: IOASObjectID, _ dstIOVA: IOVA?, _ length: UInt64,
               _ flags: IOASMapFlags) -> Result<IOVA, Errno> {
        let f = dstIOVA == nil ? flags.subtracting(.fixedIOVA) : flags.union(.fixedIOVA)
        return typedCall(IOMMUFDCommand.ioasCopy, IOMMUIOASCopy(flags: f.rawValue, dstIoasId: dst.rawValue, srcIoasId: src.rawValue,
                                                                length: length, dstIova: dstIOVA?.rawValue ?? 0,
                                                                srcIova: srcIOVA.rawValue)).map { IOVA(rawValue: $0.dstIova) }
    }

    /// `IOMMU_IOAS_UNMAP`: remove every area inside `[iova, iova+length)`; `(0, UInt64.max)`
    /// unmaps everything.
    /// - Returns: the bytes unmapped.
    /// - Throws: `ENOENT` no IOAS, an area cut by the range, or nothing mapped;
    ///   `EOVERFLOW`; `EINVAL` zero length; `EDEADLOCK` an access never unpinned.
    public func unmap(ioas: IOASObjectID, iova: IOVA, length: UInt64) throws(Errno) -> UInt64 {
        try _unmap(ioas, iova, length).get()
    }
    func _unmap(_ ioas: IOASObjectID, _ iova: IOVA, _ length: UInt64) -> Result<UInt64, Errno> {
        typedCall(IOMMUFDCommand.ioasUnmap, IOMMUIOASUnmap(ioasId: ioas.rawValue, iova: iova.rawValue, length: length)).map(\.length)
    }

    /// `IOMMU_IOAS_ALLOW_IOVAS`: replace the allowed ranges (automatic IOVAs come only from
    /// them; reservations may not enter them).
    /// - Throws: `EOPNOTSUPP`; `ENOENT` no IOAS; `EINVAL` `start >= last` or overlapping
    ///   ranges; `EADDRINUSE` a range meets a reserved range.
    public func allowIOVAs(ioas: IOASObjectID, _ ranges: [ClosedRange<IOVA>]) throws(Errno) { try _allowIOVAs(ioas, ranges).get() }
    func _allowIOVAs(_ ioas: IOASObjectID, _ ranges: [ClosedRange<IOVA>]) -> Result<Void, Errno> {
        typedCall(IOMMUFDCommand.ioasAllowIOVAs, prepare: { o in
            let array = o.place(ranges.flatMap {
                IOMMUIOVARange(start: $0.lowerBound.rawValue, last: $0.upperBound.rawValue).bytes
            })
            return o.place(IOMMUIOASAllowIOVAs(ioasId: ioas.rawValue, numIovas: UInt32(ranges.count), allowedIovas: array).bytes)
        }, finish: { _, _ in () })
    }

    /// `IOMMU_IOAS_IOVA_RANGES`: the usable IOVA ranges (holes in the reserved list) and
    /// the IOVA alignment.
    /// - Throws: `EOPNOTSUPP`; `ENOENT` no IOAS.
    public func iovaRanges(ioas: IOASObjectID) throws(Errno) -> (ranges: [ClosedRange<IOVA>], alignment: UInt64) {
        try _iovaRanges(ioas, capacity: 8).get()
    }
    func _iovaRanges(_ ioas: IOASObjectID, capacity: Int) -> Result<([ClosedRange<IOVA>], UInt64), Errno> {
        let r = typedCall(IOMMUFDCommand.ioasIOVARanges, prepare: { o in
            let array = o.place([UInt8](repeating: 0, count: capacity * IOMMUIOVARange.size))
            return o.place(IOMMUIOASIOVARanges(ioasId: ioas.rawValue, numIovas: UInt32(capacity), allowedIovas: array).bytes)
        }, finish: { o, a -> ([ClosedRange<IOVA>], UInt64) in
            let c = IOMMUIOASIOVARanges(bytes: o.bytes(at: a))
            let raw = UAPIBytes(o.bytes(at: c.allowedIovas))
            let ranges = (0..<Int(c.numIovas)).map { i -> ClosedRange<IOVA> in
                let r = IOMMUIOVARange(raw, at: i * IOMMUIOVARange.size)
                return IOVA(rawValue: r.start)...IOVA(rawValue: r.last)
            }
            return (ranges, c.outIovaAlignment)
        })
        if case .failure(.messageTooLong) = r { return _iovaRanges(ioas, capacity: capacity * 4) }
        return r
    }

    /// `IOMMU_OPTION` with `IOMMU_OPTION_HUGE_PAGES` SET on an IOAS.
    /// - Throws: `ENOENT` no IOAS; `EINVAL` a domain and areas exist; `EADDRINUSE` an area
    ///   is not PAGE_SIZE aligned.
    public func setHugePages(ioas: IOASObjectID, enabled: Bool) throws(Errno) {
        try _option(IOMMUFDConstant.optionHugePages, IOMMUFDConstant.optionOpSet, ioas.rawValue, enabled ? 1 : 0).map { _ in () }.get()
    }

    /// `IOMMU_OPTION` with `IOMMU_OPTION_HUGE_PAGES` GET.
    /// - Throws: `ENOENT` no IOAS.
    public func hugePages(ioas: IOASObjectID) throws(Errno) -> Bool {
        try _option(IOMMUFDConstant.optionHugePages, IOMMUFDConstant.optionOpGet, ioas.rawValue, 0).map { $0 == 1 }.get()
    }

    /// `IOMMU_OPTION` with `IOMMU_OPTION_RLIMIT_MODE` SET: `true` for MM accounting.
    /// - Throws: `EPERM` without `CAP_SYS_RESOURCE`; `EBUSY` objects exist.
    public func setRlimitMode(mm: Bool) throws(Errno) {
        try _option(IOMMUFDConstant.optionRlimitMode, IOMMUFDConstant.optionOpSet, 0, mm ? 1 : 0).map { _ in () }.get()
    }
    func _option(_ id: UInt32, _ op: UInt16, _ object: UInt32, _ val: UInt64) -> Result<UInt64, Errno> {
        typedCall(IOMMUFDCommand.option, IOMMUOption(optionId: id, op: op, objectId: object, val64: val)).map(\.val64)
    }

    /// `IOMMU_VFIO_IOAS` SET: the IOAS the VFIO compatibility ioctls use.
    /// - Throws: `ENOENT` not an IOAS.
    public func setCompatIOAS(_ ioas: IOASObjectID) throws(Errno) {
        try typedCall(IOMMUFDCommand.vfioIOAS, IOMMUVFIOIOAS(ioasId: ioas.rawValue, op: IOMMUFDConstant.vfioIOASSet)).map { _ in () }.get()
    }

    /// `IOMMU_HWPT_ALLOC`: a paging HWPT on IOAS `pt`, or a nested HWPT on paging HWPT `pt`
    /// with vendor `data` of `dataType`. `faultID` fills `fault_id` (the caller still sets
    /// `IOMMU_HWPT_FAULT_ID_VALID` in `flags`, as in the uAPI).
    /// - Returns: the HWPT ID.
    /// - Throws: `EOPNOTSUPP` bad flags or data type; `EINVAL` data/type mismatch, bad
    ///   `pt`, bad parent; `ENOENT` no device or fault object; `EFAULT`; `ENOMEM`.
    public func allocHWPT<Parent: IOMMUFDHWPTParentKind>(
        device: DeviceObjectID, pt: IOMMUFDObjectID<Parent>, flags: UInt32 = 0, dataType: UInt32 = 0,
        data: [UInt8] = [], faultID: FaultObjectID? = nil) throws(Errno) -> HWPTObjectID {
        try _allocHWPT(device.rawValue, pt.rawValue, flags, dataType, data, faultID?.rawValue ?? 0).get()
    }
    func _allocHWPT(_ dev: UInt32, _ pt: UInt32, _ flags: UInt32, _ type: UInt32, _ data: [UInt8],
                    _ fault: UInt32) -> Result<HWPTObjectID, Errno> {
        typedCall(IOMMUFDCommand.hwptAlloc, prepare: { o in
            let d = data.isEmpty ? 0 : o.place(data)
            return o.place(IOMMUHWPTAlloc(flags: flags, devId: dev, ptId: pt, dataType: type,
                                          dataLen: UInt32(data.count), dataUptr: d, faultId: fault).bytes)
        }, finish: { o, a in HWPTObjectID(rawValue: IOMMUHWPTAlloc(bytes: o.bytes(at: a)).outHwptId) })
    }

    /// `IOMMU_GET_HW_INFO` for a bound device, with a buffer of `dataLength` bytes.
    /// - Throws: `ENOENT` no device; `EOPNOTSUPP` the driver does not report `type`.
    public func hwInfo(device: DeviceObjectID, dataLength: Int = 64, type: UInt32? = nil) throws(Errno) -> IOMMUFDHWInfo {
        try _hwInfo(device, dataLength, type).get()
    }
    func _hwInfo(_ dev: DeviceObjectID, _ len: Int, _ type: UInt32?) -> Result<IOMMUFDHWInfo, Errno> {
        typedCall(IOMMUFDCommand.getHWInfo, prepare: { o in
            let buf = o.place([UInt8](repeating: 0, count: len))
            return o.place(IOMMUHWInfo(flags: type == nil ? 0 : IOMMUFDConstant.hwInfoFlagInputType, devId: dev.rawValue,
                                       dataLen: UInt32(len), dataUptr: buf, dataType: type ?? 0).bytes)
        }, finish: { o, a in
            let c = IOMMUHWInfo(bytes: o.bytes(at: a))
            return IOMMUFDHWInfo(type: c.dataType, data: Array(o.bytes(at: c.dataUptr).prefix(Int(c.dataLen))),
                                 dataLength: c.dataLen, capabilities: c.outCapabilities, maxPasidLog2: c.outMaxPasidLog2)
        })
    }

    /// `IOMMU_HWPT_SET_DIRTY_TRACKING`.
    /// - Throws: `EOPNOTSUPP` the HWPT was not allocated with DIRTY_TRACKING; `ENOENT`.
    public func setDirtyTracking(hwpt: HWPTObjectID, enabled: Bool) throws(Errno) {
        try typedCall(IOMMUFDCommand.hwptSetDirtyTracking,
                      IOMMUHWPTSetDirtyTracking(flags: enabled ? IOMMUFDConstant.dirtyTrackingEnable : 0, hwptId: hwpt.rawValue))
            .map { _ in () }.get()
    }

    /// `IOMMU_HWPT_GET_DIRTY_BITMAP`: one bit per `pageSize` from `iova`.
    /// - Throws: `ENOENT`; `EOVERFLOW`; `EINVAL` misaligned range or page size, or a range
    ///   not fully mapped; `EOPNOTSUPP` no dirty tracking.
    public func dirtyBitmap(hwpt: HWPTObjectID, iova: IOVA, length: UInt64, pageSize: UInt64,
                            clear: Bool = true) throws(Errno) -> [UInt8] {
        try _dirtyBitmap(hwpt, iova, length, pageSize, clear).get()
    }
    func _dirtyBitmap(_ hwpt: HWPTObjectID, _ iova: IOVA, _ length: UInt64, _ pageSize: UInt64,
                      _ clear: Bool) -> Result<[UInt8], Errno> {
        typedCall(IOMMUFDCommand.hwptGetDirtyBitmap, prepare: { o in
            let bits = pageSize == 0 ? 0 : Int((length / pageSize + 7) / 8)
            let bm = o.place([UInt8](repeating: 0, count: bits))
            return o.place(IOMMUHWPTGetDirtyBitmap(hwptId: hwpt.rawValue, flags: clear ? 0 : IOMMUFDConstant.getDirtyBitmapNoClear,
                                                   iova: iova.rawValue, length: length, pageSize: pageSize,
                                                   data: bm).bytes)
        }, finish: { o, a in o.bytes(at: IOMMUHWPTGetDirtyBitmap(bytes: o.bytes(at: a)).data) })
    }

    /// `IOMMU_HWPT_INVALIDATE` on a nested HWPT with vendor `entries` of `entryLength`
    /// bytes. `handled` receives `entry_num` out, on error too.
    /// - Throws: `EINVAL` not a nested HWPT, bad type or length; `EOPNOTSUPP`; `ENOENT`;
    ///   the driver's per-entry errno.
    public func invalidate(hwpt: HWPTObjectID, dataType: UInt32, entryLength: UInt32, entries: [[UInt8]],
                           handled: inout UInt32) throws(Errno) {
        let r = _invalidate(hwpt.rawValue, dataType, entryLength, entries)
        handled = r.handled
        if let e = r.error { throw e }
    }
    func _invalidate(_ id: UInt32, _ type: UInt32, _ len: UInt32, _ entries: [[UInt8]]) -> (handled: UInt32, error: Errno?) {
        let (r, handled) = typedCallAlways(IOMMUFDCommand.hwptInvalidate, prepare: { o in
            let arr = entries.isEmpty ? 0 : o.place(entries.flatMap { $0 })
            return o.place(IOMMUHWPTInvalidate(hwptId: id, dataUptr: arr, dataType: type, entryLen: len,
                                               entryNum: UInt32(entries.count)).bytes)
        }, finish: { o, a in IOMMUHWPTInvalidate(bytes: o.bytes(at: a)).entryNum })
        if case .failure(let e) = r { return (handled, e) }
        return (handled, nil)
    }

    /// `IOMMU_FAULT_QUEUE_ALLOC`: a FAULT object and its file descriptor (see
    /// ``readFile(_:buffer:count:)``, ``writeFile(_:buffer:count:)``, ``closeFile(_:)``).
    /// - Throws: `ENOMEM`.
    public func allocFaultQueue() throws(Errno) -> (id: FaultObjectID, fd: Int32) {
        try typedCall(IOMMUFDCommand.faultQueueAlloc, IOMMUFaultAlloc())
            .map { (FaultObjectID(rawValue: $0.outFaultId), Int32(bitPattern: $0.outFaultFd)) }.get()
    }
}
