import XCTest
import IOMMUCore
@testable import IOMMUFD
import IOMMUFDSelftest

/// The kernel iommufd selftest's dirty tracking (fixture `iommufd_dirty_tracking`; the sizes up
/// to 4 MiB, with MOCK_PAGE_SIZE IOPTEs).
final class Selftest08DirtyTrackingTests: XCTestCase {
    static let sizes: [UInt64] = [8 << 10, 16 << 10, 64 << 10, 128 << 10, 320 << 10, 4 << 20]

    final class Fixture {
        let s: SelftestFD
        let ioas: UInt32
        let stdev: UInt32, hwpt: UInt32, idev: UInt32
        let buffer: UInt64
        let size: UInt64
        let bitmap: UInt64
        init(size: UInt64) throws {
            s = try SelftestFD()
            self.size = size
            buffer = try s.process.mmap(length: Int(size), prot: [.read, .write], at: 0x1_0000_0000, populate: true)
            bitmap = try s.process.mmap(length: Int(size / MOCK_PAGE / 8) + 2 * Int(PAGE) + 0x1000,
                                        prot: [.read, .write], at: 0x2_0000_0000, populate: true)
            ioas = s.ioasAlloc()
            let r = s.mockDomain(ioas)
            precondition(r.0 == 0)
            (stdev, hwpt, idev) = (r.1, r.2, r.3)
        }
    }

    private func forEachSize(_ body: (Fixture) throws -> Void) throws {
        for size in Self.sizes {
            let f = try Fixture(size: size)
            try body(f)
            f.s.teardownCheck()
        }
    }

    func testSelftest100EnforceDirtyAttach() throws {
        try forEachSize { f in
            let (rc, hwpt) = f.s.hwptAlloc(dev: f.idev, pt: f.ioas, flags: IOMMUFDConstant.hwptAllocDirtyTracking)
            XCTAssertEqual(rc, 0)
            let (mrc, st, _, _) = f.s.mockDomain(hwpt)
            XCTAssertEqual(mrc, 0)
            XCTAssertEqual(f.s.mockDomain(hwpt, flags: IOMMUTestOp.deviceNoDirty).0, EINVAL)
            XCTAssertEqual(f.s.destroy(st), 0)
            XCTAssertEqual(f.s.destroy(hwpt), 0)
        }
    }

    func testSelftest101EnforceDirtyAlloc() throws {
        try forEachSize { f in
            let ioas = f.s.ioasAlloc()
            let (rc, _, _, dev) = f.s.mockDomain(ioas, flags: IOMMUTestOp.deviceNoDirty)
            XCTAssertEqual(rc, 0)
            XCTAssertEqual(f.s.hwptAlloc(dev: dev, pt: ioas, flags: IOMMUFDConstant.hwptAllocDirtyTracking).0, EOPNOTSUPP)
        }
    }

    func testSelftest102SetDirtyTracking() throws {
        try forEachSize { f in
            let (_, hwpt) = f.s.hwptAlloc(dev: f.idev, pt: f.ioas, flags: IOMMUFDConstant.hwptAllocDirtyTracking)
            var c = IOMMUHWPTSetDirtyTracking(flags: IOMMUFDConstant.dirtyTrackingEnable, hwptId: hwpt)
            XCTAssertEqual(f.s.call(IOMMUFDCommand.hwptSetDirtyTracking, &c), 0)
            c.flags = 0
            XCTAssertEqual(f.s.call(IOMMUFDCommand.hwptSetDirtyTracking, &c), 0)
            c.flags = 2
            XCTAssertEqual(f.s.call(IOMMUFDCommand.hwptSetDirtyTracking, &c), EOPNOTSUPP)
            c = IOMMUHWPTSetDirtyTracking(flags: 1, hwptId: f.hwpt, reserved: 0x55)
            XCTAssertEqual(f.s.call(IOMMUFDCommand.hwptSetDirtyTracking, &c), EOPNOTSUPP, "an auto domain has no dirty ops")
            XCTAssertEqual(f.s.destroy(hwpt), 0)
        }
    }

    func testSelftest103DeviceDirtyCapability() throws {
        try forEachSize { f in
            var c = IOMMUHWInfo(devId: f.idev)
            XCTAssertEqual(f.s.call(IOMMUFDCommand.getHWInfo, &c), 0)
            XCTAssertNotEqual(c.outCapabilities & IOMMUFDConstant.hwCapDirtyTracking, 0)
        }
    }

    /// `test_mock_dirty_bitmaps`.
    private func checkBitmaps(_ f: Fixture, hwpt: UInt32, bitmap: UInt64, flags: UInt32,
                              file: StaticString = #filePath, line: UInt = #line) {
        let pageSize = MOCK_PAGE
        let nbits = Int(f.size / pageSize)
        let npte = 1, pteset = 2 * npte
        let nbytes = (nbits + 7) / 8
        var bits = [UInt8](repeating: 0, count: nbytes)
        for i in stride(from: 0, to: nbits, by: pteset) { bits[i / 8] |= 1 << UInt8(i % 8) }
        try! f.s.process.writeMemory(address: bitmap, bytes: bits)
        var d = IOMMUTestCmd.Dirty(iova: APERTURE_START, length: f.size, pageSize: pageSize, uptr: bitmap)
        XCTAssertEqual(f.s.test(IOMMUTestOp.dirty, id: hwpt, &d), 0, file: file, line: line)
        XCTAssertEqual(d.outNrDirty, UInt64(max(nbits / pteset, 1)), file: file, line: line)
        for round in 0..<2 {
            try! f.s.process.writeMemory(address: bitmap, bytes: [UInt8](repeating: 0, count: nbytes))
            var g = IOMMUHWPTGetDirtyBitmap(hwptId: hwpt, flags: flags, iova: APERTURE_START, length: f.size,
                                            pageSize: pageSize, data: bitmap)
            XCTAssertEqual(f.s.call(IOMMUFDCommand.hwptGetDirtyBitmap, &g), 0, file: file, line: line)
            let got = try! f.s.process.readMemory(address: bitmap, count: nbytes)
            for i in 0..<nbits {
                let set = got[i / 8] & (1 << UInt8(i % 8)) != 0
                let want = (i % pteset < npte) && (round == 0 || flags & IOMMUFDConstant.getDirtyBitmapNoClear != 0)
                if set != want { XCTFail("bit \(i) round \(round): \(set)", file: file, line: line); break }
            }
        }
    }

    private func runBitmaps(flags: UInt32) throws {
        try forEachSize { f in
            let ioas = f.s.ioasAlloc()
            XCTAssertEqual(f.s.mapFixed(ioas, f.buffer, f.size, iova: APERTURE_START), 0)
            let (rc, hwpt) = f.s.hwptAlloc(dev: f.idev, pt: ioas, flags: IOMMUFDConstant.hwptAllocDirtyTracking)
            XCTAssertEqual(rc, 0)
            var c = IOMMUHWPTSetDirtyTracking(flags: IOMMUFDConstant.dirtyTrackingEnable, hwptId: hwpt)
            XCTAssertEqual(f.s.call(IOMMUFDCommand.hwptSetDirtyTracking, &c), 0)
            checkBitmaps(f, hwpt: hwpt, bitmap: f.bitmap, flags: flags)
            checkBitmaps(f, hwpt: hwpt, bitmap: f.bitmap + MOCK_PAGE, flags: flags)
            checkBitmaps(f, hwpt: hwpt, bitmap: f.bitmap + 0xff1, flags: flags)
            var bad = IOMMUHWPTGetDirtyBitmap(hwptId: hwpt, iova: APERTURE_START + 1, length: f.size, pageSize: MOCK_PAGE,
                                              data: f.bitmap)
            XCTAssertEqual(f.s.call(IOMMUFDCommand.hwptGetDirtyBitmap, &bad), EINVAL)
            bad = IOMMUHWPTGetDirtyBitmap(hwptId: hwpt, iova: APERTURE_START, length: f.size, pageSize: 0, data: f.bitmap)
            XCTAssertEqual(f.s.call(IOMMUFDCommand.hwptGetDirtyBitmap, &bad), EINVAL)
            bad = IOMMUHWPTGetDirtyBitmap(hwptId: hwpt, iova: .max - 10, length: f.size, pageSize: MOCK_PAGE, data: f.bitmap)
            XCTAssertEqual(f.s.call(IOMMUFDCommand.hwptGetDirtyBitmap, &bad), EOVERFLOW)
            XCTAssertEqual(f.s.destroy(hwpt), 0)
        }
    }

    func testSelftest104GetDirtyBitmap() throws { try runBitmaps(flags: 0) }

    func testSelftest105GetDirtyBitmapNoClear() throws {
        try runBitmaps(flags: IOMMUFDConstant.getDirtyBitmapNoClear)
    }
}
