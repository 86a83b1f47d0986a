import XCTest
import IOMMUCore
@testable import IOMMUFD

/// The kernel iommufd selftest's VFIO compatibility without a compat IOAS.
final class Selftest02VFIOCompatTests: XCTestCase {
    var s: SelftestFD!
    override func setUpWithError() throws { s = try SelftestFD() }
    override func tearDown() { s?.teardownCheck(); s = nil }

    func testSelftest10SimpleIoctls() {
        XCTAssertEqual(s.fd.ioctl(IOMMUFDCommand.vfioGetAPIVersion, 0), VFIOConstant.apiVersion)
        XCTAssertEqual(s.fd.ioctl(IOMMUFDCommand.vfioCheckExtension, VFIOConstant.type1v2IOMMU), 1)
        XCTAssertEqual(s.fd.ioctl(IOMMUFDCommand.vfioCheckExtension, VFIOConstant.type1IOMMU), 1)
        XCTAssertEqual(s.fd.ioctl(IOMMUFDCommand.vfioCheckExtension, VFIOConstant.noIOMMU), 0)
        XCTAssertEqual(s.fd.ioctl(IOMMUFDCommand.vfioIOMMUDirtyPages, s.arg), ENOTTY)
    }

    func testSelftest11UnmapCmd() {
        var u = VFIOIOMMUType1DMAUnmap(argsz: 1)
        XCTAssertEqual(s.raw(IOMMUFDCommand.vfioIOMMUUnmapDMA, u.bytes).0, EINVAL)
        u = VFIOIOMMUType1DMAUnmap(argsz: 24, flags: 1 << 31)
        XCTAssertEqual(s.raw(IOMMUFDCommand.vfioIOMMUUnmapDMA, u.bytes).0, EINVAL)
        u = VFIOIOMMUType1DMAUnmap(argsz: 24)
        XCTAssertEqual(s.raw(IOMMUFDCommand.vfioIOMMUUnmapDMA, u.bytes).0, ENODEV)
    }

    func testSelftest12MapCmd() {
        var m = VFIOIOMMUType1DMAMap(argsz: 1)
        XCTAssertEqual(s.raw(IOMMUFDCommand.vfioIOMMUMapDMA, m.bytes).0, EINVAL)
        m = VFIOIOMMUType1DMAMap(argsz: 32, flags: 1 << 31)
        XCTAssertEqual(s.raw(IOMMUFDCommand.vfioIOMMUMapDMA, m.bytes).0, EINVAL)
        m = VFIOIOMMUType1DMAMap(argsz: 32, flags: VFIOConstant.dmaMapFlagRead | VFIOConstant.dmaMapFlagWrite)
        XCTAssertEqual(s.raw(IOMMUFDCommand.vfioIOMMUMapDMA, m.bytes).0, ENODEV)
    }

    func testSelftest13InfoCmd() {
        var i = VFIOIOMMUType1Info(argsz: 1)
        XCTAssertEqual(s.raw(IOMMUFDCommand.vfioIOMMUGetInfo, i.bytes).0, EINVAL)
        i = VFIOIOMMUType1Info(argsz: 24)
        XCTAssertEqual(s.raw(IOMMUFDCommand.vfioIOMMUGetInfo, i.bytes).0, ENODEV)
    }

    func testSelftest14SetIOMMUCmd() {
        XCTAssertEqual(s.fd.ioctl(IOMMUFDCommand.vfioSetIOMMU, VFIOConstant.type1v2IOMMU), ENODEV)
        XCTAssertEqual(s.fd.ioctl(IOMMUFDCommand.vfioSetIOMMU, VFIOConstant.type1IOMMU), ENODEV)
    }

    func testSelftest15VFIOIOAS() {
        var c = IOMMUVFIOIOAS(op: IOMMUFDConstant.vfioIOASGet)
        XCTAssertEqual(s.call(IOMMUFDCommand.vfioIOAS, &c), ENODEV)
        c = IOMMUVFIOIOAS(ioasId: 0, op: IOMMUFDConstant.vfioIOASSet)
        XCTAssertEqual(s.call(IOMMUFDCommand.vfioIOAS, &c), ENOENT)
        let ioas = s.ioasAlloc()
        c = IOMMUVFIOIOAS(ioasId: ioas, op: IOMMUFDConstant.vfioIOASSet)
        XCTAssertEqual(s.call(IOMMUFDCommand.vfioIOAS, &c), 0)
        c = IOMMUVFIOIOAS(op: IOMMUFDConstant.vfioIOASGet)
        XCTAssertEqual(s.call(IOMMUFDCommand.vfioIOAS, &c), 0)
        XCTAssertEqual(c.ioasId, ioas)
        c = IOMMUVFIOIOAS(op: IOMMUFDConstant.vfioIOASClear)
        XCTAssertEqual(s.call(IOMMUFDCommand.vfioIOAS, &c), 0)
        c = IOMMUVFIOIOAS(op: IOMMUFDConstant.vfioIOASGet)
        XCTAssertEqual(s.call(IOMMUFDCommand.vfioIOAS, &c), ENODEV)
    }
}
