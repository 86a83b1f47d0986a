import IOMMUConformance
import IOMMUCore
@testable import IOMMUDrivers
import XCTest

/// The SMMUv3 hardware model: entries in their real layout, the configuration cache that
/// only CFGI refreshes, the command, event and PRI queues in memory, the TLB tagged by
/// (VMID, ASID), the device ATC, two-level tables, and stalls.
final class SMMUv3HardwareTests: XCTestCase {
    // MARK: entries

    func testStage1AttachWritesTheRealSTEAndCDLayout() throws {
        let tb = try SMMUv3Testbed()
        let dev = try tb.device(1, ats: true, canStall: true)
        let domain = try tb.paging(dev)
        try tb.iommu.attachDevice(domain, to: dev)
        let ste = try tb.ste(dev)
        let table = try XCTUnwrap(tb.driver.master(dev)).cdTable
        // Word 0: V, Config S1_TRANS (5), S1Fmt, S1ContextPtr, S1CDMax 20.
        let word0: UInt64 = 1 | 5 << 1 | table.format << 4 | table.pointer.rawValue | 20 << 59
        XCTAssertEqual(ste.words[0], word0)
        XCTAssertEqual(table.format, SMMUv3CDTableConfig.twoLevel, "2^20 CDs need two levels")
        // Word 1: S1DSS SSID0 (2), S1CIR/S1COR WBRA, S1CSH inner shareable, EATS TRANS
        // (the master stalls, so S1STALLD stays clear).
        let word1: UInt64 = 2 | 1 << 2 | 1 << 4 | 3 << 6 | 1 << 28
        XCTAssertEqual(ste.words[1], word1)
        XCTAssertEqual(ste.words[2], 0, "S2VMID 0 for a stage-1 STE")
        let cd = try XCTUnwrap(tb.unit.cd(dev.rid, ssid: 0))
        XCTAssertTrue(cd.isValid)
        XCTAssertEqual(cd.asid, domain.asid)
        XCTAssertEqual(cd.ttb0, domain.pageTable?.root)
        XCTAssertTrue(cd.stalls, "S: the master stalls")
        XCTAssertEqual(cd.words[0] & (SMMUv3CD.aa64 | SMMUv3CD.epd1 | SMMUv3CD.record | SMMUv3CD.aset),
                       SMMUv3CD.aa64 | SMMUv3CD.epd1 | SMMUv3CD.record | SMMUv3CD.aset)
    }

    func testUnusedStreamTableEntriesAbort() throws {
        let tb = try SMMUv3Testbed(defaultDomainType: .identity)
        let dev = try tb.device(1)
        let sid = UInt32(dev.rid.raw) + 1
        let other = try XCTUnwrap(try? tb.smmu.fetchSTE(sid: sid).get(), "same bus: the leaf exists")
        XCTAssertEqual(other, .abort)
        XCTAssertEqual(tb.smmu.fetchSTE(sid: 0x0900), .failure(.badStreamID), "bus 9 has no leaf table")
    }

    // MARK: configuration cache

    /// An STE rewritten in memory without CFGI_STE is not seen: the SMMU keeps serving
    /// the cached one until the invalidation.
    func testConfigurationCacheKeepsTheOldSTEUntilCFGI() throws {
        let tb = try SMMUv3Testbed(defaultDomainType: .identity)
        let dev = try tb.device(1)
        let buf = try tb.buffer([0x5A])
        XCTAssertEqual(try dev.dmaRead(at: IOVA(identity: buf), count: 1), [0x5A], "bypass, now cached")
        let sid = UInt32(dev.rid.raw)
        let pa = try XCTUnwrap(tb.unit.steAddress(sid: sid))
        tb.unit.hardwareLock.withLock { SMMUv3STE.abort.store(tb.machine.memory, pa) }
        XCTAssertEqual(try dev.dmaRead(at: IOVA(identity: buf), count: 1), [0x5A], "still the cached bypass STE")
        tb.unit.issue([.cfgiSTE(sid: sid, leaf: true)], sync: true)
        XCTAssertThrowsError(try dev.dmaRead(at: IOVA(identity: buf), count: 1)) { error in
            XCTAssertEqual((error as? DMAFault)?.reason, SMMUv3Hardware.abortReason)
        }
    }

    /// A CD rewritten without CFGI_CD keeps its old ASID in the cache.
    func testConfigurationCacheKeepsTheOldCDUntilCFGICD() throws {
        let tb = try SMMUv3Testbed()
        let dev = try tb.device(1)
        let domain = try tb.paging(dev)
        let buf = try tb.buffer([7])
        try tb.iommu.map(domain, iova: 0x10_0000, paddr: buf, size: 4096, prot: [.read])
        try tb.iommu.attachDevicePasid(domain, to: dev, pasid: 9)
        XCTAssertEqual(try dev.dmaRead(at: 0x10_0000, count: 1, pasid: 9), [7])
        let sid = UInt32(dev.rid.raw)
        XCTAssertEqual(tb.smmu.cachedCDASID(sid: sid, ssid: 9), domain.asid)
        let master = try XCTUnwrap(tb.driver.master(dev))
        let pa = try XCTUnwrap(master.cdTable.cdAddress(9))
        tb.machine.memory.store64(pa, tb.machine.memory.load64(pa) & ~SMMUv3CD.valid)
        XCTAssertEqual(try dev.dmaRead(at: 0x10_0000, count: 1, pasid: 9), [7], "the cached CD still serves")
        tb.unit.issue([.cfgiCD(sid: sid, ssid: 9, leaf: true)], sync: true)
        XCTAssertNil(tb.smmu.cachedCDASID(sid: sid, ssid: 9))
        XCTAssertThrowsError(try dev.dmaRead(at: 0x10_0000, count: 1, pasid: 9)) { error in
            XCTAssertEqual((error as? DMAFault)?.reason, SMMUv3Event.ID.badCD.reason)
        }
    }

    // MARK: command queue

    /// The queue wraps (CONS follows PROD with the wrap bit), CMD_SYNC completes, and an
    /// unknown opcode stops the queue with CERROR_ILL and GERROR.CMDQ_ERR until the
    /// driver replaces it and acknowledges.
    func testCommandQueueWrapsAndStopsOnAnIllegalCommand() throws {
        let tb = try SMMUv3Testbed(configurations: [SMMUv3Configuration(commandQueueShift: 4)])
        let before = tb.smmu.executedCount(.prefetchConfig)
        for _ in 0..<5 { tb.unit.issue(Array(repeating: .prefetchConfig(sid: 1), count: 10), sync: true) }
        XCTAssertEqual(tb.smmu.executedCount(.prefetchConfig) - before, 50)
        XCTAssertEqual(tb.smmu.commandQueueConsumer, tb.smmu.commandQueueProducer)
        // Reset issued CFGI_ALL, TLBI_NSNH_ALL and CMD_SYNC; then 5 x (10 + CMD_SYNC).
        XCTAssertEqual(tb.smmu.commandQueueProducer & 0x1F, UInt32(3 + 55) & 0x1F, "index and wrap bit")
        let gerror = tb.smmu.globalError
        tb.unit.issue([SMMUv3Command(w0: 0x7F, w1: 0), .prefetchConfig(sid: 2)], sync: true)
        XCTAssertEqual(tb.smmu.globalError ^ gerror, 1, "CMDQ_ERR toggled")
        XCTAssertEqual(tb.smmu.commandQueueConsumer >> 24 & 0x7F, 0, "acknowledged")
        XCTAssertEqual(tb.smmu.executed.suffix(2).map(\.opcode), [.prefetchConfig, .sync], "the queue went on")
    }

    // MARK: event queue

    /// Faults are written to the event queue at PROD; a full queue drops records and
    /// toggles the overflow flag, which the driver acknowledges.
    func testEventQueueRecordsAndOverflows() throws {
        let tb = try SMMUv3Testbed(configurations: [SMMUv3Configuration(eventQueueShift: 2)])
        let dev = try tb.device(1)
        let domain = try tb.paging(dev)
        try tb.iommu.attachDevice(domain, to: dev)
        for i in 0..<6 { XCTAssertThrowsError(try dev.dmaRead(at: 0x10_0000 + UInt64(i) * 4096, count: 1)) }
        XCTAssertNotEqual(tb.smmu.eventQueueProducer & SMMUv3Hardware.queueOverflowFlag, 0)
        let (events, overflowed) = tb.smmu.drainEventQueue()
        XCTAssertTrue(overflowed)
        XCTAssertEqual(events.count, 4, "four records fit")
        XCTAssertEqual(events.map(\.id), Array(repeating: .translation, count: 4))
        XCTAssertEqual(events.map(\.address), (0..<4).map { 0x10_0000 + UInt64($0) * 4096 })
        XCTAssertEqual(events.first?.streamID, UInt32(dev.rid.raw))
        XCTAssertTrue(events.allSatisfy(\.read))
        XCTAssertFalse(tb.smmu.drainEventQueue().overflowed, "acknowledged")
    }

    /// Configuration errors have their own records: a SubstreamID on a stream without
    /// substreams, an invalid CD, TERMINATE for traffic without PASID.
    func testConfigurationEvents() throws {
        let tb = try SMMUv3Testbed(defaultDomainType: .identity)
        let plain = try tb.device(1)
        XCTAssertThrowsError(try plain.dmaRead(at: 0x1000, count: 1, pasid: 5))
        let dev = try tb.device(2)
        let domain = try tb.paging(dev)
        try tb.iommu.attachDevice(try XCTUnwrap(tb.driver.blockedDomain), to: dev)
        try tb.iommu.attachDevicePasid(domain, to: dev, pasid: 5)
        XCTAssertEqual(try tb.ste(dev).s1dss, .terminate)
        XCTAssertThrowsError(try dev.dmaRead(at: 0x1000, count: 1))
        XCTAssertThrowsError(try dev.dmaRead(at: 0x1000, count: 1, pasid: 6))
        let ids = tb.smmu.drainEventQueue().events.map(\.id)
        XCTAssertEqual(ids, [.badSubstreamID, .streamDisabled, .badCD])
    }

    // MARK: stream and CD tables

    func testLinearStreamTableAndLinearCDTable() throws {
        let cfg = SMMUv3Configuration(features: SMMUv3Configuration.fullFeatures.subtracting([.twoLevelStreamTable,
                                                                                               .twoLevelCDTable]),
                                      sidBits: 10)
        let tb = try SMMUv3Testbed(configurations: [cfg])
        XCTAssertEqual(tb.unit.maxPasids, 1024, "a linear CD table holds 1024 CDs")
        let dev = try tb.device(3, bus: 1)
        XCTAssertEqual(dev.maxPasids, 1024)
        let domain = try tb.paging(dev)
        try tb.iommu.map(domain, iova: 0x10_0000, paddr: try tb.buffer([3]), size: 4096, prot: [.read])
        try tb.iommu.attachDevicePasid(domain, to: dev, pasid: 1023)
        XCTAssertEqual(try tb.ste(dev).s1Fmt, SMMUv3CDTableConfig.linear)
        XCTAssertEqual(try dev.dmaRead(at: 0x10_0000, count: 1, pasid: 1023), [3])
        XCTAssertEqual(tb.unit.steAddress(sid: UInt32(dev.rid.raw)), tb.unit.streamTable + UInt64(dev.rid.raw) * 64)
        XCTAssertThrowsError(try tb.device(4, bus: 4), "StreamID 0x420 is beyond a 10-bit stream table") { error in
            XCTAssertEqual(error as? Errno, .outOfRange)
        }
    }

    /// A PASID beyond the first 1024 needs a second CD leaf: its level-1 descriptor is
    /// written, then a non-leaf CFGI_CD drops any cached invalid descriptor.
    func testTwoLevelCDTableAddsALeafWithANonLeafCFGI() throws {
        let tb = try SMMUv3Testbed()
        let dev = try tb.device(1)
        let domain = try tb.paging(dev)
        try tb.iommu.map(domain, iova: 0x10_0000, paddr: try tb.buffer([9]), size: 4096, prot: [.read])
        tb.unit.clearOperations()
        try tb.iommu.attachDevicePasid(domain, to: dev, pasid: 5000)
        let cfgi = tb.unit.operations.flatMap { op -> [SMMUv3Command] in if case .commands(let c) = op { c } else { [] } }
            .filter { $0.opcode == .cfgiCD }
        XCTAssertEqual(cfgi.first?.substreamID, 5000)
        XCTAssertEqual(cfgi.first?.leaf, false, "the leaf's L1 descriptor is new")
        XCTAssertEqual(try dev.dmaRead(at: 0x10_0000, count: 1, pasid: 5000), [9])
        XCTAssertThrowsError(try dev.dmaRead(at: 0x10_0000, count: 1, pasid: 9000)) { error in
            XCTAssertEqual((error as? DMAFault)?.reason, SMMUv3Event.ID.badSubstreamID.reason, "no leaf for 9000")
        }
    }

    /// Two-level stream table: a StreamID whose bus has no leaf is C_BAD_STREAMID.
    func testTwoLevelStreamTableBadStreamID() throws {
        let tb = try SMMUv3Testbed()
        _ = try tb.device(1)
        let r = TranslationRequest(rid: RID(bus: 7, device: 0, function: 0), pasid: nil, privileged: false,
                                   access: .read, address: 0x1000)
        let result = tb.unit.hardwareLock.withLock { tb.smmu.translate(r) }
        XCTAssertEqual(result, .fault(SMMUv3Event.ID.badStreamID.reason))
        XCTAssertEqual(tb.smmu.drainEventQueue().events.first?.id, .badStreamID)
    }

    // MARK: TLB and ATC

    /// TLB entries are tagged by (VMID, ASID): TLBI_NH_ASID of one domain leaves the other
    /// domain's entry for the same address.
    func testTLBIsTaggedByASID() throws {
        let tb = try SMMUv3Testbed()
        let dev = try tb.device(1)
        let a = try tb.paging(dev)
        let b = try tb.paging(dev)
        try tb.iommu.map(a, iova: 0x10_0000, paddr: try tb.buffer([0xA]), size: 4096, prot: [.read])
        try tb.iommu.map(b, iova: 0x10_0000, paddr: try tb.buffer([0xB]), size: 4096, prot: [.read])
        try tb.iommu.attachDevicePasid(a, to: dev, pasid: 1)
        try tb.iommu.attachDevicePasid(b, to: dev, pasid: 2)
        XCTAssertEqual(try dev.dmaRead(at: 0x10_0000, count: 1, pasid: 1), [0xA])
        XCTAssertEqual(try dev.dmaRead(at: 0x10_0000, count: 1, pasid: 2), [0xB])
        tb.unit.issue([.tlbi(.tlbiNHASID, asid: a.asid, vmid: 0)], sync: true)
        XCTAssertFalse(tb.smmu.tlbHolds(vmid: 0, asid: a.asid))
        XCTAssertTrue(tb.smmu.tlbHolds(vmid: 0, asid: b.asid))
    }

    /// Hardware dirty state (CD.HD on a dirty-tracking domain): a read leaves a page
    /// clean even though its translation is cached, the first write after it marks the
    /// page dirty (AP[2] cleared in the leaf), and after read-and-clear the next write
    /// marks it again; a write to a read-only page still faults.
    func testHardwareDirtyStateFollowsWritesNotReads() throws {
        let tb = try SMMUv3Testbed()
        let dev = try tb.device(1)
        XCTAssertTrue(tb.driver.capable(dev, .dirtyTracking))
        let domain = try tb.paging(dev, flags: [.dirtyTracking])
        XCTAssertTrue(domain.ops.contains(.dirtyTracking))
        try tb.iommu.map(domain, iova: 0x10_0000, paddr: try tb.buffer(), size: 4096, prot: [.read, .write])
        try tb.iommu.map(domain, iova: 0x10_1000, paddr: try tb.buffer(), size: 4096, prot: [.read])
        try tb.iommu.attachDevice(domain, to: dev)
        XCTAssertNotEqual(try XCTUnwrap(tb.unit.cd(dev.rid, ssid: 0)).words[0] & SMMUv3CD.hd, 0, "CD.HD")
        try domain.setDirtyTracking(true)
        func dirty() throws -> [IOVA] {
            var pages: [IOVA] = []
            try domain.readAndClearDirty(iova: 0x10_0000, size: 0x2000, clear: true) { a, _ in pages.append(a) }
            return pages
        }
        _ = try dirty()  // writable leaves start dirty
        XCTAssertEqual(try dev.dmaRead(at: 0x10_0000, count: 1), [0])
        XCTAssertEqual(try dirty(), [], "a read leaves the page clean")
        XCTAssertEqual(try dev.dmaRead(at: 0x10_0000, count: 1), [0], "now cached")
        try dev.dmaWrite(at: 0x10_0000, bytes: [1])
        XCTAssertEqual(try dirty(), [0x10_0000], "the write after a cached read is seen")
        try dev.dmaWrite(at: 0x10_0008, bytes: [2])
        XCTAssertEqual(try dirty(), [0x10_0000], "and again after the clear")
        XCTAssertThrowsError(try dev.dmaWrite(at: 0x10_1000, bytes: [3]), "read-only stays read-only")
        assertErrno(.invalidArgument) { try tb.paging(dev).setDirtyTracking(true) }
    }

    /// An unmap reaches the device's ATC through ATC_INV; without SSV it drops every
    /// PASID's entries in the range, as an ATS invalidation without PASID does.
    func testATCInvalidation() throws {
        let tb = try SMMUv3Testbed()
        let dev = try tb.device(1, ats: true)
        let domain = try tb.paging(dev)
        let buf = try tb.buffer([0xC])
        try tb.iommu.map(domain, iova: 0x10_0000, paddr: buf, size: 4096, prot: [.read])
        try tb.iommu.attachDevicePasid(domain, to: dev, pasid: 3)
        XCTAssertTrue(dev.atsEnabled)
        XCTAssertEqual(try dev.dmaRead(at: 0x10_0000, count: 1, pasid: 3), [0xC])
        XCTAssertEqual(dev.atc?.count, 1)
        tb.unit.issue([.atcInvalidate(sid: UInt32(dev.rid.raw), ssid: 0, address: 0x10_0000, size: 0)], sync: true)
        XCTAssertEqual(dev.atc?.count, 0, "no SSV: every PASID's entry in the range")
        XCTAssertEqual(try dev.dmaRead(at: 0x10_0000, count: 1, pasid: 3), [0xC])
        _ = tb.iommu.unmap(domain, iova: 0x10_0000, size: 4096)
        XCTAssertEqual(dev.atc?.count, 0)
        XCTAssertThrowsError(try dev.dmaRead(at: 0x10_0000, count: 1, pasid: 3))
        assertNoViolations(tb.machine)
    }

    // MARK: stalls and faults

    /// A stall holds the transaction; the driver reports it to the core, which has no
    /// handler for a paging domain attached without one and answers INVALID: the driver
    /// sends RESUME with abort.
    func testStallWithoutHandlerIsResumedWithAbort() throws {
        let tb = try SMMUv3Testbed()
        let dev = try tb.device(1, canStall: true)
        let domain = try tb.paging(dev)
        try tb.iommu.attachDevice(domain, to: dev)
        XCTAssertThrowsError(try dev.dmaRead(at: 0x10_0000, count: 1)) { error in
            XCTAssertEqual((error as? DMAFault)?.reason, SMMUv3Hardware.stalledReason)
        }
        XCTAssertEqual(tb.smmu.stalled.count, 1)
        tb.unit.processEventQueue()
        XCTAssertTrue(tb.smmu.stalled.isEmpty)
        XCTAssertEqual(tb.smmu.resumed.map(\.action), [.abort])
    }

    /// Stall to page request: a domain with a fault handler gets the stall as a
    /// one-request group (LAST_PAGE, group index = STAG); its success answer is a RESUME
    /// with retry, which translates the held transaction again.
    func testStallBecomesAPageFaultAndRetryTranslates() throws {
        let tb = try SMMUv3Testbed()
        let dev = try tb.device(1, canStall: true)
        let domain = try tb.paging(dev)
        let buf = try tb.buffer([0x77])
        let handler = MappingFaultHandler(iommu: tb.iommu, domain: domain, paddr: buf)
        domain.iopfHandler = handler
        try tb.iommu.attachDevicePasid(domain, to: dev, pasid: 4, handle: AttachHandle())
        XCTAssertEqual(tb.unit.iopfQueue?.attachedDevices.map(\.rid), [dev.rid])
        XCTAssertThrowsError(try dev.dmaRead(at: 0x50_0000, count: 1, pasid: 4))
        let stag = try XCTUnwrap(tb.smmu.stalled.first?.stallTag)
        tb.unit.processEventQueue()
        tb.unit.iopfQueue?.runPending()
        XCTAssertEqual(handler.faults.map(\.grpid), [UInt32(stag)])
        XCTAssertEqual(handler.faults.first?.pasid, 4)
        XCTAssertTrue(handler.faults.first?.isLastPage ?? false)
        let outcome = try XCTUnwrap(tb.smmu.resumed.first)
        XCTAssertEqual(outcome.action, .retry)
        XCTAssertEqual(outcome.result, .translated(address: buf, length: 4096, cached: false))
        XCTAssertEqual(try dev.dmaRead(at: 0x50_0000, count: 1, pasid: 4), [0x77])
        tb.iommu.detachDevicePasid(domain, from: dev, pasid: 4)
        XCTAssertEqual(tb.unit.iopfQueue?.attachedDevices.count, 0)
    }

    /// PRI goes on and off with ATS: on while a translating domain is attached, off on an
    /// identity domain (whose bypass STE refuses ATS), on again after.
    func testPRIFollowsATS() throws {
        let tb = try SMMUv3Testbed()
        let dev = try tb.device(1, ats: true, pri: true)
        XCTAssertTrue(try XCTUnwrap(tb.driver.master(dev)).priSupported)
        XCTAssertTrue(dev.atsEnabled && dev.priEnabled, "the DMA default domain translates")
        let identity = try XCTUnwrap(tb.driver.identityDomain)
        try tb.iommu.attachDevice(identity, to: dev)
        XCTAssertFalse(dev.atsEnabled || dev.priEnabled)
        assertErrno(.notSupported) {
            _ = try dev.sendPageRequest(PageRequest(rid: dev.rid, pasid: 1, groupIndex: 3, address: 0x1000))
        }
        tb.iommu.detachDevice(identity, from: dev)
        XCTAssertTrue(dev.atsEnabled && dev.priEnabled, "back on the DMA domain")
    }

    /// A page request goes through the PRI queue to the core as a page fault; the handler
    /// of the fault-capable domain at its PASID maps the page, and the success answer is
    /// a PRI_RESP with the PASID (the device needs it) and the group index.
    func testPageRequestReachesTheHandlerAndIsAnsweredWithPRIResp() throws {
        let tb = try SMMUv3Testbed()
        let dev = try tb.device(1, ats: true, pri: true)
        let domain = try tb.paging(dev)
        let buf = try tb.buffer([0x42])
        let handler = MappingFaultHandler(iommu: tb.iommu, domain: domain, paddr: buf)
        domain.iopfHandler = handler
        try tb.iommu.attachDevicePasid(domain, to: dev, pasid: 4, handle: AttachHandle())
        XCTAssertEqual(tb.unit.priIOPFQueue?.attachedDevices.map(\.rid), [dev.rid])
        XCTAssertTrue(try dev.sendPageRequest(PageRequest(rid: dev.rid, pasid: 4, access: [.read, .write], groupIndex: 3,
                                                          address: 0x50_0000)))
        XCTAssertTrue(tb.smmu.hasPendingPageRequests(pasid: 4))
        XCTAssertEqual(tb.unit.servicePageRequests(), 1)
        XCTAssertFalse(tb.smmu.hasPendingPageRequests(pasid: 4))
        tb.unit.priIOPFQueue?.runPending()
        XCTAssertEqual(handler.faults.map(\.address), [0x50_0000])
        XCTAssertEqual(handler.faults.first?.perm, [.read, .write])
        XCTAssertEqual(tb.smmu.priResponses, [SMMUv3PRIResponseRecord(streamID: UInt32(dev.rid.raw), substreamID: 4,
                                                                     groupIndex: 3, response: .success)])
        XCTAssertEqual(tb.iommu.iovaToPhys(domain, iova: 0x50_0000), buf)
        tb.iommu.detachDevicePasid(domain, from: dev, pasid: 4)
        XCTAssertEqual(tb.unit.priIOPFQueue?.attachedDevices.count, 0)
    }

    /// A request that no handler takes is answered INVALID by the core: PRI_RESP FAIL. A
    /// PASID stop marker (last, neither read nor write) is dropped without an answer.
    func testUnhandledPageRequestIsAnsweredFailAndStopMarkersAreDropped() throws {
        let tb = try SMMUv3Testbed()
        let dev = try tb.device(1, ats: true, pri: true)
        try dev.sendPageRequest(PageRequest(rid: dev.rid, pasid: 7, groupIndex: 2, address: 0x1000))
        try dev.sendPageRequest(PageRequest(rid: dev.rid, pasid: 7, access: [], groupIndex: 5, address: 0))
        XCTAssertEqual(tb.unit.servicePageRequests(), 2)
        XCTAssertEqual(tb.smmu.priResponses, [SMMUv3PRIResponseRecord(streamID: UInt32(dev.rid.raw), substreamID: 7,
                                                                     groupIndex: 2, response: .fail)])
        XCTAssertEqual(tb.iommu.faultLog.responses.map(\.code), [.invalid])
    }
}

/// A fault handler that maps the faulting page of `domain` to `paddr` and answers success.
final class MappingFaultHandler: IOPFHandler, @unchecked Sendable {
    let iommu: IOMMUSubsystem
    let domain: IOMMUDomain
    let paddr: PhysicalAddress
    private let lock = Lock()
    private var _faults: [IOPFFault] = []

    init(iommu: IOMMUSubsystem, domain: IOMMUDomain, paddr: PhysicalAddress) {
        self.iommu = iommu
        self.domain = domain
        self.paddr = paddr
    }

    var faults: [IOPFFault] { lock.withLock { _faults } }

    func handleIOPF(_ group: IOPFGroup) throws(Errno) {
        lock.withLock { _faults.append(contentsOf: group.faults) }
        let address = group.lastFault.address.alignedDown(to: 4096)
        let (iommu, domain, paddr) = (iommu, domain, paddr)
        group.queueWork {
            do {
                try iommu.map(domain, iova: address, paddr: paddr, size: 4096, prot: [.read, .write])
                group.respond(.success)
            } catch {
                group.respond(.failure)
            }
        }
    }
}
