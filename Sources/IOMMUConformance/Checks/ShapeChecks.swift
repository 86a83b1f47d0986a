import IOMMUCore
import XCTest

// The three attach shapes, global PASIDs, reserved regions and group formation.

extension ConformanceSuite {
    static let shapeChecks: [ConformanceCheck] = [
        .shapeRIDAndOnePasidSideBySide, .shapeRIDPlusAllPasidsThroughNestedDomain, .shapeAllPasidsErrors,
        .shapeAllPasidsNeedsUserPasidTable, .globalPasidRangeAndUniqueness, .reservedDirectRegionsAreIdentityMapped,
        .groupFormationFollowsACS,
    ]
}

extension ConformanceCheck {
    /// The RID and PASID attach shapes side by side on one device: the RID on domain A
    /// (`iommu_attach_device`), PASID 5 on domain B (`iommu_attach_device_pasid`); each
    /// translates only its own requests and neither disturbs the other.
    public static var shapeRIDAndOnePasidSideBySide: ConformanceCheck {
        ConformanceCheck(requires: .pasid) { vendor in
            let rig = try vendor.makeRig([.pasid])
            let dev = rig.devices[0]
            let a = try rig.pagingDomain(), b = try rig.pagingDomain()
            try rig.iommu.map(a, iova: rig.iova(a), paddr: try rig.buffer(fill: 0xa0), size: 4096, prot: [.read, .write])
            try rig.iommu.map(b, iova: rig.iova(b), paddr: try rig.buffer(fill: 0xb0), size: 4096, prot: [.read, .write])
            try rig.iommu.attachDevice(a, to: dev)
            XCTAssertEqual(try dev.dmaRead(at: rig.iova(a), count: 1), [0xa0])
            XCTAssertThrowsError(try dev.dmaRead(at: rig.iova(a), count: 1, pasid: 5), "PASID 5 not attached yet")
            try rig.iommu.attachDevicePasid(b, to: dev, pasid: 5)
            XCTAssertEqual(try dev.dmaRead(at: rig.iova(b), count: 1, pasid: 5), [0xb0])
            XCTAssertEqual(try dev.dmaRead(at: rig.iova(a), count: 1), [0xa0], "RID unchanged")
            XCTAssertThrowsError(try dev.dmaRead(at: rig.iova(b), count: 1, pasid: 6))
            rig.iommu.detachDevicePasid(b, from: dev, pasid: 5)
            XCTAssertThrowsError(try dev.dmaRead(at: rig.iova(b), count: 1, pasid: 5))
            XCTAssertEqual(try dev.dmaRead(at: rig.iova(a), count: 1), [0xa0], "RID still unchanged")
        }
    }

    /// The RID-plus-all-PASIDs shape: a nested domain attached with
    /// `iommu_attach_device_all_pasids` (the user owns the PASID table) translates the RID
    /// and every PASID through its parent; single PASIDs cannot be attached meanwhile
    /// (`EINVAL`); leaving the shape gives the PASIDs back.
    public static var shapeRIDPlusAllPasidsThroughNestedDomain: ConformanceCheck {
        ConformanceCheck(requires: [.pasid, .nesting, .userPasidTable]) { vendor in
            let rig = try vendor.makeRig([.pasid])
            let dev = rig.devices[0]
            let (parent, nested) = try vendor.nestedDomain(in: rig, for: dev)
            let b = try rig.pagingDomain()
            try rig.iommu.map(parent, iova: rig.iova(parent), paddr: try rig.buffer(fill: 0xcc), size: 4096,
                              prot: [.read, .write])
            try rig.iommu.attachDeviceAllPasids(nested, to: dev)
            XCTAssertTrue(dev.group!.ridOwnsAllPasids)
            for pasid: PASID? in [nil, 1, 77, PASID(rawValue: dev.maxPasids - 1)] {
                XCTAssertEqual(try dev.dmaRead(at: rig.iova(parent), count: 1, pasid: pasid), [0xcc],
                               "pasid \(pasid.map { "\($0)" } ?? "none")")
            }
            assertErrno(.invalidArgument) { try rig.iommu.attachDevicePasid(b, to: dev, pasid: 9) }
            rig.iommu.detachDevice(nested, from: dev)
            XCTAssertFalse(dev.group!.ridOwnsAllPasids)
            XCTAssertThrowsError(try dev.dmaRead(at: rig.iova(parent), count: 1, pasid: 77))
        }
    }

    /// RID plus all PASIDs is refused with `EINVAL` for a domain that is not nested and
    /// with `EBUSY` while PASIDs are attached one by one; once they are gone it works.
    public static var shapeAllPasidsErrors: ConformanceCheck {
        ConformanceCheck(requires: [.pasid, .nesting, .userPasidTable]) { vendor in
            let rig = try vendor.makeRig([.pasid])
            let dev = rig.devices[0]
            let (_, nested) = try vendor.nestedDomain(in: rig, for: dev)
            let paging = try rig.pagingDomain()
            assertErrno(.invalidArgument) { try rig.iommu.attachDeviceAllPasids(paging, to: dev) }
            try rig.iommu.attachDevicePasid(paging, to: dev, pasid: 3)
            assertErrno(.busy) { try rig.iommu.attachDeviceAllPasids(nested, to: dev) }
            XCTAssertTrue(dev.group!.domain === dev.group!.defaultDomain)
            rig.iommu.detachDevicePasid(paging, from: dev, pasid: 3)
            try rig.iommu.attachDeviceAllPasids(nested, to: dev)
        }
    }

    /// Without `iommu_ops.user_pasid_table`, RID plus all PASIDs is `EOPNOTSUPP` and the
    /// group stays on its default domain; a nested domain on the RID then translates the
    /// RID only.
    public static var shapeAllPasidsNeedsUserPasidTable: ConformanceCheck {
        ConformanceCheck(requires: [.pasid, .nesting, .userPasidTable, .driverVariants]) { vendor in
            let rig = try vendor.makeRig([.pasid], variant: .withoutUserPasidTable)
            let dev = rig.devices[0]
            XCTAssertFalse(rig.driver.userPasidTable)
            let (_, nested) = try vendor.nestedDomain(in: rig, for: dev)
            assertErrno(.notSupported) { try rig.iommu.attachDeviceAllPasids(nested, to: dev) }
            XCTAssertTrue(dev.group!.domain === dev.group!.defaultDomain)
            try rig.iommu.attachDevice(nested, to: dev)
            XCTAssertFalse(dev.group!.ridOwnsAllPasids)
            XCTAssertFalse(rig.live(dev, 5))
        }
    }

    /// Global PASIDs (`iommu_alloc_global_pasid`): `ENODEV` for a device without PASID;
    /// otherwise the lowest free value in [1, `max_pasids` - 1], unique across devices,
    /// reusable once freed, and `ENOSPC` when the device's range is used up (the errnos
    /// the kernel's callers make of `IOMMU_PASID_INVALID`); freeing a PASID that is not
    /// allocated WARNs.
    public static var globalPasidRangeAndUniqueness: ConformanceCheck {
        ConformanceCheck(requires: .pasid) { vendor in
            let rig = try vendor.makeRig([.pasid, .pasid, .noPasid, DeviceSpec(pasidWidth: 2)])
            let (d1, d2, none, narrow) = (rig.devices[0], rig.devices[1], rig.devices[2], rig.devices[3])
            assertErrno(.noDevice) { try rig.iommu.allocGlobalPasid(for: none) }
            var seen = Set<PASID>()
            for i in 0..<64 {
                let p = try rig.iommu.allocGlobalPasid(for: i % 2 == 0 ? d1 : d2)
                XCTAssertTrue((1..<d1.maxPasids).contains(p.rawValue), "\(p)")
                XCTAssertTrue(seen.insert(p).inserted, "\(p) handed out twice")
            }
            XCTAssertEqual(seen, Set((1...64).map { PASID(rawValue: $0) }))
            rig.iommu.freeGlobalPasid(10)
            XCTAssertEqual(try rig.iommu.allocGlobalPasid(for: d2), 10)
            XCTAssertEqual(narrow.maxPasids, 4)
            assertErrno(.noSpace, "1...3 are taken") { try rig.iommu.allocGlobalPasid(for: narrow) }
            rig.iommu.freeGlobalPasid(2)
            XCTAssertEqual(try rig.iommu.allocGlobalPasid(for: narrow), 2)
            assertNoWarnings(rig.machine)
            rig.iommu.freeGlobalPasid(1000)
            XCTAssertEqual(rig.machine.warnings.map(\.function), ["iommu_free_global_pasid"])
        }
    }

    /// Every `IOMMU_RESV_DIRECT` range of a device is identity-mapped in its DMA default
    /// domain (`iommu_create_device_direct_mappings`): device DMA to it reaches the same
    /// physical address, and the DMA API never hands out an IOVA inside it.
    public static var reservedDirectRegionsAreIdentityMapped: ConformanceCheck {
        ConformanceCheck(requires: .directMappedRegions) { vendor in
            let window = ReservedRegion(start: 0x2000000, length: 0x3000, kind: .direct)
            let rig = try vendor.makeRig([DeviceSpec(reservedRegions: [window])])
            let dev = rig.devices[0]
            let def = dev.group!.defaultDomain!
            XCTAssertTrue(def.type.isDMAAPI)
            for off in stride(from: UInt64(0), to: 0x3000, by: 0x800) {
                let iova: IOVA = 0x2000000 + off
                XCTAssertEqual(rig.iommu.iovaToPhys(def, iova: iova), PhysicalAddress(identity: iova))
            }
            try dev.dmaWrite(at: 0x2001000, bytes: [0xfe, 0xed])
            XCTAssertEqual(try rig.memory.bytes(at: 0x2001000, count: 2), [0xfe, 0xed])
            // A window at the top of the DMA space: allocations go below it.
            let top = min(def.geometry.apertureEnd, IOVA(rawValue: UInt64(UInt32.max)))
            let high = ReservedRegion(start: top + 1 - 0x10000, length: 0x10000, kind: .direct)
            let rig2 = try vendor.makeRig([DeviceSpec(reservedRegions: [high])])
            let dma = try rig2.iommu.dmaMapPage(rig2.devices[0], paddr: try rig2.buffer(), size: 4096)
            XCTAssertLessThan(dma, high.start)
            XCTAssertEqual(rig2.iommu.iovaToPhys(rig2.devices[0].group!.defaultDomain!, iova: high.start),
                           PhysicalAddress(identity: high.start))
        }
    }

    /// Group formation follows ACS (`pci_device_group`): functions behind a bridge
    /// without ACS share a group, even below an ACS port; the functions of a
    /// multi-function device without ACS share one; ACS separates them. One group has
    /// one RID domain.
    public static var groupFormationFollowsACS: ConformanceCheck {
        ConformanceCheck { vendor in
            let rig = try vendor.makeRig()
            let add = { (rid: RID, up: PCIBridge?, mf: Bool, acs: Bool) throws -> PCIDevice in
                try rig.addDevice(DeviceSpec(pasidWidth: nil, acs: acs), rid: rid, upstream: up, multifunction: mf)
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
            let d = try rig.iommu.allocPagingDomain(for: s1)
            try rig.iommu.attachGroup(d, to: s1.group!)
            XCTAssertTrue(rig.iommu.domainForDevice(s3) === d)
            XCTAssertTrue(rig.iommu.domainForDevice(f0) === f0.group!.defaultDomain)
        }
    }
}
