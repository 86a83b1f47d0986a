import IOMMUConformance
import XCTest
import IOMMUCore
import IOMMUDrivers
import IOMMUFD
@testable import DriverShims

/// The VFIO device iommufd ioctls byte for byte: numbers, layouts, argsz/minsz and flag
/// rules, and that every refused call leaves the device as it was.
final class VFIOUAPITests: XCTestCase {
    func testCommandNumbersAndLayoutsMatchVFIOH() {
        XCTAssertEqual(VFIODeviceCommand.bindIOMMUFD, 0x3B76)
        XCTAssertEqual(VFIODeviceCommand.attachIOMMUFDPT, 0x3B77)
        XCTAssertEqual(VFIODeviceCommand.detachIOMMUFDPT, 0x3B78)
        XCTAssertEqual(VFIODeviceBindIOMMUFD(argsz: 24, flags: 1, iommufd: -2, outDevid: 0x11223344, tokenUUIDPtr: 0x55).bytes,
                       [24, 0, 0, 0, 1, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0x44, 0x33, 0x22, 0x11, 0x55, 0, 0, 0, 0, 0, 0, 0])
        XCTAssertEqual(VFIODeviceAttachIOMMUFDPT(argsz: 16, flags: 1, ptId: 7, pasid: 9).bytes,
                       [16, 0, 0, 0, 1, 0, 0, 0, 7, 0, 0, 0, 9, 0, 0, 0])
        XCTAssertEqual(VFIODeviceDetachIOMMUFDPT(argsz: 12, flags: 1, pasid: 9).bytes, [12, 0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0])
        XCTAssertEqual(VFIODeviceBindIOMMUFD.minSize, 16)
        XCTAssertEqual(VFIODeviceAttachIOMMUFDPT.minSize, 12)
        XCTAssertEqual(VFIODeviceDetachIOMMUFDPT.minSize, 8)
    }

    func testBindSizeFlagAndFDRulesLeaveDeviceUnbound() throws {
        let rig = try VFIORig.mock()
        let dev = try rig.device()
        let (_, f) = rig.open(dev)
        func bind(_ b: VFIODeviceBindIOMMUFD, extra: [UInt8] = []) -> Int32 {
            rig.raw(f.ioctl, VFIODeviceCommand.bindIOMMUFD, b.bytes + extra).0
        }
        XCTAssertEqual(bind(VFIODeviceBindIOMMUFD(argsz: 15, iommufd: rig.fd)), neg(.invalidArgument))
        XCTAssertEqual(bind(VFIODeviceBindIOMMUFD(argsz: 28, iommufd: rig.fd), extra: [0, 1, 0, 0]), neg(.tooBig))
        XCTAssertEqual(bind(VFIODeviceBindIOMMUFD(iommufd: -1)), neg(.invalidArgument))
        XCTAssertEqual(bind(VFIODeviceBindIOMMUFD(flags: 2, iommufd: rig.fd)), neg(.invalidArgument))
        XCTAssertEqual(bind(VFIODeviceBindIOMMUFD(flags: VFIODeviceFlag.bindToken, iommufd: rig.fd, tokenUUIDPtr: 8)),
                       neg(.badAddress))
        XCTAssertEqual(bind(VFIODeviceBindIOMMUFD(flags: VFIODeviceFlag.bindToken, iommufd: rig.fd, tokenUUIDPtr: rig.buffer)),
                       neg(.invalidArgument))
        XCTAssertEqual(bind(VFIODeviceBindIOMMUFD(iommufd: 99)), neg(.badFileDescriptor))
        let notIOMMUFD = rig.files.install(NSObject())
        XCTAssertEqual(bind(VFIODeviceBindIOMMUFD(iommufd: notIOMMUFD)), neg(.badFileDescriptorState))
        XCTAssertEqual(f.ioctl(VFIODeviceCommand.bindIOMMUFD, 0x10), neg(.badAddress))
        XCTAssertFalse(f.accessGranted)
        XCTAssertEqual(rig.objects(.device), 0)
        XCTAssertTrue(dev.group?.domain === dev.group?.defaultDomain)

        // A 16-byte (pre-token) structure binds, and out_devid comes back at offset 12.
        let (rc, out) = rig.raw(f.ioctl, VFIODeviceCommand.bindIOMMUFD,
                                Array(VFIODeviceBindIOMMUFD(argsz: 16, iommufd: rig.fd).bytes.prefix(16)))
        XCTAssertEqual(rc, 0)
        XCTAssertEqual(VFIODeviceBindIOMMUFD(bytes: out + [UInt8](repeating: 0, count: 8)).outDevid, f.devid?.rawValue)
        XCTAssertEqual(rig.objects(.device), 1)
    }

    func testAttachAndDetachSizeAndFlagRules() throws {
        let rig = try VFIORig.mock()
        let dev = try rig.device()
        let (v, f) = rig.open(dev)
        let ioas = try rig.mappedIOAS()
        func attach(_ a: VFIODeviceAttachIOMMUFDPT, count: Int = 16) -> (Int32, VFIODeviceAttachIOMMUFDPT) {
            let (rc, out) = rig.raw(f.ioctl, VFIODeviceCommand.attachIOMMUFDPT, Array(a.bytes.prefix(count)))
            return (rc, VFIODeviceAttachIOMMUFDPT(bytes: out + [UInt8](repeating: 0, count: 16 - out.count)))
        }
        func detach(_ d: VFIODeviceDetachIOMMUFDPT) -> Int32 {
            rig.raw(f.ioctl, VFIODeviceCommand.detachIOMMUFDPT, d.bytes).0
        }
        // Before bind, only BIND is reachable.
        XCTAssertEqual(attach(VFIODeviceAttachIOMMUFDPT(ptId: ioas.rawValue)).0, neg(.invalidArgument))
        XCTAssertEqual(detach(VFIODeviceDetachIOMMUFDPT()), neg(.invalidArgument))
        _ = try f.bindIOMMUFD(rig.fd)

        XCTAssertEqual(attach(VFIODeviceAttachIOMMUFDPT(argsz: 11, ptId: ioas.rawValue)).0, neg(.invalidArgument))
        XCTAssertEqual(attach(VFIODeviceAttachIOMMUFDPT(flags: 1 << 5, ptId: ioas.rawValue)).0, neg(.invalidArgument))
        XCTAssertEqual(attach(VFIODeviceAttachIOMMUFDPT(argsz: 12, flags: VFIODeviceFlag.attachPasid, ptId: ioas.rawValue, pasid: 3)).0,
                       neg(.invalidArgument))
        XCTAssertEqual(f.ioctl(VFIODeviceCommand.attachIOMMUFDPT, 0), neg(.badAddress))
        XCTAssertEqual(attach(VFIODeviceAttachIOMMUFDPT(ptId: 77)).0, neg(.noEntry))
        XCTAssertFalse(v.ridAttached)
        XCTAssertTrue(dev.group?.domain === dev.group?.blockingDomain)

        // A 12-byte RID attach is enough; pt_id comes back as the auto HWPT.
        let (rc, out) = attach(VFIODeviceAttachIOMMUFDPT(argsz: 12, ptId: ioas.rawValue), count: 12)
        XCTAssertEqual(rc, 0)
        XCTAssertNotEqual(out.ptId, ioas.rawValue)
        XCTAssertTrue(v.ridAttached)

        XCTAssertEqual(detach(VFIODeviceDetachIOMMUFDPT(argsz: 7)), neg(.invalidArgument))
        XCTAssertEqual(detach(VFIODeviceDetachIOMMUFDPT(flags: 2)), neg(.invalidArgument))
        XCTAssertEqual(detach(VFIODeviceDetachIOMMUFDPT(argsz: 8, flags: VFIODeviceFlag.detachPasid, pasid: 1)),
                       neg(.invalidArgument))
        XCTAssertTrue(v.ridAttached)
        XCTAssertEqual(detach(VFIODeviceDetachIOMMUFDPT(flags: VFIODeviceFlag.detachPasid, pasid: 1)), 0)
        XCTAssertEqual(detach(VFIODeviceDetachIOMMUFDPT(argsz: 8)), 0)
        XCTAssertFalse(v.ridAttached)
        XCTAssertEqual(detach(VFIODeviceDetachIOMMUFDPT()), 0, "detaching nothing succeeds")

        XCTAssertEqual(f.ioctl(VFIODeviceCommand.io(VFIODeviceCommand.base + 7), rig.arg), neg(.notTTY))
    }

    func testTypedCallsAgreeWithRawPath() throws {
        let rig = try VFIORig.vtd()
        let dev = try rig.device()
        let (_, f) = rig.open(dev)
        assertErrno(.invalidArgument) { try f.attach(ptID: 1 as PageTableObjectID) }
        assertErrno(.badFileDescriptor) { try f.bindIOMMUFD(55) }
        let devid = try f.bindIOMMUFD(rig.fd)
        XCTAssertEqual(f.devid, devid)
        XCTAssertEqual(rig.iommufd.objectSnapshot.first { $0.id == devid }?.type, .device)
        let ioas = try rig.mappedIOAS()
        let typed = try f.attach(ptID: ioas)
        let (rc, out) = rig.raw(f.ioctl, VFIODeviceCommand.attachIOMMUFDPT, VFIODeviceAttachIOMMUFDPT(ptId: ioas.rawValue).bytes)
        XCTAssertEqual(rc, 0)
        XCTAssertEqual(VFIODeviceAttachIOMMUFDPT(bytes: out).ptId, typed.rawValue)
    }

    func testMdevHasNoPasidOps() throws {
        let rig = try VFIORig.mock()
        let mdev = MdevDevice(name: "mdev0", ops: MdevDriverOps(dmaUnmap: nil))
        let f = mdev.openCdev(user: rig.user, files: rig.files)
        let id = try f.bindIOMMUFD(rig.fd)
        XCTAssertEqual(rig.iommufd.objectSnapshot.first { $0.id == id }?.type, .access)
        let ioas = try rig.mappedIOAS()
        assertErrno(.notSupported) { try f.attach(pasid: 1, ptID: ioas) }
        assertErrno(.notSupported) { try f.detach(pasid: 1) }
        assertErrno(.notSupported) { try f.attachAllPasids(ptID: ioas) }
        XCTAssertEqual(try f.attach(ptID: ioas), PageTableObjectID(ioas), "an access attaches to the IOAS itself")
        XCTAssertTrue(mdev.isAttached)
        f.close()
        XCTAssertEqual(rig.objects(.access), 0)
    }
}
