import XCTest
import IOMMUCore
@testable import IOMMUDrivers

/// The SMMUv2 hardware model programmed register by register, without the driver:
/// stream matching, the context bank's two ranges, the fault syndrome, stall and
/// RESUME, the TLB and its maintenance.
final class SMMUv2HardwareTests: XCTestCase {
    private let k4: UInt64 = 4096

    func testOutOfResetEveryStreamBypasses() throws {
        let hw = try SMMUv2Hardware(memory: PhysicalMemory(size: 1 << 30))
        XCTAssertEqual(translated(hw.translate(TranslationRequest(rid: RID(raw: 7), pasid: nil, privileged: false,
                                                                  access: .read, address: 0x1234))), 0x1234,
                       "sCR0.CLIENTPD is set at reset")
    }

    func testStreamMatchingRoutesByIDAndMaskAndFaultsUnmatchedOrConflictingStreams() throws {
        let s = try RawSMMUv2()
        s.route(0, id: 0x100, mask: 0x3, type: SMMUv2Field.s2crTypeBypass)
        XCTAssertEqual(translated(s.read(0x102, 0x5000)), 0x5000, "0x102 matches 0x100 under mask 3")
        XCTAssertEqual(faultReason(s.read(0x104, 0x5000)), SMMUv2Fault.unidentifiedStream, "USFCFG: unmatched faults")
        XCTAssertEqual(s.hw.read32(.global0, SMMUv2Reg.sGFSR), SMMUv2Field.gfsrUSF)
        XCTAssertEqual(s.hw.read32(.global0, SMMUv2Reg.sGFSYNR1), 0x104, "the stream ID")
        s.route(1, id: 0x101, type: SMMUv2Field.s2crTypeFault)
        XCTAssertEqual(faultReason(s.read(0x101, 0)), SMMUv2Fault.streamMatchConflict, "two SMRs match 0x101")
        XCTAssertEqual(s.hw.read32(.global0, SMMUv2Reg.sGFSR), SMMUv2Field.gfsrUSF | SMMUv2Field.gfsrMULTI,
                       "a second global fault while one is held sets MULTI")
        s.hw.write32(.global0, SMMUv2Reg.smr(0), 0)
        XCTAssertEqual(faultReason(s.read(0x101, 0)), SMMUv2Fault.invalidContext, "S2CR type fault")
        XCTAssertEqual(s.hw.takeInterrupts().global, true)
    }

    func testLowerAndUpperRangesWalkTheirOwnTablesUnderOneASID() throws {
        let s = try RawSMMUv2()
        let (lower, upper) = (try s.table(upper: false), try s.table(upper: true))
        let (a, b) = (try s.frame([1]), try s.frame([2]))
        let high: IOVA = 0xFFFF_8000_0000_0000
        try lower.map(iova: 0x10_0000, paddr: a, size: k4, prot: [.read, .write])
        try upper.map(iova: high, paddr: b, size: k4, prot: [.read])
        s.route(0, id: 5)
        s.context(0, lower: lower, upper: upper, asid: 9)
        XCTAssertEqual(translated(s.read(5, 0x10_0010)), a + 0x10)
        XCTAssertEqual(translated(s.read(5, high + 8)), b + 8)
        XCTAssertEqual(faultReason(s.read(5, 0x0000_8000_0000_0000)), SMMUv2Fault.translation, "between the ranges")
        XCTAssertEqual(faultReason(s.read(5, high, write: true)), SMMUv2Fault.permission, "read-only leaf")
        XCTAssertTrue(s.hw.tlbHolds(contextBank: 0, asid: 9, address: 0x10_0000))
        XCTAssertTrue(s.hw.tlbHolds(contextBank: 0, asid: 9, address: high), "both ranges cached under the one ASID")
        // EPD0: the lower range is disabled; the cached entry still serves until invalidated.
        s.context(0, lower: nil, upper: upper, asid: 9)
        XCTAssertEqual(translated(s.read(5, 0x10_0000)), a, "a TLB hit needs no walk")
        s.hw.write32(.contextBank(0), SMMUv2Reg.tlbiASID, 9)
        s.hw.write32(.contextBank(0), SMMUv2Reg.tlbSync, 0)
        XCTAssertEqual(faultReason(s.read(5, 0x10_0000)), SMMUv2Fault.translation)
    }

    func testContextFaultSyndromeAndMulti() throws {
        let s = try RawSMMUv2()
        s.route(0, id: 0x42)
        s.context(3, lower: try s.table(upper: false), upper: nil, asid: 1)
        s.hw.write32(.global0, SMMUv2Reg.s2cr(0), 3)   // translate in bank 3
        XCTAssertEqual(faultReason(s.read(0x42, 0x7000, write: true)), SMMUv2Fault.translation)
        let page = SMMUv2Page.contextBank(3)
        XCTAssertEqual(s.hw.read32(page, SMMUv2Reg.fsr), SMMUv2Field.fsrTF)
        XCTAssertEqual(s.hw.read64(page, SMMUv2Reg.far), 0x7000)
        let syn = s.hw.read32(page, SMMUv2Reg.fsynr0)
        XCTAssertEqual(syn & SMMUv2Field.fsynr0WNR, SMMUv2Field.fsynr0WNR)
        XCTAssertEqual(syn >> SMMUv2Field.fsynr0S1CBNDXShift & 0xFF, 3)
        XCTAssertEqual(syn & SMMUv2Field.fsynr0PLVLMask, 0, "no level-0 table entry")
        XCTAssertEqual(s.hw.read32(.global1, SMMUv2Reg.cbfrsynra(3)), 0x42)
        XCTAssertEqual(s.hw.read32(page, SMMUv2Reg.fsynr1), 0x42)
        XCTAssertEqual(s.hw.takeInterrupts().contextBanks, [3], "SCTLR.CFIE raises the bank's interrupt")
        _ = s.read(0x42, 0x9000)
        XCTAssertEqual(s.hw.read32(page, SMMUv2Reg.fsr), SMMUv2Field.fsrTF | SMMUv2Field.fsrMULTI)
        XCTAssertEqual(s.hw.read64(page, SMMUv2Reg.far), 0x7000, "the held syndrome is not overwritten")
        s.hw.write32(page, SMMUv2Reg.fsr, SMMUv2Field.fsrTF | SMMUv2Field.fsrMULTI)
        XCTAssertEqual(s.hw.read32(page, SMMUv2Reg.fsr), 0, "write 1 to clear")
    }

    func testStallWaitsForResumeThenRetriesOrTerminates() throws {
        let s = try RawSMMUv2()
        let lower = try s.table(upper: false)
        s.route(0, id: 1)
        s.context(0, lower: lower, upper: nil, asid: 0, sctlr: SMMUv2Field.sctlrCFCFG | SMMUv2Field.sctlrHUPCF)
        let frame = try s.frame([7])
        try lower.map(iova: 0x2000, paddr: frame, size: k4, prot: [.read, .write])
        let r = faultReason(s.read(1, 0x1000))
        XCTAssertTrue(r.map(SMMUv2Fault.isStalled) ?? false, "\(String(describing: r))")
        XCTAssertEqual(s.hw.read32(.contextBank(0), SMMUv2Reg.fsr), SMMUv2Field.fsrTF | SMMUv2Field.fsrSS)
        XCTAssertEqual(s.hw.stalledTransaction(contextBank: 0)?.address, 0x1000)
        XCTAssertEqual(translated(s.read(1, 0x2000)), frame, "HUPCF: hits are served while one is stalled")
        XCTAssertNil(s.hw.takeResumeOutcome(streamID: 1), "still waiting")
        s.hw.write32(.contextBank(0), SMMUv2Reg.fsr, SMMUv2Field.fsrFault)
        XCTAssertEqual(s.hw.read32(.contextBank(0), SMMUv2Reg.fsr), SMMUv2Field.fsrSS, "FSR writes do not clear SS")
        s.hw.write32(.contextBank(0), SMMUv2Reg.resume, 0)
        XCTAssertEqual(s.hw.takeResumeOutcome(streamID: 1)?.1, .retried)
        XCTAssertEqual(s.hw.read32(.contextBank(0), SMMUv2Reg.fsr), 0)
        _ = s.read(1, 0x3000)
        s.hw.write32(.contextBank(0), SMMUv2Reg.resume, SMMUv2Field.resumeTerminate)
        XCTAssertEqual(s.hw.takeResumeOutcome(streamID: 1)?.1, .terminated)
        s.hw.write32(.contextBank(0), SMMUv2Reg.resume, SMMUv2Field.resumeTerminate)
        XCTAssertNil(s.hw.takeResumeOutcome(streamID: 1), "RESUME without a stalled transaction does nothing")
        // Without HUPCF everything behind a stalled transaction waits too.
        s.context(0, lower: lower, upper: nil, asid: 0, sctlr: SMMUv2Field.sctlrCFCFG)
        _ = s.read(1, 0x5000)
        XCTAssertEqual(faultReason(s.read(1, 0x2000)), SMMUv2Fault.blockedBehindStall)
    }

    func testTLBIsTaggedByContextBankAndASIDAndInvalidationCompletesAtSync() throws {
        let s = try RawSMMUv2()
        let t = try s.table(upper: false)
        let (a, b) = (try s.frame([1]), try s.frame([2]))
        try t.map(iova: 0x1000, paddr: a, size: k4, prot: [.read])
        s.route(0, id: 1, cb: 0)
        s.route(1, id: 2, cb: 1)
        s.context(0, lower: t, upper: nil, asid: 4)
        s.context(1, lower: t, upper: nil, asid: 4)
        XCTAssertEqual(translated(s.read(1, 0x1000)), a, "\(s.read(1, 0x1000))")
        XCTAssertEqual(translated(s.read(2, 0x1000)), a)
        var gather = IOTLBGather()
        XCTAssertEqual(t.unmap(iova: 0x1000, size: k4, gather: &gather), k4)
        try t.map(iova: 0x1000, paddr: b, size: k4, prot: [.read])
        s.hw.write64(.contextBank(0), SMMUv2Reg.tlbiVAL, 0x1 | 4 << 48)
        XCTAssertEqual(translated(s.read(1, 0x1000)), a, "posted, not complete before TLBSYNC")
        s.hw.write32(.contextBank(0), SMMUv2Reg.tlbSync, 0)
        XCTAssertEqual(translated(s.read(1, 0x1000)), b, "bank 0 re-walks after the sync")
        XCTAssertEqual(translated(s.read(2, 0x1000)), a, "bank 1's entry, same ASID, is untouched")
        s.hw.write32(.contextBank(1), SMMUv2Reg.tlbiASID, 5)
        s.hw.write32(.contextBank(1), SMMUv2Reg.tlbSync, 0)
        XCTAssertEqual(translated(s.read(2, 0x1000)), a, "another ASID's invalidation")
        s.hw.write32(.contextBank(1), SMMUv2Reg.tlbiAll, 0)
        s.hw.write32(.contextBank(1), SMMUv2Reg.tlbSync, 0)
        XCTAssertEqual(translated(s.read(2, 0x1000)), b)
        XCTAssertEqual(s.hw.tlbOperations.map(\.kind), [.tlbiVAL, .sync, .tlbiASID, .sync, .tlbiAll, .sync])
        XCTAssertEqual(s.hw.counters.invalidations["TLBIVAL"], 1)
    }

    func testAddressTranslationOperationWalksMemoryAndReportsFaultsInPAR() throws {
        let s = try RawSMMUv2()
        let t = try s.table(upper: false)
        let a = try s.frame()
        try t.map(iova: 0x4000, paddr: a, size: k4, prot: [.read])
        s.context(2, lower: t, upper: nil, asid: 0)
        s.hw.write64(.contextBank(2), SMMUv2Reg.ats1PR, 0x4000)
        XCTAssertEqual(s.hw.read64(.contextBank(2), SMMUv2Reg.par), a.rawValue)
        s.hw.write64(.contextBank(2), SMMUv2Reg.ats1PR, 0x8000)
        XCTAssertEqual(s.hw.read64(.contextBank(2), SMMUv2Reg.par), SMMUv2Field.parF | UInt64(SMMUv2Field.fsrTF))
        t.destroy()
        s.hw.write64(.contextBank(2), SMMUv2Reg.ats1PR, 0x4000)
        XCTAssertEqual(s.hw.read64(.contextBank(2), SMMUv2Reg.par), SMMUv2Field.parF | UInt64(SMMUv2Field.fsrEF),
                       "the walk would read a freed table page")
    }

    func testConfigurationIsCheckedAndReportedInTheIDRegisters() throws {
        XCTAssertThrowsError(try SMMUv2Hardware(memory: PhysicalMemory(size: 1 << 30),
                                                config: SMMUv2Configuration(contextBanks: 0)))
        XCTAssertThrowsError(try SMMUv2Hardware(memory: PhysicalMemory(size: 1 << 30),
                                                config: SMMUv2Configuration(inputBits: 47)))
        let c = SMMUv2Configuration(contextBanks: 8, streamMatchGroups: 16, streamIDBits: 10)
        XCTAssertEqual(c.id0 & 0xFF, 16)
        XCTAssertEqual(c.id0 >> 9 & 0xF, 10)
        XCTAssertEqual(c.id1 & 0xFF, 8)
        XCTAssertEqual(c.id2 >> 12 & 7, 0b101, "4K and 64K granules")
    }
}
