import IOMMUConformance
import IOMMUCore
import IOMMUDrivers
import VendorFixtures
import XCTest

/// The SMMUv3 driver's test hooks behind the vendor's `failureInjection` and
/// `driverVariants` capabilities: what each does to the driver, beyond what the
/// conformance checks that use them look at.
final class SMMUv3VendorTests: XCTestCase {
    private let vendor = SMMUv3Vendor()
    /// The DMA owner the tests claim devices for (a user, as iommufd would be).
    private let owner = DMAOwner()
    private final class DMAOwner {}

    private func smmu(_ rig: Rig) -> ArmSMMUv3 { rig.unit as! ArmSMMUv3 }

    /// `failMapAfterPages` lets exactly that many pages through, across calls, then
    /// fails with `ENOMEM` having mapped only those; nil lifts it.
    func testFailMapAfterPagesCountsPagesAcrossCalls() throws {
        let rig = try vendor.makeRig([.pasid])
        let d = try XCTUnwrap(try rig.pagingDomain() as? SMMUv3Domain)
        try assertMapBudgetCountsPagesAcrossCalls(vendor, rig: rig, domain: d, budget: { d.failMapAfterPages })
    }

    /// An injected `set_dev_pasid` failure reaches the core before the driver writes a
    /// CD, an STE or a command; the blocking domain's `set_dev_pasid` is not affected.
    func testFailSetDevPasidTouchesNoHardware() throws {
        let rig = try vendor.makeRig([.pasid])
        let dev = rig.devices[0]
        let unit = smmu(rig)
        let a = try rig.pagingDomain(), b = try rig.pagingDomain()
        try rig.iommu.attachDevicePasid(a, to: dev, pasid: 4)
        try vendor.failSetDevPasid(.noSpace, on: dev)
        unit.clearOperations()
        assertErrno(.noSpace) { try rig.iommu.attachDevicePasid(b, to: dev, pasid: 5) }
        XCTAssertEqual(unit.operations, [], "nothing written for the failed attach")
        XCTAssertFalse(rig.live(dev, 5))
        rig.iommu.detachDevicePasid(a, from: dev, pasid: 4)
        XCTAssertFalse(rig.live(dev, 4), "the blocking set_dev_pasid still runs")
        try vendor.failSetDevPasid(nil, on: dev)
        try rig.iommu.attachDevicePasid(b, to: dev, pasid: 5)
        XCTAssertTrue(rig.live(dev, 5))
        let other = try vendor.makeRig([.pasid])
        XCTAssertThrowsError(try (rig.unit as! ArmSMMUv3).smmuDriver.failSetDevPasid(.noSpace, on: other.devices[0])) {
            XCTAssertEqual($0 as? Errno, .noDevice, "a device of another driver")
        }
    }

    /// The callback log holds the core's callbacks only: when the last PASID goes from a
    /// device whose RID is on the identity domain, the blocking domain re-attaches it to
    /// drop the CD table, and that call of the driver to itself is not logged. With
    /// logging off nothing is kept.
    func testCallLogRecordsTheCoresCallbacksOnly() throws {
        let rig = try vendor.makeRig([.pasid], defaultDomainType: .identity)
        let dev = rig.devices[0]
        let unit = smmu(rig)
        let identity = try XCTUnwrap(rig.driver.identityDomain)
        let a = try rig.pagingDomain()
        vendor.clearDriverCalls(on: unit)
        try rig.iommu.attachDevicePasid(a, to: dev, pasid: 5)
        XCTAssertEqual(try XCTUnwrap(unit.ste(dev.rid)).config, .stage1, "a CD-table STE for the PASID")
        rig.iommu.detachDevicePasid(a, from: dev, pasid: 5)
        XCTAssertEqual(try XCTUnwrap(unit.ste(dev.rid)).config, .bypass, "identity re-attached by the driver")
        XCTAssertEqual(vendor.driverCalls(on: unit).map(\.description), [
            "set_dev_pasid \(a) \(dev.rid) pasid 5 old=- unpublished ok",
            "set_dev_pasid \(rig.driver.blockedDomain!) \(dev.rid) pasid 5 old=\(a) published ok",
        ])
        vendor.clearDriverCalls(on: unit)
        try rig.iommu.deviceClaimDMAOwner(dev, owner: owner)
        try rig.iommu.attachDevice(a, to: dev)
        XCTAssertEqual(vendor.driverCalls(on: unit).map(\.description), [
            "attach_dev \(rig.driver.blockedDomain!) \(dev.rid) pasid - old=\(identity) unpublished ok",
            "attach_dev \(a) \(dev.rid) pasid - old=\(rig.driver.blockedDomain!) unpublished ok",
        ])
        unit.smmuDriver.recordsCalls = false
        XCTAssertEqual(vendor.driverCalls(on: unit), [])
        rig.iommu.detachDevice(a, from: dev)
        XCTAssertEqual(vendor.driverCalls(on: unit), [])
    }

    /// The variants remove exactly their op: paging domains without `set_dev_pasid` (SVA
    /// domains keep theirs), or the blocking domain without it; the core then refuses
    /// PASID attach and the driver refuses a direct call alike.
    func testVariantsRemoveTheirOps() throws {
        let paging = try vendor.makeRig([.pasid], variant: .pagingDomainsWithoutSetDevPasid)
        let dev = paging.devices[0]
        let s1 = try paging.pagingDomain()
        let s2 = try paging.pagingDomain(flags: [.nestParent])
        XCTAssertEqual(s1.ops, DomainOps.paging.subtracting(.setDevPasid))
        XCTAssertEqual(s2.ops, DomainOps.paging.subtracting(.setDevPasid))
        XCTAssertTrue(paging.driver.blockedDomain!.ops.contains(.setDevPasid))
        assertErrno(.notSupported) { try s1.setDevPasid(dev, pasid: 5, old: nil) }
        let sva = try paging.driver.domainAllocSVA(dev, mm: try paging.process())
        XCTAssertEqual(sva.ops, [.setDevPasid])
        sva.free()
        XCTAssertEqual(paging.driver.identityDomain!.ops, [.attachDev])

        let blocked = try vendor.makeRig([.pasid], variant: .blockedDomainWithoutSetDevPasid)
        let blocking = try XCTUnwrap(blocked.driver.blockedDomain)
        XCTAssertEqual(blocking.ops, [.attachDev])
        XCTAssertTrue(try blocked.pagingDomain().ops.contains(.setDevPasid))
        assertErrno(.notSupported) { try blocking.setDevPasid(blocked.devices[0], pasid: 5, old: nil) }
        XCTAssertTrue(blocked.driver.userPasidTable)
        XCTAssertTrue(paging.driver.userPasidTable)
    }

    /// Without `user_pasid_table` a nested STE never enables substreams: a guest's
    /// two-level CD table with 2^20 CDs gives S1CDMax 0 (linear), so no PASID
    /// translates; a guest's linear table of 1024 CDs translates the RID through its
    /// first CD and no PASID. The standard driver keeps the guest's S1CDMax.
    func testWithoutUserPasidTableTheNestedSTEHasNoSubstreams() throws {
        let rig = try vendor.makeRig([.pasid], variant: .withoutUserPasidTable)
        let dev = rig.devices[0]
        let unit = smmu(rig)
        XCTAssertFalse(rig.driver.userPasidTable)
        let parent = try rig.iommu.allocPagingDomain(for: dev, flags: [.nestParent])
        let wide = try SMMUv3Guest(machine: rig.machine, parent: parent)
        XCTAssertEqual(wide.vste.0 & SMMUv3STE.s1CDMaxMask, UInt64(SMMUv3Guest.ssidBits) << 59)
        let nested = try rig.driver.domainAllocNested(dev, parent: parent, flags: [], userData: wide.userData)
        try rig.iommu.deviceClaimDMAOwner(dev, owner: owner)
        try rig.iommu.attachDevice(nested, to: dev)
        var ste = try XCTUnwrap(unit.ste(dev.rid))
        XCTAssertEqual(ste.config, .nested)
        XCTAssertEqual(ste.s1CDMax, 0)
        XCTAssertEqual(ste.s1Fmt, SMMUv3CDTableConfig.linear)
        XCTAssertEqual(ste.s1ContextPointer, wide.vste.0 & SMMUv3STE.s1ContextPtrMask, "the guest's pointer kept")
        XCTAssertFalse(rig.live(dev, 5))
        rig.iommu.detachDevice(nested, from: dev)
        rig.iommu.deviceReleaseDMAOwner(dev)

        let (parent2, linear) = try vendor.nestedDomain(in: rig, for: dev)
        XCTAssertEqual((linear as! SMMUv3NestedDomain).vste.0 & SMMUv3STE.s1CDMaxMask, 10 << 59, "the guest asks for 1024")
        let buf = try rig.buffer(fill: 0x5c)
        try rig.iommu.map(parent2, iova: 0x20_0000, paddr: buf, size: 4096, prot: [.read, .write])
        try rig.iommu.deviceClaimDMAOwner(dev, owner: owner)
        try rig.iommu.attachDevice(linear, to: dev)
        ste = try XCTUnwrap(unit.ste(dev.rid))
        XCTAssertEqual(ste.config, .nested)
        XCTAssertEqual(ste.s1CDMax, 0)
        XCTAssertEqual(try dev.dmaRead(at: 0x20_0000, count: 2), [0x5c, 0x5c], "the RID through CD 0")
        XCTAssertThrowsError(try dev.dmaRead(at: 0x20_0000, count: 1, pasid: 5), "no substreams")

        let standard = try vendor.makeRig([.pasid])
        let sdev = standard.devices[0]
        let (_, full) = try vendor.nestedDomain(in: standard, for: sdev)
        try standard.iommu.attachDeviceAllPasids(full, to: sdev)
        XCTAssertEqual(try XCTUnwrap(smmu(standard).ste(sdev.rid)).s1CDMax, UInt64(SMMUv3Guest.ssidBits))
        XCTAssertTrue(standard.live(sdev, 5))
    }
}
