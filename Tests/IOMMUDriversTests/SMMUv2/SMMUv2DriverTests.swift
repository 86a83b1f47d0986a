import XCTest
import IOMMUConformance
import IOMMUCore
@testable import IOMMUDrivers

/// The arm-smmu driver over the SMMUv2 model: probe and stream mapping, context banks,
/// the TLB maintenance of unmap, the context-fault handler, and the Qualcomm
/// implementation (the GPU's bank 0, the TTBR1 split, `adreno_smmu_priv`).
final class SMMUv2DriverTests: XCTestCase {
    func testProbeTakesAnSMRPerStreamAndDefaultDomainRoutesToAContextBank() throws {
        let t = try SMMUv2Testbed()
        let dev = try t.device(1)
        XCTAssertEqual(t.unit.streamMappings.map(\.id), [dev.rid.raw])
        let domain = try XCTUnwrap(dev.group?.domain as? ARMSMMUv2Domain)
        XCTAssertEqual(domain.type, .dma)
        let cb = try XCTUnwrap(domain.context?.contextBank)
        XCTAssertEqual(t.unit.streamMappings.first?.type, SMMUv2Field.s2crTypeTranslate)
        XCTAssertEqual(t.unit.streamMappings.first?.contextBank, cb)
        XCTAssertEqual(domain.context?.asid, UInt16(cb), "arm-smmu's ASID is the bank's index")
        XCTAssertEqual(domain.geometry.apertureEnd, IOVA(rawValue: (1 << 48) - 1))
        // Identity and blocked domains rewrite the S2CR only.
        let owner = Box(0)
        try t.iommu.deviceClaimDMAOwner(dev, owner: owner)
        XCTAssertEqual(t.unit.streamMappings.first?.type, SMMUv2Field.s2crTypeFault, "blocking domain")
        t.iommu.deviceReleaseDMAOwner(dev)
        t.iommu.releaseDevice(dev)
        XCTAssertTrue(t.unit.streamMappings.isEmpty, "release gives the SMR back")
    }

    func testProbeRefusesStreamIDsTheUnitCannotMatchAndPartialOverlaps() throws {
        let t = try SMMUv2Testbed(config: SMMUv2Configuration(streamIDBits: 8))
        assertErrno(.invalidArgument, "stream ID beyond 8 bits") { try t.device(1, bus: 1) }
        let rid = RID(bus: 0, device: 2, function: 0)
        t.unit.describeMaster(rid, ARMSMMUv2FirmwareMaster(streamIDs: [ARMSMMUv2StreamID(0x10, mask: 0x3)]))
        try t.machine.addDevice(PCIDevice(rid: rid), behind: t.unit)
        let other = RID(bus: 0, device: 3, function: 0)
        t.unit.describeMaster(other, ARMSMMUv2FirmwareMaster(streamIDs: [ARMSMMUv2StreamID(0x12, mask: 0x4)]))
        assertErrno(.invalidArgument, "0x12/4 overlaps 0x10/3 in part") {
            try t.machine.addDevice(PCIDevice(rid: other), behind: t.unit)
        }
    }

    func testContextBanksRunOutWithENOSPCAndComeBackWhenDomainsAreFreed() throws {
        let t = try SMMUv2Testbed(config: SMMUv2Configuration(contextBanks: 2))
        let a = try t.device(1)
        let b = try t.device(2)
        XCTAssertEqual(t.unit.allocatedContextBanks.count, 2, "two default domains")
        assertErrno(.noSpace, "no bank left for the third device's default domain") { try t.device(3) }
        let d = try t.paging(a)
        assertErrno(.noSpace) { try t.iommu.map(d, iova: 0x1000, paddr: 0x10_0000, size: 4096, prot: [.read]) }
        t.iommu.freeDomain(d)
        XCTAssertEqual(t.unit.allocatedContextBanks.count, 2)
        _ = b
    }

    func testUnmapInvalidatesEachLeafAndSyncsAtIOTLBSync() throws {
        let t = try SMMUv2Testbed()
        let dev = try t.device(1)
        let domain = try t.paging(dev)
        try t.iommu.attachDevice(domain, to: dev)
        let buf = try t.buffer([0xab])
        try t.iommu.map(domain, iova: 0x20_0000, paddr: buf, size: 4096, prot: [.read])
        XCTAssertEqual(try dev.dmaRead(at: 0x20_0000, count: 1), [0xab])
        t.hw { $0.clearTLBOperations() }
        var gather = IOTLBGather()
        XCTAssertEqual(t.iommu.unmapFast(domain, iova: 0x20_0000, size: 4096, gather: &gather), 4096)
        let cb = try XCTUnwrap(domain.context?.contextBank)
        XCTAssertEqual(t.hw { $0.tlbOperations }, [SMMUv2TLBOperation(kind: .tlbiVAL, contextBank: cb, asid: UInt16(cb),
                                                                     address: 0x20_0000)])
        XCTAssertEqual(try dev.dmaRead(at: 0x20_0000, count: 1), [0xab], "TLBIVAL posted, not yet synced")
        t.iommu.iotlbSync(domain, gather: &gather)
        XCTAssertEqual(t.hw { $0.tlbOperations.last?.kind }, .sync)
        XCTAssertThrowsError(try dev.dmaRead(at: 0x20_0000, count: 1))
        assertNoViolations(t.machine)
        t.iommu.flushIOTLBAll(domain)
        XCTAssertEqual(t.hw { $0.tlbOperations.suffix(2).map(\.kind) }, [.tlbiASID, .sync], "flush_iotlb_all")
    }

    func testIovaToPhysIsTheHardwareTranslationOperation() throws {
        let t = try SMMUv2Testbed()
        let dev = try t.device(1)
        let domain = try t.paging(dev)
        XCTAssertEqual(t.iommu.iovaToPhys(domain, iova: 0x1000), 0, "not finalised")
        let buf = try t.buffer()
        try t.iommu.map(domain, iova: 0x1000, paddr: buf, size: 4096, prot: [.read])
        XCTAssertEqual(t.iommu.iovaToPhys(domain, iova: 0x1234), buf + 0x234)
        XCTAssertEqual(t.iommu.iovaToPhys(domain, iova: 0x2000), 0)
        XCTAssertEqual(t.hw { $0.counters.walks }, 0, "the operation walks without using the TLB or counting a walk")
    }

    func testSetPgtableQuirksOnlyBeforeTheDomainIsFinalised() throws {
        let t = try SMMUv2Testbed()
        let dev = try t.device(1)
        let domain = try t.paging(dev)
        try t.iommu.setPgtableQuirks(domain, [.armOuterWBWA])
        try t.iommu.attachDevice(domain, to: dev)
        XCTAssertEqual(domain.ioPgtable?.cfg.quirks, [.armOuterWBWA])
        assertErrno(.notPermitted) { try t.iommu.setPgtableQuirks(domain, []) }
        assertErrno(.invalidArgument, "not UNMANAGED") { try t.iommu.setPgtableQuirks(dev.group!.defaultDomain!, []) }
        t.iommu.detachDevice(domain, from: dev)
        t.iommu.freeDomain(domain)
    }

    func testContextFaultIsReportedToTheDomainHandlerAndUnhandledOnesAreKept() throws {
        let t = try SMMUv2Testbed()
        let dev = try t.device(1)
        let domain = try t.paging(dev)
        try t.iommu.attachDevice(domain, to: dev)
        XCTAssertThrowsError(try dev.dmaRead(at: 0x5000, count: 4))
        XCTAssertEqual(t.unit.handleInterrupts(), 1)
        XCTAssertEqual(t.unit.unhandledContextFaults.map(\.iova), [0x5000], "report_iommu_fault: ENOSYS")
        let seen = Box<[IOVA]>([])
        t.iommu.setFaultHandler(domain) { d, _, iova, direction throws(Errno) in
            XCTAssertTrue(d === domain)
            XCTAssertEqual(direction, .write)
            seen.value.append(iova)
        }
        XCTAssertThrowsError(try dev.dmaWrite(at: 0x7000, bytes: [1]))
        t.unit.handleInterrupts()
        XCTAssertEqual(seen.value, [0x7000])
        XCTAssertEqual(t.hw { $0.read32(.contextBank(domain.context!.contextBank), SMMUv2Reg.fsr) }, 0,
                       "the handler clears the FSR")
        XCTAssertEqual(t.unit.handleInterrupts(), 0, "nothing pending")
        t.iommu.detachDevice(domain, from: dev)
        t.iommu.freeDomain(domain)
    }

    func testStalledTransactionIsResumedByTheHandlersAnswer() throws {
        let t = try SMMUv2Testbed(qualcomm: true)
        let gpu = try t.gpu()
        let domain = try t.paging(gpu)
        try t.iommu.attachDevice(domain, to: gpu)
        let priv = try XCTUnwrap(AdrenoSMMUPriv.of(gpu))
        priv.setStall(domain, true)
        let sctlr = t.hw { $0.read32(.contextBank(0), SMMUv2Reg.sctlr) }
        XCTAssertEqual(sctlr & (SMMUv2Field.sctlrCFCFG | SMMUv2Field.sctlrHUPCF),
                       SMMUv2Field.sctlrCFCFG | SMMUv2Field.sctlrHUPCF)
        let va = domain.geometry.apertureStart + 0x10_0000
        t.iommu.setFaultHandler(domain) { _, _, _, _ throws(Errno) in throw .tryAgain }
        XCTAssertThrowsError(try gpu.dmaRead(at: va, count: 4))
        t.unit.handleInterrupts()
        XCTAssertEqual(t.hw { $0.takeResumeOutcome(streamID: 0)?.1 }, .retried, "EAGAIN: retry")
        t.iommu.setFaultHandler(domain) { _, _, _, _ throws(Errno) in }
        XCTAssertThrowsError(try gpu.dmaRead(at: va, count: 4))
        t.unit.handleInterrupts()
        XCTAssertEqual(t.hw { $0.takeResumeOutcome(streamID: 0)?.1 }, .terminated, "handled: terminate")
    }

    func testQualcommGivesTheGPUBankZeroTheTTBR1SplitAndIdentityByDefault() throws {
        let t = try SMMUv2Testbed(qualcomm: true)
        let gpu = try t.gpu()
        XCTAssertEqual(gpu.group?.domain?.type, .identity, "qcom,adreno defaults to identity")
        let other = try t.device(1)
        XCTAssertEqual((other.group?.domain as? ARMSMMUv2Domain)?.context?.contextBank, 1, "others start at 1")
        let domain = try t.paging(gpu)
        try t.iommu.attachDevice(domain, to: gpu)
        XCTAssertEqual(domain.context?.contextBank, 0)
        XCTAssertEqual(domain.context?.flushWalkPreferTLBIASID, true)
        XCTAssertEqual(domain.geometry.apertureStart, IOVA(rawValue: ~UInt64(0) << 48), "the TTBR1 range")
        let copy = try XCTUnwrap(t.unit.contextBankCopy(0))
        XCTAssertNotEqual(copy.tcr & SMMUv2Field.tcrEPD0, 0, "TTBR0 walks disabled")
        XCTAssertEqual(copy.tcr & SMMUv2Field.tcrEPD1, 0)
        XCTAssertEqual(copy.ttbr1 & SMMUv2Field.ttbrAddressMask, domain.ioPgtable?.cfg.ttbr.rawValue)
        XCTAssertTrue(AdrenoSMMUPriv.of(gpu)?.cookie === domain)
        XCTAssertNil(AdrenoSMMUPriv.of(other)?.cookie, "only the GPU's interface is filled")
        // A second GPU domain finds bank 0 taken.
        let second = try t.paging(gpu)
        t.iommu.detachDevice(domain, from: gpu)
        assertErrno(.noSpace) {
            try t.iommu.map(second, iova: IOVA(rawValue: ~UInt64(0) << 48), paddr: 0x10_0000, size: 4096, prot: [.read])
        }
        t.iommu.freeDomain(domain)
        t.iommu.freeDomain(second)
    }

    func testUnmapOfATableThatEmptiesFlushesTheWalkWithTLBIASIDOnQualcomm() throws {
        let t = try SMMUv2Testbed(qualcomm: true)
        let dev = try t.device(1)
        let domain = try t.paging(dev)
        try t.iommu.attachDevice(domain, to: dev)
        let table = try XCTUnwrap(domain.ioPgtable)
        // A PA aligned to 1 MiB only makes iommu_map fill the 2 MiB span with 4 KiB
        // pages, all in one last-level table.
        try t.iommu.map(domain, iova: 0x40_0000, paddr: 0x10_0000, size: 0x20_0000, prot: [.read])
        t.hw { $0.clearTLBOperations() }
        var gather: IOTLBGather? = IOTLBGather()
        // One page: the table stays linked (io-pgtable-arm frees a table only when one
        // unmap removes its whole span), so only the leaf is invalidated.
        XCTAssertEqual(table.unmapPages(iova: 0x40_0000, pgsize: 4096, pgcount: 1, gather: &gather), 4096)
        XCTAssertEqual(t.hw { $0.tlbOperations.map(\.kind) }, [.tlbiVAL])
        XCTAssertEqual(gather?.freelist.count, 0)
        // The whole span: the table is unlinked, the walk is flushed by ASID on this SoC
        // before anything else, and the table waits on the gather for iotlb_sync.
        try t.iommu.map(domain, iova: 0x40_0000, paddr: 0x10_0000, size: 4096, prot: [.read])
        t.hw { $0.clearTLBOperations() }
        XCTAssertEqual(table.unmapPages(iova: 0x40_0000, pgsize: 4096, pgcount: 512, gather: &gather), 0x20_0000)
        let kinds = t.hw { $0.tlbOperations.map(\.kind) }
        XCTAssertEqual(Array(kinds.prefix(2)), [.tlbiASID, .sync],
                       "flush_walk_prefer_tlbiasid: the unlinked table is flushed by ASID, then freed")
        XCTAssertEqual(kinds.dropFirst(2).filter { $0 == .tlbiVAL }.count, 512, "each leaf still goes to tlb_add_page")
        XCTAssertEqual(gather?.freelist.count, 1)
        gather?.releaseFreelist(to: table.table.memory)
    }
}

/// A mutable box for closures that must be `Sendable`.
final class Box<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}
