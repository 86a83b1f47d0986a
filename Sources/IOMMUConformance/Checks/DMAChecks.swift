import IOMMUCore
import XCTest

// Device DMA through RID and PASID attachments, the DMA API, dirty tracking, and the
// attach/map/free cycle that must leave nothing behind.

extension ConformanceSuite {
    static let dmaChecks: [ConformanceCheck] = [
        .dmaThroughRIDArrivesAndReadOnlyRefusesWrites, .dmaThroughPasidsReachesEachPasidsDomain,
        .dmaDomainSharedByTwoDevicesSurvivesOneDetach,
        .dmaAPIStrictMapUnmap, .dmaAPIExhaustionAndFlushQueueTrigger, .dirtyTrackingRecordsDeviceWrites,
        .attachMapFreeCycleLeavesNothingBehind,
    ]
}

extension ConformanceCheck {
    /// DMA through a RID attachment: bytes the device writes arrive in memory and bytes
    /// it reads come from it; a read-only mapping refuses the device's write at its first
    /// byte (the fault names that address); after detach the RID faults there. No
    /// invariant violation.
    public static var dmaThroughRIDArrivesAndReadOnlyRefusesWrites: ConformanceCheck {
        ConformanceCheck { vendor in
            let rig = try vendor.makeRig([.pasid])
            let dev = rig.devices[0]
            rig.machine.checker.isEnabled = true
            let domain = try rig.pagingDomain()
            let (rw, ro) = (try rig.buffer(), try rig.buffer(fill: 0x77))
            let iova = rig.iova(domain)
            try rig.iommu.map(domain, iova: iova, paddr: rw, size: 4096, prot: [.read, .write])
            try rig.iommu.map(domain, iova: iova + 4096, paddr: ro, size: 4096, prot: [.read])
            try rig.iommu.attachDevice(domain, to: dev)
            let payload: [UInt8] = (0..<100).map { UInt8($0) }
            XCTAssertThrowsError(try dev.dmaWrite(at: iova + 4000, bytes: payload), "the tail hits the read-only page") {
                XCTAssertEqual(($0 as? DMAFault)?.address, iova + 4096)
            }
            XCTAssertEqual(try rig.memory.bytes(at: rw + 4000, count: 96), Array(payload[0..<96]))
            XCTAssertEqual(try dev.dmaRead(at: iova + 4096, count: 4), [0x77, 0x77, 0x77, 0x77])
            XCTAssertEqual(try rig.memory.bytes(at: ro, count: 4), [0x77, 0x77, 0x77, 0x77], "the write stopped at the RO page")
            rig.iommu.detachDevice(domain, from: dev)
            XCTAssertThrowsError(try dev.dmaRead(at: iova, count: 1), "the default domain has no mapping there")
            assertNoViolations(rig.machine)
            XCTAssertGreaterThan(rig.machine.faultLog.count, 0)
        }
    }

    /// DMA through PASID attachments: two PASIDs on two domains with the same IOVA reach
    /// different pages; after detach the PASID faults and the other keeps working. No
    /// invariant violation.
    public static var dmaThroughPasidsReachesEachPasidsDomain: ConformanceCheck {
        ConformanceCheck(requires: .pasid) { vendor in
            let rig = try vendor.makeRig([.pasid])
            let dev = rig.devices[0]
            rig.machine.checker.isEnabled = true
            let a = try rig.pagingDomain(), b = try rig.pagingDomain()
            let (bufA, bufB) = (try rig.buffer(), try rig.buffer())
            let iova = rig.iova(a, 0x4000)
            try rig.iommu.map(a, iova: iova, paddr: bufA, size: 4096, prot: [.read, .write])
            try rig.iommu.map(b, iova: iova, paddr: bufB, size: 4096, prot: [.read, .write])
            try rig.iommu.attachDevicePasid(a, to: dev, pasid: 100)
            try rig.iommu.attachDevicePasid(b, to: dev, pasid: 200)
            try dev.dmaWrite(at: iova, bytes: [1, 2, 3], pasid: 100)
            try dev.dmaWrite(at: iova, bytes: [4, 5, 6], pasid: 200)
            XCTAssertEqual(try rig.memory.bytes(at: bufA, count: 3), [1, 2, 3])
            XCTAssertEqual(try rig.memory.bytes(at: bufB, count: 3), [4, 5, 6])
            rig.iommu.detachDevicePasid(a, from: dev, pasid: 100)
            XCTAssertThrowsError(try dev.dmaRead(at: iova, count: 1, pasid: 100))
            XCTAssertEqual(try dev.dmaRead(at: iova, count: 1, pasid: 200), [4])
            assertNoViolations(rig.machine)
        }
    }

    /// One domain attached to the RIDs of two devices: after it leaves the first device,
    /// the second still translates through it, a new domain attached to the first
    /// device translates only there, and an unmap in the shared domain reaches the
    /// second device at once (its cached translations are invalidated). No invariant
    /// violation (hardware tags such as DIDs stay with their domain while in use).
    public static var dmaDomainSharedByTwoDevicesSurvivesOneDetach: ConformanceCheck {
        ConformanceCheck { vendor in
            let rig = try vendor.makeRig([.pasid, .pasid])
            let (d1, d2) = (rig.devices[0], rig.devices[1])
            rig.machine.checker.isEnabled = true
            let a = try rig.pagingDomain(), b = try rig.pagingDomain()
            let iova = rig.iova(a, 0x8000)
            try rig.iommu.map(a, iova: iova, paddr: try rig.buffer(fill: 0xa1), size: 4096, prot: [.read, .write])
            try rig.iommu.map(b, iova: iova, paddr: try rig.buffer(fill: 0xb2), size: 4096, prot: [.read, .write])
            try rig.iommu.attachDevice(a, to: d1)
            try rig.iommu.attachDevice(a, to: d2)
            XCTAssertEqual(try d1.dmaRead(at: iova, count: 1), [0xa1])
            XCTAssertEqual(try d2.dmaRead(at: iova, count: 1), [0xa1])
            rig.iommu.detachDevice(a, from: d1)
            XCTAssertEqual(try d2.dmaRead(at: iova, count: 1), [0xa1], "still attached to the second device")
            try rig.iommu.attachDevice(b, to: d1)
            XCTAssertEqual(try d1.dmaRead(at: iova, count: 1), [0xb2])
            XCTAssertEqual(try d2.dmaRead(at: iova, count: 1), [0xa1], "the new domain is not the shared one")
            XCTAssertEqual(rig.iommu.unmap(a, iova: iova, size: 4096), 4096)
            XCTAssertThrowsError(try d2.dmaRead(at: iova, count: 1), "the unmap reached the second device")
            XCTAssertEqual(try d1.dmaRead(at: iova, count: 1), [0xb2])
            assertNoViolations(rig.machine)
        }
    }

    /// The DMA API on a strict DMA default domain (`dma_map_page`, `dma_unmap_page`):
    /// bytes arrive, the DMA address keeps the page offset, bad unmaps are `EINVAL`
    /// without side effects, DMA after unmap faults, and the IOVA is reusable as soon as
    /// unmap returns (synchronous invalidation).
    public static var dmaAPIStrictMapUnmap: ConformanceCheck {
        ConformanceCheck { vendor in
            let rig = try vendor.makeRig([.pasid])
            let dev = rig.devices[0]
            let buf = try rig.buffer()
            let a = try rig.iommu.dmaMapPage(dev, paddr: buf + 0x100, size: 0x200)
            XCTAssertEqual(a.offset(within: 0x800), 0x100, "offset kept")
            try dev.dmaWrite(at: a, bytes: [9, 8, 7])
            XCTAssertEqual(try rig.memory.bytes(at: buf + 0x100, count: 3), [9, 8, 7])
            assertErrno(.invalidArgument) { try rig.iommu.dmaUnmapPage(dev, dmaAddress: a + 0x10000, size: 0x200) }
            assertErrno(.invalidArgument) { try rig.iommu.dmaUnmapPage(dev, dmaAddress: a, size: 0x10000) }
            assertErrno(.invalidArgument) { try rig.iommu.dmaMapPage(dev, paddr: buf, size: 0) }
            XCTAssertEqual(try dev.dmaRead(at: a, count: 1), [9], "still mapped after the refused unmaps")
            try rig.iommu.dmaUnmapPage(dev, dmaAddress: a, size: 0x200)
            XCTAssertThrowsError(try dev.dmaRead(at: a, count: 1))
            XCTAssertEqual(rig.iommu.dmaFlushQueueDepth(dev), 0)
            XCTAssertEqual(try rig.iommu.dmaMapPage(dev, paddr: buf + 0x100, size: 0x200), a,
                           "strict: the IOVA is free as soon as unmap returns")
        }
    }

    /// The DMA API runs out of IOVA space with `ENOMEM` (reserved regions are never
    /// allocated), IOVAs waiting in a DMA-FQ flush queue are not free yet, and the queue
    /// flushes by itself when it is full.
    public static var dmaAPIExhaustionAndFlushQueueTrigger: ConformanceCheck {
        ConformanceCheck(requires: .anyReservedRegion) { vendor in
            // Learn the aperture, then reserve all of it but the top 16 KiB.
            let geometry = try vendor.makeRig([.pasid]).pagingDomain().geometry
            let top = min(geometry.apertureEnd, IOVA(rawValue: UInt64(UInt32.max)))
            let reserved = ReservedRegion(start: 0, length: top.rawValue - 0x3fff, kind: .reserved)
            let rig = try vendor.makeRig([DeviceSpec(reservedRegions: [reserved])], defaultDomainType: .dmaFQ)
            let dev = rig.devices[0]
            let buf = try rig.buffer()
            var got: [IOVA] = []
            for _ in 0..<4 { got.append(try rig.iommu.dmaMapPage(dev, paddr: buf, size: 4096)) }
            XCTAssertEqual(Set(got).count, 4)
            XCTAssertTrue(got.allSatisfy { $0 > top - 0x4000 && $0 <= top }, "\(got)")
            assertErrno(.noMemory) { try rig.iommu.dmaMapPage(dev, paddr: buf, size: 4096) }
            rig.iommu.dmaFlushQueueSize = 3
            try rig.iommu.dmaUnmapPage(dev, dmaAddress: got[0], size: 4096)
            try rig.iommu.dmaUnmapPage(dev, dmaAddress: got[1], size: 4096)
            XCTAssertEqual(rig.iommu.dmaFlushQueueDepth(dev), 2)
            assertErrno(.noMemory, "queued IOVAs are not free yet") { try rig.iommu.dmaMapPage(dev, paddr: buf, size: 4096) }
            try rig.iommu.dmaUnmapPage(dev, dmaAddress: got[2], size: 4096)
            XCTAssertEqual(rig.iommu.dmaFlushQueueDepth(dev), 0, "the third entry filled the queue: flush-all")
            XCTAssertNoThrow(try rig.iommu.dmaMapPage(dev, paddr: buf, size: 4096))
        }
    }

    /// Dirty tracking (`IOMMU_CAP_DIRTY_TRACKING`, `dirty_ops`): on a paging domain
    /// allocated with `IOMMU_HWPT_ALLOC_DIRTY_TRACKING` and tracking switched on, the
    /// pages a device writes (and only those) are reported by `read_and_clear_dirty`,
    /// once: a second read reports nothing until the device writes again.
    public static var dirtyTrackingRecordsDeviceWrites: ConformanceCheck {
        ConformanceCheck(requires: .dirtyTracking) { vendor in
            let rig = try vendor.makeRig([.pasid])
            let dev = rig.devices[0]
            XCTAssertTrue(rig.driver.capable(dev, .dirtyTracking))
            let domain = try rig.pagingDomain(flags: [.dirtyTracking])
            XCTAssertTrue(domain.ops.contains(.dirtyTracking))
            let iova = rig.iova(domain)
            try rig.iommu.map(domain, iova: iova, paddr: try rig.buffer(bytes: 4 * 4096), size: 4 * 4096,
                              prot: [.read, .write])
            try rig.iommu.attachDevice(domain, to: dev)
            try domain.setDirtyTracking(true)
            func dirtyPages(clear: Bool = true) throws -> Set<IOVA> {
                var pages: Set<IOVA> = []
                try domain.readAndClearDirty(iova: iova, size: 4 * 4096, clear: clear) { start, length in
                    for offset in stride(from: 0, to: length, by: 4096) { pages.insert(start + offset) }
                }
                return pages
            }
            _ = try dirtyPages()
            _ = try dev.dmaRead(at: iova, count: 8)
            try dev.dmaWrite(at: iova + 4096 + 8, bytes: [1])
            try dev.dmaWrite(at: iova + 3 * 4096, bytes: [2])
            XCTAssertEqual(try dirtyPages(clear: false), [iova + 4096, iova + 3 * 4096], "IOMMU_DIRTY_NO_CLEAR")
            XCTAssertEqual(try dirtyPages(), [iova + 4096, iova + 3 * 4096], "written pages only")
            XCTAssertEqual(try dirtyPages(), [], "cleared by the first read")
            try dev.dmaWrite(at: iova + 4096, bytes: [3])
            XCTAssertEqual(try dirtyPages(), [iova + 4096], "a write after the clear is recorded again")
            try domain.setDirtyTracking(false)
        }
    }

    /// The whole life of a domain leaves nothing behind: allocate, map, attach to the
    /// RID (and, with PASIDs, to a global PASID), DMA, then detach, unmap and
    /// `iommu_domain_free`; after a warm-up round, further rounds return frames, pinned
    /// frames, global PASIDs and the vendor's hardware identifiers (DIDs, ASIDs, ...) to
    /// their counts.
    public static var attachMapFreeCycleLeavesNothingBehind: ConformanceCheck {
        ConformanceCheck { vendor in
            let rig = try vendor.makeRig([.pasid])
            let dev = rig.devices[0]
            rig.machine.checker.isEnabled = true
            let buf = try rig.buffer(fill: 0x3c)
            func round() throws {
                let a = try rig.pagingDomain(), b = try rig.pagingDomain()
                let (ia, ib) = (rig.iova(a, 0x10000), rig.iova(b, 0x20000))
                try rig.iommu.map(a, iova: ia, paddr: buf, size: 4096, prot: [.read, .write])
                try rig.iommu.map(b, iova: ib, paddr: buf, size: 4096, prot: [.read])
                try rig.iommu.attachDevice(a, to: dev)
                XCTAssertEqual(try dev.dmaRead(at: ia, count: 1), [0x3c])
                if vendor.has(.pasid) {
                    let pasid = try rig.iommu.allocGlobalPasid(for: dev)
                    try rig.iommu.attachDevicePasid(b, to: dev, pasid: pasid)
                    XCTAssertEqual(try dev.dmaRead(at: ib, count: 1, pasid: pasid), [0x3c])
                    rig.iommu.detachDevicePasid(b, from: dev, pasid: pasid)
                    rig.iommu.freeGlobalPasid(pasid)
                }
                rig.iommu.detachDevice(a, from: dev)
                XCTAssertEqual(rig.iommu.unmap(a, iova: ia, size: 4096), 4096)
                XCTAssertEqual(rig.iommu.unmap(b, iova: ib, size: 4096), 4096)
                rig.iommu.freeDomain(a)
                rig.iommu.freeDomain(b)
            }
            try round()
            let leaks = rig.leakCheck()
            try round()
            try round()
            leaks.assertNoLeaks()
            assertNoViolations(rig.machine)
            assertNoWarnings(rig.machine)
        }
    }
}
