import IOMMUCore
import XCTest

/// The conformance checks of spec/kernel-iommu.md §5, as functions any vendor fixture can
/// run. Each vendor's XCTestCase calls them one test per check.
struct ConformanceChecks {
    let vendor: any ConformanceVendor
}

// MARK: core / attach (checks 1–16)

extension ConformanceChecks {
    /// Check 1: PASID 0 (`IOMMU_NO_PASID`) is refused with `EINVAL`; nothing changes.
    func check01() throws {
        let rig = try vendor.makeRig([.pasid])
        let dev = rig.devices[0]
        let domain = try rig.pagingDomain()
        assertErrno(.invalidArgument) { try rig.iommu.attachDevicePasid(domain, to: dev, pasid: 0) }
        XCTAssertTrue(dev.group!.pasidArray.isEmpty)
        XCTAssertTrue(rig.iommu.domainForDevice(dev) === dev.group!.defaultDomain)
    }

    /// Check 2 (Mock-only: needs a domain variant without `set_dev_pasid`): `EOPNOTSUPP`.
    func check02() throws {
        let rig = try vendor.makeRig([.pasid])
        let dev = rig.devices[0]
        let domain = try rig.mockDriver().allocPagingDomain(for: dev, flags: [], omitting: .setDevPasid)
        assertErrno(.notSupported) { try rig.iommu.attachDevicePasid(domain, to: dev, pasid: 5) }
        XCTAssertNil(dev.group!.pasidArray[5])
        XCTAssertFalse(rig.live(dev, 5))
    }

    /// Check 3 (Mock-only: needs a driver variant whose blocked domain lacks
    /// `set_dev_pasid`): the core could never remove the PASID, so attach is `EOPNOTSUPP`.
    func check03(blockedWithoutSetDevPasid rig: Rig) throws {
        let dev = rig.devices[0]
        let domain = try rig.pagingDomain()
        assertErrno(.notSupported) { try rig.iommu.attachDevicePasid(domain, to: dev, pasid: 5) }
        XCTAssertTrue(dev.group!.pasidArray.isEmpty)
        XCTAssertFalse(rig.live(dev, 5))
    }

    /// Check 4: a domain allocated by another driver object is `EINVAL`, for PASID and
    /// RID attach alike.
    func check04() throws {
        let rig = try vendor.makeRig([.pasid])
        let dev = rig.devices[0]
        let foreign = try vendor.foreignDomain()
        assertErrno(.invalidArgument) { try rig.iommu.attachDevicePasid(foreign, to: dev, pasid: 5) }
        assertErrno(.invalidArgument) { try rig.iommu.attachDevice(foreign, to: dev) }
        XCTAssertTrue(dev.group!.pasidArray.isEmpty)
        XCTAssertTrue(rig.iommu.domainForDevice(dev) === dev.group!.defaultDomain)
    }

    /// Check 5: a PASID at or above a PASID-capable member's `max_pasids` is `EINVAL`; a
    /// member without PASID is ignored for the check and never programmed.
    func check05() throws {
        let rig = try vendor.makeRig([.pasid, .noPasid], topology: .sharedGroup)
        let (withPasid, without) = (rig.devices[0], rig.devices[1])
        XCTAssertTrue(withPasid.group === without.group)
        XCTAssertEqual(without.maxPasids, 0)
        let domain = try rig.pagingDomain()
        assertErrno(.invalidArgument) {
            try rig.iommu.attachDevicePasid(domain, to: withPasid, pasid: withPasid.maxPasids)
        }
        XCTAssertTrue(withPasid.group!.pasidArray.isEmpty)
        // Attaching through the non-PASID member still programs the PASID-capable one.
        try rig.iommu.attachDevicePasid(domain, to: without, pasid: withPasid.maxPasids - 1)
        XCTAssertTrue(rig.live(withPasid, withPasid.maxPasids - 1))
        XCTAssertFalse(rig.live(without, withPasid.maxPasids - 1))
        XCTAssertTrue(withPasid.group!.pasidArray[withPasid.maxPasids - 1]?.domain === domain)
    }

    /// Check 6: a second attach of an attached PASID is `EBUSY` (same or another domain),
    /// and the first attachment keeps translating.
    func check06() throws {
        let rig = try vendor.makeRig([.pasid])
        let dev = rig.devices[0]
        let a = try rig.pagingDomain(), b = try rig.pagingDomain()
        let bufA = try rig.buffer(fill: 0xaa)
        try rig.iommu.map(a, iova: rig.iova(a), paddr: bufA, size: 4096, prot: [.read, .write])
        try rig.iommu.attachDevicePasid(a, to: dev, pasid: 9)
        assertErrno(.busy) { try rig.iommu.attachDevicePasid(a, to: dev, pasid: 9) }
        assertErrno(.busy) { try rig.iommu.attachDevicePasid(b, to: dev, pasid: 9) }
        XCTAssertTrue(dev.group!.pasidArray[9]?.domain === a)
        XCTAssertEqual(try dev.dmaRead(at: rig.iova(a), count: 4, pasid: 9), [0xaa, 0xaa, 0xaa, 0xaa])
    }

    /// Check 7 (Mock-only: injects a `set_dev_pasid` failure on device 2 of a 2-device
    /// group): device 1 is rolled back through the blocked domain, the slot is released,
    /// the errno returned; once the failure is gone the same attach succeeds.
    func check07() throws {
        let rig = try vendor.makeRig([.pasid, .pasid], topology: .sharedGroup)
        let (d1, d2) = (rig.devices[0], rig.devices[1])
        let driver = try rig.mockDriver()
        let domain = try rig.pagingDomain()
        try rig.mockState(d2).failSetDevPasid = .noSpace
        driver.clearCalls()
        assertErrno(.noSpace) { try rig.iommu.attachDevicePasid(domain, to: d1, pasid: 3) }
        XCTAssertNil(d1.group!.pasidArray[3], "slot released")
        XCTAssertFalse(rig.live(d1, 3), "device 1 rolled back")
        XCTAssertFalse(rig.live(d2, 3))
        let calls = driver.calls.filter { $0.op == .setDevPasid }
        XCTAssertEqual(calls.map(\.rid), [d1.rid, d2.rid, d1.rid])
        XCTAssertEqual(calls.map(\.succeeded), [true, false, true])
        XCTAssertTrue(calls[2].blocking, "rollback goes through the blocked domain")
        XCTAssertEqual(calls[2].old, "\(domain)")
        try rig.mockState(d2).failSetDevPasid = nil
        try rig.iommu.attachDevicePasid(domain, to: d1, pasid: 3)
        XCTAssertTrue(rig.live(d1, 3) && rig.live(d2, 3))
    }

    /// Check 8: replace on an unattached PASID is `EINVAL` and leaves it unattached.
    func check08() throws {
        let rig = try vendor.makeRig([.pasid])
        let dev = rig.devices[0]
        let domain = try rig.pagingDomain()
        assertErrno(.invalidArgument) {
            try rig.iommu.replaceDevicePasid(domain, on: dev, pasid: 8, handle: AttachHandle())
        }
        XCTAssertNil(dev.group!.pasidArray[8])
        XCTAssertFalse(rig.live(dev, 8))
        // The slot is really free: a normal attach works.
        try rig.iommu.attachDevicePasid(domain, to: dev, pasid: 8)
    }

    /// Check 9: replace with the handle already stored is `EINVAL` (with a WARN). The
    /// NULL-handle case cannot be written: the Swift API takes a non-optional handle.
    func check09() throws {
        let rig = try vendor.makeRig([.pasid])
        let dev = rig.devices[0]
        let a = try rig.pagingDomain(), b = try rig.pagingDomain()
        let handle = AttachHandle()
        try rig.iommu.attachDevicePasid(a, to: dev, pasid: 4, handle: handle)
        assertErrno(.invalidArgument) { try rig.iommu.replaceDevicePasid(b, on: dev, pasid: 4, handle: handle) }
        XCTAssertTrue(handle.domain === a)
        XCTAssertTrue(dev.group!.pasidArray[4]?.domain === a)
        XCTAssertTrue(rig.machine.warnings.contains { $0.function == "iommu_replace_device_pasid" })
        // A missing handle is refused the same way, and changes nothing.
        assertErrno(.invalidArgument) { try rig.iommu.replaceDevicePasid(b, on: dev, pasid: 4, handle: nil) }
        XCTAssertTrue(dev.group!.pasidArray[4]?.domain === a)
        // A fresh handle replaces.
        let fresh = AttachHandle()
        try rig.iommu.replaceDevicePasid(b, on: dev, pasid: 4, handle: fresh)
        XCTAssertTrue(dev.group!.pasidArray[4]?.domain === b)
    }

    /// Check 10 (Mock-only: injects the driver failure): a failed replace leaves the old
    /// domain translating the PASID and in the PASID array.
    func check10() throws {
        let rig = try vendor.makeRig([.pasid])
        let dev = rig.devices[0]
        let a = try rig.pagingDomain(), b = try rig.pagingDomain()
        let (bufA, bufB) = (try rig.buffer(fill: 0xa1), try rig.buffer(fill: 0xb2))
        try rig.iommu.map(a, iova: rig.iova(a), paddr: bufA, size: 4096, prot: [.read, .write])
        try rig.iommu.map(b, iova: rig.iova(b), paddr: bufB, size: 4096, prot: [.read, .write])
        let old = AttachHandle()
        try rig.iommu.attachDevicePasid(a, to: dev, pasid: 6, handle: old)
        try rig.mockState(dev).failSetDevPasid = .noMemory
        assertErrno(.noMemory) { try rig.iommu.replaceDevicePasid(b, on: dev, pasid: 6, handle: AttachHandle()) }
        guard case .handle(let stored)? = dev.group!.pasidArray[6] else { return XCTFail("entry lost") }
        XCTAssertTrue(stored === old && stored.domain === a)
        XCTAssertEqual(try dev.dmaRead(at: rig.iova(a), count: 2, pasid: 6), [0xa1, 0xa1])
    }

    /// Check 11 (Mock-only: reads the driver's callback log): detach calls the blocked
    /// domain's `set_dev_pasid(old: domain)` on every PASID-capable member while the entry
    /// is still published, and erases it afterwards.
    func check11() throws {
        let rig = try vendor.makeRig([.pasid, .pasid, .noPasid], topology: .sharedGroup)
        let driver = try rig.mockDriver()
        let domain = try rig.pagingDomain()
        try rig.iommu.attachDevicePasid(domain, to: rig.devices[0], pasid: 12)
        driver.clearCalls()
        rig.iommu.detachDevicePasid(domain, from: rig.devices[0], pasid: 12)
        let calls = driver.calls
        XCTAssertEqual(calls.map(\.rid), [rig.devices[0].rid, rig.devices[1].rid], "only PASID-capable members")
        for call in calls {
            XCTAssertEqual(call.op, .setDevPasid)
            XCTAssertTrue(call.blocking)
            XCTAssertEqual(call.old, "\(domain)")
            XCTAssertTrue(call.entryPublished, "teardown ran before the entry was erased: \(call)")
        }
        XCTAssertNil(rig.devices[0].group!.pasidArray[12])
        XCTAssertFalse(rig.live(rig.devices[0], 12) || rig.live(rig.devices[1], 12))
    }

    /// Check 12: `iommu_attach_device` on a group of two is `EINVAL`.
    func check12() throws {
        let rig = try vendor.makeRig([.pasid, .pasid], topology: .sharedGroup)
        let domain = try rig.pagingDomain()
        assertErrno(.invalidArgument) { try rig.iommu.attachDevice(domain, to: rig.devices[0]) }
        XCTAssertTrue(rig.devices[0].group!.domain === rig.devices[0].group!.defaultDomain)
        // attach_group is the API for a multi-device group.
        try rig.iommu.attachGroup(domain, to: rig.devices[0].group!)
        XCTAssertTrue(rig.iommu.domainForDevice(rig.devices[1]) === domain)
    }

    /// Check 13: attaching B while the group is on a non-default domain A is `EBUSY`.
    func check13() throws {
        let rig = try vendor.makeRig([.pasid])
        let dev = rig.devices[0]
        let a = try rig.pagingDomain(), b = try rig.pagingDomain()
        try rig.iommu.attachGroup(a, to: dev.group!)
        assertErrno(.busy) { try rig.iommu.attachGroup(b, to: dev.group!) }
        assertErrno(.busy) { try rig.iommu.attachDevice(b, to: dev) }
        XCTAssertTrue(rig.iommu.domainForDevice(dev) === a)
    }

    /// Check 14: detach returns an unowned group to its default domain and an owned group
    /// to its blocking domain (and DMA then faults).
    func check14() throws {
        let rig = try vendor.makeRig([.pasid])
        let dev = rig.devices[0]
        let group = dev.group!
        let a = try rig.pagingDomain()
        try rig.iommu.attachDevice(a, to: dev)
        rig.iommu.detachDevice(a, from: dev)
        XCTAssertTrue(group.domain === group.defaultDomain)

        let owner = NSObject()
        try rig.iommu.deviceClaimDMAOwner(dev, owner: owner)
        XCTAssertTrue(group.domain === group.blockingDomain)
        let buf = try rig.buffer(fill: 1)
        try rig.iommu.map(a, iova: rig.iova(a), paddr: buf, size: 4096, prot: [.read])
        try rig.iommu.attachDevice(a, to: dev)
        XCTAssertEqual(try dev.dmaRead(at: rig.iova(a), count: 1), [1])
        rig.iommu.detachDevice(a, from: dev)
        XCTAssertTrue(group.domain === group.blockingDomain)
        XCTAssertNotNil(group.domain)
        XCTAssertThrowsError(try dev.dmaRead(at: rig.iova(a), count: 1))
        XCTAssertTrue(rig.machine.warnings.isEmpty, "\(rig.machine.warnings)")
    }

    /// Check 15: between `pci_dev_reset_iommu_prepare` and `_done` every attach and
    /// replace is `EBUSY` and DMA is blocked; afterwards RID and PASIDs translate as before.
    func check15() throws {
        let rig = try vendor.makeRig([DeviceSpec(pasidWidth: 20, ats: true)])
        let dev = rig.devices[0]
        let group = dev.group!
        let a = try rig.pagingDomain(), b = try rig.pagingDomain()
        let (ridBuf, pasidBuf) = (try rig.buffer(fill: 0x11), try rig.buffer(fill: 0x22))
        let ridIOVA = try rig.iommu.dmaMapPage(dev, paddr: ridBuf, size: 4096)
        try rig.iommu.map(a, iova: rig.iova(a), paddr: pasidBuf, size: 4096, prot: [.read, .write])
        try rig.iommu.attachDevicePasid(a, to: dev, pasid: 3)

        try rig.iommu.resetPrepare(dev)
        XCTAssertEqual(group.recoveryCount, 1)
        assertErrno(.busy) { try rig.iommu.attachDevicePasid(b, to: dev, pasid: 4) }
        assertErrno(.busy) { try rig.iommu.replaceDevicePasid(b, on: dev, pasid: 3, handle: AttachHandle()) }
        assertErrno(.busy) { try rig.iommu.attachDevice(b, to: dev) }
        XCTAssertThrowsError(try dev.dmaRead(at: ridIOVA, count: 1), "RID blocked during reset")
        XCTAssertThrowsError(try dev.dmaRead(at: rig.iova(a), count: 1, pasid: 3), "PASID removed during reset")
        XCTAssertTrue(group.pasidArray[3]?.domain === a, "the PASID array is kept")
        XCTAssertNil(group.pasidArray[4])

        rig.iommu.resetDone(dev)
        XCTAssertEqual(group.recoveryCount, 0)
        XCTAssertEqual(try dev.dmaRead(at: ridIOVA, count: 1), [0x11])
        XCTAssertEqual(try dev.dmaRead(at: rig.iova(a), count: 1, pasid: 3), [0x22])
        try rig.iommu.attachDevicePasid(b, to: dev, pasid: 4)
    }

    /// Check 16: `iommu_attach_handle_get` is `ENOENT` for a bare-domain entry (and for
    /// nothing attached), `EBUSY` for a mismatching type filter.
    func check16() throws {
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
