import Foundation
import IOMMUCore
import XCTest

// MARK: ownership (checks 17–22)

extension ConformanceChecks {
    /// Check 17: claiming DMA ownership while a DMA-API driver is bound is `EPERM`.
    func check17() throws {
        let rig = try vendor.makeRig([.pasid])
        let dev = rig.devices[0]
        try rig.iommu.deviceUseDefaultDomain(dev)
        assertErrno(.notPermitted) { try rig.iommu.deviceClaimDMAOwner(dev, owner: NSObject()) }
        assertErrno(.notPermitted) { try rig.iommu.groupClaimDMAOwner(dev.group!, owner: NSObject()) }
        XCTAssertEqual(dev.group!.ownerCount, 1)
        XCTAssertNil(dev.group!.owner)
        XCTAssertTrue(dev.group!.domain === dev.group!.defaultDomain)
    }

    /// Check 18: claiming ownership while a PASID is attached (an idxd-style kernel PASID
    /// on the default domain) is `EBUSY`.
    func check18() throws {
        let rig = try vendor.makeRig([.pasid])
        let dev = rig.devices[0]
        let group = dev.group!
        let pasid = rig.iommu.allocGlobalPasid(for: dev)
        try rig.iommu.attachDevicePasid(group.defaultDomain!, to: dev, pasid: pasid)
        assertErrno(.busy) { try rig.iommu.deviceClaimDMAOwner(dev, owner: NSObject()) }
        XCTAssertEqual(group.ownerCount, 0)
        XCTAssertNil(group.owner)
        XCTAssertTrue(group.domain === group.defaultDomain)
        XCTAssertTrue(group.pasidArray[pasid]?.domain === group.defaultDomain)
    }

    /// Check 19: two devices of one group claim with the same cookie (`owner_cnt` 2); a
    /// different cookie is `EPERM`.
    func check19() throws {
        let rig = try vendor.makeRig([.pasid, .pasid], topology: .sharedGroup)
        let (d1, d2) = (rig.devices[0], rig.devices[1])
        let owner = NSObject()
        try rig.iommu.deviceClaimDMAOwner(d1, owner: owner)
        try rig.iommu.deviceClaimDMAOwner(d2, owner: owner)
        XCTAssertEqual(d1.group!.ownerCount, 2)
        XCTAssertTrue(d1.group!.owner === owner)
        assertErrno(.notPermitted) { try rig.iommu.deviceClaimDMAOwner(d1, owner: NSObject()) }
        XCTAssertEqual(d1.group!.ownerCount, 2)
        rig.iommu.deviceReleaseDMAOwner(d2)
        XCTAssertEqual(d1.group!.ownerCount, 1)
        XCTAssertTrue(d1.group!.domain === d1.group!.blockingDomain, "still owned")
        rig.iommu.deviceReleaseDMAOwner(d1)
        XCTAssertTrue(d1.group!.domain === d1.group!.defaultDomain)
        XCTAssertNil(d1.group!.owner)
    }

    /// Check 20: `iommu_device_use_default_domain` on a user-owned group is `EBUSY`.
    /// (The `EPROBE_DEFER` half needs a group without a default domain, which the model's
    /// probe never leaves behind: it sets the default domain up as the group forms.)
    func check20() throws {
        let rig = try vendor.makeRig([.pasid])
        let dev = rig.devices[0]
        try rig.iommu.deviceClaimDMAOwner(dev, owner: NSObject())
        assertErrno(.busy) { try rig.iommu.deviceUseDefaultDomain(dev) }
        XCTAssertEqual(dev.group!.ownerCount, 1)
        rig.iommu.deviceReleaseDMAOwner(dev)
        try rig.iommu.deviceUseDefaultDomain(dev)
        XCTAssertEqual(dev.group!.ownerCount, 1)
    }

    /// Check 20, probe half: between joining its group and the group's default-domain
    /// setup (`bus_iommu_probe`), a DMA-API driver bind is deferred with `EPROBE_DEFER`;
    /// once the default domain exists it succeeds.
    func check20ProbeDefer() throws {
        let machine = Machine(memory: 1 << 30)
        let unit = vendor.makeUnit()
        let dev = try machine.addDevice(PCIDevice(rid: RID(bus: 0x30, device: 1, function: 0)), behind: unit)
        XCTAssertNil(dev.group, "not probed before its IOMMU registers")
        machine.addIOMMU(unit, stoppingBeforeDefaultDomains: true)
        XCTAssertNotNil(dev.group)
        XCTAssertNil(dev.group!.defaultDomain)
        assertErrno(.probeDefer) { try machine.iommu.deviceUseDefaultDomain(dev) }
        XCTAssertEqual(dev.group!.ownerCount, 0)
        machine.finishDefaultDomains()
        XCTAssertTrue(dev.group!.domain === dev.group!.defaultDomain)
        try machine.iommu.deviceUseDefaultDomain(dev)
        XCTAssertEqual(dev.group!.ownerCount, 1)
    }

    /// Check 21: a device with an `IOMMU_RESV_DIRECT` region cannot be put on a blocking
    /// domain: claiming ownership is `EINVAL`, the group stays on its default domain and
    /// unowned, with a WARN.
    func check21() throws {
        let region = ReservedRegion(start: 0x2000000, length: 0x4000, kind: .direct)
        let rig = try vendor.makeRig([DeviceSpec(reservedRegions: [region])])
        let dev = rig.devices[0]
        XCTAssertTrue(dev.requireDirect)
        assertErrno(.invalidArgument) { try rig.iommu.deviceClaimDMAOwner(dev, owner: NSObject()) }
        XCTAssertEqual(dev.group!.ownerCount, 0)
        XCTAssertNil(dev.group!.owner)
        XCTAssertTrue(dev.group!.domain === dev.group!.defaultDomain)
        XCTAssertTrue(rig.machine.warnings.contains { $0.function == "__iommu_group_set_domain_internal" })
        XCTAssertEqual(rig.iommu.iovaToPhys(dev.group!.domain!, iova: 0x2000000), 0x2000000, "still 1:1")
    }

    /// Check 21, release half: on release a device requiring direct mappings gets the
    /// identity domain rather than the blocked release domain. Needs a driver with both.
    func check21Release() throws {
        try vendor.require(.identityReleaseDomain)
        let region = ReservedRegion(start: 0x2000000, length: 0x4000, kind: .direct)
        let rig = try vendor.makeRig([DeviceSpec(reservedRegions: [region])])
        let dev = rig.devices[0]
        rig.machine.events.isEnabled = true
        rig.iommu.releaseDevice(dev)
        XCTAssertNil(dev.group)
        // The last domain the core gave the device before release_device ran.
        let attach = rig.machine.events.named("iommu:attach_device_to_domain").last { $0["dev"] == "\(dev.rid)" }
        XCTAssertEqual(attach?["domain"]?.hasPrefix("IDENTITY"), true, "release domain was \(attach?["domain"] ?? "none")")
    }

    /// Check 22: a DMA-API driver that unbinds with a PASID still attached triggers the
    /// WARN of `iommu_device_unuse_default_domain` and `owner_cnt` stays.
    func check22() throws {
        let rig = try vendor.makeRig([.pasid])
        let dev = rig.devices[0]
        let group = dev.group!
        try rig.iommu.deviceUseDefaultDomain(dev)
        let pasid = rig.iommu.allocGlobalPasid(for: dev)
        try rig.iommu.attachDevicePasid(group.defaultDomain!, to: dev, pasid: pasid)
        rig.iommu.deviceUnuseDefaultDomain(dev)
        XCTAssertEqual(group.ownerCount, 1, "not decremented")
        XCTAssertEqual(rig.machine.warnings.map(\.function), ["iommu_device_unuse_default_domain"])
        // The correct order: detach the PASID first.
        rig.iommu.detachDevicePasid(group.defaultDomain!, from: dev, pasid: pasid)
        rig.iommu.deviceUnuseDefaultDomain(dev)
        XCTAssertEqual(group.ownerCount, 0)
        XCTAssertEqual(rig.machine.warnings.count, 1)
    }
}
