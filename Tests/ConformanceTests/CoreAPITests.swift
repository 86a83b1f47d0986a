import IOMMUConformance
import IOMMUCore
import IOMMUDrivers
import VendorFixtures
import XCTest

/// Core entry points outside the numbered checks, over the Mock vendor.
final class CoreAPITests: XCTestCase {
    /// `iommu_map_sg`: segments land back to back, so a DMA across the seam reads both.
    func testMapSGMapsSegmentsBackToBack() throws {
        let rig = try MockVendor().makeRig([.pasid])
        let dev = rig.devices[0]
        let domain = try rig.pagingDomain()
        try rig.iommu.attachDevice(domain, to: dev)
        let a = try rig.buffer(fill: 0xaa), b = try rig.buffer(fill: 0xbb)
        let iova = rig.iova(domain)
        let mapped = try rig.iommu.mapSG(domain, iova: iova, segments: [(a, 4096), (b, 4096)], prot: [.read, .write])
        XCTAssertEqual(mapped, 8192)
        XCTAssertEqual(try dev.dmaRead(at: iova + 4094, count: 4), [0xaa, 0xaa, 0xbb, 0xbb])
    }

    /// A bad segment in the middle of an `iommu_map_sg` leaves nothing mapped.
    func testMapSGFailureUnmapsEverything() throws {
        let rig = try MockVendor().makeRig([.pasid])
        let domain = try rig.pagingDomain()
        let a = try rig.buffer(), b = try rig.buffer()
        let iova = rig.iova(domain)
        assertErrno(.invalidArgument) {
            try rig.iommu.mapSG(domain, iova: iova, segments: [(a, 4096), (b + 1, 4096)], prot: [.read])
        }
        XCTAssertEqual(rig.iommu.iovaToPhys(domain, iova: iova), 0)
        XCTAssertEqual(rig.iommu.iovaToPhys(domain, iova: iova + 4096), 0)
    }

    /// `iommu_driver_get_domain_for_dev`: the blocking domain while the device is parked
    /// for a PCI reset, the group's domain before and after.
    func testDriverDomainForDeviceDuringReset() throws {
        let rig = try MockVendor().makeRig([DeviceSpec(ats: true)])
        let dev = rig.devices[0]
        XCTAssertTrue(rig.iommu.driverDomainForDevice(dev) === dev.group!.defaultDomain)
        try rig.iommu.resetPrepare(dev)
        XCTAssertTrue(rig.iommu.driverDomainForDevice(dev) === rig.driver.blockedDomain)
        XCTAssertTrue(rig.iommu.domainForDevice(dev) === dev.group!.defaultDomain, "the core domain is kept")
        rig.iommu.resetDone(dev)
        XCTAssertTrue(rig.iommu.driverDomainForDevice(dev) === dev.group!.defaultDomain)
    }

    /// Adding a device whose RID is already on the machine is `EEXIST` and changes nothing.
    func testAddingADuplicateRIDIsEEXIST() throws {
        let rig = try MockVendor().makeRig([.noPasid])
        let dev = rig.devices[0]
        let count = rig.machine.allDevices.count
        assertErrno(.exists) { try rig.machine.addDevice(PCIDevice(rid: dev.rid), behind: rig.unit) }
        XCTAssertEqual(rig.machine.allDevices.count, count)
    }

    /// The event log uses the kernel's tracepoint names, and records nothing when off.
    func testEventLogUsesTracepointNames() throws {
        let rig = try MockVendor().makeRig([.pasid])
        let domain = try rig.pagingDomain()
        let iova = rig.iova(domain)
        try rig.iommu.map(domain, iova: iova, paddr: try rig.buffer(), size: 4096, prot: [.read])
        XCTAssertTrue(rig.machine.events.all.isEmpty, "off by default")
        rig.machine.events.isEnabled = true
        try rig.iommu.attachDevice(domain, to: rig.devices[0])
        _ = rig.iommu.unmap(domain, iova: iova, size: 4096)
        XCTAssertEqual(rig.machine.events.all.map(\.name), ["iommu:attach_device_to_domain", "iommu:unmap"])
        XCTAssertEqual(rig.machine.events.named("iommu:unmap").first?["unmapped_size"], "4096")
    }

    /// `PCIDevice.sendPageRequest`: `ENODEV` for a device on no machine, `EOPNOTSUPP`
    /// while PRI is not enabled; a request that is sent reaches the core through the unit
    /// (here the mock, which reports it at once; with no handler it is answered
    /// `INVALID`), carrying the sender's RID whatever the request said.
    func testSendPageRequestErrnosAndDelivery() throws {
        let request = PageRequest(rid: RID(bus: 0x7f, device: 0, function: 0), pasid: 3, groupIndex: 2, address: 0x5123)
        let loose = PCIDevice(rid: RID(bus: 1, device: 0, function: 0), caps: PCICapabilities(pri: true))
        assertErrno(.noDevice) { try loose.sendPageRequest(request) }
        let rig = try MockVendor().makeRig([.pasid, .pri])
        let (plain, pri) = (rig.devices[0], rig.devices[1])
        XCTAssertFalse(plain.priEnabled)
        XCTAssertTrue(pri.priEnabled, "the mock enables PRI at probe")
        assertErrno(.notSupported) { try plain.sendPageRequest(request) }
        rig.machine.events.isEnabled = true
        XCTAssertTrue(try pri.sendPageRequest(request))
        XCTAssertEqual(rig.iommu.faultLog.responses,
                       [IOPFResponseRecord(device: pri.rid, pasid: 3, grpid: 2, code: .invalid, group: nil)])
        XCTAssertEqual(rig.machine.events.named("iommukit:page_request").first?["request"],
                       "page request \(pri.rid) pasid 3 grp 2 addr 0x5000 r last")
    }
}
