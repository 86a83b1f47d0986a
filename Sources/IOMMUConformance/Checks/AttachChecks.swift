import IOMMUCore
import XCTest

// Attach: PASID attach and replace, RID attach of groups, reset (checks 1-16).

extension ConformanceSuite {
    static let attachChecks: [ConformanceCheck] = [
        .check01PasidZeroIsEINVAL, .check02DomainWithoutSetDevPasidIsEOPNOTSUPP,
        .check03BlockedDomainWithoutSetDevPasidIsEOPNOTSUPP, .check04ForeignDriverDomainIsEINVAL,
        .check05PasidBeyondMaxPasidsIsEINVALAndNonPasidMemberIgnored, .check06SecondAttachOfSamePasidIsEBUSY,
        .check07FailedSetDevPasidRollsBackTheGroup, .check08ReplaceOfUnattachedPasidIsEINVAL,
        .check09ReplaceWithTheStoredHandleIsEINVAL, .check10FailedReplaceKeepsTheOldDomain,
        .check11DetachBlocksBeforeErasingTheEntry, .check12AttachDeviceOnTwoDeviceGroupIsEINVAL,
        .check13AttachWhileOnAnotherDomainIsEBUSY, .check14DetachRestoresDefaultOrBlockingDomain,
        .check15AttachDuringResetIsEBUSYAndStateIsRestoredAfter, .check16AttachHandleGetErrors,
    ]
}

extension ConformanceCheck {
    /// Check 1: `iommu_attach_device_pasid` with PASID 0 (`IOMMU_NO_PASID`) is `EINVAL`
    /// and changes nothing.
    public static var check01PasidZeroIsEINVAL: ConformanceCheck {
        ConformanceCheck(requires: .pasid) { vendor in
            let rig = try vendor.makeRig([.pasid])
            let dev = rig.devices[0]
            let domain = try rig.pagingDomain()
            assertErrno(.invalidArgument) { try rig.iommu.attachDevicePasid(domain, to: dev, pasid: 0) }
            XCTAssertTrue(dev.group!.pasidArray.isEmpty)
            XCTAssertTrue(rig.iommu.domainForDevice(dev) === dev.group!.defaultDomain)
        }
    }

    /// Check 2: PASID attach of a domain whose ops lack `set_dev_pasid` is `EOPNOTSUPP`;
    /// nothing is programmed.
    public static var check02DomainWithoutSetDevPasidIsEOPNOTSUPP: ConformanceCheck {
        ConformanceCheck(requires: [.pasid, .driverVariants]) { vendor in
            let rig = try vendor.makeRig([.pasid], variant: .pagingDomainsWithoutSetDevPasid)
            let dev = rig.devices[0]
            let domain = try rig.pagingDomain()
            XCTAssertFalse(domain.ops.contains(.setDevPasid), "the variant's paging domains lack set_dev_pasid")
            assertErrno(.notSupported) { try rig.iommu.attachDevicePasid(domain, to: dev, pasid: 5) }
            XCTAssertNil(dev.group!.pasidArray[5])
            XCTAssertFalse(rig.live(dev, 5))
        }
    }

    /// Check 3: with a blocked domain that lacks `set_dev_pasid` the core could never
    /// remove a PASID, so PASID attach is `EOPNOTSUPP` and nothing is programmed.
    public static var check03BlockedDomainWithoutSetDevPasidIsEOPNOTSUPP: ConformanceCheck {
        ConformanceCheck(requires: [.pasid, .driverVariants]) { vendor in
            let rig = try vendor.makeRig([.pasid], variant: .blockedDomainWithoutSetDevPasid)
            let dev = rig.devices[0]
            let domain = try rig.pagingDomain()
            assertErrno(.notSupported) { try rig.iommu.attachDevicePasid(domain, to: dev, pasid: 5) }
            XCTAssertTrue(dev.group!.pasidArray.isEmpty)
            XCTAssertFalse(rig.live(dev, 5))
        }
    }

    /// Check 4: a domain allocated by another driver object (`domain->owner` differs) is
    /// `EINVAL` for RID attach and, with PASIDs, for PASID attach; nothing changes.
    public static var check04ForeignDriverDomainIsEINVAL: ConformanceCheck {
        ConformanceCheck { vendor in
            let rig = try vendor.makeRig([.pasid])
            let dev = rig.devices[0]
            let foreign = try vendor.makeRig([.pasid]).pagingDomain()
            assertErrno(.invalidArgument) { try rig.iommu.attachDevice(foreign, to: dev) }
            if vendor.has(.pasid) {
                assertErrno(.invalidArgument) { try rig.iommu.attachDevicePasid(foreign, to: dev, pasid: 5) }
            }
            XCTAssertTrue(dev.group!.pasidArray.isEmpty)
            XCTAssertTrue(rig.iommu.domainForDevice(dev) === dev.group!.defaultDomain)
        }
    }

    /// Check 5: a PASID at or above a PASID-capable member's `max_pasids` is `EINVAL`; a
    /// member without PASID is ignored for the check and never programmed.
    public static var check05PasidBeyondMaxPasidsIsEINVALAndNonPasidMemberIgnored: ConformanceCheck {
        ConformanceCheck(requires: .pasid) { vendor in
            let rig = try vendor.makeRig([.pasid, .noPasid], topology: .sharedGroup)
            let (withPasid, without) = (rig.devices[0], rig.devices[1])
            XCTAssertTrue(withPasid.group === without.group)
            XCTAssertEqual(without.maxPasids, 0)
            let domain = try rig.pagingDomain()
            let beyond = PASID(rawValue: withPasid.maxPasids), last = PASID(rawValue: withPasid.maxPasids - 1)
            assertErrno(.invalidArgument) { try rig.iommu.attachDevicePasid(domain, to: withPasid, pasid: beyond) }
            XCTAssertTrue(withPasid.group!.pasidArray.isEmpty)
            // Attaching through the non-PASID member still programs the PASID-capable one.
            try rig.iommu.attachDevicePasid(domain, to: without, pasid: last)
            XCTAssertTrue(rig.live(withPasid, last))
            XCTAssertFalse(rig.live(without, last))
            XCTAssertTrue(withPasid.group!.pasidArray[last]?.domain === domain)
        }
    }

    /// Check 6: a second attach of an attached PASID is `EBUSY` (same or another
    /// domain), and the first attachment keeps translating.
    public static var check06SecondAttachOfSamePasidIsEBUSY: ConformanceCheck {
        ConformanceCheck(requires: .pasid) { vendor in
            let rig = try vendor.makeRig([.pasid])
            let dev = rig.devices[0]
            let a = try rig.pagingDomain(), b = try rig.pagingDomain()
            try rig.iommu.map(a, iova: rig.iova(a), paddr: try rig.buffer(fill: 0xaa), size: 4096, prot: [.read, .write])
            try rig.iommu.attachDevicePasid(a, to: dev, pasid: 9)
            assertErrno(.busy) { try rig.iommu.attachDevicePasid(a, to: dev, pasid: 9) }
            assertErrno(.busy) { try rig.iommu.attachDevicePasid(b, to: dev, pasid: 9) }
            XCTAssertTrue(dev.group!.pasidArray[9]?.domain === a)
            XCTAssertEqual(try dev.dmaRead(at: rig.iova(a), count: 4, pasid: 9), [0xaa, 0xaa, 0xaa, 0xaa])
        }
    }

    /// Check 7: when `set_dev_pasid` fails on the second device of a two-device group,
    /// the first is rolled back through the blocked domain's `set_dev_pasid`, the PASID
    /// slot is released and the errno returned; once the failure is gone the same attach
    /// succeeds.
    public static var check07FailedSetDevPasidRollsBackTheGroup: ConformanceCheck {
        ConformanceCheck(requires: [.pasid, .failureInjection]) { vendor in
            let rig = try vendor.makeRig([.pasid, .pasid], topology: .sharedGroup)
            let (d1, d2) = (rig.devices[0], rig.devices[1])
            let domain = try rig.pagingDomain()
            try vendor.failSetDevPasid(.noSpace, on: d2)
            vendor.clearDriverCalls(on: rig.unit)
            assertErrno(.noSpace) { try rig.iommu.attachDevicePasid(domain, to: d1, pasid: 3) }
            XCTAssertNil(d1.group!.pasidArray[3], "slot released")
            XCTAssertFalse(rig.live(d1, 3), "device 1 rolled back")
            XCTAssertFalse(rig.live(d2, 3))
            let calls = vendor.driverCalls(on: rig.unit).filter { $0.op == .setDevPasid }
            XCTAssertEqual(calls.map(\.rid), [d1.rid, d2.rid, d1.rid])
            XCTAssertEqual(calls.map(\.succeeded), [true, false, true])
            if calls.count == 3 {
                XCTAssertTrue(calls[2].blocking, "rollback goes through the blocked domain")
                XCTAssertEqual(calls[2].old, "\(domain)")
            }
            try vendor.failSetDevPasid(nil, on: d2)
            try rig.iommu.attachDevicePasid(domain, to: d1, pasid: 3)
            XCTAssertTrue(rig.live(d1, 3) && rig.live(d2, 3))
        }
    }

    /// Check 8: `iommu_replace_device_pasid` on a PASID that is not attached is `EINVAL`
    /// and leaves it unattached (and its slot free).
    public static var check08ReplaceOfUnattachedPasidIsEINVAL: ConformanceCheck {
        ConformanceCheck(requires: .pasid) { vendor in
            let rig = try vendor.makeRig([.pasid])
            let dev = rig.devices[0]
            let domain = try rig.pagingDomain()
            assertErrno(.invalidArgument) {
                try rig.iommu.replaceDevicePasid(domain, on: dev, pasid: 8, handle: AttachHandle())
            }
            XCTAssertNil(dev.group!.pasidArray[8])
            XCTAssertFalse(rig.live(dev, 8))
            try rig.iommu.attachDevicePasid(domain, to: dev, pasid: 8)
        }
    }

    /// Check 9: replace with the handle already stored at the PASID, or with no handle,
    /// is `EINVAL` (with a WARN) and changes nothing; a fresh handle replaces.
    public static var check09ReplaceWithTheStoredHandleIsEINVAL: ConformanceCheck {
        ConformanceCheck(requires: .pasid) { vendor in
            let rig = try vendor.makeRig([.pasid])
            let dev = rig.devices[0]
            let a = try rig.pagingDomain(), b = try rig.pagingDomain()
            let handle = AttachHandle()
            try rig.iommu.attachDevicePasid(a, to: dev, pasid: 4, handle: handle)
            assertErrno(.invalidArgument) { try rig.iommu.replaceDevicePasid(b, on: dev, pasid: 4, handle: handle) }
            XCTAssertTrue(handle.domain === a)
            XCTAssertTrue(dev.group!.pasidArray[4]?.domain === a)
            XCTAssertTrue(rig.machine.warnings.contains { $0.function == "iommu_replace_device_pasid" })
            assertErrno(.invalidArgument) { try rig.iommu.replaceDevicePasid(b, on: dev, pasid: 4, handle: nil) }
            XCTAssertTrue(dev.group!.pasidArray[4]?.domain === a)
            try rig.iommu.replaceDevicePasid(b, on: dev, pasid: 4, handle: AttachHandle())
            XCTAssertTrue(dev.group!.pasidArray[4]?.domain === b)
        }
    }

    /// Check 10: a replace whose `set_dev_pasid` fails leaves the old domain translating
    /// the PASID and its handle in the PASID array.
    public static var check10FailedReplaceKeepsTheOldDomain: ConformanceCheck {
        ConformanceCheck(requires: [.pasid, .failureInjection]) { vendor in
            let rig = try vendor.makeRig([.pasid])
            let dev = rig.devices[0]
            let a = try rig.pagingDomain(), b = try rig.pagingDomain()
            try rig.iommu.map(a, iova: rig.iova(a), paddr: try rig.buffer(fill: 0xa1), size: 4096, prot: [.read, .write])
            try rig.iommu.map(b, iova: rig.iova(b), paddr: try rig.buffer(fill: 0xb2), size: 4096, prot: [.read, .write])
            let old = AttachHandle()
            try rig.iommu.attachDevicePasid(a, to: dev, pasid: 6, handle: old)
            try vendor.failSetDevPasid(.noMemory, on: dev)
            assertErrno(.noMemory) { try rig.iommu.replaceDevicePasid(b, on: dev, pasid: 6, handle: AttachHandle()) }
            try vendor.failSetDevPasid(nil, on: dev)
            guard case .handle(let stored)? = dev.group!.pasidArray[6] else { return XCTFail("the PASID's entry is gone") }
            XCTAssertTrue(stored === old && stored.domain === a)
            XCTAssertEqual(try dev.dmaRead(at: rig.iova(a), count: 2, pasid: 6), [0xa1, 0xa1])
        }
    }

    /// Check 11: `iommu_detach_device_pasid` calls the blocked domain's
    /// `set_dev_pasid(old: domain)` on every PASID-capable member of the group while the
    /// entry is still published, and erases the entry afterwards.
    public static var check11DetachBlocksBeforeErasingTheEntry: ConformanceCheck {
        ConformanceCheck(requires: [.pasid, .failureInjection]) { vendor in
            let rig = try vendor.makeRig([.pasid, .pasid, .noPasid], topology: .sharedGroup)
            let domain = try rig.pagingDomain()
            try rig.iommu.attachDevicePasid(domain, to: rig.devices[0], pasid: 12)
            vendor.clearDriverCalls(on: rig.unit)
            rig.iommu.detachDevicePasid(domain, from: rig.devices[0], pasid: 12)
            let calls = vendor.driverCalls(on: rig.unit)
            XCTAssertEqual(calls.map(\.rid), [rig.devices[0].rid, rig.devices[1].rid], "only PASID-capable members")
            for call in calls {
                XCTAssertEqual(call.op, .setDevPasid)
                XCTAssertTrue(call.blocking)
                XCTAssertEqual(call.old, "\(domain)")
                XCTAssertTrue(call.entryPublished, "teardown ran after the entry was erased: \(call)")
            }
            XCTAssertNil(rig.devices[0].group!.pasidArray[12])
            XCTAssertFalse(rig.live(rig.devices[0], 12) || rig.live(rig.devices[1], 12))
        }
    }

    /// Check 12: `iommu_attach_device` on a group of two is `EINVAL`; `iommu_attach_group`
    /// attaches both.
    public static var check12AttachDeviceOnTwoDeviceGroupIsEINVAL: ConformanceCheck {
        ConformanceCheck { vendor in
            let rig = try vendor.makeRig([.pasid, .pasid], topology: .sharedGroup)
            let domain = try rig.pagingDomain()
            assertErrno(.invalidArgument) { try rig.iommu.attachDevice(domain, to: rig.devices[0]) }
            XCTAssertTrue(rig.devices[0].group!.domain === rig.devices[0].group!.defaultDomain)
            try rig.iommu.attachGroup(domain, to: rig.devices[0].group!)
            XCTAssertTrue(rig.iommu.domainForDevice(rig.devices[1]) === domain)
        }
    }

    /// Check 13: attaching domain B while the group is on a non-default domain A is
    /// `EBUSY`, through `iommu_attach_group` and `iommu_attach_device` alike.
    public static var check13AttachWhileOnAnotherDomainIsEBUSY: ConformanceCheck {
        ConformanceCheck { vendor in
            let rig = try vendor.makeRig([.pasid])
            let dev = rig.devices[0]
            let a = try rig.pagingDomain(), b = try rig.pagingDomain()
            try rig.iommu.attachGroup(a, to: dev.group!)
            assertErrno(.busy) { try rig.iommu.attachGroup(b, to: dev.group!) }
            assertErrno(.busy) { try rig.iommu.attachDevice(b, to: dev) }
            XCTAssertTrue(rig.iommu.domainForDevice(dev) === a)
        }
    }

    /// Check 14: detach returns an unowned group to its default domain and a group with
    /// a DMA owner to its blocking domain, where DMA faults.
    public static var check14DetachRestoresDefaultOrBlockingDomain: ConformanceCheck {
        ConformanceCheck { vendor in
            let rig = try vendor.makeRig([.pasid])
            let dev = rig.devices[0]
            let group = dev.group!
            let a = try rig.pagingDomain()
            try rig.iommu.attachDevice(a, to: dev)
            rig.iommu.detachDevice(a, from: dev)
            XCTAssertTrue(group.domain === group.defaultDomain)
            try rig.iommu.deviceClaimDMAOwner(dev, owner: Owner())
            XCTAssertTrue(group.domain === group.blockingDomain)
            try rig.iommu.map(a, iova: rig.iova(a), paddr: try rig.buffer(fill: 1), size: 4096, prot: [.read])
            try rig.iommu.attachDevice(a, to: dev)
            XCTAssertEqual(try dev.dmaRead(at: rig.iova(a), count: 1), [1])
            rig.iommu.detachDevice(a, from: dev)
            XCTAssertTrue(group.domain === group.blockingDomain)
            XCTAssertNotNil(group.domain)
            XCTAssertThrowsError(try dev.dmaRead(at: rig.iova(a), count: 1))
            assertNoWarnings(rig.machine)
        }
    }

    /// Check 15: between `pci_dev_reset_iommu_prepare` and `pci_dev_reset_iommu_done`
    /// every attach and replace is `EBUSY` and DMA is blocked (the PASID array is kept);
    /// afterwards the RID and (with PASIDs) the PASIDs translate as before.
    public static var check15AttachDuringResetIsEBUSYAndStateIsRestoredAfter: ConformanceCheck {
        ConformanceCheck { vendor in
            let pasids = vendor.has(.pasid)
            let rig = try vendor.makeRig([DeviceSpec(ats: true)])
            let dev = rig.devices[0]
            let group = dev.group!
            let a = try rig.pagingDomain(), b = try rig.pagingDomain()
            let ridIOVA = try rig.iommu.dmaMapPage(dev, paddr: try rig.buffer(fill: 0x11), size: 4096)
            if pasids {
                try rig.iommu.map(a, iova: rig.iova(a), paddr: try rig.buffer(fill: 0x22), size: 4096, prot: [.read, .write])
                try rig.iommu.attachDevicePasid(a, to: dev, pasid: 3)
            }
            try rig.iommu.resetPrepare(dev)
            XCTAssertEqual(group.recoveryCount, 1)
            assertErrno(.busy) { try rig.iommu.attachDevice(b, to: dev) }
            XCTAssertThrowsError(try dev.dmaRead(at: ridIOVA, count: 1), "RID blocked during reset")
            if pasids {
                assertErrno(.busy) { try rig.iommu.attachDevicePasid(b, to: dev, pasid: 4) }
                assertErrno(.busy) { try rig.iommu.replaceDevicePasid(b, on: dev, pasid: 3, handle: AttachHandle()) }
                XCTAssertThrowsError(try dev.dmaRead(at: rig.iova(a), count: 1, pasid: 3), "PASID removed during reset")
                XCTAssertTrue(group.pasidArray[3]?.domain === a, "the PASID array is kept")
                XCTAssertNil(group.pasidArray[4])
            }
            rig.iommu.resetDone(dev)
            XCTAssertEqual(group.recoveryCount, 0)
            XCTAssertEqual(try dev.dmaRead(at: ridIOVA, count: 1), [0x11])
            if pasids {
                XCTAssertEqual(try dev.dmaRead(at: rig.iova(a), count: 1, pasid: 3), [0x22])
                try rig.iommu.attachDevicePasid(b, to: dev, pasid: 4)
            }
        }
    }

    /// Check 16: `iommu_attach_handle_get` is `ENOENT` for a PASID attached without a
    /// handle and for one not attached at all, `EBUSY` when the type filter does not
    /// match, and returns the handle otherwise.
    public static var check16AttachHandleGetErrors: ConformanceCheck {
        ConformanceCheck(requires: .pasid) { vendor in
            let rig = try vendor.makeRig([.pasid])
            let dev = rig.devices[0]
            let group = dev.group!
            let domain = try rig.pagingDomain()
            try rig.iommu.attachDevicePasid(domain, to: dev, pasid: 2)
            assertErrno(.noEntry) { try rig.iommu.attachHandle(group, pasid: 2) }
            assertErrno(.noEntry) { try rig.iommu.attachHandle(group, pasid: 77) }
            let handle = AttachHandle()
            try rig.iommu.attachDevicePasid(domain, to: dev, pasid: 3, handle: handle)
            assertErrno(.busy) { try rig.iommu.attachHandle(group, pasid: 3, type: .sva) }
            XCTAssertTrue(try rig.iommu.attachHandle(group, pasid: 3, type: .unmanaged) === handle)
            XCTAssertTrue(try rig.iommu.attachHandle(group, pasid: 3) === handle)
        }
    }
}

/// A DMA owner cookie (`iommu_device_claim_dma_owner(dev, owner)`): only its identity
/// matters.
final class Owner: Sendable {}
