import IOMMUCore

// The typed Swift face of the vIOMMU family: each call encodes the kernel structure, goes
// through the raw dispatcher and decodes the answer, as the rest of the typed API.
extension IOMMUFD {
    /// `IOMMU_VIOMMU_ALLOC`: a vIOMMU of `type` on the IOMMU behind `device`, over the
    /// nesting-parent HWPT `parent`, with the type's `data` (empty: none).
    /// - Returns: the vIOMMU ID and `data` as the driver left it (its outputs, such as an
    ///   `mmap` offset and length, are written back there).
    /// - Throws: `EOPNOTSUPP` flags, type DEFAULT or a driver without this type; `ENOENT`
    ///   no device or no paging HWPT; `EINVAL` not a nesting parent, or data the driver
    ///   refuses; `EFAULT`; `ENOMEM`.
    public func allocVIOMMU(device: DeviceObjectID, parent: HWPTObjectID, type: UInt32,
                            data: [UInt8] = []) throws(Errno) -> (id: VIOMMUObjectID, data: [UInt8]) {
        try typedCall(IOMMUFDCommand.viommuAlloc, prepare: { o in
            let d = data.isEmpty ? 0 : o.place(data)
            return o.place(IOMMUVIOMMUAlloc(type: type, devId: device.rawValue, hwptId: parent.rawValue,
                                            dataLen: UInt32(data.count), dataUptr: d).bytes)
        }, finish: { o, a in
            let c = IOMMUVIOMMUAlloc(bytes: o.bytes(at: a))
            return (VIOMMUObjectID(rawValue: c.outViommuId), data.isEmpty ? [] : o.bytes(at: c.dataUptr))
        }).get()
    }

    /// `IOMMU_VDEVICE_ALLOC`: `device` in `viommu` under `virtualID`.
    /// - Throws: `ENOENT` no vIOMMU or device, or a device being unbound; `EINVAL` a
    ///   device behind another IOMMU; `EEXIST` the device has a vDEVICE, or the virtual ID
    ///   is taken; `ENOMEM`.
    public func allocVDevice(viommu: VIOMMUObjectID, device: DeviceObjectID,
                             virtualID: UInt64) throws(Errno) -> VDeviceObjectID {
        try typedCall(IOMMUFDCommand.vdeviceAlloc,
                      IOMMUVDeviceAlloc(viommuId: viommu.rawValue, devId: device.rawValue, virtId: virtualID))
            .map { VDeviceObjectID(rawValue: $0.outVdeviceId) }.get()
    }

    /// `IOMMU_VEVENTQ_ALLOC`: a queue of `depth` virtual events of `type` on `viommu`, and
    /// its file descriptor (``readFile(_:buffer:count:)``, ``pollFile(_:)``,
    /// ``closeFile(_:)``).
    /// - Throws: `EOPNOTSUPP` flags or type DEFAULT; `EINVAL` depth 0; `ENOENT`; `EEXIST` a
    ///   queue of that type on the vIOMMU; `ENOMEM`; `EMFILE`.
    public func allocVEventQueue(viommu: VIOMMUObjectID, type: UInt32,
                                 depth: UInt32) throws(Errno) -> (id: VEventQueueObjectID, fd: Int32) {
        try typedCall(IOMMUFDCommand.veventqAlloc,
                      IOMMUVEventQAlloc(viommuId: viommu.rawValue, type: type, veventqDepth: depth))
            .map { (VEventQueueObjectID(rawValue: $0.outVeventqId), Int32(bitPattern: $0.outVeventqFd)) }.get()
    }

    /// `IOMMU_HW_QUEUE_ALLOC`: a HW queue of `type` at `index` on `viommu`, over
    /// `[iova, iova + length)` of the nesting parent's IOAS, which stays pinned and locked
    /// against unmap until the queue is destroyed.
    /// - Throws: `EOPNOTSUPP`; `EINVAL` length 0 or the driver's index rules; `EOVERFLOW`;
    ///   `ERANGE`; `ENOENT` no vIOMMU, or memory not fully mapped; `EFAULT` memory not
    ///   physically contiguous; `EEXIST`/`EIO` the driver's; `ENOMEM`.
    public func allocHWQueue(viommu: VIOMMUObjectID, type: UInt32, index: UInt32, iova: IOVA,
                             length: UInt64) throws(Errno) -> HWQueueObjectID {
        try typedCall(IOMMUFDCommand.hwQueueAlloc,
                      IOMMUHWQueueAlloc(viommuId: viommu.rawValue, type: type, index: index,
                                        nestingParentIova: iova.rawValue, length: length))
            .map { HWQueueObjectID(rawValue: $0.outHwQueueId) }.get()
    }

    /// `IOMMU_HWPT_INVALIDATE` on a vIOMMU: the driver's cache invalidation with vendor
    /// `entries` of `entryLength` bytes. `handled` receives `entry_num` out, on error too.
    /// - Throws: `EINVAL` bad type or length; `EOPNOTSUPP`; `ENOENT`; the driver's
    ///   per-entry errno.
    public func invalidate(viommu: VIOMMUObjectID, dataType: UInt32, entryLength: UInt32, entries: [[UInt8]],
                           handled: inout UInt32) throws(Errno) {
        let r = _invalidate(viommu.rawValue, dataType, entryLength, entries)
        handled = r.handled
        if let e = r.error { throw e }
    }
}
