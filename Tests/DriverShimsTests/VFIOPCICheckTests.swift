import IOMMUConformance
import XCTest
import IOMMUCore
import IOMMUDrivers
import IOMMUFD
@testable import DriverShims

/// vfio-pci over the iommufd cdev uAPI (`VFIO_DEVICE_BIND_IOMMUFD`,
/// `VFIO_DEVICE_ATTACH_IOMMUFD_PT`, ...) on the Mock IOMMU.
final class VFIOPCICheckTests: XCTestCase {
    func testCheck83BindTwiceIsEINVAL() throws {
        let rig = try VFIORig.mock()
        let dev = try rig.device()
        let (v, f, devid) = try rig.bound(dev)
        let before = rig.iommufd.objectSnapshot.count
        assertErrno(.invalidArgument) { try f.bindIOMMUFD(rig.fd) }
        XCTAssertEqual(f.devid, AnyIOMMUFDObjectID(devid))
        XCTAssertEqual(rig.iommufd.objectSnapshot.count, before)
        XCTAssertTrue(f.accessGranted)
        // A second cdev file of the same device cannot bind while the first is bound.
        let second = v.openCdev(user: rig.user, files: rig.files)
        assertErrno(.invalidArgument) { try second.bindIOMMUFD(rig.fd) }
        XCTAssertFalse(second.accessGranted)
        f.close()
        XCTAssertNotNil(try second.bindIOMMUFD(rig.fd))
    }

    func testCheck83BindOnGroupOpenedFileIsEINVAL() throws {
        let rig = try VFIORig.mock()
        let dev = try rig.device()
        let v = VFIOPCIDevice(dev)
        let groupFile = try v.openViaGroup(user: rig.user, files: rig.files)
        assertErrno(.invalidArgument) { try groupFile.bindIOMMUFD(rig.fd) }
        // The group path also blocks cdev binding of the device (vfio_device_block_group).
        let cdev = v.openCdev(user: rig.user, files: rig.files)
        assertErrno(.busy) { try cdev.bindIOMMUFD(rig.fd) }
        XCTAssertEqual(rig.objects(.device), 0)
        XCTAssertTrue(dev.group?.domain === dev.group?.defaultDomain)
        // Cdev-only ioctls do not exist on a group file.
        let (rc, _) = rig.raw(groupFile.ioctl, VFIODeviceCommand.attachIOMMUFDPT, VFIODeviceAttachIOMMUFDPT(ptId: 1).bytes)
        XCTAssertEqual(rc, neg(.notTTY))
        groupFile.close()
        XCTAssertNotNil(try cdev.bindIOMMUFD(rig.fd))
        assertErrno(.busy) { try v.openViaGroup(user: rig.user, files: rig.files) }
    }

    func testCheck84BindInstallsBlockingDomainAndNativeDriverGetsEBUSY() throws {
        let rig = try VFIORig.mock()
        let (a, b) = try rig.groupOfTwo()
        let group = try XCTUnwrap(a.group)
        XCTAssertTrue(group === b.group)
        XCTAssertTrue(group.domain === group.defaultDomain)
        let (_, file, _) = try rig.bound(a)
        XCTAssertNotNil(group.blockingDomain)
        XCTAssertTrue(group.domain === group.blockingDomain)
        XCTAssertTrue(group.owner === rig.iommufd)
        // A native DMA-API driver probing the other function of the group.
        assertErrno(.busy) { try rig.iommu.deviceUseDefaultDomain(b) }
        XCTAssertTrue(group.domain === group.blockingDomain)
        // The bound device is attached to nothing: its DMA is blocked.
        XCTAssertThrowsError(try a.dmaWrite(at: 0x1010_0000, bytes: [1]))
        XCTAssertThrowsError(try b.dmaWrite(at: 0x1010_0000, bytes: [1]))
        file.close()
        XCTAssertNoThrow(try rig.iommu.deviceUseDefaultDomain(b))
    }

    func testCheck84NativeDriverFirstThenBindIsEPERM() throws {
        let rig = try VFIORig.mock()
        let (a, b) = try rig.groupOfTwo()
        try rig.iommu.deviceUseDefaultDomain(b)
        let (_, f) = rig.open(a)
        assertErrno(.notPermitted) { try f.bindIOMMUFD(rig.fd) }
        XCTAssertFalse(f.accessGranted)
        XCTAssertEqual(rig.objects(.device), 0)
        XCTAssertTrue(a.group?.domain === a.group?.defaultDomain)
        rig.iommu.deviceUnuseDefaultDomain(b)
        XCTAssertNotNil(try f.bindIOMMUFD(rig.fd))
    }

    func testCheck85PasidAttachToHWPTWithoutAllocPasidIsEINVAL() throws {
        let rig = try VFIORig.mock()
        let dev = try rig.device()
        let (v, f, devid) = try rig.bound(dev)
        let ioas = try rig.mappedIOAS()
        let (rc, plain) = rig.hwptAlloc(dev: devid, ioas: ioas)
        XCTAssertEqual(rc, 0)
        assertErrno(.invalidArgument) { try f.attach(pasid: 5, ptID: plain) }
        XCTAssertEqual(v.attachedPasids, [])
        XCTAssertNil(dev.group?.pasidArray[5])
        // An IOAS gives an auto domain, which is not PASID-compatible either.
        assertErrno(.invalidArgument) { try f.attach(pasid: 5, ptID: ioas) }
        XCTAssertEqual(v.attachedPasids, [])
        let (rc2, compat) = rig.hwptAlloc(dev: devid, ioas: ioas, flags: IOMMUFDConstant.hwptAllocPasid)
        XCTAssertEqual(rc2, 0)
        XCTAssertEqual(try f.attach(pasid: 5, ptID: compat), PageTableObjectID(compat))
        XCTAssertEqual(v.attachedPasids, [5])
    }

    func testCheck85RidAttachOfNonCompatHWPTWhilePasidsAttachedIsEINVAL() throws {
        let rig = try VFIORig.mock()
        let dev = try rig.device()
        let (v, f, devid) = try rig.bound(dev)
        let ioas = try rig.mappedIOAS()
        let (_, compat) = rig.hwptAlloc(dev: devid, ioas: ioas, flags: IOMMUFDConstant.hwptAllocPasid)
        let (_, plain) = rig.hwptAlloc(dev: devid, ioas: ioas)
        _ = try f.attach(pasid: 3, ptID: compat)
        let group = try XCTUnwrap(dev.group)
        assertErrno(.invalidArgument) { try f.attach(ptID: plain) }
        XCTAssertFalse(v.ridAttached)
        XCTAssertTrue(group.domain === group.blockingDomain)
        assertErrno(.invalidArgument) { try f.attach(ptID: ioas) }
        XCTAssertFalse(v.ridAttached)
        XCTAssertEqual(try f.attach(ptID: compat), PageTableObjectID(compat))
        XCTAssertTrue(v.ridAttached)
    }

    func testCheck86ReattachingAnAttachedPasidIsAReplace() throws {
        let rig = try VFIORig.mock()
        let dev = try rig.device()
        let (v, f, devid) = try rig.bound(dev)
        let ioas1 = try rig.mappedIOAS(iova: 0x1010_0000)
        let ioas2 = try rig.mappedIOAS(iova: 0x1020_0000)
        let (_, h1) = rig.hwptAlloc(dev: devid, ioas: ioas1, flags: IOMMUFDConstant.hwptAllocPasid)
        let (_, h2) = rig.hwptAlloc(dev: devid, ioas: ioas2, flags: IOMMUFDConstant.hwptAllocPasid)
        _ = try f.attach(pasid: 7, ptID: h1)
        try dev.dmaWrite(at: 0x1010_0000, bytes: [0xa1], pasid: 7)
        XCTAssertEqual(try rig.bufferBytes(at: 0, count: 1), [0xa1])

        rig.machine.events.isEnabled = true
        XCTAssertEqual(try f.attach(pasid: 7, ptID: h2), PageTableObjectID(h2))
        let names = rig.machine.events.all.map(\.name)
        XCTAssertTrue(names.contains("iommukit:replace_device_pasid"))
        XCTAssertFalse(names.contains("iommukit:detach_device_pasid"), "a replace has no blocked window")
        XCTAssertFalse(names.contains("iommukit:attach_device_pasid"))
        XCTAssertEqual(v.attachedPasids, [7])
        // The old IOVA is gone for PASID 7, the new one works.
        XCTAssertThrowsError(try dev.dmaWrite(at: 0x1010_0000, bytes: [0xa2], pasid: 7))
        try dev.dmaWrite(at: 0x1020_0008, bytes: [0xb2], pasid: 7)
        XCTAssertEqual(try rig.bufferBytes(at: 8, count: 1), [0xb2])

        // A failing replace keeps the old attachment exactly.
        assertErrno(.noEntry) { try f.attach(pasid: 7, ptID: 999 as PageTableObjectID) }
        XCTAssertEqual(v.attachedPasids, [7])
        try dev.dmaWrite(at: 0x1020_0010, bytes: [0xc3], pasid: 7)
        XCTAssertEqual(try rig.bufferBytes(at: 0x10, count: 1), [0xc3])
    }

    func testCheck87UnbindDetachesPasidsThenRIDThenReleasesOwnership() throws {
        let rig = try VFIORig.mock()
        let dev = try rig.device()
        let (_, f, devid) = try rig.bound(dev)
        let ioas = try rig.mappedIOAS()
        let (_, compat) = rig.hwptAlloc(dev: devid, ioas: ioas, flags: IOMMUFDConstant.hwptAllocPasid)
        _ = try f.attach(ptID: compat)
        _ = try f.attach(pasid: 9, ptID: compat)
        _ = try f.attach(pasid: 3, ptID: compat)
        let group = try XCTUnwrap(dev.group)
        let blocking = try XCTUnwrap(group.blockingDomain)
        let defaultDomain = try XCTUnwrap(group.defaultDomain)

        rig.machine.events.isEnabled = true
        rig.machine.events.clear()
        f.close()
        let steps = rig.machine.events.all.compactMap { e -> String? in
            switch e.name {
            case "iommukit:detach_device_pasid": return "pasid \(e["pasid"] ?? "?")"
            case "iommu:attach_device_to_domain":
                return e["domain"] == "\(blocking)" ? "rid->blocking" : e["domain"] == "\(defaultDomain)" ? "rid->default" : e["domain"]
            default: return nil
            }
        }
        XCTAssertEqual(steps, ["pasid 3", "pasid 9", "rid->blocking", "rid->default"])
        XCTAssertTrue(group.domain === defaultDomain)
        XCTAssertNil(group.owner)
        XCTAssertEqual(group.ownerCount, 0)
        XCTAssertTrue(group.pasidArray.isEmpty)
        XCTAssertEqual(rig.objects(.device), 0)
        XCTAssertEqual(f.ioctl(VFIODeviceCommand.detachIOMMUFDPT, rig.arg), neg(.badFileDescriptor))
        // The device is usable by a kernel driver again.
        XCTAssertNoThrow(try rig.iommu.deviceUseDefaultDomain(dev))
    }
}
