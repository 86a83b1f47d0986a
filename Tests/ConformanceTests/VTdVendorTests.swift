import IOMMUConformance
import IOMMUCore
import IOMMUDrivers
import VendorFixtures
import XCTest

/// The VT-d driver's test hooks behind the vendor's `failureInjection` and
/// `driverVariants` capabilities: what each does to the driver, beyond what the
/// conformance checks that use them look at.
final class VTdVendorTests: XCTestCase {
    private let vendor = VTdVendor()
    /// The DMA owner the tests claim devices for (a user, as iommufd would be).
    private let owner = DMAOwner()
    private final class DMAOwner {}

    private func dmar(_ rig: Rig) -> IntelIOMMU { rig.unit as! IntelIOMMU }

    /// `failMapAfterPages` lets exactly that many pages through, across calls and in the
    /// page size of each call, then fails with `ENOMEM` having mapped only those; nil
    /// lifts it.
    func testFailMapAfterPagesCountsPagesAcrossCalls() throws {
        let rig = try vendor.makeRig([.pasid])
        let d = try XCTUnwrap(try rig.pagingDomain() as? DMARDomain)
        try assertMapBudgetCountsPagesAcrossCalls(vendor, rig: rig, domain: d, budget: { d.failMapAfterPages })

        // A 2 MiB page is one page of the budget.
        let mib2: UInt64 = 2 << 20
        let big = try rig.memory.allocContiguous(bytes: Int(2 * mib2), alignment: Int(mib2))
        try vendor.failMapPages(after: 1, in: d)
        var mapped: UInt64 = 0
        assertErrno(.noMemory) {
            try d.mapPages(iova: IOVA(rawValue: 8 * mib2), paddr: big, pgsize: mib2, pgcount: 2, prot: [.read],
                           mapped: &mapped)
        }
        XCTAssertEqual(mapped, mib2)
        XCTAssertEqual(d.iovaToPhys(IOVA(rawValue: 8 * mib2 + 0x1000)), big + 0x1000)
        XCTAssertEqual(d.iovaToPhys(IOVA(rawValue: 9 * mib2)), 0)
        XCTAssertThrowsError(try vendor.failMapPages(after: 1, in: try XCTUnwrap(rig.driver.identityDomain)))
    }

    /// An injected `set_dev_pasid` failure reaches the core before the driver writes a
    /// PASID entry, takes a DID or cache tags, or queues a descriptor, for paging and
    /// identity domains alike; the blocking domain's `set_dev_pasid` is not affected.
    func testFailSetDevPasidTouchesNoHardware() throws {
        let rig = try vendor.makeRig([.pasid])
        let dev = rig.devices[0]
        let unit = dmar(rig)
        let a = try rig.pagingDomain(), b = try rig.pagingDomain()
        let identity = try XCTUnwrap(rig.driver.identityDomain)
        try rig.iommu.attachDevicePasid(a, to: dev, pasid: 4)
        let dids = unit.allocatedDIDs
        try vendor.failSetDevPasid(.noSpace, on: dev)
        unit.clearOperations()
        assertErrno(.noSpace) { try rig.iommu.attachDevicePasid(b, to: dev, pasid: 5) }
        assertErrno(.noSpace) { try rig.iommu.attachDevicePasid(identity, to: dev, pasid: 6) }
        assertErrno(.noSpace) { try rig.iommu.replaceDevicePasid(b, on: dev, pasid: 4, handle: AttachHandle()) }
        XCTAssertEqual(unit.operations, [], "nothing written or queued for the failed attaches")
        XCTAssertEqual(unit.allocatedDIDs, dids, "no DID taken")
        XCTAssertNil(unit.did(for: b))
        // b holds no cache tag on the unit: its unmap flushes nothing.
        let buf = try rig.buffer()
        try rig.iommu.map(b, iova: rig.iova(b), paddr: buf, size: 4096, prot: [.read])
        XCTAssertEqual(rig.iommu.unmap(b, iova: rig.iova(b), size: 4096), 4096)
        XCTAssertEqual(unit.operations, [], "no cache tag for the failed attach")
        XCTAssertFalse(rig.live(dev, 5) || rig.live(dev, 6))
        XCTAssertTrue(rig.live(dev, 4), "the failed replace kept the old domain")
        rig.iommu.detachDevicePasid(a, from: dev, pasid: 4)
        XCTAssertFalse(rig.live(dev, 4), "the blocking set_dev_pasid still runs")
        XCTAssertNotEqual(unit.operations, [])
        try vendor.failSetDevPasid(nil, on: dev)
        try rig.iommu.attachDevicePasid(b, to: dev, pasid: 5)
        XCTAssertTrue(rig.live(dev, 5))
        let other = try vendor.makeRig([.pasid])
        XCTAssertThrowsError(try unit.intelDriver.failSetDevPasid(.noSpace, on: other.devices[0])) {
            XCTAssertEqual($0 as? Errno, .noDevice, "a device of another driver")
        }
    }

    /// An injected failure stops an SVA bind before the device joins the iopf queue.
    func testFailSetDevPasidStopsSVABindFirst() throws {
        let rig = try vendor.makeRig([.pri])
        let dev = rig.devices[0]
        let unit = dmar(rig)
        let mm = try rig.process()
        try vendor.failSetDevPasid(.noMemory, on: dev)
        unit.clearOperations()
        assertErrno(.noMemory) { try rig.iommu.svaBindDevice(dev, mm: mm) }
        XCTAssertEqual(unit.operations, [])
        XCTAssertEqual(unit.intelDriver.deviceInfo(dev)?.iopfRefcount, 0)
        XCTAssertEqual(vendor.driverCalls(on: unit).last?.succeeded, false)
        try vendor.failSetDevPasid(nil, on: dev)
        let handle = try rig.iommu.svaBindDevice(dev, mm: mm)
        XCTAssertEqual(unit.intelDriver.deviceInfo(dev)?.iopfRefcount, 1)
        rig.iommu.svaUnbindDevice(handle)
    }

    /// The callback log holds the core's `attach_dev` and `set_dev_pasid` calls on every
    /// domain kind, with the PASID slot as the core had it; with logging off nothing is
    /// kept.
    func testCallLogRecordsTheCoresCallbacks() throws {
        let rig = try vendor.makeRig([.pasid], defaultDomainType: .identity)
        let dev = rig.devices[0]
        let unit = dmar(rig)
        let identity = try XCTUnwrap(rig.driver.identityDomain)
        let blocked = try XCTUnwrap(rig.driver.blockedDomain)
        let a = try rig.pagingDomain()
        let s2 = try rig.pagingDomain(flags: [.nestParent])
        XCTAssertEqual((s2 as? DMARDomain)?.stage, .second)
        vendor.clearDriverCalls(on: unit)
        try rig.iommu.attachDevicePasid(a, to: dev, pasid: 5)
        try rig.iommu.attachDevicePasid(s2, to: dev, pasid: 6)
        try rig.iommu.attachDevicePasid(identity, to: dev, pasid: 7)
        rig.iommu.detachDevicePasid(a, from: dev, pasid: 5)
        rig.iommu.detachDevicePasid(s2, from: dev, pasid: 6)
        rig.iommu.detachDevicePasid(identity, from: dev, pasid: 7)
        XCTAssertEqual(vendor.driverCalls(on: unit).map(\.description), [
            "set_dev_pasid \(a) \(dev.rid) pasid 5 old=- unpublished ok",
            "set_dev_pasid \(s2) \(dev.rid) pasid 6 old=- unpublished ok",
            "set_dev_pasid \(identity) \(dev.rid) pasid 7 old=- unpublished ok",
            "set_dev_pasid \(blocked) \(dev.rid) pasid 5 old=\(a) published ok",
            "set_dev_pasid \(blocked) \(dev.rid) pasid 6 old=\(s2) published ok",
            "set_dev_pasid \(blocked) \(dev.rid) pasid 7 old=\(identity) published ok",
        ])
        vendor.clearDriverCalls(on: unit)
        try rig.iommu.deviceClaimDMAOwner(dev, owner: owner)
        try rig.iommu.attachDevice(a, to: dev)
        XCTAssertEqual(vendor.driverCalls(on: unit).map(\.description), [
            "attach_dev \(blocked) \(dev.rid) pasid - old=\(identity) unpublished ok",
            "attach_dev \(a) \(dev.rid) pasid - old=\(blocked) unpublished ok",
        ])
        XCTAssertEqual(vendor.driverCalls(on: unit).map(\.blocking), [true, false])
        unit.intelDriver.recordsCalls = false
        XCTAssertEqual(vendor.driverCalls(on: unit), [])
        rig.iommu.detachDevice(a, from: dev)
        XCTAssertEqual(vendor.driverCalls(on: unit), [])
        unit.intelDriver.recordsCalls = true

        // SVA: the bind's set_dev_pasid and the unbind's blocking one.
        let sRig = try vendor.makeRig([.pri])
        let sdev = sRig.devices[0]
        let sunit = dmar(sRig)
        vendor.clearDriverCalls(on: sunit)
        let handle = try sRig.iommu.svaBindDevice(sdev, mm: try sRig.process())
        sRig.iommu.svaUnbindDevice(handle)
        let calls = vendor.driverCalls(on: sunit)
        XCTAssertEqual(calls.map(\.op), [.setDevPasid, .setDevPasid])
        XCTAssertEqual(calls.map(\.blocking), [false, true])
        XCTAssertEqual(calls.map(\.succeeded), [true, true])
        XCTAssertEqual(calls.map(\.entryPublished), [false, true])
        XCTAssertEqual(Set(calls.map(\.pasid)).count, 1)
        XCTAssertTrue(calls[0].domain.hasPrefix("SVA"), calls[0].domain)
    }

    /// The variants remove exactly their op: paging domains (first and second stage)
    /// without `set_dev_pasid` (identity and SVA domains keep theirs), or the blocking
    /// domain without it; the core then refuses PASID attach and the driver refuses a
    /// direct call alike. `withoutUserPasidTable` is the standard driver.
    func testVariantsRemoveTheirOps() throws {
        let paging = try vendor.makeRig([.pri],
                                        variant: .pagingDomainsWithoutSetDevPasid)
        let dev = paging.devices[0]
        let s1 = try paging.pagingDomain()
        let s2 = try paging.pagingDomain(flags: [.nestParent])
        XCTAssertEqual((s1 as? DMARDomain)?.stage, .first)
        XCTAssertEqual((s2 as? DMARDomain)?.stage, .second)
        XCTAssertFalse(s1.ops.contains(.setDevPasid))
        XCTAssertFalse(s2.ops.contains(.setDevPasid))
        XCTAssertTrue(s1.ops.contains(.attachDev) && s1.ops.contains(.mapPages))
        XCTAssertTrue(paging.driver.blockedDomain!.ops.contains(.setDevPasid))
        XCTAssertTrue(paging.driver.identityDomain!.ops.contains(.setDevPasid))
        assertErrno(.notSupported) { try s1.setDevPasid(dev, pasid: 5, old: nil) }
        assertErrno(.notSupported) { try paging.iommu.attachDevicePasid(s2, to: dev, pasid: 5) }
        XCTAssertFalse(paging.live(dev, 5))
        let sva = try paging.driver.domainAllocSVA(dev, mm: try paging.process())
        XCTAssertEqual(sva.ops, [.setDevPasid])
        sva.free()

        let blocked = try vendor.makeRig([.pasid], variant: .blockedDomainWithoutSetDevPasid)
        let blocking = try XCTUnwrap(blocked.driver.blockedDomain)
        XCTAssertEqual(blocking.ops, [.attachDev])
        XCTAssertTrue(try blocked.pagingDomain().ops.contains(.setDevPasid))
        assertErrno(.notSupported) { try blocking.setDevPasid(blocked.devices[0], pasid: 5, old: nil) }
        assertErrno(.notSupported) { try blocked.iommu.attachDevicePasid(try blocked.pagingDomain(), to: blocked.devices[0], pasid: 5) }

        let noUser = try vendor.makeRig([.pasid], variant: .withoutUserPasidTable)
        XCTAssertFalse(noUser.driver.userPasidTable)
        XCTAssertTrue(try noUser.pagingDomain().ops.contains(.setDevPasid))
        XCTAssertTrue(noUser.driver.blockedDomain!.ops.contains(.setDevPasid))
        XCTAssertFalse(try vendor.makeRig([.pasid]).driver.userPasidTable)
    }
}
