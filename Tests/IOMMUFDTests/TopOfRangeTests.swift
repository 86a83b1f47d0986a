import XCTest
import IOMMUCore
@testable import IOMMUFD
import IOMMUFDSelftest

/// IOVA ranges that end at the top of the 64-bit space: their last byte is
/// `iova + (length - 1)` = `ULONG_MAX`, and `iova + length` wraps to 0. The kernel checks
/// `iova + length - 1` for overflow when a range comes in (`iopt_check_iova`,
/// `iopt_unmap_iova`, `iommufd_access_pin_pages`…) and then works with `last`; every
/// path here must give its answers without trapping.
final class TopOfRangeTests: XCTestCase {
    let top = UInt64.max - (PAGE - 1)

    /// MAP with FIXED_IOVA at 2^64 − 4096, then UNMAP, DESTROY and close: the kernel's
    /// results, and nothing pinned afterwards.
    func testMapAtTopThenUnmapDestroyAndClose() throws {
        let s = try SelftestFD()
        let ioas = s.ioasAlloc()
        XCTAssertEqual(s.mapFixed(ioas, s.buffer, PAGE, iova: top), 0)
        XCTAssertEqual(s.mapFixed(ioas, s.buffer, PAGE, iova: top), EEXIST)
        XCTAssertEqual(s.mapFixed(ioas, s.buffer, 2 * PAGE, iova: top - PAGE), EEXIST)
        XCTAssertEqual(s.unmap(ioas, top, 2 * PAGE).0, EOVERFLOW, "iova + length - 1 wraps")
        let (rc, n) = s.unmap(ioas, top, PAGE)
        XCTAssertEqual(rc, 0)
        XCTAssertEqual(n, PAGE)
        XCTAssertEqual(s.unmap(ioas, top, PAGE).0, ENOENT)

        XCTAssertEqual(s.mapFixed(ioas, s.buffer, PAGE, iova: top), 0)
        XCTAssertEqual(s.unmap(ioas, 0, .max).1, PAGE, "unmap all reports the area at the top")
        XCTAssertEqual(s.mapFixed(ioas, s.buffer, PAGE, iova: top), 0)
        XCTAssertEqual(s.destroy(ioas), 0, "destroying an IOAS with an area at the top")

        let ioas2 = s.ioasAlloc()
        XCTAssertEqual(s.mapFixed(ioas2, s.buffer, PAGE, iova: top), 0)
        s.teardownCheck()
    }

    /// The length that would end one byte past the top is `EOVERFLOW`; `iova` or `length`
    /// of `ULONG_MAX` is `EOVERFLOW` before anything else.
    func testRangesPastTheTopAreEOVERFLOW() throws {
        let s = try SelftestFD()
        let ioas = s.ioasAlloc()
        XCTAssertEqual(s.mapFixed(ioas, s.buffer, 2 * PAGE, iova: top), EOVERFLOW)
        XCTAssertEqual(s.mapFixed(ioas, s.buffer, PAGE, iova: .max), EOVERFLOW)
        XCTAssertEqual(s.unmap(ioas, .max, 1).0, EOVERFLOW)
        XCTAssertEqual(s.mappedBytes(ioas), 0)
        s.teardownCheck()
    }

    /// COPY to and from the top, and an access that pins and reads there.
    func testCopyAndAccessAtTheTop() throws {
        let s = try SelftestFD()
        let ioas = s.ioasAlloc()
        try s.process.writeMemory(address: s.buffer, bytes: (0..<Int(PAGE)).map { UInt8(truncatingIfNeeded: $0) })
        XCTAssertEqual(s.mapFixed(ioas, s.buffer, PAGE, iova: APERTURE_START), 0)
        var c = IOMMUIOASCopy(flags: IOMMUFDConstant.mapFixedIOVA | IOMMUFDConstant.mapReadable, dstIoasId: ioas,
                              srcIoasId: ioas, length: PAGE, dstIova: top, srcIova: APERTURE_START)
        XCTAssertEqual(s.call(IOMMUFDCommand.ioasCopy, &c), 0)
        let (arc, access) = s.createAccess(ioas)
        XCTAssertEqual(arc, 0)
        let (prc, item) = s.accessPages(access, iova: top, length: PAGE, uptr: s.buffer)
        XCTAssertEqual(prc, 0)
        XCTAssertEqual(s.accessPages(access, iova: top, length: 2 * PAGE, uptr: s.buffer).0, EOVERFLOW)
        let out = s.arg + 0x4000
        XCTAssertEqual(s.test(IOMMUTestOp.accessRW, id: access,
                              IOMMUTestCmd.AccessRW(iova: UInt64.max - 15, length: 16, uptr: out, flags: 0)), 0)
        XCTAssertEqual(try s.process.readMemory(address: out, count: 16), Array(UInt8(240)...255))
        XCTAssertEqual(s.destroyAccessPages(access, item), 0)
        XCTAssertEqual(s.unmap(ioas, top, PAGE).0, 0)
        _ = s.fd.closeFile(Int32(bitPattern: access))
        s.teardownCheck()
    }
}
