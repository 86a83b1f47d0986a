/// The tracepoints of the `iommu` trace system (`include/trace/events/iommu.h`), each
/// printing its fields with the kernel's `TP_printk` format, so a line reads as it does
/// from `trace-cmd report` on a real machine.
extension TraceRecord {
    /// The kernel's trace system of the IOMMU core.
    public static let iommuSystem = "iommu"

    /// `iommu:add_device_to_group` (`iommu_group_add_device`):
    /// `IOMMU: groupID=%d device=%s`.
    public static func addDeviceToGroup(groupID: Int, device: RID) -> TraceRecord {
        groupEvent("add_device_to_group", groupID: groupID, device: device)
    }

    /// `iommu:remove_device_from_group` (`__iommu_group_remove_device`):
    /// `IOMMU: groupID=%d device=%s`.
    public static func removeDeviceFromGroup(groupID: Int, device: RID) -> TraceRecord {
        groupEvent("remove_device_from_group", groupID: groupID, device: device)
    }

    private static func groupEvent(_ event: String, groupID: Int, device: RID) -> TraceRecord {
        TraceRecord(system: iommuSystem, event: event,
                    fields: [.init("gid", "\(groupID)"), .init("device", device.devName)],
                    message: "IOMMU: groupID=\(groupID) device=\(device.devName)", device: device)
    }

    /// `iommu:attach_device_to_domain` (`__iommu_attach_device`, after the driver
    /// accepted the domain): `IOMMU: device=%s`. The model adds the domain as field
    /// `domain` (not printed, as in the kernel).
    public static func attachDeviceToDomain(device: RID, domain: IOMMUDomain) -> TraceRecord {
        TraceRecord(system: iommuSystem, event: "attach_device_to_domain",
                    fields: [.init("device", device.devName), .init("domain", "\(domain)")],
                    message: "IOMMU: device=\(device.devName)", device: device)
    }

    /// `iommu:map` (`iommu_map_nosync`, after a successful map):
    /// `IOMMU: iova=0x%016llx - 0x%016llx paddr=0x%016llx size=%zu`.
    public static func map(iova: IOVA, paddr: PhysicalAddress, size: UInt64) -> TraceRecord {
        let start = hex16(iova.rawValue), end = hex16(iova.rawValue &+ size), pa = hex16(paddr.rawValue)
        return TraceRecord(system: iommuSystem, event: "map",
                           fields: [.init("iova", start), .init("paddr", pa), .init("size", "\(size)")],
                           message: "IOMMU: iova=\(start) - \(end) paddr=\(pa) size=\(size)")
    }

    /// `iommu:unmap` (`__iommu_unmap`): `IOMMU: iova=0x%016llx - 0x%016llx size=%zu
    /// unmapped_size=%zu`.
    public static func unmap(iova: IOVA, size: UInt64, unmappedSize: UInt64) -> TraceRecord {
        let start = hex16(iova.rawValue), end = hex16(iova.rawValue &+ size)
        return TraceRecord(system: iommuSystem, event: "unmap",
                           fields: [.init("iova", start), .init("size", "\(size)"),
                                    .init("unmapped_size", "\(unmappedSize)")],
                           message: "IOMMU: iova=\(start) - \(end) size=\(size) unmapped_size=\(unmappedSize)")
    }

    /// `iommu:io_page_fault` (`report_iommu_fault`): `IOMMU:%s %s iova=0x%016llx
    /// flags=0x%04x` with the device's driver name (`dev_driver_string`: the bus name,
    /// `pci`, for a device without a driver), its name, the address and
    /// `IOMMU_FAULT_READ` (0) or `IOMMU_FAULT_WRITE` (1). The model adds the PASID and
    /// the hardware's reason as fields.
    public static func ioPageFault(device: RID, driver: String = "pci", iova: IOVA, write: Bool,
                                   pasid: PASID?, reason: String) -> TraceRecord {
        let flags = write ? 1 : 0
        let iova = hex16(iova.rawValue)
        return TraceRecord(system: iommuSystem, event: "io_page_fault",
                           fields: [.init("device", device.devName), .init("driver", driver),
                                    .init("iova", iova), .init("flags", "0x000\(flags)"),
                                    .init("pasid", pasid.map { "\($0)" } ?? "-"), .init("reason", reason)],
                           message: "IOMMU:\(driver) \(device.devName) iova=\(iova) flags=0x000\(flags)",
                           device: device, pasid: pasid)
    }

    /// `iommu:dev_fault` (`iommu_report_device_fault`) for a page request
    /// (`IOMMU_FAULT_PAGE_REQ`, type 2): `IOMMU:%s type=%d reason=%d addr=0x%016llx
    /// fetch=0x%016llx pasid=%d group=%d flags=%x prot=%d`.
    ///
    /// This tracepoint and `dev_page_response` come from the I/O page-fault series that
    /// distribution kernels carry; mainline dropped them with the old fault-reporting API.
    public static func devFault(device: RID, fault: IOPFFault) -> TraceRecord {
        let addr = hex16(fault.address.rawValue)
        let flags = String(fault.flags.rawValue, radix: 16)
        return TraceRecord(system: iommuSystem, event: "dev_fault",
                           fields: [.init("device", device.devName), .init("type", "2"), .init("reason", "0"),
                                    .init("addr", addr), .init("fetch_addr", hex16(0)), .init("pasid", "\(fault.pasid?.rawValue ?? 0)"),
                                    .init("grpid", "\(fault.grpid)"), .init("flags", flags),
                                    .init("prot", "\(fault.perm.rawValue)")],
                           message: "IOMMU:\(device.devName) type=2 reason=0 addr=\(addr) fetch=\(hex16(0)) "
                               + "pasid=\(fault.pasid?.rawValue ?? 0) group=\(fault.grpid) flags=\(flags) prot=\(fault.perm.rawValue)",
                           device: device, pasid: fault.pasid)
    }

    /// `iommu:dev_page_response` (`iommu_page_response`): `IOMMU:%s code=%d pasid=%d
    /// group=%d`, the code as an `iommu_page_response_code`.
    ///
    /// See ``devFault(device:fault:)`` for where the tracepoint comes from.
    public static func devPageResponse(device: RID, pasid: PASID?, grpid: UInt32,
                                       code: IOMMUPageResponseCode) -> TraceRecord {
        TraceRecord(system: iommuSystem, event: "dev_page_response",
                    fields: [.init("device", device.devName), .init("code", "\(code.rawValue)"),
                             .init("pasid", "\(pasid?.rawValue ?? 0)"), .init("grpid", "\(grpid)")],
                    message: "IOMMU:\(device.devName) code=\(code.rawValue) pasid=\(pasid?.rawValue ?? 0) group=\(grpid)",
                    device: device, pasid: pasid)
    }

    /// `0x%016llx`.
    public static func hex16(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 16 - s.count)) + s
    }

    /// `0x%llx`.
    public static func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
}

/// The model's own events (system `iommukit`): the core's steps the kernel does not trace.
extension TraceRecord {
    /// `iommukit:attach_device_pasid`, `iommukit:replace_device_pasid`,
    /// `iommukit:detach_device_pasid`: the PASID attach shapes of the core
    /// (`iommu_attach_device_pasid`, `iommu_replace_device_pasid`,
    /// `iommu_detach_device_pasid`), which have no tracepoint upstream.
    public static func pasidEvent(_ event: String, device: RID, pasid: PASID, domain: IOMMUDomain) -> TraceRecord {
        .model(event, device: device, pasid: pasid,
               [.init("device", device.devName), .init("pasid", "\(pasid)"), .init("domain", "\(domain)")])
    }
}
