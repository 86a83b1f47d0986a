import IOMMUCore
import XCTest

// DMA ownership, default domains and direct-mapped regions (checks 17-22).

extension ConformanceSuite {
    static let ownershipChecks: [ConformanceCheck] = [
        .check17ClaimWhileDMAAPIDriverBoundIsEPERM, .check18ClaimWithPasidAttachedIsEBUSY,
        .check19SameOwnerCookieSharesTheGroup, .check20UseDefaultDomainOnOwnedGroupIsEBUSY,
        .check20UseDefaultDomainBeforeDefaultDomainIsEPROBE_DEFER, .check21ResvDirectDeviceCannotBeBlocked,
        .check21ReleaseOfResvDirectDeviceUsesIdentity, .check22UnbindWithPasidAttachedWarns,
    ]
}

extension ConformanceCheck {
    /// Check 17: claiming DMA ownership (`iommu_device_claim_dma_owner`,
    /// `iommu_group_claim_dma_owner`) while a DMA-API driver is bound is `EPERM`; the
    /// group keeps its default domain.
    public static var check17ClaimWhileDMAAPIDriverBoundIsEPERM: ConformanceCheck {
        ConformanceCheck { vendor in
            let rig = try vendor.makeRig([.pasid])
            let dev = rig.devices[0]
            try rig.iommu.deviceUseDefaultDomain(dev)
            assertErrno(.notPermitted) { try rig.iommu.deviceClaimDMAOwner(dev, owner: Owner()) }
            assertErrno(.notPermitted) { try rig.iommu.groupClaimDMAOwner(dev.group!, owner: Owner()) }
            XCTAssertEqual(dev.group!.ownerCount, 1)
            XCTAssertNil(dev.group!.owner)
            XCTAssertTrue(dev.group!.domain === dev.group!.defaultDomain)
        }
    }

    /// Check 18: claiming ownership while a PASID is attached (an idxd-style kernel
    /// PASID on the default domain) is `EBUSY`; nothing changes.
    public static var check18ClaimWithPasidAttachedIsEBUSY: ConformanceCheck {
        ConformanceCheck(requires: .pasid) { vendor in
            let rig = try vendor.makeRig([.pasid])
            let dev = rig.devices[0]
            let group = dev.group!
            let pasid = try rig.iommu.allocGlobalPasid(for: dev)
            try rig.iommu.attachDevicePasid(group.defaultDomain!, to: dev, pasid: pasid)
            assertErrno(.busy) { try rig.iommu.deviceClaimDMAOwner(dev, owner: Owner()) }
            XCTAssertEqual(group.ownerCount, 0)
            XCTAssertNil(group.owner)
            XCTAssertTrue(group.domain === group.defaultDomain)
            XCTAssertTrue(group.pasidArray[pasid]?.domain === group.defaultDomain)
        }
    }

    /// Check 19: two devices of one group claim ownership with the same cookie
    /// (`owner_cnt` 2); another cookie is `EPERM`; the group stays on its blocking domain
    /// until the last release.
    public static var check19SameOwnerCookieSharesTheGroup: ConformanceCheck {
        ConformanceCheck { vendor in
            let rig = try vendor.makeRig([.pasid, .pasid], topology: .sharedGroup)
            let (d1, d2) = (rig.devices[0], rig.devices[1])
            let owner = Owner()
            try rig.iommu.deviceClaimDMAOwner(d1, owner: owner)
            try rig.iommu.deviceClaimDMAOwner(d2, owner: owner)
            XCTAssertEqual(d1.group!.ownerCount, 2)
            XCTAssertTrue(d1.group!.owner === owner)
            assertErrno(.notPermitted) { try rig.iommu.deviceClaimDMAOwner(d1, owner: Owner()) }
            XCTAssertEqual(d1.group!.ownerCount, 2)
            rig.iommu.deviceReleaseDMAOwner(d2)
            XCTAssertEqual(d1.group!.ownerCount, 1)
            XCTAssertTrue(d1.group!.domain === d1.group!.blockingDomain, "still owned")
            rig.iommu.deviceReleaseDMAOwner(d1)
            XCTAssertTrue(d1.group!.domain === d1.group!.defaultDomain)
            XCTAssertNil(d1.group!.owner)
        }
    }

    /// Check 20: `iommu_device_use_default_domain` on a group with a DMA owner is
    /// `EBUSY`; after the release it succeeds.
    public static var check20UseDefaultDomainOnOwnedGroupIsEBUSY: ConformanceCheck {
        ConformanceCheck { vendor in
            let rig = try vendor.makeRig([.pasid])
            let dev = rig.devices[0]
            try rig.iommu.deviceClaimDMAOwner(dev, owner: Owner())
            assertErrno(.busy) { try rig.iommu.deviceUseDefaultDomain(dev) }
            XCTAssertEqual(dev.group!.ownerCount, 1)
            rig.iommu.deviceReleaseDMAOwner(dev)
            try rig.iommu.deviceUseDefaultDomain(dev)
            XCTAssertEqual(dev.group!.ownerCount, 1)
        }
    }

    /// Check 20, probe half: between a device joining its group and the group's
    /// default-domain setup (the two halves of `bus_iommu_probe`), a DMA-API driver bind
    /// is deferred with `EPROBE_DEFER`; once the default domain exists it succeeds.
    public static var check20UseDefaultDomainBeforeDefaultDomainIsEPROBE_DEFER: ConformanceCheck {
        ConformanceCheck { vendor in
            let machine = vendor.makeMachine()
            let unit = try vendor.makeUnit(on: machine, sharingDriverWith: nil)
            let dev = try machine.addDevice(vendor.makeDevice(.pasid, rid: RID(bus: 0x30, device: 1, function: 0),
                                                              upstream: nil, multifunction: false), behind: unit)
            XCTAssertNil(dev.group, "not probed before its IOMMU registers")
            machine.addIOMMU(unit, stoppingBeforeDefaultDomains: true)
            XCTAssertNotNil(dev.group)
            XCTAssertNil(dev.group?.defaultDomain)
            assertErrno(.probeDefer) { try machine.iommu.deviceUseDefaultDomain(dev) }
            XCTAssertEqual(dev.group?.ownerCount, 0)
            machine.finishDefaultDomains()
            XCTAssertTrue(dev.group?.domain === dev.group?.defaultDomain)
            try machine.iommu.deviceUseDefaultDomain(dev)
            XCTAssertEqual(dev.group?.ownerCount, 1)
        }
    }

    /// Check 21: a device with an `IOMMU_RESV_DIRECT` region cannot be put on a blocking
    /// domain: claiming ownership is `EINVAL` with a WARN, and the group stays unowned on
    /// its default domain, still 1:1 over the region.
    public static var check21ResvDirectDeviceCannotBeBlocked: ConformanceCheck {
        ConformanceCheck(requires: .directMappedRegions) { vendor in
            let region = ReservedRegion(start: 0x2000000, length: 0x4000, kind: .direct)
            let rig = try vendor.makeRig([DeviceSpec(reservedRegions: [region])])
            let dev = rig.devices[0]
            XCTAssertTrue(dev.requireDirect)
            assertErrno(.invalidArgument) { try rig.iommu.deviceClaimDMAOwner(dev, owner: Owner()) }
            XCTAssertEqual(dev.group!.ownerCount, 0)
            XCTAssertNil(dev.group!.owner)
            XCTAssertTrue(dev.group!.domain === dev.group!.defaultDomain)
            XCTAssertTrue(rig.machine.warnings.contains { $0.function == "__iommu_group_set_domain_internal" })
            XCTAssertEqual(rig.iommu.iovaToPhys(dev.group!.domain!, iova: 0x2000000), 0x2000000, "still 1:1")
        }
    }

    /// Check 21, release half: on release a device that requires direct mappings is put
    /// on the identity domain rather than the driver's blocking release domain.
    public static var check21ReleaseOfResvDirectDeviceUsesIdentity: ConformanceCheck {
        ConformanceCheck(requires: [.directMappedRegions, .identityReleaseDomain]) { vendor in
            let region = ReservedRegion(start: 0x2000000, length: 0x4000, kind: .direct)
            let rig = try vendor.makeRig([DeviceSpec(reservedRegions: [region])])
            let dev = rig.devices[0]
            rig.machine.events.isEnabled = true
            rig.iommu.releaseDevice(dev)
            XCTAssertNil(dev.group)
            // The last domain the core gave the device before release_device ran.
            let attach = rig.machine.events.named("iommu:attach_device_to_domain").last { $0.device == dev.rid }
            XCTAssertEqual(attach?["domain"]?.hasPrefix("IDENTITY"), true,
                           "release domain was \(attach?["domain"] ?? "none")")
        }
    }

    /// Check 22: a DMA-API driver that unbinds with a PASID still attached triggers the
    /// WARN of `iommu_device_unuse_default_domain` and `owner_cnt` stays; detaching the
    /// PASID first is the correct order.
    public static var check22UnbindWithPasidAttachedWarns: ConformanceCheck {
        ConformanceCheck(requires: .pasid) { vendor in
            let rig = try vendor.makeRig([.pasid])
            let dev = rig.devices[0]
            let group = dev.group!
            try rig.iommu.deviceUseDefaultDomain(dev)
            let pasid = try rig.iommu.allocGlobalPasid(for: dev)
            try rig.iommu.attachDevicePasid(group.defaultDomain!, to: dev, pasid: pasid)
            rig.iommu.deviceUnuseDefaultDomain(dev)
            XCTAssertEqual(group.ownerCount, 1, "not decremented")
            XCTAssertEqual(rig.machine.warnings.map(\.function), ["iommu_device_unuse_default_domain"])
            rig.iommu.detachDevicePasid(group.defaultDomain!, from: dev, pasid: pasid)
            rig.iommu.deviceUnuseDefaultDomain(dev)
            XCTAssertEqual(group.ownerCount, 0)
            XCTAssertEqual(rig.machine.warnings.count, 1)
        }
    }
}
