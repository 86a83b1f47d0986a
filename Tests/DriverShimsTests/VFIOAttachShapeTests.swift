import IOMMUConformance
import XCTest
import IOMMUCore
import IOMMUDrivers
import IOMMUFD
import VendorFixtures
@testable import DriverShims

/// The three attach shapes of seed 002 over Mock (user-owned PASID tables), Intel VT-d
/// (per-PASID attach) and ARM SMMUv3 (the guest's CD table through a nested vSTE), with
/// the DMA bytes that arrive through each.
final class VFIOAttachShapeTests: XCTestCase {
    // MARK: Mock

    func testMockRIDShapeDMAArrivesAndSecondAttachReplaces() throws {
        let rig = try VFIORig.mock()
        let dev = try rig.device()
        let (v, f, _) = try rig.bound(dev)
        let ioas = try rig.mappedIOAS()
        let hwpt = try f.attach(.rid, ptID: ioas)
        XCTAssertNotEqual(hwpt, PageTableObjectID(ioas), "an IOAS attaches through an auto domain whose ID is returned")
        XCTAssertTrue(v.ridAttached)
        try dev.dmaWrite(at: 0x1010_0000 + 0x100, bytes: Array("rid".utf8))
        XCTAssertEqual(try rig.bufferBytes(at: 0x100, count: 3), Array("rid".utf8))
        XCTAssertThrowsError(try dev.dmaWrite(at: 0x1010_0000, bytes: [1], pasid: 4), "the RID shape covers no PASID")
        // A second ATTACH is a replace (same IOAS: the same auto domain, no error).
        XCTAssertEqual(try f.attach(ptID: ioas), hwpt)
        try f.detach()
        XCTAssertFalse(v.ridAttached)
        XCTAssertThrowsError(try dev.dmaWrite(at: 0x1010_0000, bytes: [1]))
        XCTAssertEqual(rig.objects(.hwptPaging), 0, "the auto domain died with its last device")
    }

    func testMockPasidShapeDMAArrives() throws {
        let rig = try VFIORig.mock()
        let dev = try rig.device()
        let (v, f, devid) = try rig.bound(dev)
        let ioas = try rig.mappedIOAS()
        let (_, hwpt) = rig.hwptAlloc(dev: devid, ioas: ioas, flags: IOMMUFDConstant.hwptAllocPasid)
        XCTAssertEqual(try f.attach(.pasid(12), ptID: hwpt), PageTableObjectID(hwpt))
        try dev.dmaWrite(at: 0x1010_0000 + 0x200, bytes: Array("pasid12".utf8), pasid: 12)
        XCTAssertEqual(try rig.bufferBytes(at: 0x200, count: 7), Array("pasid12".utf8))
        XCTAssertThrowsError(try dev.dmaWrite(at: 0x1010_0000, bytes: [1]), "the RID is still blocked")
        XCTAssertThrowsError(try dev.dmaWrite(at: 0x1010_0000, bytes: [1], pasid: 13))
        try f.detach(pasid: 12)
        XCTAssertEqual(v.attachedPasids, [])
        XCTAssertThrowsError(try dev.dmaWrite(at: 0x1010_0000, bytes: [1], pasid: 12))
        // Detaching what is not attached succeeds.
        XCTAssertNoThrow(try f.detach(pasid: 12))
    }

    func testMockAllPasidsShapeTranslatesEveryPasid() throws {
        let rig = try VFIORig.mock()
        let dev = try rig.device()
        let (v, f, devid) = try rig.bound(dev)
        let ioas = try rig.mappedIOAS()
        let (rc, parent) = rig.hwptAlloc(dev: devid, ioas: ioas, flags: IOMMUFDConstant.hwptAllocNestParent)
        XCTAssertEqual(rc, 0)
        let (rc2, nested) = rig.nestedAlloc(dev: devid, parent: parent)
        XCTAssertEqual(rc2, 0)
        XCTAssertEqual(try f.attach(.ridAndAllPasids, ptID: nested), PageTableObjectID(nested))
        XCTAssertTrue(v.ownsAllPasids)
        XCTAssertTrue(dev.group?.ridOwnsAllPasids == true)
        for (i, pasid) in ([nil, 1, 42, 0xF_FFFF] as [PASID?]).enumerated() {
            let off = UInt64(0x300 + i * 16)
            try dev.dmaWrite(at: 0x1010_0000 + off, bytes: [UInt8(0x40 + i)], pasid: pasid)
            XCTAssertEqual(try rig.bufferBytes(at: off, count: 1), [UInt8(0x40 + i)], "pasid \(String(describing: pasid))")
        }
        // One PASID cannot be carved out of a table the user owns; nothing changes.
        let (_, compat) = rig.hwptAlloc(dev: devid, ioas: ioas, flags: IOMMUFDConstant.hwptAllocPasid)
        assertErrno(.invalidArgument) { try f.attach(pasid: 5, ptID: compat) }
        XCTAssertEqual(v.attachedPasids, [])
        XCTAssertTrue(dev.group?.ridOwnsAllPasids == true)
        // A RID attach replaces the whole thing; the PASIDs are blocked again.
        _ = try f.attach(ptID: compat)
        XCTAssertFalse(v.ownsAllPasids)
        XCTAssertFalse(dev.group?.ridOwnsAllPasids == true)
        XCTAssertThrowsError(try dev.dmaWrite(at: 0x1010_0000, bytes: [1], pasid: 42))
        try dev.dmaWrite(at: 0x1010_0000, bytes: [0x77])
        // And back to all PASIDs, then detach: everything blocked.
        _ = try f.attachAllPasids(ptID: nested)
        try f.detach()
        XCTAssertThrowsError(try dev.dmaWrite(at: 0x1010_0000, bytes: [1], pasid: 42))
        XCTAssertThrowsError(try dev.dmaWrite(at: 0x1010_0000, bytes: [1]))
        XCTAssertTrue(dev.group?.domain === dev.group?.blockingDomain)
    }

    func testMockAllPasidsErrorsLeaveStateUnchanged() throws {
        let rig = try VFIORig.mock()
        let dev = try rig.device()
        let (v, f, devid) = try rig.bound(dev)
        let ioas = try rig.mappedIOAS()
        let (_, compat) = rig.hwptAlloc(dev: devid, ioas: ioas, flags: IOMMUFDConstant.hwptAllocPasid)
        let (_, parent) = rig.hwptAlloc(dev: devid, ioas: ioas, flags: IOMMUFDConstant.hwptAllocNestParent)
        let (_, nested) = rig.nestedAlloc(dev: devid, parent: parent)
        // Not a nested HWPT.
        assertErrno(.invalidArgument) { try f.attachAllPasids(ptID: compat) }
        assertErrno(.invalidArgument) { try f.attachAllPasids(ptID: ioas) }
        assertErrno(.noEntry) { try f.attachAllPasids(ptID: 4242 as PageTableObjectID) }
        // PASIDs attached one by one: the table is not the user's to take.
        _ = try f.attach(pasid: 8, ptID: compat)
        assertErrno(.busy) { try f.attachAllPasids(ptID: nested) }
        XCTAssertFalse(v.ridAttached)
        XCTAssertEqual(v.attachedPasids, [8])
        try dev.dmaWrite(at: 0x1010_0000, bytes: [0x88], pasid: 8)
        XCTAssertEqual(try rig.bufferBytes(at: 0, count: 1), [0x88])
        // PASID and all-PASIDs flags together are refused.
        let bytes = VFIODeviceAttachIOMMUFDPT(flags: VFIODeviceFlag.attachPasid | VFIODeviceFlag.attachAllPasids,
                                              ptId: nested.rawValue, pasid: 1).bytes
        XCTAssertEqual(rig.raw(f.ioctl, VFIODeviceCommand.attachIOMMUFDPT, bytes).0, neg(.invalidArgument))
    }

    // MARK: Intel VT-d

    func testVTdAllPasidsIsEOPNOTSUPPAndLeavesRIDAttached() throws {
        let rig = try VFIORig.vtd()
        let dev = try rig.device()
        let (v, f, devid) = try rig.bound(dev)
        let ioas = try rig.mappedIOAS()
        let hwpt = try f.attach(ptID: ioas)
        let (rc, parent) = rig.hwptAlloc(dev: devid, ioas: ioas, flags: IOMMUFDConstant.hwptAllocNestParent)
        // Whatever the HWPT, VT-d attaches per PASID: the kernel's answer is EOPNOTSUPP.
        assertErrno(.notSupported) { try f.attach(.ridAndAllPasids, ptID: rc == 0 ? PageTableObjectID(parent) : hwpt) }
        assertErrno(.notSupported) { try f.attachAllPasids(ptID: hwpt) }
        XCTAssertTrue(v.ridAttached)
        XCTAssertFalse(v.ownsAllPasids)
        try dev.dmaWrite(at: 0x1010_0040, bytes: Array("still".utf8))
        XCTAssertEqual(try rig.bufferBytes(at: 0x40, count: 5), Array("still".utf8))
    }

    func testVTdRIDAndPasidShapesDMAArrive() throws {
        let rig = try VFIORig.vtd()
        let dev = try rig.device()
        let (v, f, devid) = try rig.bound(dev)
        let ioasRID = try rig.mappedIOAS(iova: 0x1010_0000)
        let ioasPASID = try rig.mappedIOAS(iova: 0x1080_0000)
        // The RID's HWPT must be PASID-compatible too once PASIDs are used (an auto
        // domain is not).
        let (_, ridHWPT) = rig.hwptAlloc(dev: devid, ioas: ioasRID, flags: IOMMUFDConstant.hwptAllocPasid)
        _ = try f.attach(.rid, ptID: ridHWPT)
        let (rc, pasidHWPT) = rig.hwptAlloc(dev: devid, ioas: ioasPASID, flags: IOMMUFDConstant.hwptAllocPasid)
        XCTAssertEqual(rc, 0)
        XCTAssertEqual(try f.attach(.pasid(0x33), ptID: pasidHWPT), PageTableObjectID(pasidHWPT))
        XCTAssertEqual(v.attachedPasids, [0x33])
        try dev.dmaWrite(at: 0x1010_0000 + 0x500, bytes: Array("vtd-rid".utf8))
        try dev.dmaWrite(at: 0x1080_0000 + 0x600, bytes: Array("vtd-pasid".utf8), pasid: 0x33)
        XCTAssertEqual(try rig.bufferBytes(at: 0x500, count: 7), Array("vtd-rid".utf8))
        XCTAssertEqual(try rig.bufferBytes(at: 0x600, count: 9), Array("vtd-pasid".utf8))
        // Each shape sees only its own IOAS.
        XCTAssertThrowsError(try dev.dmaWrite(at: 0x1080_0000, bytes: [1]))
        XCTAssertThrowsError(try dev.dmaWrite(at: 0x1010_0000, bytes: [1], pasid: 0x33))
        f.close()
        XCTAssertTrue(dev.group?.domain === dev.group?.defaultDomain)
        XCTAssertTrue(rig.machine.checker.violations.isEmpty, "\(rig.machine.checker.violations)")
    }

    // MARK: ARM SMMUv3

    func testSMMUv3RIDAndPasidShapesDMAArrive() throws {
        let rig = try VFIORig.smmuv3()
        let dev = try rig.device()
        let (v, f, devid) = try rig.bound(dev)
        let ioasRID = try rig.mappedIOAS(iova: 0x1010_0000)
        let ioasPASID = try rig.mappedIOAS(iova: 0x1080_0000)
        // As on VT-d, the RID's HWPT must be PASID-compatible once PASIDs are used.
        let (_, ridHWPT) = rig.hwptAlloc(dev: devid, ioas: ioasRID, flags: IOMMUFDConstant.hwptAllocPasid)
        XCTAssertEqual(try f.attach(.rid, ptID: ridHWPT), PageTableObjectID(ridHWPT))
        let (rc, pasidHWPT) = rig.hwptAlloc(dev: devid, ioas: ioasPASID, flags: IOMMUFDConstant.hwptAllocPasid)
        XCTAssertEqual(rc, 0)
        XCTAssertEqual(try f.attach(.pasid(0x33), ptID: pasidHWPT), PageTableObjectID(pasidHWPT))
        XCTAssertEqual(v.attachedPasids, [0x33])
        let unit = try XCTUnwrap(rig.unit as? ArmSMMUv3)
        let ste = try XCTUnwrap(unit.ste(dev.rid))
        XCTAssertEqual(ste.config, .stage1, "the RID's stage-1 domain uses CD 0 of the device's CD table")
        XCTAssertEqual(ste.s1dss, .ssid0)
        XCTAssertEqual(unit.cd(dev.rid, ssid: 0x33)?.isValid, true)
        try dev.dmaWrite(at: 0x1010_0000 + 0x500, bytes: Array("smmu-rid".utf8))
        try dev.dmaWrite(at: 0x1080_0000 + 0x600, bytes: Array("smmu-pasid".utf8), pasid: 0x33)
        XCTAssertEqual(try rig.bufferBytes(at: 0x500, count: 8), Array("smmu-rid".utf8))
        XCTAssertEqual(try rig.bufferBytes(at: 0x600, count: 10), Array("smmu-pasid".utf8))
        XCTAssertThrowsError(try dev.dmaWrite(at: 0x1080_0000, bytes: [1]))
        XCTAssertThrowsError(try dev.dmaWrite(at: 0x1010_0000, bytes: [1], pasid: 0x33))
        try f.detach(pasid: 0x33)
        XCTAssertEqual(unit.cd(dev.rid, ssid: 0x33)?.isValid, false)
        f.close()
        XCTAssertTrue(dev.group?.domain === dev.group?.defaultDomain)
        XCTAssertTrue(rig.machine.checker.violations.isEmpty, "\(rig.machine.checker.violations)")
    }

    /// RID plus all PASIDs on SMMUv3: the VMM maps guest RAM holding the guest's CD table
    /// and stage-1 table into the IOAS, allocates a nesting parent there and a nested HWPT
    /// from the guest's vSTE, and attaches it to the RID with every PASID. The guest's CD
    /// table then serves the RID and each PASID, through the parent's stage 2; a single
    /// PASID cannot be carved out of it, and a RID attach gives the PASIDs back.
    func testSMMUv3AllPasidsShapeThroughTheGuestCDTable() throws {
        let rig = try VFIORig.smmuv3()
        let dev = try rig.device()
        let (v, f, devid) = try rig.bound(dev)
        let ioas = try rig.mappedIOAS()
        let guestRAM = try rig.process.mmap(length: SMMUv3Guest.guestBytes, prot: [.read, .write], at: 0x5000_0000)
        try rig.process.writeMemory(address: guestRAM, bytes: [UInt8](repeating: 0, count: SMMUv3Guest.guestBytes))
        XCTAssertEqual(rig.map(ioas, va: guestRAM, length: UInt64(SMMUv3Guest.guestBytes),
                               iova: SMMUv3Guest.tablesIPA.rawValue), 0)
        let guest = try SMMUv3Guest(memory: rig.machine.memory) { ipa, bytes in
            try rig.process.writeMemory(address: guestRAM + (ipa.rawValue - SMMUv3Guest.tablesIPA.rawValue), bytes: bytes)
        }
        let (rc, parent) = rig.hwptAlloc(dev: devid, ioas: ioas, flags: IOMMUFDConstant.hwptAllocNestParent)
        XCTAssertEqual(rc, 0)
        let data = guest.userData
        try rig.process.writeMemory(address: rig.arg + 0x8000, bytes: data)
        var c = IOMMUHWPTAlloc(devId: devid.rawValue, ptId: parent.rawValue, dataType: IOMMUHWPTDataType.armSMMUv3,
                               dataLen: UInt32(data.count), dataUptr: rig.arg + 0x8000)
        XCTAssertEqual(rig.iommuCall(IOMMUFDCommand.hwptAlloc, &c), 0)
        let nested = HWPTObjectID(rawValue: c.outHwptId)
        XCTAssertEqual(try f.attach(.ridAndAllPasids, ptID: nested), PageTableObjectID(nested))
        XCTAssertTrue(v.ownsAllPasids)
        let unit = try XCTUnwrap(rig.unit as? ArmSMMUv3)
        XCTAssertEqual(try XCTUnwrap(unit.ste(dev.rid)).config, .nested)
        for (i, pasid) in ([nil, 1, 42, 0xF_FFFF] as [PASID?]).enumerated() {
            let off = UInt64(0x300 + i * 16)
            try dev.dmaWrite(at: 0x1010_0000 + off, bytes: [UInt8(0x40 + i)], pasid: pasid)
            XCTAssertEqual(try rig.bufferBytes(at: off, count: 1), [UInt8(0x40 + i)], "pasid \(String(describing: pasid))")
        }
        // A PASID between the guest's two CD leaves has no leaf: C_BAD_SUBSTREAMID.
        XCTAssertThrowsError(try dev.dmaWrite(at: 0x1010_0000, bytes: [1], pasid: 0x8_0000))
        let (_, compat) = rig.hwptAlloc(dev: devid, ioas: ioas, flags: IOMMUFDConstant.hwptAllocPasid)
        assertErrno(.invalidArgument) { try f.attach(pasid: 5, ptID: compat) }
        _ = try f.attach(ptID: compat)
        XCTAssertFalse(v.ownsAllPasids)
        XCTAssertEqual(try XCTUnwrap(unit.ste(dev.rid)).config, .stage1)
        XCTAssertThrowsError(try dev.dmaWrite(at: 0x1010_0000, bytes: [1], pasid: 42))
        try dev.dmaWrite(at: 0x1010_0000 + 0x400, bytes: [0x77])
        XCTAssertEqual(try rig.bufferBytes(at: 0x400, count: 1), [0x77])
        try f.detach()
        XCTAssertThrowsError(try dev.dmaWrite(at: 0x1010_0000, bytes: [1]))
        XCTAssertTrue(rig.machine.checker.violations.isEmpty, "\(rig.machine.checker.violations)")
    }
}
