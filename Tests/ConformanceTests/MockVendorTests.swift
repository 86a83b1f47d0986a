import IOMMUConformance
import IOMMUCore
import IOMMUDrivers
import VendorFixtures
import XCTest

/// Behaviour of the Mock vendor itself that the iommufd selftests rely on.
final class MockVendorTests: XCTestCase {
    private func rig(_ flags: MockDeviceFlags = .pasid) throws -> (Rig, PCIDevice, MockIOMMUDriver) {
        let rig = MockVendor().makeRig(driver: MockIOMMUDriver())
        let dev = try (rig.unit as! MockIOMMU).makeDevice(on: rig.machine, flags: flags)
        return (rig, dev, rig.unit.driver as! MockIOMMUDriver)
    }

    func testMockDeviceFlagsAndGroups() throws {
        let (rig, dev, _) = try rig()
        let plain = try (rig.unit as! MockIOMMU).makeDevice(on: rig.machine)
        XCTAssertEqual(dev.maxPasids, 1 << 20)
        XCTAssertEqual(plain.maxPasids, 0)
        XCTAssertFalse(dev.group === plain.group, "each mock device is alone in its group")
        XCTAssertEqual(rig.unit.maxPasids, 1 << 20)
        assertErrno(.invalidArgument) {
            try (rig.unit as! MockIOMMU).makeDevice(on: rig.machine, flags: MockDeviceFlags(rawValue: 8))
        }
    }

    func testMockCapabilities() throws {
        let (rig, dev, driver) = try rig()
        let noDirty = try (rig.unit as! MockIOMMU).makeDevice(on: rig.machine, flags: .noDirty)
        XCTAssertTrue(driver.capable(dev, .cacheCoherency))
        XCTAssertTrue(driver.capable(noDirty, .cacheCoherency))
        XCTAssertTrue(driver.capable(dev, .dirtyTracking))
        XCTAssertFalse(driver.capable(noDirty, .dirtyTracking))
        XCTAssertFalse(driver.capable(dev, .noexec))
        XCTAssertNil(driver.identityDomain, "the kernel mock has no identity domain")
        XCTAssertTrue(driver.userPasidTable)
        XCTAssertEqual(driver.name, "mock")
    }

    func testMockPagingDomainGeometryAndPageSizes() throws {
        let (rig, dev, _) = try rig()
        let huge = try (rig.unit as! MockIOMMU).makeDevice(on: rig.machine, flags: .hugeIOVA)
        let d = try rig.iommu.allocPagingDomain(for: dev)
        XCTAssertEqual(d.pgsizeBitmap, 2048)
        XCTAssertEqual(d.geometry, DomainGeometry(apertureStart: 0x100_0000, apertureEnd: 0x7fff_ffff, forceAperture: true))
        let h = try rig.iommu.allocPagingDomain(for: huge) as! MockDomain
        XCTAssertEqual(h.pgsizeBitmap, 2048 | 512 * 2048)
        let buf = try rig.memory.allocContiguous(bytes: 1 << 20, alignment: 1 << 20)
        try rig.iommu.map(h, iova: Mock.apertureStart, paddr: buf, size: 1 << 20, prot: [.read])
        XCTAssertEqual(h.table.entry(Mock.apertureStart)?.huge, true)
        XCTAssertEqual(h.table.entry(Mock.apertureStart)?.start, true)
        XCTAssertEqual(h.table.entry(Mock.apertureStart + ((1 << 20) - 2048))?.last, true)
        XCTAssertEqual(h.iovaToPhys(Mock.apertureStart + 0x12345), buf + 0x12345)
    }

    func testMockAllocFlags() throws {
        let (rig, dev, driver) = try rig()
        let noDirty = try (rig.unit as! MockIOMMU).makeDevice(on: rig.machine, flags: .noDirty)
        assertErrno(.notSupported, "user data") { try driver.domainAllocPaging(dev, flags: [], userData: [0]) }
        assertErrno(.notSupported, "unknown flag") { try driver.domainAllocPaging(dev, flags: .faultIDValid, userData: nil) }
        assertErrno(.notSupported, "dirty on NO_DIRTY") {
            try driver.domainAllocPaging(noDirty, flags: .dirtyTracking, userData: nil)
        }
        let plain = try driver.domainAllocPaging(dev, flags: [.pasid, .nestParent], userData: nil)
        XCTAssertFalse(plain.ops.contains(.dirtyTracking))
        let dirty = try driver.domainAllocPaging(dev, flags: .dirtyTracking, userData: nil)
        XCTAssertTrue(dirty.ops.contains(.dirtyTracking))
        // A dirty-tracking domain cannot be attached to a NO_DIRTY device.
        assertErrno(.invalidArgument) { try rig.iommu.attachDevice(dirty, to: noDirty) }
        XCTAssertTrue(rig.iommu.domainForDevice(noDirty) === noDirty.group!.defaultDomain)
        try rig.iommu.attachDevice(plain, to: noDirty)
    }

    func testMockDirtyTracking() throws {
        let (rig, dev, _) = try rig()
        let d = try rig.iommu.allocPagingDomain(for: dev, flags: .dirtyTracking) as! MockDomain
        let buf = try rig.buffer(bytes: 8192)
        try rig.iommu.map(d, iova: Mock.apertureStart, paddr: buf, size: 8192, prot: [.read, .write])
        assertErrno(.invalidArgument, "tracking off") { try d.markDirty(iova: Mock.apertureStart, length: 2048) }
        try d.setDirtyTracking(true)
        XCTAssertEqual(try d.markDirty(iova: Mock.apertureStart + 2048, length: 4096), 2)
        XCTAssertEqual(try d.markDirty(iova: Mock.apertureStart + 8192, length: 2048), 0, "unmapped")
        var seen: [IOVA] = []
        try d.readAndClearDirty(iova: Mock.apertureStart, size: 8192, clear: false) { iova, _ in seen.append(iova) }
        XCTAssertEqual(seen, [Mock.apertureStart + 2048, Mock.apertureStart + 4096])
        seen = []
        try d.readAndClearDirty(iova: Mock.apertureStart, size: 8192, clear: true) { iova, _ in seen.append(iova) }
        XCTAssertEqual(seen.count, 2)
        seen = []
        try d.readAndClearDirty(iova: Mock.apertureStart, size: 8192, clear: true) { iova, _ in seen.append(iova) }
        XCTAssertEqual(seen, [], "cleared")
        let plain = try rig.iommu.allocPagingDomain(for: dev)
        assertErrno(.invalidArgument) { try plain.setDirtyTracking(true) }
    }

    func testMockPasid1024Quirk() throws {
        let (rig, dev, _) = try rig()
        let a = try rig.iommu.allocPagingDomain(for: dev), b = try rig.iommu.allocPagingDomain(for: dev)
        let pasid = Mock.reservedTestPasid
        try rig.iommu.attachDevicePasid(a, to: dev, pasid: pasid, handle: AttachHandle())
        assertErrno(.noMemory) { try rig.iommu.replaceDevicePasid(b, on: dev, pasid: pasid, handle: AttachHandle()) }
        XCTAssertTrue(dev.group!.pasidArray[pasid]?.domain === a, "old domain stays")
        XCTAssertTrue(rig.live(dev, pasid))
        // The failure disarmed the quirk: the next replace works, and arms it again.
        try rig.iommu.replaceDevicePasid(b, on: dev, pasid: pasid, handle: AttachHandle())
        XCTAssertTrue(dev.group!.pasidArray[pasid]?.domain === b)
        // Detach (a blocking set) resets it: attach, then replace fails once more.
        rig.iommu.detachDevicePasid(b, from: dev, pasid: pasid)
        try rig.iommu.attachDevicePasid(a, to: dev, pasid: pasid, handle: AttachHandle())
        assertErrno(.noMemory) { try rig.iommu.replaceDevicePasid(b, on: dev, pasid: pasid, handle: AttachHandle()) }
        // Other PASIDs are not affected.
        try rig.iommu.attachDevicePasid(a, to: dev, pasid: 1023, handle: AttachHandle())
        try rig.iommu.replaceDevicePasid(b, on: dev, pasid: 1023, handle: AttachHandle())
    }

    /// `mock_dev_enable_iopf`/`mock_dev_disable_iopf`: the device is on the driver's iopf
    /// queue while at least one domain with a fault handler is attached to it; the last
    /// one leaving answers what is pending.
    func testMockIOPFEnablementFollowsFaultCapableAttachments() throws {
        let (rig, dev, driver) = try rig()
        let queue = try XCTUnwrap(driver.iopfQueue)
        XCTAssertNotNil(driver.pageResponse)
        let handler = KeepingIOPFHandler()
        let a = try rig.iommu.allocPagingDomain(for: dev, flags: [.pasid])
        let b = try rig.iommu.allocPagingDomain(for: dev, flags: [.pasid])
        let plain = try rig.iommu.allocPagingDomain(for: dev, flags: [.pasid])
        a.iopfHandler = handler
        b.iopfHandler = handler
        try rig.iommu.attachDevicePasid(plain, to: dev, pasid: 4, handle: AttachHandle())
        XCTAssertEqual(driver.state(of: dev)?.iopfRefcount, 0, "no handler, no IOPF")
        try rig.iommu.attachDevicePasid(a, to: dev, pasid: 5, handle: AttachHandle())
        XCTAssertEqual(driver.state(of: dev)?.iopfRefcount, 1)
        XCTAssertTrue(queue.attachedDevices.contains { $0 === dev })
        try rig.iommu.attachDevicePasid(b, to: dev, pasid: 6, handle: AttachHandle())
        XCTAssertEqual(driver.state(of: dev)?.iopfRefcount, 2)
        try rig.iommu.replaceDevicePasid(plain, on: dev, pasid: 5, handle: AttachHandle())
        XCTAssertEqual(driver.state(of: dev)?.iopfRefcount, 1, "replace moves the enablement")
        try rig.iommu.reportDeviceFault(dev, IOPFFault(flags: [.lastPage, .pasidValid], pasid: 6, grpid: 1,
                                                       perm: .read, address: 0x1000))
        let group = try XCTUnwrap(handler.groups.first)
        XCTAssertTrue(group.isPending)
        rig.iommu.detachDevicePasid(b, from: dev, pasid: 6)
        XCTAssertEqual(driver.state(of: dev)?.iopfRefcount, 0)
        XCTAssertFalse(queue.attachedDevices.contains { $0 === dev })
        XCTAssertEqual(group.responseCount, 1)
        XCTAssertEqual(rig.iommu.faultLog.responses(forGroup: group.serial).map(\.code), [.invalid])
    }

    /// A driver without `page_response` has no iopf queue: attaching a domain with a
    /// fault handler fails with `ENODEV` and changes nothing.
    func testMockWithoutIOPFRefusesFaultCapableDomains() throws {
        let rig = MockVendor().makeRig(driver: MockIOMMUDriver(iopf: false))
        let dev = try (rig.unit as! MockIOMMU).makeDevice(on: rig.machine, flags: .pasid)
        let driver = rig.unit.driver as! MockIOMMUDriver
        XCTAssertNil(driver.pageResponse)
        XCTAssertNil(driver.iopfQueue)
        let a = try rig.iommu.allocPagingDomain(for: dev, flags: [.pasid])
        a.iopfHandler = KeepingIOPFHandler()
        assertErrno(.noDevice) { try rig.iommu.attachDevicePasid(a, to: dev, pasid: 5, handle: AttachHandle()) }
        XCTAssertNil(dev.group!.pasidArray[5])
        XCTAssertEqual(driver.state(of: dev)?.iopfRefcount, 0)
    }

    func testMockNestedDomain() throws {
        let (rig, dev, driver) = try rig()
        let parent = try rig.iommu.allocPagingDomain(for: dev, flags: .nestParent)
        let notParent = try rig.iommu.allocPagingDomain(for: dev)
        let data: [UInt8] = [0xef, 0xbe, 0xad, 0x0b]
        let nested = try driver.domainAllocNested(dev, parent: parent, flags: [], userData: data) as! MockNestedDomain
        XCTAssertEqual(nested.type, .nested)
        XCTAssertEqual(nested.iotlb, Array(repeating: Mock.iotlbDefault, count: 4))
        assertErrno(.invalidArgument, "parent without NEST_PARENT") {
            try driver.domainAllocNested(dev, parent: notParent, flags: [], userData: data)
        }
        assertErrno(.notSupported, "flag") {
            try driver.domainAllocNested(dev, parent: parent, flags: .dirtyTracking, userData: data)
        }
        assertErrno(.invalidArgument, "short data") { try driver.domainAllocNested(dev, parent: parent, flags: [], userData: [1]) }
        assertErrno(.tooBig, "trailing bytes") {
            try driver.domainAllocNested(dev, parent: parent, flags: [], userData: data + [0, 1])
        }
        var processed = 0
        try nested.cacheInvalidateUser([.init(iotlbID: 1)], processed: &processed)
        XCTAssertEqual(nested.iotlb, [Mock.iotlbDefault, 0, Mock.iotlbDefault, Mock.iotlbDefault])
        assertErrno(.invalidArgument) { try nested.cacheInvalidateUser([.init(iotlbID: 2), .init(iotlbID: 4)], processed: &processed) }
        XCTAssertEqual(processed, 1, "the first entry was applied")
        assertErrno(.notSupported) { try nested.cacheInvalidateUser([.init(flags: 2, iotlbID: 0)], processed: &processed) }
        try nested.cacheInvalidateUser([.init(flags: Mock.invalidateFlagAll, iotlbID: 0)], processed: &processed)
        XCTAssertEqual(nested.iotlb, [0, 0, 0, 0])
    }

    func testMockIOTLBServesUntilInvalidated() throws {
        let (rig, dev, _) = try rig()
        let d = try rig.iommu.allocPagingDomain(for: dev)
        try rig.iommu.attachDevice(d, to: dev)
        let buf = try rig.buffer(fill: 3)
        try rig.iommu.map(d, iova: Mock.apertureStart, paddr: buf, size: 4096, prot: [.read])
        let before = rig.machine.counters.hardware
        _ = try dev.dmaRead(at: Mock.apertureStart, count: 4096)
        _ = try dev.dmaRead(at: Mock.apertureStart, count: 4096)
        let after = rig.machine.counters.hardware
        XCTAssertEqual(after.walks - before.walks, 2, "two 2 KiB pages walked once")
        XCTAssertEqual(after.iotlbHits - before.iotlbHits, 2, "then served from the IOTLB")
        XCTAssertEqual((rig.unit as! MockIOMMU).mockHardware.cachedTranslations, 2)
        rig.iommu.flushIOTLBAll(d)
        XCTAssertEqual((rig.unit as! MockIOMMU).mockHardware.cachedTranslations, 0)
        // An iotlb_sync drops exactly the gathered range.
        _ = try dev.dmaRead(at: Mock.apertureStart, count: 4096)
        XCTAssertEqual(rig.iommu.unmap(d, iova: Mock.apertureStart + 2048, size: 2048), 2048)
        XCTAssertEqual((rig.unit as! MockIOMMU).mockHardware.cachedTranslations, 1)
        XCTAssertEqual(try dev.dmaRead(at: Mock.apertureStart, count: 1), [3])
        XCTAssertThrowsError(try dev.dmaRead(at: Mock.apertureStart + 2048, count: 1)) {
            XCTAssertEqual(($0 as? DMAFault)?.reason, .mockNotMapped)
        }
    }

    func testMockFaultReasons() throws {
        let (rig, dev, _) = try rig()
        rig.iommu.defaultDomainType = .dma
        let owner = NSObject()
        try rig.iommu.deviceClaimDMAOwner(dev, owner: owner)
        XCTAssertThrowsError(try dev.dmaRead(at: Mock.apertureStart, count: 1)) { XCTAssertEqual(($0 as? DMAFault)?.reason, .mockBlocked) }
        XCTAssertThrowsError(try dev.dmaRead(at: Mock.apertureStart, count: 1, pasid: 4)) {
            XCTAssertEqual(($0 as? DMAFault)?.reason, .mockPasidNotAttached)
        }
        XCTAssertEqual(rig.machine.faultLog.count, 2)
        XCTAssertEqual(rig.machine.faultLog.last?.pasid, 4)
    }
}

/// An iopf handler that keeps every group it is given, unanswered.
private final class KeepingIOPFHandler: IOPFHandler, @unchecked Sendable {
    private let lock = Lock()
    private var kept: [IOPFGroup] = []
    var groups: [IOPFGroup] { lock.withLock { kept } }
    func handleIOPF(_ group: IOPFGroup) throws(Errno) { lock.withLock { kept.append(group) } }
}
