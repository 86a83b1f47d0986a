import IOMMUCore
import XCTest

// MARK: attach shapes, global PASIDs, reserved regions, groups, DMA

extension ConformanceChecks {
    /// The three attach shapes side by side on one device: the RID on domain A, PASID 5
    /// on domain B; then, on a second device, the RID plus every PASID on a nested domain.
    func attachShapes() throws {
        let rig = try vendor.makeRig([.pasid, .pasid])
        let (dev, other) = (rig.devices[0], rig.devices[1])
        let a = try rig.pagingDomain(), b = try rig.pagingDomain()
        let (bufA, bufB) = (try rig.buffer(fill: 0xa0), try rig.buffer(fill: 0xb0))
        try rig.iommu.map(a, iova: rig.iova(a), paddr: bufA, size: 4096, prot: [.read, .write])
        try rig.iommu.map(b, iova: rig.iova(b), paddr: bufB, size: 4096, prot: [.read, .write])
        // Shape 1: RID.
        try rig.iommu.attachDevice(a, to: dev)
        XCTAssertEqual(try dev.dmaRead(at: rig.iova(a), count: 1), [0xa0])
        XCTAssertThrowsError(try dev.dmaRead(at: rig.iova(a), count: 1, pasid: 5), "PASID 5 not attached yet")
        // Shape 2: one PASID, independent of the RID.
        try rig.iommu.attachDevicePasid(b, to: dev, pasid: 5)
        XCTAssertEqual(try dev.dmaRead(at: rig.iova(b), count: 1, pasid: 5), [0xb0])
        XCTAssertEqual(try dev.dmaRead(at: rig.iova(a), count: 1), [0xa0], "RID unchanged")
        XCTAssertThrowsError(try dev.dmaRead(at: rig.iova(b), count: 1, pasid: 6))
        // Shape 3: RID + all PASIDs.
        try vendor.require([.userPasidTable, .nesting])
        let (parent, nested) = try vendor.nestedDomain(on: rig, for: other)
        let bufP = try rig.buffer(fill: 0xcc)
        try rig.iommu.map(parent, iova: rig.iova(parent), paddr: bufP, size: 4096, prot: [.read, .write])
        try rig.iommu.attachDeviceAllPasids(nested, to: other)
        XCTAssertTrue(other.group!.ridOwnsAllPasids)
        for pasid: UInt32? in [nil, 1, 77, 1 << 19] {
            XCTAssertEqual(try other.dmaRead(at: rig.iova(parent), count: 1, pasid: pasid), [0xcc], "pasid \(String(describing: pasid))")
        }
        // While the RID owns the PASID table, single PASIDs cannot be attached.
        assertErrno(.invalidArgument) { try rig.iommu.attachDevicePasid(b, to: other, pasid: 9) }
        // Leaving the shape gives the PASIDs back.
        rig.iommu.detachDevice(nested, from: other)
        XCTAssertFalse(other.group!.ridOwnsAllPasids)
        XCTAssertThrowsError(try other.dmaRead(at: rig.iova(parent), count: 1, pasid: 77))
    }

    /// RID + all PASIDs is refused with `EBUSY` while PASIDs are attached individually,
    /// and `EINVAL` for a domain that is not nested.
    func allPasidsErrors() throws {
        try vendor.require([.userPasidTable, .nesting])
        let rig = try vendor.makeRig([.pasid])
        let dev = rig.devices[0]
        let (_, nested) = try vendor.nestedDomain(on: rig, for: dev)
        let paging = try rig.pagingDomain()
        assertErrno(.invalidArgument) { try rig.iommu.attachDeviceAllPasids(paging, to: dev) }
        try rig.iommu.attachDevicePasid(paging, to: dev, pasid: 3)
        assertErrno(.busy) { try rig.iommu.attachDeviceAllPasids(nested, to: dev) }
        XCTAssertTrue(dev.group!.domain === dev.group!.defaultDomain)
        rig.iommu.detachDevicePasid(paging, from: dev, pasid: 3)
        try rig.iommu.attachDeviceAllPasids(nested, to: dev)
    }

    /// Global PASIDs: `IOMMU_PASID_INVALID` without PASID support; otherwise values in
    /// [1, max_pasids - 1], unique across devices, lowest free first, reusable once freed,
    /// and `IOMMU_PASID_INVALID` when the device's space is exhausted.
    func globalPasids() throws {
        let rig = try vendor.makeRig([.pasid, .pasid, .noPasid, DeviceSpec(pasidWidth: 2)])
        let (d1, d2, none, narrow) = (rig.devices[0], rig.devices[1], rig.devices[2], rig.devices[3])
        XCTAssertEqual(rig.iommu.allocGlobalPasid(for: none), IOMMUSubsystem.invalidPasid)
        var seen = Set<UInt32>()
        for i in 0..<64 {
            let p = rig.iommu.allocGlobalPasid(for: i % 2 == 0 ? d1 : d2)
            XCTAssertTrue((1..<d1.maxPasids).contains(p), "\(p)")
            XCTAssertTrue(seen.insert(p).inserted, "\(p) handed out twice")
        }
        XCTAssertEqual(seen, Set(1...64))
        rig.iommu.freeGlobalPasid(10)
        XCTAssertEqual(rig.iommu.allocGlobalPasid(for: d2), 10)
        // A 2-bit device: PASIDs 1...3 only, all taken by the system-wide allocator.
        XCTAssertEqual(narrow.maxPasids, 4)
        XCTAssertEqual(rig.iommu.allocGlobalPasid(for: narrow), IOMMUSubsystem.invalidPasid)
        rig.iommu.freeGlobalPasid(2)
        XCTAssertEqual(rig.iommu.allocGlobalPasid(for: narrow), 2)
        XCTAssertTrue(rig.machine.warnings.isEmpty)
        rig.iommu.freeGlobalPasid(IOMMUSubsystem.invalidPasid)
        XCTAssertEqual(rig.machine.warnings.map(\.function), ["iommu_free_global_pasid"])
    }

    /// I13: every RESV_DIRECT range of a device is identity-mapped in its DMA default
    /// domain, DMA to it reaches the same physical address, and the DMA API never hands
    /// out an IOVA inside it.
    func reservedDirectIdentity() throws {
        let window = ReservedRegion(start: 0x2000000, length: 0x3000, kind: .direct)
        let rig = try vendor.makeRig([DeviceSpec(reservedRegions: [window])])
        let dev = rig.devices[0]
        let def = dev.group!.defaultDomain!
        XCTAssertTrue(def.type.isDMAAPI)
        for off in stride(from: UInt64(0), to: 0x3000, by: 0x800) {
            XCTAssertEqual(rig.iommu.iovaToPhys(def, iova: 0x2000000 + off), 0x2000000 + off)
        }
        try dev.dmaWrite(at: 0x2001000, bytes: [0xfe, 0xed])
        XCTAssertEqual(rig.memory.bytes(at: 0x2001000, count: 2), [0xfe, 0xed])
        // A window at the top of the DMA space: allocations go below it.
        let top = def.geometry.apertureEnd < UInt64(UInt32.max) ? def.geometry.apertureEnd : UInt64(UInt32.max)
        let high = ReservedRegion(start: (top + 1) - 0x10000, length: 0x10000, kind: .direct)
        let rig2 = try vendor.makeRig([DeviceSpec(reservedRegions: [high])])
        let buf = try rig2.buffer()
        let dma = try rig2.iommu.dmaMapPage(rig2.devices[0], paddr: buf, size: 4096)
        XCTAssertLessThan(dma, high.start)
        XCTAssertEqual(rig2.iommu.iovaToPhys(rig2.devices[0].group!.defaultDomain!, iova: high.start), high.start)
    }

    /// ACS group formation: functions behind a bridge without ACS share a group; the
    /// functions of a multi-function device without ACS share one; ACS separates them.
    func groupFormation() throws {
        let rig = try vendor.makeEmptyRig(defaultDomainType: .dma)
        let add = { (rid: RID, up: PCIBridge?, mf: Bool, acs: Bool) throws -> PCIDevice in
            let dev = PCIDevice(rid: rid, caps: PCICapabilities(acs: acs), upstream: up, multifunction: mf)
            return try rig.machine.addDevice(dev, behind: rig.unit)
        }
        let noACS = PCIBridge(name: "no-ACS switch", acs: false)
        let withACS = PCIBridge(name: "ACS root port", acs: true)
        let below = PCIBridge(name: "ACS port under no-ACS", acs: true, upstream: noACS)
        let s1 = try add(RID(bus: 2, device: 0, function: 0), noACS, false, true)
        let s2 = try add(RID(bus: 2, device: 1, function: 0), noACS, false, true)
        let s3 = try add(RID(bus: 3, device: 0, function: 0), below, false, true)
        XCTAssertTrue(s1.group === s2.group, "non-ACS bridge: one group")
        XCTAssertTrue(s1.group === s3.group, "an ACS port below a non-ACS switch cannot isolate")
        let f0 = try add(RID(bus: 4, device: 0, function: 0), withACS, true, false)
        let f1 = try add(RID(bus: 4, device: 0, function: 1), withACS, true, false)
        XCTAssertTrue(f0.group === f1.group, "multi-function without ACS: one group")
        XCTAssertFalse(f0.group === s1.group)
        let g0 = try add(RID(bus: 5, device: 0, function: 0), withACS, true, true)
        let g1 = try add(RID(bus: 5, device: 0, function: 1), withACS, true, true)
        let e = try add(RID(bus: 5, device: 1, function: 0), withACS, false, true)
        XCTAssertFalse(g0.group === g1.group, "ACS functions are isolated")
        XCTAssertFalse(g0.group === e.group)
        XCTAssertEqual(s1.group!.devices.count, 3)
        XCTAssertEqual(f0.group!.devices.count, 2)
        XCTAssertEqual(g0.group!.devices.count, 1)
        // One group, one RID domain.
        let d = try rig.iommu.allocPagingDomain(for: s1)
        try rig.iommu.attachGroup(d, to: s1.group!)
        XCTAssertTrue(rig.iommu.domainForDevice(s3) === d)
        XCTAssertTrue(rig.iommu.domainForDevice(f0) === f0.group!.defaultDomain)
    }

    /// DMA bytes through a RID attachment: written by the device, read back by the CPU;
    /// a read-only mapping refuses the device's write; a detached RID faults.
    func dmaThroughRID() throws {
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
        XCTAssertEqual(rig.memory.bytes(at: rw + 4000, count: 96), Array(payload[0..<96]))
        XCTAssertEqual(try dev.dmaRead(at: iova + 4096, count: 4), [0x77, 0x77, 0x77, 0x77])
        XCTAssertEqual(rig.memory.bytes(at: ro, count: 4), [0x77, 0x77, 0x77, 0x77], "the write stopped at the RO page")
        rig.iommu.detachDevice(domain, from: dev)
        XCTAssertThrowsError(try dev.dmaRead(at: iova, count: 1), "default domain has no mapping there")
        XCTAssertTrue(rig.machine.checker.violations.isEmpty, "\(rig.machine.checker.violations)")
        XCTAssertGreaterThan(rig.machine.faultLog.count, 0)
    }

    /// DMA bytes through PASID attachments: two PASIDs on two domains with the same IOVA
    /// reach different pages; after detach the PASID faults (I6).
    func dmaThroughPasid() throws {
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
        XCTAssertEqual(rig.memory.bytes(at: bufA, count: 3), [1, 2, 3])
        XCTAssertEqual(rig.memory.bytes(at: bufB, count: 3), [4, 5, 6])
        rig.iommu.detachDevicePasid(a, from: dev, pasid: 100)
        XCTAssertThrowsError(try dev.dmaRead(at: iova, count: 1, pasid: 100))
        XCTAssertEqual(try dev.dmaRead(at: iova, count: 1, pasid: 200), [4])
        XCTAssertTrue(rig.machine.checker.violations.isEmpty, "\(rig.machine.checker.violations)")
    }

    /// The DMA API on a strict DMA domain: bytes arrive, the DMA address keeps the page
    /// offset, the IOVA is reusable right after unmap (synchronous invalidation), DMA
    /// after unmap faults, and bad unmaps are `EINVAL` without side effects.
    func dmaAPIStrict() throws {
        let rig = try vendor.makeRig([.pasid])
        let dev = rig.devices[0]
        let buf = try rig.buffer()
        let a = try rig.iommu.dmaMapPage(dev, paddr: buf + 0x100, size: 0x200)
        XCTAssertEqual(a & 0x7ff, 0x100, "offset kept")
        try dev.dmaWrite(at: a, bytes: [9, 8, 7])
        XCTAssertEqual(rig.memory.bytes(at: buf + 0x100, count: 3), [9, 8, 7])
        assertErrno(.invalidArgument) { try rig.iommu.dmaUnmapPage(dev, dmaAddress: a + 0x10000, size: 0x200) }
        assertErrno(.invalidArgument) { try rig.iommu.dmaUnmapPage(dev, dmaAddress: a, size: 0x10000) }
        assertErrno(.invalidArgument) { try rig.iommu.dmaMapPage(dev, paddr: buf, size: 0) }
        XCTAssertEqual(try dev.dmaRead(at: a, count: 1), [9], "still mapped after the refused unmaps")
        try rig.iommu.dmaUnmapPage(dev, dmaAddress: a, size: 0x200)
        XCTAssertThrowsError(try dev.dmaRead(at: a, count: 1))
        XCTAssertEqual(rig.iommu.dmaFlushQueueDepth(dev), 0)
        let again = try rig.iommu.dmaMapPage(dev, paddr: buf + 0x100, size: 0x200)
        XCTAssertEqual(again, a, "strict: the IOVA is free as soon as unmap returns")
    }

    /// The DMA API runs out of IOVA space with `ENOMEM` and the flush queue flushes by
    /// itself when full.
    func dmaAPILimits() throws {
        try vendor.require(.anyReservedRegion)
        // Learn the aperture, then reserve all of it but the top 16 KiB.
        let probe = try vendor.makeRig([.pasid])
        let geometry = try probe.pagingDomain().geometry
        let top = min(geometry.apertureEnd, UInt64(UInt32.max))
        let reserved = ReservedRegion(start: 0, length: top - 0x3fff, kind: .reserved)
        let rig = try vendor.makeRig([DeviceSpec(reservedRegions: [reserved])], defaultDomainType: .dmaFQ)
        let dev = rig.devices[0]
        let buf = try rig.buffer()
        var got: [UInt64] = []
        for _ in 0..<4 { got.append(try rig.iommu.dmaMapPage(dev, paddr: buf, size: 4096)) }
        XCTAssertEqual(Set(got).count, 4)
        XCTAssertTrue(got.allSatisfy { $0 > top - 0x4000 && $0 <= top })
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
