import IOMMUConformance
import IOMMUCore
@testable import IOMMUDrivers
import XCTest

/// Deliberately buggy SMMUv3 drivers, and what the model catches of each: the bug shows as
/// a wrong translation or a reported violation, as it would on a machine.
final class SMMUv3BugsTests: XCTestCase {
    /// A driver that rewrites an STE without CFGI_STE: the SMMU keeps the cached
    /// stage-2 STE, so after the device is moved to the blocking domain it still
    /// translates through the old domain, and the checker reports it.
    func testMissingCFGIAfterSTEChangeIsCaught() throws {
        let tb = try SMMUv3Testbed(bugs: .skipCFGIAfterSTEWrite)
        let dev = try tb.device(1)
        let domain = try tb.paging(dev, flags: [.nestParent])
        let buf = try tb.buffer([0xAB])
        try tb.iommu.map(domain, iova: 0x10_0000, paddr: buf, size: 4096, prot: [.read])
        try tb.iommu.attachDevice(domain, to: dev)
        XCTAssertEqual(try dev.dmaRead(at: 0x10_0000, count: 1), [0xAB])
        tb.iommu.detachDevice(domain, from: dev)
        try tb.iommu.attachDevice(try XCTUnwrap(tb.driver.blockedDomain), to: dev)
        XCTAssertEqual(try tb.ste(dev).config, .abort, "memory holds the new STE")
        XCTAssertNotNil(tb.smmu.cachedSTE(sid: UInt32(dev.rid.raw)), "the SMMU still caches the old one")
        XCTAssertEqual(try dev.dmaRead(at: 0x10_0000, count: 1), [0xAB], "the stale STE still translates")
        XCTAssertFalse(tb.violations.filter { [.noDMAAfterDetach, .translationAuthority].contains($0.invariant) }.isEmpty,
                       "\(tb.violations)")
    }

    /// The same sequence on the real driver: the blocking STE takes effect at once.
    func testCFGIAfterSTEChangeStopsTheOldTranslation() throws {
        let tb = try SMMUv3Testbed()
        let dev = try tb.device(1)
        let domain = try tb.paging(dev, flags: [.nestParent])
        try tb.iommu.map(domain, iova: 0x10_0000, paddr: try tb.buffer([0xAB]), size: 4096, prot: [.read])
        try tb.iommu.attachDevice(domain, to: dev)
        XCTAssertEqual(try dev.dmaRead(at: 0x10_0000, count: 1), [0xAB])
        tb.iommu.detachDevice(domain, from: dev)
        try tb.iommu.attachDevice(try XCTUnwrap(tb.driver.blockedDomain), to: dev)
        XCTAssertThrowsError(try dev.dmaRead(at: 0x10_0000, count: 1))
        assertNoViolations(tb.machine)
    }

    /// A driver that returns a domain's ASID when its first attachment goes, while another
    /// device's CD still carries it: the checker reports I9 at once, and the next owner of
    /// the ASID would inherit the old entries.
    func testASIDFreedWhileACDUsesItIsCaught() throws {
        let tb = try SMMUv3Testbed(bugs: .freeASIDWhileCDUsesIt)
        let a = try tb.device(1)
        let b = try tb.device(2)
        let domain = try tb.paging(a)
        try tb.iommu.attachDevicePasid(domain, to: a, pasid: 4)
        try tb.iommu.attachDevicePasid(domain, to: b, pasid: 4)
        tb.iommu.detachDevicePasid(domain, from: a, pasid: 4)
        XCTAssertFalse(tb.driver.allocatedASIDs.contains(domain.asid))
        let i9 = tb.violations.filter { $0.invariant == .asidVMIDAccounting }
        XCTAssertFalse(i9.isEmpty)
        XCTAssertEqual(i9.first?.device, b.rid, "\(i9)")
    }

    /// A driver that turns PCI ATS on whatever STE it installs: with the identity default
    /// domain the device gets ATS on a plain bypass STE; the checker reports it, and the
    /// SMMU refuses the device's ATS translation requests (F_BAD_ATS_TREQ).
    func testATSEnabledOnABypassSTEIsCaught() throws {
        let tb = try SMMUv3Testbed(bugs: .atsOnBypassSTE, defaultDomainType: .identity)
        let dev = try tb.device(1, ats: true)
        XCTAssertEqual(try tb.ste(dev).config, .bypass)
        XCTAssertTrue(dev.atsEnabled)
        XCTAssertFalse(tb.violations.filter { $0.invariant == .atsSequencing }.isEmpty, "\(tb.violations)")
        let buf = try tb.buffer([1])
        XCTAssertThrowsError(try dev.dmaRead(at: IOVA(identity: buf), count: 1)) { error in
            XCTAssertEqual((error as? DMAFault)?.reason, SMMUv3Event.ID.badATSTranslationRequest.reason)
        }
    }

    /// The real driver keeps ATS off there, and the device's DMA bypasses.
    func testATSStaysOffOnABypassSTE() throws {
        let tb = try SMMUv3Testbed(defaultDomainType: .identity)
        let dev = try tb.device(1, ats: true)
        XCTAssertFalse(dev.atsEnabled)
        let buf = try tb.buffer([1])
        XCTAssertEqual(try dev.dmaRead(at: IOVA(identity: buf), count: 1), [1])
        assertNoViolations(tb.machine)
    }
}
