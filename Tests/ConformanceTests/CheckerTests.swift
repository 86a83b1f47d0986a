import IOMMUConformance
import IOMMUCore
import IOMMUDrivers
import VendorFixtures
import XCTest

/// The invariant checker against hardware states a buggy driver would leave behind. The
/// Mock hardware is programmed directly, standing in for a driver that wrote the wrong
/// entry (or none), and every test shows the checker naming the invariant, the device,
/// the PASID and the address. The VT-d driver tests show the same for the other rules
/// with deliberately buggy driver builds.
final class CheckerTests: XCTestCase {
    private func rig() throws -> (Rig, PCIDevice, MockHardware) {
        let rig = try MockVendor().makeRig([.pasid])
        rig.machine.checker.isEnabled = true
        return (rig, rig.devices[0], (rig.unit as! MockIOMMU).mockHardware)
    }

    /// DMA after detach: a driver whose PASID teardown left the hardware entry in place lets DMA reach
    /// the detached domain; the checker reports it against the PASID and the IOVA.
    func testDMAAfterDetachIsReportedAsI6() throws {
        let (rig, dev, hw) = try rig()
        let domain = try rig.pagingDomain(flags: [.pasid])
        let iova = rig.iova(domain)
        try rig.iommu.map(domain, iova: iova, paddr: try rig.buffer(fill: 7), size: 4096, prot: [.read, .write])
        try rig.iommu.attachDevicePasid(domain, to: dev, pasid: 9)
        let programmed = rig.unit.hardwareLock.withLock { hw.entry(rid: dev.rid, pasid: 9) }
        XCTAssertEqual(try dev.dmaRead(at: iova, count: 1, pasid: 9), [7])
        rig.iommu.detachDevicePasid(domain, from: dev, pasid: 9)
        XCTAssertThrowsError(try dev.dmaRead(at: iova, count: 1, pasid: 9), "the correct driver blocks")
        XCTAssertTrue(rig.machine.checker.violations.isEmpty)

        rig.unit.hardwareLock.withLock { hw.program(rid: dev.rid, pasid: 9, programmed) }  // the bug
        XCTAssertEqual(try dev.dmaRead(at: iova, count: 1, pasid: 9), [7])
        let v = rig.machine.checker.violations(of: .noDMAAfterDetach)
        XCTAssertEqual(v.count, 1)
        XCTAssertEqual(v.first?.device, dev.rid)
        XCTAssertEqual(v.first?.pasid, 9)
        XCTAssertEqual(v.first?.address, iova)
    }

    /// Translation by a domain that is not attached: the hardware translates the RID through a table other than the domain the
    /// core attached (a driver that programmed the wrong domain).
    func testTranslationByTheWrongDomainIsReportedAsI1() throws {
        let (rig, dev, hw) = try rig()
        let attached = try rig.pagingDomain()
        let other = try rig.pagingDomain()
        let iova = rig.iova(attached)
        try rig.iommu.map(attached, iova: iova, paddr: try rig.buffer(fill: 1), size: 4096, prot: [.read, .write])
        try rig.iommu.map(other, iova: iova, paddr: try rig.buffer(fill: 2), size: 4096, prot: [.read, .write])
        try rig.iommu.attachDevice(attached, to: dev)
        let otherEntry = MockHardware.Entry.paging(table: try XCTUnwrap(other as? MockDomain).table, serial: other.serial)
        rig.unit.hardwareLock.withLock { hw.program(rid: dev.rid, pasid: nil, otherEntry) }  // the bug
        XCTAssertEqual(try dev.dmaRead(at: iova, count: 1), [2], "the device reached the other domain's page")
        let v = rig.machine.checker.violations(of: .translationAuthority)
        XCTAssertEqual(v.count, 1, "\(rig.machine.checker.violations)")
        XCTAssertEqual(v.first?.device, dev.rid)
        XCTAssertNil(v.first?.pasid)
    }

    /// PASID published before it was programmed: a driver whose `set_dev_pasid` reports success without writing the hardware
    /// entry makes the core publish a PASID-array entry that is not live.
    func testPublishingBeforeProgrammingIsReportedAsI11() throws {
        let (rig, dev, _) = try rig()
        final class SilentDomain: IOMMUDomain, @unchecked Sendable {
            override func setDevPasid(_ dev: PCIDevice, pasid: PASID, old: IOMMUDomain?) throws(Errno) {}
        }
        let silent = SilentDomain(type: .unmanaged, owner: rig.driver, ops: [.attachDev, .setDevPasid],
                                  pgsizeBitmap: 4096)
        try rig.iommu.attachDevicePasid(silent, to: dev, pasid: 5)
        let v = rig.machine.checker.violations(of: .entryVisibility)
        XCTAssertEqual(v.count, 1)
        XCTAssertEqual(v.first?.pasid, 5)
        XCTAssertEqual(v.first?.event, "pasid publish")
    }

    /// The checker costs nothing when off: the same bug goes unreported.
    func testCheckerOffReportsNothing() throws {
        let (rig, dev, hw) = try rig()
        rig.machine.checker.isEnabled = false
        let domain = try rig.pagingDomain(flags: [.pasid])
        let iova = rig.iova(domain)
        try rig.iommu.map(domain, iova: iova, paddr: try rig.buffer(fill: 7), size: 4096, prot: [.read, .write])
        try rig.iommu.attachDevicePasid(domain, to: dev, pasid: 9)
        let programmed = rig.unit.hardwareLock.withLock { hw.entry(rid: dev.rid, pasid: 9) }
        rig.iommu.detachDevicePasid(domain, from: dev, pasid: 9)
        rig.unit.hardwareLock.withLock { hw.program(rid: dev.rid, pasid: 9, programmed) }
        XCTAssertEqual(try dev.dmaRead(at: iova, count: 1, pasid: 9), [7])
        XCTAssertTrue(rig.machine.checker.violations.isEmpty)
    }
}
