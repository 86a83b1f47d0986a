import IOMMUCore

/// The tracepoints of the `intel_iommu` trace system (`drivers/iommu/intel/trace.h`),
/// printed with the kernel's `TP_printk` formats.
extension TraceRecord {
    /// The Intel IOMMU driver's trace system.
    public static let intelSystem = "intel_iommu"

    /// `intel_iommu:qi_submit` (`qi_submit_sync`, once per descriptor): `%s %s: 0x%llx
    /// 0x%llx 0x%llx 0x%llx`, the descriptor type's symbolic name, the unit and the four
    /// words.
    public static func qiSubmit(iommu: String, descriptor: VTdDescriptor) -> TraceRecord {
        let w = descriptor.qiWords
        let kind = qiTypeNames[descriptor.qiType] ?? hex(descriptor.qiType)
        var fields: [Event.Field] = [.init("iommu", iommu), .init("type", kind)]
        fields += [("qw0", w.qw0), ("qw1", w.qw1), ("qw2", w.qw2), ("qw3", w.qw3)].map { .init($0.0, hex($0.1)) }
        return TraceRecord(system: intelSystem, event: "qi_submit", fields: fields,
                           message: "\(kind) \(iommu): \(hex(w.qw0)) \(hex(w.qw1)) \(hex(w.qw2)) \(hex(w.qw3))",
                           device: descriptor.targetRID, pasid: descriptor.targetPasid)
    }

    /// `__print_symbolic(qw0 & 0xf, ...)` of `qi_submit`.
    static let qiTypeNames: [UInt64: String] = [
        0x1: "cc_inv", 0x2: "iotlb_inv", 0x3: "dev_tlb_inv", 0x4: "iec_inv", 0x5: "inv_wait",
        0x6: "p_iotlb_inv", 0x7: "pc_inv", 0x8: "p_dev_tlb_inv", 0x9: "page_grp_resp",
    ]

    /// `intel_iommu:prq_report` (`intel_prq_report`, for each page request handed to the
    /// core): `%s/%s seq# %ld: %s`, the unit, the device, the unit's running report
    /// number, then `decode_prq_descriptor` of the request's words: `rid=0x%llx
    /// addr=0x%llx %c%c%c%c%c pasid=0x%llx index=0x%llx` (the address as a page number;
    /// the flags r, w, x, p for privileged, l for last page in group).
    public static func prqReport(iommu: String, request r: VTdPageRequest, sequence: Int) -> TraceRecord {
        // struct page_req_dsc: qw_0 = type:8 pasid_present:1 rsvd:7 rid:16 pasid:20 exe_req:1
        // pm_req:1; qw_1 = rd_req:1 wr_req:1 lpig:1 prg_index:9 addr:52.
        let dw0: UInt64 = 1 | (r.pasidPresent ? 1 << 8 : 0) | UInt64(r.rid.raw) << 16 | UInt64((r.pasid?.rawValue ?? 0) & 0xf_ffff) << 32
            | (r.execute ? 1 << 52 : 0) | (r.privileged ? 1 << 53 : 0)
        let dw1: UInt64 = (r.read ? 1 : 0) | (r.write ? 2 : 0) | (r.lastPage ? 4 : 0)
            | UInt64(r.groupIndex & 0x1ff) << 3 | r.address.rawValue & ~0xfff
        let flags = [r.read ? "r" : "-", r.write ? "w" : "-", r.execute ? "x" : "-", r.privileged ? "p" : "-",
                     r.lastPage ? "l" : "-"].joined()
        let decoded = "rid=\(hex(UInt64(r.rid.raw))) addr=\(hex(r.address.rawValue >> 12)) \(flags) "
            + "pasid=\(hex(UInt64(r.pasid?.rawValue ?? 0))) index=\(hex(UInt64(r.groupIndex)))"
        return TraceRecord(system: intelSystem, event: "prq_report",
                           fields: [.init("dw0", hex(dw0)), .init("dw1", hex(dw1)), .init("dw2", "0x0"),
                                    .init("dw3", "0x0"), .init("seq", "\(sequence)"), .init("iommu", iommu),
                                    .init("dev", r.rid.devName)],
                           message: "\(iommu)/\(r.rid.devName) seq# \(sequence): \(decoded)",
                           device: r.rid, pasid: r.pasid)
    }

    /// `intel_iommu:cache_tag_assign` / `cache_tag_unassign` (`cache_tag_assign`,
    /// `cache_tag_unassign`): `%s/%s type %s did %d pasid %d ref %d`, the unit, the
    /// device, `iotlb` or `devtlb`, the DID, the PASID (0 for the RID) and the tag's
    /// users after the change.
    static func cacheTag(_ event: String, iommu: String, device: RID, devTLB: Bool, did: UInt16, pasid: UInt32,
                         users: Int) -> TraceRecord {
        let type = devTLB ? "devtlb" : "iotlb"
        return TraceRecord(system: intelSystem, event: event,
                           fields: [.init("iommu", iommu), .init("dev", device.devName), .init("type", type),
                                    .init("domain_id", "\(did)"), .init("pasid", "\(pasid)"), .init("users", "\(users)")],
                           message: "\(iommu)/\(device.devName) type \(type) did \(did) pasid \(pasid) ref \(users)",
                           device: device, pasid: pasid == 0 ? nil : PASID(rawValue: pasid))
    }
}

extension VTdDescriptor {
    /// The device a descriptor is aimed at, for trace filters.
    var targetRID: RID? {
        switch self {
        case .contextDevice(_, let rid), .devTLB(let rid, _, _), .devTLBPasid(let rid, _, _, _),
             .pageGroupResponse(let rid, _, _, _, _): rid
        default: nil
        }
    }

    /// The PASID a descriptor is aimed at, for trace filters.
    /// Table-level PASIDs (the PASID cache, the PASID-based IOTLB) are raw entry indices;
    /// index 0, the RID's entry, is "no PASID".
    var targetPasid: PASID? {
        switch self {
        case .pasidCache(_, let p), .piotlb(_, let p, _, _, _): p == 0 ? nil : PASID(rawValue: p)
        case .devTLBPasid(_, let p, _, _): p
        case .pageGroupResponse(_, let p, _, _, _): p
        default: nil
        }
    }
}
