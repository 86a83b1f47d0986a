import XCTest
import IOMMUCore
@testable import IOMMUDrivers

/// The VT-d driver's tracepoints (drivers/iommu/intel/trace.h) and the core's events of a
/// VT-d scenario, line for line: the descriptor words of `qi_submit` are the bits the
/// kernel's `qi_flush_*` helpers build.
final class VTdTraceTests: XCTestCase {
    func testAttachAndUnmapTraceTheKernelsEventsInOrder() throws {
        let bed = try VTdTestbed()
        bed.machine.events.isEnabled = true
        let dev = try bed.device(3)
        let domain = try bed.paging(dev)
        try bed.iommu.attachDevice(domain, to: dev)
        let pa = try bed.buffer([1])
        try bed.iommu.map(domain, iova: 0x20_0000, paddr: pa, size: 4096, prot: [.read, .write])
        bed.machine.events.clear()
        _ = bed.iommu.unmap(domain, iova: 0x20_0000, size: 4096)
        let did = try XCTUnwrap(bed.unit.did(for: domain))
        XCTAssertEqual(bed.machine.events.all.map(\.message), [
            "IOMMU: iova=0x0000000000200000 - 0x0000000000201000 size=4096 unmapped_size=4096",
            // cache_tag_flush_range: the PASID-based IOTLB of the RID (PASID 0), one page
            // (QI_GRAN_PSI_PASID, AM 0), then the device TLB (ATS is on), one page, no S bit.
            "p_iotlb_inv dmar0: 0x\(String(UInt64(did) << 16 | 0x36, radix: 16)) 0x200000 0x0 0x0",
            // SID 0x18 at 47:32, PFSID 0x18 split as 8 << 12 and 1 << 52.
            "dev_tlb_inv dmar0: 0x10001800008003 0x200000 0x0 0x0",
        ])
        XCTAssertEqual(bed.machine.events.all.map(\.name), ["iommu:unmap", "intel_iommu:qi_submit", "intel_iommu:qi_submit"])
        let unmap = try XCTUnwrap(bed.machine.events.all.first)
        XCTAssertNil(unmap.device, "an unmap is about a domain, not a device")
    }

    func testAttachRecordsCacheTagsThenTheAttach() throws {
        let bed = try VTdTestbed()
        let dev = try bed.device(3)
        let domain = try bed.paging(dev)
        let old = try XCTUnwrap(dev.group?.domain)
        let oldDID = try XCTUnwrap(bed.unit.did(for: old))
        bed.machine.events.isEnabled = true
        try bed.iommu.attachDevice(domain, to: dev)
        let did = try XCTUnwrap(bed.unit.did(for: domain))
        let attach = bed.machine.events.all.filter { $0.system != "intel_iommu" || $0.event.hasPrefix("cache_tag") }
        // As intel_iommu_attach_device: the old domain's tags go (device_block_translation),
        // then the new domain's come, then the core traces the attach.
        XCTAssertEqual(attach.map { "\($0.name): \($0.message)" }, [
            "intel_iommu:cache_tag_unassign: dmar0/0000:00:03.0 type iotlb did \(oldDID) pasid 0 ref 1",
            "intel_iommu:cache_tag_unassign: dmar0/0000:00:03.0 type devtlb did \(oldDID) pasid 0 ref 1",
            "intel_iommu:cache_tag_assign: dmar0/0000:00:03.0 type iotlb did \(did) pasid 0 ref 1",
            "intel_iommu:cache_tag_assign: dmar0/0000:00:03.0 type devtlb did \(did) pasid 0 ref 1",
            "iommu:attach_device_to_domain: IOMMU: device=0000:00:03.0",
        ])
        XCTAssertEqual(bed.machine.events.named("iommu:attach_device_to_domain").last?["domain"], "\(domain)")
    }

    func testQIDescriptorWordsFollowTheKernelsFieldMacros() {
        let rid = RID(bus: 0x3a, device: 0, function: 1)   // source-id 0x3a01
        func words(_ d: VTdDescriptor) -> [UInt64] {
            let w = d.qiWords
            return [w.qw0, w.qw1, w.qw2, w.qw3]
        }
        // QI_CC: granularity in bits 5:4, DID 31:16, SID 47:32.
        XCTAssertEqual(words(.contextGlobal), [0x11, 0, 0, 0])
        XCTAssertEqual(words(.contextDevice(did: 7, rid: rid)), [0x3a01_0007_0031, 0, 0, 0])
        // QI_IOTLB: PSI with the address mask in qw1 bits 5:0 and IH in bit 6.
        XCTAssertEqual(words(.iotlbPage(did: 5, address: 0x40_0000, mask: 2, ih: true)), [0x5_0032, 0x40_0042, 0, 0])
        XCTAssertEqual(words(.iotlbDomain(did: 5)), [0x5_0022, 0, 0, 0])
        // QI_EIOTLB: PASID 63:32, whole PASID (granularity 2) or 2^AM pages (granularity 3).
        XCTAssertEqual(words(.piotlb(did: 4, pasid: 9, address: 0, npages: .max, ih: false)), [0x9_0004_0026, 0, 0, 0])
        XCTAssertEqual(words(.piotlb(did: 4, pasid: 9, address: 0x10_0000, npages: 3, ih: false)), [0x9_0004_0036, 0x10_0002, 0, 0])
        // QI_PC: PASID-selective, all PASIDs of a DID, global.
        XCTAssertEqual(words(.pasidCache(did: 4, pasid: 9)), [0x9_0004_0017, 0, 0, 0])
        XCTAssertEqual(words(.pasidCacheDomain(did: 4)), [0x4_0007, 0, 0, 0])
        XCTAssertEqual(words(.pasidCacheGlobal), [0x37, 0, 0, 0])
        // QI_DIOTLB: SID 47:32, PFSID split 15:12 and 63:52; a 2-page range sets bit 11
        // (the lowest clear address bit above 12) and S.
        XCTAssertEqual(words(.devTLB(rid: rid, address: 0x20_0000, size: 8192)),
                       [0x3a00_0000_0000_0000 | 0x3a01_0000_0000 | 0x1000 | 0x3, 0x20_0001, 0, 0])
        // QI_DEIOTLB: PASID 51:32, SID 31:16; the whole space is MAX_AGAW_PFN_WIDTH.
        XCTAssertEqual(words(.devTLBPasid(rid: rid, pasid: 9, address: 0, size: .max)),
                       [0x3a00_0000_0000_0000 | 0x9_0000_0000 | 0x3a01_0000 | 0x1000 | 0x8, 0x7fff_ffff_ffff_f800, 0, 0])
        // QI_IWD: status data QI_DONE, status write, fence, PRQ drain.
        XCTAssertEqual(words(.wait(fence: true, drain: true)), [0x2_0000_00e5, 0, 0, 0])
        // QI_PGRP_RESP: PASID, RID, PASID present, response code; group index and LPIG.
        XCTAssertEqual(words(.pageGroupResponse(rid: rid, pasid: 9, groupIndex: 5, code: .invalid, lastPage: true)),
                       [0x9_3a01_1019, 0x2c, 0, 0])
    }

    func testQISubmitPrintsTheTypesSymbolicName() {
        XCTAssertEqual(TraceRecord.qiSubmit(iommu: "dmar1", descriptor: .iotlbGlobal).message,
                       "iotlb_inv dmar1: 0x12 0x0 0x0 0x0")
        XCTAssertEqual(TraceRecord.qiSubmit(iommu: "dmar1", descriptor: .wait(fence: false, drain: false)).message,
                       "inv_wait dmar1: 0x200000025 0x0 0x0 0x0")
    }

    func testPRQReportDecodesTheRequestLikeDecodePRQDescriptor() {
        let req = VTdPageRequest(rid: RID(bus: 0, device: 2, function: 0), pasid: 0x11, read: false,
                                 write: true, execute: false, privileged: false, lastPage: true, groupIndex: 3,
                                 address: 0x7f12_3000)
        let r = TraceRecord.prqReport(iommu: "dmar0", request: req, sequence: 4)
        XCTAssertEqual(r.message, "dmar0/0000:00:02.0 seq# 4: rid=0x10 addr=0x7f123 -w--l pasid=0x11 index=0x3")
        XCTAssertEqual(r.fields.first { $0.key == "dw0" }?.value, "0x1100100101")
        XCTAssertEqual(r.fields.first { $0.key == "dw1" }?.value, "0x7f12301e")
        XCTAssertEqual(r.pasid, 0x11)
    }

    func testGraphShowsTheDIDAndPageTableRootOfAPagingDomain() throws {
        let bed = try VTdTestbed()
        let dev = try bed.device(3)
        let domain = try bed.paging(dev)
        try bed.iommu.attachDevice(domain, to: dev)
        let node = try XCTUnwrap(bed.machine.graph().node(ObjectGraph.id(of: domain)))
        let did = try XCTUnwrap(bed.unit.did(for: domain))
        XCTAssertEqual(node.details, ["DID \(did)", "pgd 0x\(String(domain.pageTable.root.rawValue, radix: 16))"])
        XCTAssertEqual(bed.unit.graphDetails(of: try bed.paging(dev)), [], "a domain without a DID on the unit")
    }
}
