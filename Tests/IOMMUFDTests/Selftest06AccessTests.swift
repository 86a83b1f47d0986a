import XCTest
import IOMMUCore
@testable import IOMMUFD
import IOMMUFDSelftest

/// The kernel iommufd selftest's accesses and pinning (fixture `iommufd_ioas`).
final class Selftest06AccessTests: XCTestCase {
    func testSelftest82AccessPinSingle() throws {
        try forEachIOASVariant { f in
            let (rc, access) = f.s.createAccess(f.ioas)
            XCTAssertEqual(rc, 0)
            for npages in 1..<(BUFFER_SIZE / PAGE) {
                XCTAssertEqual(f.s.mapFixed(f.ioas, f.buffer, BUFFER_SIZE, iova: APERTURE_START), 0)
                let (prc, item) = f.s.accessPages(access, iova: APERTURE_START, length: npages * PAGE, uptr: f.buffer)
                XCTAssertEqual(prc, 0)
                XCTAssertEqual(f.s.destroyAccessPages(access, item), 0)
                XCTAssertEqual(f.s.unmap(f.ioas, APERTURE_START, BUFFER_SIZE).0, 0)
            }
            XCTAssertEqual(f.s.fd.closeFile(Int32(bitPattern: access)), 0)
        }
    }

    func testSelftest83AccessPinDoubleUser() throws {
        try forEachIOASVariant { f in
            let (_, access) = f.s.createAccess(f.ioas)
            XCTAssertEqual(f.s.mapFixed(f.ioas, f.buffer, BUFFER_SIZE, iova: APERTURE_START), 0)
            let (rc1, a) = f.s.accessPages(access, iova: APERTURE_START, length: 4 * PAGE, uptr: f.buffer)
            let (rc2, b) = f.s.accessPages(access, iova: APERTURE_START, length: 4 * PAGE, uptr: f.buffer)
            XCTAssertEqual(rc1, 0)
            XCTAssertEqual(rc2, 0)
            XCTAssertNotEqual(a, b)
            XCTAssertEqual(f.s.checkRefs(f.buffer, 4 * PAGE, 1), 0)
            XCTAssertEqual(f.s.destroyAccessPages(access, b), 0)
            XCTAssertEqual(f.s.destroyAccessPages(access, a), 0)
            XCTAssertEqual(f.s.destroyAccessPages(access, a), ENOENT)
            XCTAssertEqual(f.s.unmap(f.ioas, APERTURE_START, BUFFER_SIZE).0, 0)
            XCTAssertEqual(f.s.checkRefs(f.buffer, BUFFER_SIZE, 0), 0)
        }
    }

    func testSelftest84AccessPinDomainAddedUnderPin() throws {
        try forEachIOASVariant { f in
            let (_, access) = f.s.createAccess(f.ioas)
            for npages in [1, 7, 15] as [UInt64] {
                XCTAssertEqual(f.s.mapFixed(f.ioas, f.buffer, BUFFER_SIZE, iova: APERTURE_START), 0)
                let (rc, item) = f.s.accessPages(access, iova: APERTURE_START, length: npages * PAGE, uptr: f.buffer)
                XCTAssertEqual(rc, 0)
                let (mrc, stdev, hwpt, _) = f.s.mockDomain(f.ioas)
                XCTAssertEqual(mrc, 0)
                XCTAssertEqual(f.s.checkMap(hwpt, APERTURE_START, npages * PAGE, f.buffer), 0)
                XCTAssertEqual(f.s.checkRefs(f.buffer, BUFFER_SIZE, 1), 0)
                XCTAssertEqual(f.s.destroy(stdev), 0)
                XCTAssertEqual(f.s.destroyAccessPages(access, item), 0)
                XCTAssertEqual(f.s.unmap(f.ioas, APERTURE_START, BUFFER_SIZE).0, 0)
            }
        }
    }

    func testSelftest85AccessPinUnmapCallsUnmapOp() throws {
        try forEachIOASVariant { f in
            XCTAssertEqual(f.s.mapFixed(f.ioas, f.buffer, BUFFER_SIZE, iova: APERTURE_START), 0)
            let (_, access) = f.s.createAccess(f.ioas)
            let (rc, item) = f.s.accessPages(access, iova: APERTURE_START, length: BUFFER_SIZE, uptr: f.buffer)
            XCTAssertEqual(rc, 0)
            let (urc, n) = f.s.unmap(f.ioas, APERTURE_START, BUFFER_SIZE)
            XCTAssertEqual(urc, 0)
            XCTAssertEqual(n, BUFFER_SIZE)
            XCTAssertEqual(f.s.destroyAccessPages(access, item), ENOENT)
            XCTAssertEqual(f.s.checkRefs(f.buffer, BUFFER_SIZE, 0), 0)
        }
    }

    func testSelftest86AccessDomainDestroyWhilePinned() throws {
        try forEachIOASVariant(IOASVariant.all.filter { $0.mockDomains > 0 }) { f in
            XCTAssertEqual(f.s.mapFixed(f.ioas, f.buffer, BUFFER_SIZE, iova: f.baseIOVA), 0)
            let (_, access) = f.s.createAccess(f.ioas)
            let (rc, item) = f.s.accessPages(access, iova: f.baseIOVA + PAGE, length: PAGE, uptr: f.buffer + PAGE)
            XCTAssertEqual(rc, 0)
            XCTAssertEqual(f.s.destroy(f.stdev), 0)
            XCTAssertEqual(f.s.checkRefs(f.buffer + PAGE, PAGE, 1), 0)
            XCTAssertEqual(f.s.destroyAccessPages(access, item), 0)
            XCTAssertEqual(f.s.fd.closeFile(Int32(bitPattern: access)), 0)
        }
    }

    /// `check_access_rw`: reads and writes of 1...63 bytes around a page boundary, with and
    /// without the slow path, against the buffer's contents.
    private func checkAccessRW(_ f: IOASFixture, access: UInt32, iova: UInt64, file: StaticString = #filePath,
                               line: UInt = #line) {
        let tmp = f.s.arg + 0x6000
        var rng = SystemRandomNumberGenerator()
        for flags in [0, IOMMUTestOp.accessRWSlowPath] {
            var at = iova + PAGE - 50
            while at < iova + PAGE + 50 {
                for length in stride(from: 1, to: 64, by: 7) as StrideTo<UInt64> {
                    let rc = f.s.test(IOMMUTestOp.accessRW, id: access,
                                      IOMMUTestCmd.AccessRW(iova: at, length: length, uptr: tmp, flags: flags))
                    XCTAssertEqual(rc, 0, file: file, line: line)
                    let got = try! f.s.process.readMemory(address: tmp, count: Int(length))
                    let want = try! f.s.process.readMemory(address: f.buffer + (at - iova), count: Int(length))
                    XCTAssertEqual(got, want, file: file, line: line)
                    let data = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
                    try! f.s.process.writeMemory(address: tmp, bytes: data)
                    let wrc = f.s.test(IOMMUTestOp.accessRW, id: access,
                                       IOMMUTestCmd.AccessRW(iova: at, length: length, uptr: tmp,
                                                             flags: flags | IOMMUTestOp.accessRWWrite))
                    XCTAssertEqual(wrc, 0, file: file, line: line)
                    XCTAssertEqual(try! f.s.process.readMemory(address: f.buffer + (at - iova), count: Int(length)), data,
                                   file: file, line: line)
                }
                at += 3
            }
        }
        let whole = f.s.arg + 0x10000
        XCTAssertEqual(f.s.test(IOMMUTestOp.accessRW, id: access,
                                IOMMUTestCmd.AccessRW(iova: iova, length: BUFFER_SIZE, uptr: whole)), 0, file: file, line: line)
        XCTAssertEqual(try! f.s.process.readMemory(address: whole, count: Int(BUFFER_SIZE)),
                       try! f.s.process.readMemory(address: f.buffer, count: Int(BUFFER_SIZE)), file: file, line: line)
    }

    func testSelftest87AccessRW() throws {
        try forEachIOASVariant { f in
            let (rc, access) = f.s.createAccess(f.ioas, flags: 0)
            XCTAssertEqual(rc, 0)
            let (mrc, iova) = f.s.mapAuto(f.ioas, f.buffer, BUFFER_SIZE)
            XCTAssertEqual(mrc, 0)
            checkAccessRW(f, access: access, iova: iova)
            XCTAssertEqual(f.s.unmap(f.ioas, iova, BUFFER_SIZE).0, 0)
            XCTAssertEqual(f.s.fd.closeFile(Int32(bitPattern: access)), 0)
        }
    }

    func testSelftest88AccessRWUnaligned() throws {
        try forEachIOASVariant { f in
            let (_, access) = f.s.createAccess(f.ioas, flags: 0)
            let iova = f.baseIOVA + MOCK_PAGE
            XCTAssertEqual(f.s.mapFixed(f.ioas, f.buffer, BUFFER_SIZE, iova: iova), 0)
            checkAccessRW(f, access: access, iova: iova)
            XCTAssertEqual(f.s.unmap(f.ioas, iova, BUFFER_SIZE).0, 0)
        }
    }

    /// The access's pins fail cleanly: no pin for an unmapped range (ENOENT), write pins of
    /// a read-only area (EPERM), and accesses made without NEEDS_PIN_PAGES (EOPNOTSUPP).
    func testSelftest82bAccessPinErrors() throws {
        try forEachIOASVariant { f in
            let (_, access) = f.s.createAccess(f.ioas)
            XCTAssertEqual(f.s.accessPages(access, iova: APERTURE_START, length: PAGE, uptr: f.buffer).0, ENOENT)
            XCTAssertEqual(f.s.mapFixed(f.ioas, f.buffer, PAGE, iova: APERTURE_START, flags: IOMMUFDConstant.mapReadable), 0)
            XCTAssertEqual(f.s.accessPages(access, iova: APERTURE_START, length: PAGE, uptr: f.buffer,
                                           flags: IOMMUTestOp.accessFlagWrite).0, EPERM)
            XCTAssertEqual(f.s.accessPages(access, iova: APERTURE_START, length: 2 * PAGE, uptr: f.buffer).0, ENOENT)
            XCTAssertEqual(f.s.accessPages(access, iova: APERTURE_START, length: PAGE, uptr: f.buffer + PAGE).0,
                           neg(.invalidExchange), "the pinned page is not the one behind uptr")
            let (_, rwOnly) = f.s.createAccess(f.ioas, flags: 0)
            XCTAssertEqual(f.s.accessPages(rwOnly, iova: APERTURE_START, length: PAGE, uptr: f.buffer).0, EOPNOTSUPP)
            XCTAssertEqual(f.s.accessPages(999, iova: APERTURE_START, length: PAGE, uptr: f.buffer).0, EBADFD)
            XCTAssertEqual(f.s.checkRefs(f.buffer, PAGE, f.variant.mockDomains > 0 ? 1 : 0), 0)
            XCTAssertEqual(f.s.unmap(f.ioas, APERTURE_START, PAGE).0, 0)
            XCTAssertEqual(f.s.checkRefs(f.buffer, BUFFER_SIZE, 0), 0)
        }
    }
}
