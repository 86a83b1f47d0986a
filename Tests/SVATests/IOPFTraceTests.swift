import XCTest
import IOMMUCore
import IOMMUDrivers

/// An I/O page fault end to end, as its trace reads: the page request reported by the
/// VT-d page-request thread (`intel_iommu:prq_report`), handed to the core
/// (`iommu:dev_fault`), answered (`iommu:dev_page_response`) and delivered to the device
/// (`intel_iommu:qi_submit` of a `page_grp_resp` descriptor).
final class IOPFTraceTests: XCTestCase {
    func testPageFaultTraceLines() throws {
        let rig = try SVARig()
        let dev = try rig.device(2)
        let mm = try rig.process()
        let va = try mm.mmap(length: 4096, prot: [.read, .write], at: 0x4000_0000)
        let bond = try rig.iommu.svaBindDevice(dev, mm: mm)
        let pasid = rig.iommu.svaGetPasid(bond)
        rig.unit.iopfQueue.mode = .inline
        rig.machine.events.clear()
        XCTAssertThrowsError(try dev.dmaWrite(at: IOVA(sva: va), bytes: [1], pasid: pasid))
        rig.unit.processPageRequests()
        let p = String(pasid.rawValue, radix: 16)
        let lines = rig.machine.events.events(matching: TraceFilter(pasid: pasid))
            .filter { e in
                e.event == "qi_submit" ? e.message.hasPrefix("page_grp_resp")
                    : ["prq_report", "dev_fault", "dev_page_response"].contains(e.event)
            }
            .map { "\($0.name): \($0.message)" }
        XCTAssertEqual(lines, [
            "intel_iommu:prq_report: dmar0/0000:00:02.0 seq# 0: rid=0x10 addr=0x40000 -w--l pasid=0x\(p) index=0x0",
            "iommu:dev_fault: IOMMU:0000:00:02.0 type=2 reason=0 addr=0x0000000040000000 fetch=0x0000000000000000 pasid=\(pasid) group=0 flags=b prot=2",
            "intel_iommu:qi_submit: page_grp_resp dmar0: 0x\(p)00100019 0x4 0x0 0x0",
            "iommu:dev_page_response: IOMMU:0000:00:02.0 code=0 pasid=\(pasid) group=0",
        ])
        rig.iommu.svaUnbindDevice(bond)
    }
}
