import IOMMUConformance
import XCTest
import DriverShims
import IOMMUCore
import IOMMUDrivers

/// The four PASID flavours: their call sequences, and the checker on supervisor SVA.
final class PASIDFlavourTests: XCTestCase {
    /// A VT-d testbed with a kernel shared WQ 0 for the flavours' ENQCMDS submissions.
    private func kernelSWQ() throws -> IDXDTestbed {
        let t = try IDXDTestbed()
        try t.dsa.configureWQ(0, mode: .shared, size: 8)
        try t.dsa.enableWQ(0, type: .kernel)
        t.dsa.clearTrace()
        return t
    }

    func testSupervisorSVAStaleTranslationIsReportedByTheChecker() throws {
        let t = try kernelSWQ()
        let kernel = try KernelAddressSpace(memory: t.machine.memory)
        let log = APICallLog()
        let sv = try SupervisorSVA.bind(t.pci, kernel: kernel, log: log)
        XCTAssertEqual(sv.domain.type, .kernelSVA)
        let buf = try kernel.vmalloc(pages: 3)
        try kernel.write(buf, Array("kernel VA data".utf8))
        // Supervisor SVA: the device's IOVAs are the kernel's virtual addresses.
        var d = IDXDDescriptor.memmove(from: IOVA(sva: buf), to: IOVA(sva: buf + 4096), count: 14,
                                       completion: IOVA(sva: buf + 8192))
        d.pasid = sv.pasid
        d.priv = true
        try t.dsa.enqcmds(d, wq: 0)
        XCTAssertEqual(t.dsa.completions.last?.record.status, .success)
        XCTAssertEqual(try kernel.read(buf + 4096, count: 14), Array("kernel VA data".utf8))
        XCTAssertEqual(t.violations, [])
        // Without priv the request is a user request on supervisor pages: refused.
        var user = d
        user.priv = false
        try t.dsa.enqcmds(user, wq: 0)
        XCTAssertEqual(t.dsa.completions.last?.recordWritten, false)

        // The kernel moves the destination page (vfree + vmalloc at the same VA):
        // flush_tlb_kernel_range flushes the CPU only.
        let (old, new) = try kernel.remapVmallocPage(buf + 4096)
        XCTAssertEqual(kernel.cpuTLBFlushes, 1)
        try t.dsa.enqcmds(d, wq: 0)
        let stale = t.violations.filter { $0.invariant == .coherenceAfterUnmap && $0.address == IOVA(sva: buf + 4096) }
        XCTAssertFalse(stale.isEmpty, "the checker flags the stale translation")
        XCTAssertTrue(stale.contains { $0.message.contains("\(old)") && $0.message.contains("\(new)") })
        XCTAssertEqual(stale.first?.pasid, sv.pasid)
        XCTAssertNotEqual(try kernel.read(buf + 4096, count: 14), Array("kernel VA data".utf8), "the copy went to the old frame")

        // The explicit flush the proposal lacked makes the change visible.
        t.machine.checker.clear()
        sv.flush(log: log)
        try t.dsa.enqcmds(d, wq: 0)
        XCTAssertEqual(t.violations, [])
        XCTAssertEqual(try kernel.read(buf + 4096, count: 14), Array("kernel VA data".utf8))
        sv.unbind(log: log)
        XCTAssertEqual(log.calls, ["iommu_alloc_global_pasid", "domain_alloc_sva(init_mm, SVM_FLAG_SUPERVISOR_MODE)",
                                   "iommu_attach_device_pasid", "iommu_flush_iotlb_all", "iommu_detach_device_pasid",
                                   "iommu_domain_free", "iommu_free_global_pasid"])
        try kernel.vfree(buf)
        XCTAssertEqual(t.machine.warnings, [])
    }

    func testSupervisorSVAErrnos() throws {
        // A vendor without the variant: EOPNOTSUPP, nothing allocated.
        let m = try IDXDTestbed(mock: MockIOMMUDriver())
        let kernel = try KernelAddressSpace(memory: m.machine.memory)
        let next = try m.iommu.allocGlobalPasid(for: m.pci)
        m.iommu.freeGlobalPasid(next)
        assertErrno(.notSupported) { try SupervisorSVA.bind(m.pci, kernel: kernel) }
        XCTAssertEqual(try m.iommu.allocGlobalPasid(for: m.pci), next)
        // A function without PASID Privileged Mode could never send a supervisor request.
        let noPriv = try IDXDTestbed(privilegedMode: false)
        let k2 = try KernelAddressSpace(memory: noPriv.machine.memory)
        assertErrno(.invalidArgument) { try SupervisorSVA.bind(noPriv.pci, kernel: k2) }
        XCTAssertEqual(noPriv.pci.group?.pasidArray.count, 1, "only the kernel PASID")
        // Kernel address space errnos.
        assertErrno(.invalidArgument) { try kernel.vmalloc(pages: 0) }
        assertErrno(.invalidArgument) { try kernel.remapVmallocPage(KernelAddressSpace.vmallocBase) }
        assertErrno(.invalidArgument) { try kernel.vfree(KernelAddressSpace.vmallocBase) }
        assertErrno(.badAddress) { try kernel.read(KernelAddressSpace.vmallocBase, count: 1) }
        let pa = try m.machine.memory.allocContiguous(bytes: 4096)
        let va = try kernel.mapDirect(pa, bytes: 4096)
        XCTAssertEqual(va, KernelAddressSpace.directMapAddress(of: pa))
        assertErrno(.exists) { try kernel.mapDirect(pa, bytes: 4096) }
        assertErrno(.invalidArgument) { try kernel.mapDirect(pa + 1, bytes: 4096) }
    }

    func testKernelPASIDFlavourCallSequenceAndUnmapInvalidatesRIDAndPasid() throws {
        let t = try kernelSWQ()
        let log = APICallLog()
        let kp = try KernelPASID.attach(t.pci, log: log)
        XCTAssertTrue(kp.domain === t.pci.group?.defaultDomain)
        XCTAssertNotEqual(kp.pasid, t.dsa.kernelPasid)
        let src = try t.kernelBuffer(Array("abc".utf8)), dst = try t.kernelBuffer(), cr = try t.kernelBuffer()
        var d = IDXDDescriptor.memmove(from: src.iova, to: dst.iova, count: 3, completion: cr.iova)
        d.pasid = kp.pasid
        try t.dsa.enqcmds(d, wq: 0)
        _ = try t.pci.dmaRead(at: dst.iova, count: 3)
        XCTAssertEqual(try t.machine.memory.bytes(at: dst.pa, count: 3), Array("abc".utf8))
        try t.iommu.dmaUnmapPage(t.pci, dmaAddress: dst.iova, size: 4096)
        // Both the RID and the PASID lost the translation.
        XCTAssertThrowsError(try t.pci.dmaRead(at: dst.iova, count: 3))
        XCTAssertThrowsError(try t.pci.dmaRead(at: dst.iova, count: 3, pasid: kp.pasid))
        kp.detach(log: log)
        XCTAssertEqual(log.calls, ["iommu_get_domain_for_dev", "iommu_alloc_global_pasid", "iommu_attach_device_pasid",
                                   "iommu_detach_device_pasid", "iommu_free_global_pasid"])
        XCTAssertEqual(t.violations, [])
    }

    func testPrivatePASIDCallSequenceAndErrnos() throws {
        let t = try kernelSWQ()
        let log = APICallLog()
        let pp = PrivatePASIDs(log: log)
        let domain = try t.iommu.allocPagingDomain(for: t.pci, flags: [.pasid])
        // A DMA-API domain is not the caller's to hand out.
        let def = try XCTUnwrap(t.pci.group?.defaultDomain)
        assertErrno(.invalidArgument) { try pp.allocPrivatePasid(domain: def, dev: t.pci) }
        let pasid = try pp.allocPrivatePasid(domain: domain, dev: t.pci)
        XCTAssertEqual(pp.pasids, [pasid])
        let a = try t.machine.memory.allocContiguous(bytes: 4096)
        let b = try t.machine.memory.allocContiguous(bytes: 4096)
        try t.machine.memory.write(a, Array("private".utf8))
        try pp.map(pasid: pasid, iova: 0x4000_0000, paddr: a, size: 4096)
        try pp.map(pasid: pasid, iova: 0x4000_1000, paddr: b, size: 4096)
        assertErrno(.noEntry) { try pp.map(pasid: PASID(rawValue: pasid.rawValue + 100), iova: 0, paddr: a, size: 4096) }
        assertErrno(.exists) { try pp.map(pasid: pasid, iova: 0x4000_0000, paddr: b, size: 4096) }
        var d = IDXDDescriptor.memmove(from: 0x4000_0000, to: 0x4000_1000, count: 7, completion: 0x4000_1800)
        d.pasid = pasid
        try t.dsa.enqcmds(d, wq: 0)
        XCTAssertEqual(try t.machine.memory.bytes(at: b, count: 7), Array("private".utf8))
        // The private IOVA space is not the RID's.
        XCTAssertThrowsError(try t.pci.dmaRead(at: 0x4000_0000, count: 1))
        XCTAssertEqual(try pp.unmap(pasid: pasid, iova: 0x4000_1000, size: 4096), 4096)
        try t.dsa.enqcmds(d, wq: 0)
        XCTAssertEqual(t.dsa.completions.last?.record.status.code, .pageFault)
        assertErrno(.noEntry) { try pp.unmap(pasid: PASID(rawValue: pasid.rawValue + 100), iova: 0, size: 4096) }
        let other = try t.iommu.allocPagingDomain(for: t.pci, flags: [.pasid])
        assertErrno(.invalidArgument) { try pp.freePrivatePasid(domain: other, pasid: pasid) }
        XCTAssertEqual(pp.pasids, [pasid], "a refused free changes nothing")
        _ = try pp.unmap(pasid: pasid, iova: 0x4000_0000, size: 4096)
        try pp.freePrivatePasid(domain: domain, pasid: pasid)
        XCTAssertEqual(pp.pasids, [])
        t.iommu.freeDomain(domain)
        t.iommu.freeDomain(other)
        XCTAssertEqual(log.calls, ["iommu_alloc_global_pasid", "iommu_attach_device_pasid", "iommu_map", "iommu_map",
                                   "iommu_map", "iommu_unmap", "iommu_unmap",
                                   "iommu_detach_device_pasid", "iommu_free_global_pasid"])
        XCTAssertEqual(t.violations, [])
        XCTAssertEqual(t.machine.warnings, [])
    }

    func testUserSVAFlavourFollowsMunmapThroughTheNotifier() throws {
        let t = try IDXDTestbed()
        try t.dsa.configureWQ(0, mode: .shared, size: 8)
        try t.dsa.enableWQ(0, type: .user)
        let (p, va) = try t.process(50, bytes: Array("user".utf8))
        let ctx = try t.dsa.open(wq: 0, process: p)
        let portal = try ctx.mmap(from: p)
        let d = IDXDDescriptor.memmove(from: IOVA(sva: va), to: IOVA(sva: va + 4096), count: 4,
                                       completion: IOVA(sva: va + 8192))
        XCTAssertEqual(portal.enqcmd(d), .accepted)
        try p.munmap(address: va + 4096, length: 4096)
        try p.mmap(length: 4096, prot: [.read, .write], at: va + 4096, populate: true)
        XCTAssertEqual(portal.enqcmd(d), .accepted)
        XCTAssertEqual(try p.readMemory(address: va + 4096, count: 4), Array("user".utf8))
        ctx.close()
        // After unbind no DMA reaches the old mm.
        XCTAssertThrowsError(try t.pci.dmaRead(at: IOVA(sva: va), count: 4, pasid: ctx.wq.userPasids.first ?? p.enqcmdPasid))
        p.exit()
        XCTAssertEqual(t.violations, [])
    }

    func testFlavourTableSupervisorRowHasViolationsOthersNone() throws {
        let results = try PASIDFlavourComparison.runAll(makeRig: vtdRig)
        XCTAssertEqual(results.map(\.flavour), PASIDFlavour.allCases)
        for r in results {
            if r.flavour == .supervisorSVA {
                XCTAssertFalse(r.violations.isEmpty)
                XCTAssertFalse(r.copyAfterRemapVisible)
            } else {
                XCTAssertEqual(r.violations, [], "\(r.flavour)")
                XCTAssertTrue(r.copyAfterRemapVisible, "\(r.flavour)")
            }
            XCTAssertGreaterThan(r.callCount, 0)
            XCTAssertGreaterThan(r.walks, 0)
        }
        let user = try XCTUnwrap(results.first { $0.flavour == .userSVA })
        XCTAssertEqual(user.calls.map(\.description), ["iommu_sva_bind_device", "IDXD_CMD_DRAIN_PASID", "iommu_sva_unbind_device"])
    }
}
