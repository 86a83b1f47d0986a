import IOMMUCore
import IOMMUDrivers
import XCTest

/// The conformance suite (spec/kernel-iommu.md §5 checks 1–24 and 26–35, plus the attach
/// shapes, global PASIDs, reserved regions, groups and DMA) run over the Mock vendor.
/// Another vendor gets the same one-line tests over its own fixture.
final class MockConformanceTests: XCTestCase {
    let checks = ConformanceChecks(vendor: MockVendor())

    func testCheck01PasidZeroIsEINVAL() throws { try checks.check01() }
    func testCheck02DomainWithoutSetDevPasidIsEOPNOTSUPP() throws { try checks.check02() }
    func testCheck03BlockedDomainWithoutSetDevPasidIsEOPNOTSUPP() throws {
        let rig = MockVendor().makeEmptyRig(driver: MockIOMMUDriver(blockedDomainSetsPasid: false))
        rig.devices.append(try (rig.unit as! MockIOMMU).makeDevice(on: rig.machine, flags: .pasid))
        try checks.check03(blockedWithoutSetDevPasid: rig)
    }
    func testCheck04ForeignDriverDomainIsEINVAL() throws { try checks.check04() }
    func testCheck05PasidBeyondMaxPasidsIsEINVALAndNonPasidMemberIgnored() throws { try checks.check05() }
    func testCheck06SecondAttachOfSamePasidIsEBUSY() throws { try checks.check06() }
    func testCheck07FailedSetDevPasidRollsBackGroup() throws { try checks.check07() }
    func testCheck08ReplaceOfUnattachedPasidIsEINVAL() throws { try checks.check08() }
    func testCheck09ReplaceWithStoredHandleIsEINVAL() throws { try checks.check09() }
    func testCheck10FailedReplaceKeepsOldDomain() throws { try checks.check10() }
    func testCheck11DetachBlocksBeforeErasingEntry() throws { try checks.check11() }
    func testCheck12AttachDeviceOnTwoDeviceGroupIsEINVAL() throws { try checks.check12() }
    func testCheck13AttachGroupWhileOnOtherDomainIsEBUSY() throws { try checks.check13() }
    func testCheck14DetachRestoresDefaultOrBlockingDomain() throws { try checks.check14() }
    func testCheck15AttachDuringResetIsEBUSYAndRestoredAfter() throws { try checks.check15() }
    func testCheck16AttachHandleGetErrors() throws { try checks.check16() }
    func testCheck17ClaimWhileDMAAPIDriverBoundIsEPERM() throws { try checks.check17() }
    func testCheck18ClaimWithPasidAttachedIsEBUSY() throws { try checks.check18() }
    func testCheck19SameOwnerCookieSharesGroup() throws { try checks.check19() }
    func testCheck20UseDefaultDomainOnOwnedGroupIsEBUSY() throws { try checks.check20() }
    func testCheck20UseDefaultDomainBeforeDefaultDomainIsEPROBE_DEFER() throws { try checks.check20ProbeDefer() }
    func testCheck21ResvDirectDeviceCannotBeBlocked() throws { try checks.check21() }
    func testCheck21ReleaseOfResvDirectDeviceUsesIdentity() throws { try checks.check21Release() }
    func testCheck22UnbindWithPasidAttachedWarns() throws { try checks.check22() }
    func testCheck23MapRejectsMisalignedSize() throws { try checks.check23() }
    func testCheck24MapOnNonPagingDomainIsEINVAL() throws { try checks.check24() }
    func testCheck26FailedMapLeavesNothingMapped() throws { try checks.check26() }
    func testCheck27PageSizeSelection() throws { try checks.check27() }
    func testCheck28MapOverExistingLeafIsEEXIST() throws { try checks.check28() }
    func testCheck29UnmapAtUnmappedIOVAReturnsZero() throws { try checks.check29() }
    func testCheck30UnmapInsideBlockDoesNotSplit() throws { try checks.check30() }
    func testCheck31UnmapAggregatesMapsAndStopsAtHole() throws { try checks.check31() }
    func testCheck32DMAFaultsAfterUnmapAndStaleWindowIsTracked() throws { try checks.check32() }
    func testCheck33TablePagesFreedOnlyAfterSync() throws { try checks.check33() }
    func testCheck34IovaToPhysOnIdentityAndBlocked() throws { try checks.check34() }
    func testCheck35FlushQueueDefersIOVAReuse() throws { try checks.check35() }

    func testAttachShapesRIDOnePasidAllPasids() throws { try checks.attachShapes() }
    func testAllPasidsShapeErrors() throws { try checks.allPasidsErrors() }
    func testAllPasidsShapeNeedsUserPasidTable() throws {
        let rig = MockVendor().makeEmptyRig(driver: MockIOMMUDriver(userPasidTable: false))
        let dev = try (rig.unit as! MockIOMMU).makeDevice(on: rig.machine, flags: .pasid)
        rig.devices.append(dev)
        let (_, nested) = try MockVendor().nestedDomain(on: rig, for: dev)
        assertErrno(.notSupported) { try rig.iommu.attachDeviceAllPasids(nested, to: dev) }
        XCTAssertTrue(dev.group!.domain === dev.group!.defaultDomain)
        // Without the user PASID table a nested RID translates only the RID.
        try rig.iommu.attachDevice(nested, to: dev)
        XCTAssertFalse(dev.group!.ridOwnsAllPasids)
        XCTAssertFalse(rig.live(dev, 5))
    }
    func testGlobalPasidRangeAndUniqueness() throws { try checks.globalPasids() }
    func testI13ResvDirectIdentityMappedInDefaultDomain() throws { try checks.reservedDirectIdentity() }
    func testGroupFormationFollowsACS() throws { try checks.groupFormation() }
    func testDMABytesThroughRID() throws { try checks.dmaThroughRID() }
    func testDMABytesThroughPasids() throws { try checks.dmaThroughPasid() }
    func testDMAAPIStrictMapUnmap() throws { try checks.dmaAPIStrict() }
    func testDMAAPIExhaustionAndFlushQueueTrigger() throws { try checks.dmaAPILimits() }
}
