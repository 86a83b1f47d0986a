import IOMMUConformance
import XCTest
import DriverShims
import IOMMUCore
import IOMMUDrivers

/// The idxd driver (drivers/dma/idxd) on the IOMMU: its kernel PASID on the default
/// domain, user work queues with SVA, and their teardown.
final class IDXDChecksTests: XCTestCase {
    func testCheck75ProbeAttachesKernelPasidToDefaultDomainAndRIDAndPasidReachSamePA() throws {
        let t = try IDXDTestbed()
        let pasid = try XCTUnwrap(t.dsa.kernelPasid)
        XCTAssertGreaterThanOrEqual(pasid, 1)
        let group = try XCTUnwrap(t.pci.group)
        XCTAssertTrue(group.pasidArray[pasid]?.domain === group.defaultDomain)
        XCTAssertEqual(t.dsa.trace.compactMap(\.iommuCall),
                       ["iommu_device_use_default_domain", "iommu_get_domain_for_dev", "iommu_alloc_global_pasid",
                        "iommu_attach_device_pasid"])
        // Through the device: one WQ on the RID, one with the kernel PASID, same IOVA.
        try t.dsa.configureWQ(0, mode: .dedicated, pasid: false)
        try t.dsa.enableWQ(0, type: .kernel)
        try t.dsa.configureWQ(1, mode: .dedicated)
        try t.dsa.enableWQ(1, type: .kernel)
        let src = try t.kernelBuffer(Array("same bytes".utf8)), dst = try t.kernelBuffer(), cr = try t.kernelBuffer()
        try t.dsa.submitKernel(.memmove(from: src.iova, to: dst.iova, count: 10, completion: cr.iova), wq: 0)
        try t.dsa.submitKernel(.memmove(from: src.iova, to: dst.iova + 100, count: 10, completion: cr.iova + 32), wq: 1)
        let c = t.dsa.completions
        XCTAssertEqual(c.map(\.pasid), [nil, pasid])
        XCTAssertEqual(c.map(\.record.status), [.success, .success])
        XCTAssertEqual(try t.machine.memory.bytes(at: dst.pa, count: 10), Array("same bytes".utf8))
        XCTAssertEqual(try t.machine.memory.bytes(at: dst.pa + 100, count: 10), Array("same bytes".utf8))
        // And raw DMA: RID and PASID translate the same IOVA to the same bytes.
        XCTAssertEqual(try t.pci.dmaRead(at: src.iova, count: 10), try t.pci.dmaRead(at: src.iova, count: 10, pasid: pasid))
        XCTAssertEqual(t.violations, [])
    }

    func testCheck76KernelPasidAttachFailureFailsKernelSWQAndDWQRunsOnTheRID() throws {
        // A driver whose blocked domain cannot remove PASIDs: iommu_attach_device_pasid
        // refuses with EOPNOTSUPP, so probe continues without a kernel PASID.
        let t = try IDXDTestbed(mock: MockIOMMUDriver(blockedDomainSetsPasid: false))
        XCTAssertNil(t.dsa.kernelPasid)
        XCTAssertTrue(t.dsa.trace.contains { if case .message(let m) = $0 { m.hasPrefix("No in-kernel DMA with PASID") } else { false } })
        XCTAssertTrue(t.dsa.trace.contains(.iommu("iommu_free_global_pasid pasid 1")))
        try t.dsa.configureWQ(0, mode: .shared, size: 8)
        assertErrno(.noSuchDeviceOrAddress) { try t.dsa.enableWQ(0, type: .kernel) }
        XCTAssertEqual(t.dsa.commandStatus, .wqNoSVM)
        XCTAssertFalse(t.dsa.workQueues[0].isEnabled)
        XCTAssertEqual(t.dsa.workQueues[0].type, .none)
        try t.dsa.configureWQ(1, mode: .dedicated)
        try t.dsa.enableWQ(1, type: .kernel)
        XCTAssertFalse(t.dsa.workQueues[1].config.pasidEnabled)
        let src = try t.kernelBuffer(Array("via the RID".utf8)), dst = try t.kernelBuffer(), cr = try t.kernelBuffer()
        try t.dsa.submitKernel(.memmove(from: src.iova, to: dst.iova, count: 11, completion: cr.iova), wq: 1)
        XCTAssertEqual(t.dsa.completions.last?.pasid, nil)
        XCTAssertEqual(t.dsa.completions.last?.record.status, .success)
        XCTAssertEqual(try t.machine.memory.bytes(at: dst.pa, count: 11), Array("via the RID".utf8))
        // User SVA is still allowed.
        XCTAssertTrue(t.dsa.userPasidEnabled)
    }

    func testCheck77UserWQEnableWithUserPasidDisabledIsEOPNOTSUPP() throws {
        let t = try IDXDTestbed(options: IDXDOptions(sva: false))
        XCTAssertFalse(t.dsa.userPasidEnabled)
        XCTAssertNil(t.dsa.kernelPasid)
        try t.dsa.configureWQ(0, mode: .dedicated)
        assertErrno(.notSupported) { try t.dsa.enableWQ(0, type: .user) }
        XCTAssertEqual(t.dsa.commandStatus, .wqUserNoIOMMU)
        XCTAssertFalse(t.dsa.workQueues[0].isEnabled)
        XCTAssertEqual(t.dsa.workQueues[0].type, .none)
        // A kernel DWQ still works (on the RID).
        try t.dsa.enableWQ(0, type: .kernel)
        XCTAssertTrue(t.dsa.workQueues[0].isEnabled)
    }

    func testCheck78SecondOpenOfDedicatedUserWQIsEBUSY() throws {
        let t = try IDXDTestbed()
        try t.dsa.configureWQ(0, mode: .dedicated)
        try t.dsa.enableWQ(0, type: .user)
        let (a, _) = try t.process(10)
        let (b, _) = try t.process(11)
        let ctx = try t.dsa.open(wq: 0, process: a)
        XCTAssertEqual(t.dsa.workQueues[0].config.pasid, ctx.userPasid)
        XCTAssertTrue(t.dsa.workQueues[0].config.pasidEnabled)
        let traceBefore = t.dsa.trace
        assertErrno(.busy) { try t.dsa.open(wq: 0, process: b) }
        assertErrno(.busy) { try t.dsa.open(wq: 0, process: a) }
        XCTAssertEqual(t.dsa.trace, traceBefore, "a refused open binds nothing")
        XCTAssertNil(b.enqcmdPasid)
        XCTAssertEqual(t.dsa.workQueues[0].openCount, 1)
        ctx.close()
        let again = try t.dsa.open(wq: 0, process: b)
        again.close()
        a.exit()
        b.exit()
        XCTAssertEqual(t.violations, [])
    }

    func testCheck79TwoProcessesGetDifferentPASIDsEachDescriptorCarriesItsPasidAndPriv0() throws {
        let t = try IDXDTestbed()
        try t.dsa.configureWQ(0, mode: .shared, size: 16, threshold: 8)
        try t.dsa.enableWQ(0, type: .user)
        let (a, aVA) = try t.process(20, bytes: Array("A-data".utf8))
        let (b, bVA) = try t.process(21, bytes: Array("B-data".utf8), skip: 8)
        let ctxA = try t.dsa.open(wq: 0, process: a), ctxB = try t.dsa.open(wq: 0, process: b)
        let pa = try XCTUnwrap(ctxA.userPasid), pb = try XCTUnwrap(ctxB.userPasid)
        XCTAssertNotEqual(pa, pb)
        XCTAssertEqual(pa, a.enqcmdPasid)
        XCTAssertEqual(pb, b.enqcmdPasid)
        XCTAssertEqual(Set(t.dsa.workQueues[0].userPasids), [pa, pb])
        let portalA = try ctxA.mmap(from: a), portalB = try ctxB.mmap(from: b)
        // Whatever the descriptor says, ENQCMD stamps the process's PASID and priv 0.
        var dA = IDXDDescriptor.memmove(from: IOVA(sva: aVA), to: IOVA(sva: aVA + 4096), count: 6, completion: IOVA(sva: aVA + 8192))
        dA.pasid = pb
        dA.priv = true
        XCTAssertEqual(portalA.enqcmd(dA), .accepted)
        XCTAssertEqual(portalB.enqcmd(.memmove(from: IOVA(sva: bVA), to: IOVA(sva: bVA + 4096), count: 6, completion: IOVA(sva: bVA + 8192))), .accepted)
        let c = t.dsa.completions
        XCTAssertEqual(c.map(\.pasid), [pa, pb])
        XCTAssertEqual(c.map(\.privileged), [false, false])
        XCTAssertEqual(c.map(\.record.status), [.success, .success])
        XCTAssertEqual(try a.readMemory(address: aVA + 4096, count: 6), Array("A-data".utf8))
        XCTAssertEqual(try b.readMemory(address: bVA + 4096, count: 6), Array("B-data".utf8))
        // A's descriptor aimed at B's buffer: not mapped in A, so it faults; B unchanged.
        XCTAssertEqual(portalA.enqcmd(.fill(IOVA(sva: bVA), pattern: 0x4141_4141_4141_4141, count: 6, completion: IOVA(sva: aVA + 8192))), .accepted)
        let steal = try XCTUnwrap(t.dsa.completions.last)
        XCTAssertEqual(steal.pasid, pa)
        XCTAssertEqual(steal.record.status.code, .pageFault)
        XCTAssertTrue(steal.record.status.faultedOnWrite)
        XCTAssertEqual(steal.record.faultAddress, IOVA(sva: bVA))
        XCTAssertEqual(try b.readMemory(address: bVA, count: 6), Array("B-data".utf8))
        let record = try XCTUnwrap(DSACompletionRecord(bytes: try a.readMemory(address: aVA + 8192, count: 32)))
        XCTAssertEqual(record, steal.record, "the fault record went to A's own memory")
        ctxA.close()
        ctxB.close()
        a.exit()
        b.exit()
        XCTAssertEqual(t.violations, [])
    }

    func testCheck80CloseDrainsThePasidBeforeSVAUnbind() throws {
        let t = try IDXDTestbed()
        try t.dsa.configureWQ(0, mode: .shared, size: 8)
        try t.dsa.enableWQ(0, type: .user)
        try t.dsa.configureWQ(1, mode: .dedicated)
        try t.dsa.enableWQ(1, type: .user)
        let (a, aVA) = try t.process(30, bytes: Array("queued".utf8))
        let (b, bVA) = try t.process(31, bytes: Array("queued".utf8))
        // Shared WQ: a descriptor still queued when the file closes is drained first.
        t.dsa.manualEngine = true
        let ctxA = try t.dsa.open(wq: 0, process: a)
        let pa = try XCTUnwrap(ctxA.userPasid)
        XCTAssertEqual(try ctxA.mmap(from: a).enqcmd(.memmove(from: IOVA(sva: aVA), to: IOVA(sva: aVA + 4096), count: 6, completion: IOVA(sva: aVA + 8192))), .accepted)
        XCTAssertEqual(t.dsa.workQueues[0].occupancy, 1)
        t.dsa.clearTrace()
        ctxA.close()
        XCTAssertEqual(t.dsa.trace, [.command(.drainPASID(pa)), .iommu("iommu_sva_unbind_device pasid \(pa)")])
        XCTAssertEqual(t.dsa.completions.map(\.record.status), [.success], "drained while the PASID was still bound")
        XCTAssertEqual(t.dsa.workQueues[0].occupancy, 0)
        // Dedicated WQ: the WQ PASID is disabled (disable drains, clear, enable) before unbind.
        let ctxB = try t.dsa.open(wq: 1, process: b)
        let pb = try XCTUnwrap(ctxB.userPasid)
        XCTAssertTrue(try ctxB.mmap(from: b).movdir64b(.memmove(from: IOVA(sva: bVA), to: IOVA(sva: bVA + 4096), count: 6, completion: IOVA(sva: bVA + 8192))))
        t.dsa.clearTrace()
        ctxB.close()
        XCTAssertEqual(t.dsa.trace, [.command(.disableWQ(1)), .command(.enableWQ(1)), .iommu("iommu_sva_unbind_device pasid \(pb)")])
        XCTAssertEqual(t.dsa.completions.map(\.pasid), [pb])
        XCTAssertFalse(t.dsa.workQueues[1].config.pasidEnabled)
        a.exit()
        b.exit()
        XCTAssertEqual(t.violations, [])
        XCTAssertEqual(t.machine.warnings, [])
    }

    func testCheck81OtherMMIsEPERMMisalignedCompletionIsEINVALUnsafeMmapNeedsCapSysRawIO() throws {
        let t = try IDXDTestbed()
        try t.dsa.configureWQ(0, mode: .shared, size: 8)
        try t.dsa.enableWQ(0, type: .user)
        let (a, aVA) = try t.process(40)
        let (b, _) = try t.process(41)
        let ctx = try t.dsa.open(wq: 0, process: a)
        assertErrno(.notPermitted) { try ctx.mmap(from: b) }
        assertErrno(.notPermitted) {
            try ctx.write([.memmove(from: IOVA(sva: aVA), to: IOVA(sva: aVA + 4096), count: 8, completion: IOVA(sva: aVA + 8192))], from: b)
        }
        assertErrno(.invalidArgument) {
            try ctx.write([.memmove(from: IOVA(sva: aVA), to: IOVA(sva: aVA + 4096), count: 8, completion: IOVA(sva: aVA + 8192 + 16))], from: a)
        }
        XCTAssertEqual(t.dsa.completions, [], "refused descriptors never reach the device")
        // A good write goes in with ctx->pasid and priv 0 (ENQCMDS by the kernel).
        var d = IDXDDescriptor.memmove(from: IOVA(sva: aVA), to: IOVA(sva: aVA + 4096), count: 8, completion: IOVA(sva: aVA + 8192))
        d.priv = true
        XCTAssertEqual(try ctx.write([d], from: a), 64)
        XCTAssertEqual(t.dsa.completions.last?.pasid, ctx.userPasid)
        XCTAssertEqual(t.dsa.completions.last?.privileged, false)
        ctx.close()

        // INTEL-SA-01084: on an unsafe device mmap needs CAP_SYS_RAWIO, BATCH is refused.
        let u = try IDXDTestbed(options: IDXDOptions(userSubmissionSafe: false))
        try u.dsa.configureWQ(0, mode: .shared, size: 8)
        try u.dsa.enableWQ(0, type: .user)
        let (c, cVA) = try u.process(42)
        let uctx = try u.dsa.open(wq: 0, process: c)
        assertErrno(.notPermitted) { try uctx.mmap(from: c) }
        XCTAssertNoThrow(try uctx.mmap(from: c, capSysRawIO: true))
        assertErrno(.invalidArgument) { try uctx.write([IDXDDescriptor(opcode: .batch, completionAddress: IOVA(sva: cVA))], from: c) }
        // IAA: 64-byte completion alignment.
        let i = try IDXDTestbed(options: IDXDOptions(kind: .iaa))
        try i.dsa.configureWQ(0, mode: .shared, size: 8)
        try i.dsa.enableWQ(0, type: .user)
        let (e, eVA) = try i.process(43)
        let ictx = try i.dsa.open(wq: 0, process: e)
        assertErrno(.invalidArgument) { try ictx.write([IDXDDescriptor(opcode: .noop, completionAddress: IOVA(sva: eVA + 32))], from: e) }
        XCTAssertEqual(try ictx.write([IDXDDescriptor(opcode: .noop, completionAddress: IOVA(sva: eVA + 64))], from: e), 64)
        uctx.close()
        ictx.close()
        for p in [a, b, c, e] { p.exit() }
    }

    func testCheck82RemoveDetachesAndFreesKernelPasidBeforeReleasingDMAOwnership() throws {
        let t = try IDXDTestbed()
        let pasid = try XCTUnwrap(t.dsa.kernelPasid)
        try t.dsa.configureWQ(0, mode: .dedicated)
        try t.dsa.enableWQ(0, type: .kernel)
        t.dsa.clearTrace()
        t.dsa.remove()
        let calls = t.dsa.trace.compactMap(\.iommuCall)
        XCTAssertEqual(calls, ["iommu_detach_device_pasid", "iommu_free_global_pasid", "iommu_device_unuse_default_domain"])
        XCTAssertEqual(t.machine.warnings, [], "no WARN in iommu_device_unuse_default_domain")
        XCTAssertEqual(t.pci.group?.pasidArray.isEmpty, true)
        XCTAssertEqual(t.pci.group?.ownerCount, 0)
        XCTAssertFalse(t.dsa.isBound)
        XCTAssertEqual(try t.iommu.allocGlobalPasid(for: t.pci), pasid, "the PASID went back to the allocator")
        // The group is free for another owner now.
        try t.iommu.deviceClaimDMAOwner(t.pci, owner: self)
        t.iommu.deviceReleaseDMAOwner(t.pci)
        t.dsa.remove()
        XCTAssertEqual(t.machine.warnings, [])
        XCTAssertEqual(t.violations, [])
    }
}
