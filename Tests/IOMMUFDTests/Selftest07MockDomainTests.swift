import XCTest
import IOMMUCore
@testable import IOMMUFD
import IOMMUFDSelftest

/// The kernel iommufd selftest's mapping through mock domains (fixture `iommufd_mock_domain`;
/// the `one_domain` and `two_domains` variants; the `_file` and `_file_hugepage`
/// variants are in `Selftest13MapFileTests`; the MAP_HUGETLB variants need huge pages the
/// model's processes do not have).
final class Selftest07MockDomainTests: XCTestCase {
    final class Fixture {
        let s: SelftestFD
        let ioas: UInt32
        var stdevs: [UInt32] = []
        var hwpts: [UInt32] = []
        init(domains: Int) throws {
            s = try SelftestFD()
            ioas = s.ioasAlloc()
            for _ in 0..<domains {
                let (rc, st, hw, _) = s.mockDomain(ioas)
                precondition(rc == 0)
                stdevs.append(st)
                hwpts.append(hw)
            }
        }
    }

    private func forEachVariant(_ body: (Fixture) throws -> Void) throws {
        for n in [1, 2] {
            let f = try Fixture(domains: n)
            try body(f)
            f.s.teardownCheck()
        }
    }

    func testSelftest92BasicMapAndEFAULTOnHoles() throws {
        try forEachVariant { f in
            let (rc, iova) = f.s.mapAuto(f.ioas, f.s.buffer, PAGE)
            XCTAssertEqual(rc, 0)
            for h in f.hwpts { XCTAssertEqual(f.s.checkMap(h, iova, PAGE, f.s.buffer), 0) }
            let size = 8 * PAGE
            let buf = try f.s.process.mmap(length: Int(size), prot: [.read, .write])
            try f.s.process.munmap(address: buf + size / 2, length: Int(size / 2))
            XCTAssertEqual(f.s.mapAuto(f.ioas, buf, size).0, EFAULT)
            try f.s.process.munmap(address: buf, length: Int(size / 2))
            XCTAssertEqual(f.s.mapAuto(f.ioas, buf, size).0, EFAULT)
            XCTAssertEqual(f.s.checkRefs(f.s.buffer, PAGE, 1), 0)
        }
    }

    func testSelftest95AllAligns() throws {
        try forEachVariant { f in
            let buf = f.s.buffer
            var start: UInt64 = 0
            while start < BUFFER_SIZE {
                var end = start + MOCK_PAGE
                while end <= BUFFER_SIZE {
                    let length = end - start
                    let (rc, iova) = f.s.mapAuto(f.ioas, buf + start, length)
                    XCTAssertEqual(rc, 0)
                    XCTAssertEqual(f.s.checkMap(f.hwpts[0], iova, length, buf + start), 0)
                    let lo = start / PAGE * PAGE, hi = end / PAGE * PAGE
                    if hi > lo { XCTAssertEqual(f.s.checkRefs(buf + lo, hi - lo, 1), 0) }
                    XCTAssertEqual(f.s.unmap(f.ioas, iova, length).0, 0)
                    end += MOCK_PAGE * 3
                }
                start += MOCK_PAGE
            }
            XCTAssertEqual(f.s.checkRefs(buf, BUFFER_SIZE, 0), 0)
        }
    }

    func testSelftest96AllAlignsCopy() throws {
        try forEachVariant { f in
            let buf = f.s.buffer
            var start: UInt64 = 0
            while start < BUFFER_SIZE {
                var end = start + MOCK_PAGE
                while end <= BUFFER_SIZE {
                    let length = end - start
                    let (rc, iova) = f.s.mapAuto(f.ioas, buf + start, length)
                    XCTAssertEqual(rc, 0)
                    let (mrc, stdev, hwpt, _) = f.s.mockDomain(f.ioas)
                    XCTAssertEqual(mrc, 0)
                    XCTAssertEqual(f.s.checkMap(hwpt, iova, length, buf + start), 0)
                    let lo = start / PAGE * PAGE, hi = end / PAGE * PAGE
                    if hi > lo { XCTAssertEqual(f.s.checkRefs(buf + lo, hi - lo, 1), 0) }
                    XCTAssertEqual(f.s.destroy(stdev), 0)
                    XCTAssertEqual(f.s.unmap(f.ioas, iova, length).0, 0)
                    end += MOCK_PAGE * 5
                }
                start += MOCK_PAGE * 3
            }
            XCTAssertEqual(f.s.checkRefs(buf, BUFFER_SIZE, 0), 0)
        }
    }

    func testSelftest97UserCopy() throws {
        try forEachVariant { f in
            let s = f.s
            let ioas2 = s.ioasAlloc()
            XCTAssertEqual(s.mapFixed(ioas2, s.buffer, BUFFER_SIZE, iova: APERTURE_START), 0)
            let (arc, access) = s.createAccess(ioas2)
            XCTAssertEqual(arc, 0)
            let (prc, item) = s.accessPages(access, iova: APERTURE_START, length: BUFFER_SIZE, uptr: s.buffer)
            XCTAssertEqual(prc, 0)
            var c = IOMMUIOASCopy(flags: IOMMUFDConstant.mapFixedIOVA | IOMMUFDConstant.mapWriteable | IOMMUFDConstant.mapReadable,
                                  dstIoasId: f.ioas, srcIoasId: ioas2, length: BUFFER_SIZE,
                                  dstIova: APERTURE_START, srcIova: APERTURE_START)
            XCTAssertEqual(s.call(IOMMUFDCommand.ioasCopy, &c), 0)
            XCTAssertEqual(s.checkMap(f.hwpts[0], APERTURE_START, BUFFER_SIZE, s.buffer), 0)
            XCTAssertEqual(s.checkRefs(s.buffer, BUFFER_SIZE, 1), 0)
            let ioas3 = s.ioasAlloc()
            XCTAssertEqual(s.mapFixed(ioas3, s.buffer, BUFFER_SIZE, iova: APERTURE_START), 0)
            XCTAssertEqual(s.destroyAccessPages(access, item), 0)
            XCTAssertEqual(s.test(IOMMUTestOp.accessReplaceIOAS, id: access, IOMMUTestCmd.AccessReplaceIOAS(ioasId: ioas3)), 0)
            XCTAssertEqual(s.unmap(f.ioas, APERTURE_START, BUFFER_SIZE).0, 0)
            XCTAssertEqual(s.destroy(ioas2), 0)
            let (p2, item2) = s.accessPages(access, iova: APERTURE_START, length: BUFFER_SIZE, uptr: s.buffer)
            XCTAssertEqual(p2, 0)
            c.srcIoasId = ioas3
            XCTAssertEqual(s.call(IOMMUFDCommand.ioasCopy, &c), 0)
            XCTAssertEqual(s.checkMap(f.hwpts[0], APERTURE_START, BUFFER_SIZE, s.buffer), 0)
            XCTAssertEqual(s.destroyAccessPages(access, item2), 0)
            XCTAssertEqual(s.fd.closeFile(Int32(bitPattern: access)), 0)
            XCTAssertEqual(s.destroy(ioas3), 0)
        }
    }

    func testSelftest98Replace() throws {
        try forEachVariant { f in
            let s = f.s
            let x = s.ioasAlloc()
            XCTAssertEqual(s.replace(f.stdevs[0], x).0, 0)
            if f.hwpts.count == 1 {
                XCTAssertEqual(s.replace(f.stdevs[0], f.hwpts[0]).0, ENOENT)
                XCTAssertEqual(s.replace(f.stdevs[0], x).0, 0)
            } else {
                XCTAssertEqual(f.hwpts[0], f.hwpts[1])
                XCTAssertEqual(s.replace(f.stdevs[0], f.hwpts[1]).0, 0)
                XCTAssertEqual(s.replace(f.stdevs[0], f.hwpts[1]).0, 0)
                XCTAssertEqual(s.replace(f.stdevs[0], f.hwpts[0]).0, 0)
            }
            XCTAssertEqual(s.replace(f.stdevs[0], f.ioas).0, 0)
            XCTAssertEqual(s.destroy(x), 0)
        }
    }

    func testSelftest99AllocHWPT() throws {
        try forEachVariant { f in
            let s = f.s
            let idev = s.mockDomainDeviceID(f.stdevs[0])
            XCTAssertEqual(s.hwptAlloc(dev: idev, pt: f.ioas, flags: ~IOMMUFDConstant.hwptAllocNestParent).0, EOPNOTSUPP)
            let (r0, hwpt0) = s.hwptAlloc(dev: idev, pt: f.ioas)
            let (r1, hwpt1) = s.hwptAlloc(dev: idev, pt: f.ioas, flags: IOMMUFDConstant.hwptAllocNestParent)
            XCTAssertEqual(r0, 0)
            XCTAssertEqual(r1, 0)
            XCTAssertEqual(s.replace(f.stdevs[0], hwpt0).0, 0)
            XCTAssertEqual(s.destroy(hwpt0), EBUSY)
            XCTAssertEqual(s.replace(f.stdevs[0], hwpt1).0, 0)
            XCTAssertEqual(s.destroy(hwpt1), EBUSY)
            XCTAssertEqual(s.replace(f.stdevs[0], f.ioas).0, 0)
            XCTAssertEqual(s.destroy(hwpt1), 0)
            let (mrc, st, hw, _) = s.mockDomain(hwpt0)
            XCTAssertEqual(mrc, 0)
            XCTAssertEqual(hw, hwpt0)
            XCTAssertEqual(s.destroy(st), 0)
            XCTAssertEqual(s.destroy(hwpt0), 0)
        }
    }
}

extension SelftestFD {
    /// The DEVICE id bound for a stdev (the selftest keeps it from MOCK_DOMAIN's output).
    func mockDomainDeviceID(_ stdev: UInt32) -> UInt32 {
        fd.lock.withLock { (fd.table.live(stdev) as? SelftestObject)?.idev?.rawID ?? 0 }
    }
}
