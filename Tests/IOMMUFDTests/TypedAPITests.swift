import XCTest
import IOMMUCore
@testable import IOMMUFD
import IOMMUFDSelftest

/// The typed Swift API runs the raw dispatcher: same results, same errno.
final class TypedAPITests: XCTestCase {
    func testTypedIOASLifecycle() throws {
        let s = try SelftestFD()
        let fd = s.fd
        let ioas = try fd.allocIOAS()
        XCTAssertEqual(ioas, 1)
        let r = try fd.iovaRanges(ioas: ioas)
        XCTAssertEqual(r.ranges, [0 ... .max])
        XCTAssertEqual(r.alignment, 1)
        let iova = try fd.map(ioas: ioas, userVA: s.buffer, length: BUFFER_SIZE)
        XCTAssertTrue(iova.isAligned(to: BUFFER_SIZE))
        XCTAssertNotEqual(iova, 0)
        XCTAssertEqual(try fd.map(ioas: ioas, userVA: s.buffer, length: PAGE, iova: 0x300000), 0x300000)
        XCTAssertThrowsError(try fd.map(ioas: ioas, userVA: s.buffer, length: PAGE, iova: 0x300000)) {
            XCTAssertEqual($0 as? Errno, .exists)
        }
        XCTAssertThrowsError(try fd.map(ioas: ioas, userVA: s.buffer, length: PAGE, flags: [])) {
            XCTAssertEqual($0 as? Errno, .invalidArgument)
        }
        let ioas2 = try fd.allocIOAS()
        XCTAssertEqual(try fd.copy(from: ioas, srcIOVA: iova, to: ioas2, dstIOVA: 0x200000, length: PAGE), 0x200000)
        XCTAssertEqual(try fd.unmap(ioas: ioas, iova: 0, length: .max), BUFFER_SIZE + PAGE)
        XCTAssertThrowsError(try fd.unmap(ioas: ioas, iova: 0x300000, length: PAGE)) { XCTAssertEqual($0 as? Errno, .noEntry) }
        try fd.allowIOVAs(ioas: ioas, [0x100000...0x1ffffff])
        XCTAssertEqual(try fd.map(ioas: ioas, userVA: s.buffer, length: PAGE), 0x100000)
        XCTAssertTrue(try fd.hugePages(ioas: ioas))
        try fd.setHugePages(ioas: ioas, enabled: false)
        XCTAssertFalse(try fd.hugePages(ioas: ioas))
        XCTAssertThrowsError(try fd.destroy(99 as AnyIOMMUFDObjectID)) { XCTAssertEqual($0 as? Errno, .noEntry) }
        try fd.destroy(ioas2)
        XCTAssertEqual(try fd.allocIOAS(), ioas2, "the lowest free ID is reused")
        s.teardownCheck()
    }

    func testTypedDeviceCalls() throws {
        let s = try SelftestFD()
        let fd = s.fd
        let ioas = try fd.allocIOAS()
        let (rc, _, rawHWPT, rawDev) = s.mockDomain(ioas.rawValue)
        let (hwpt, dev) = (HWPTObjectID(rawValue: rawHWPT), DeviceObjectID(rawValue: rawDev))
        XCTAssertEqual(rc, 0)
        let info = try fd.hwInfo(device: dev)
        XCTAssertEqual(info.type, IOMMUTestOp.hwInfoTypeSelftest)
        XCTAssertEqual(info.dataLength, 8)
        XCTAssertEqual(IOMMUTestHWInfo(bytes: info.data).testReg, IOMMUTestOp.hwInfoSelftestRegval)
        XCTAssertEqual(try fd.iovaRanges(ioas: ioas).ranges, [IOVA(rawValue: APERTURE_START)...IOVA(rawValue: APERTURE_LAST)])
        let parent = try fd.allocHWPT(device: dev, pt: ioas, flags: IOMMUFDConstant.hwptAllocNestParent)
        let nested = try fd.allocHWPT(device: dev, pt: parent, dataType: IOMMUTestOp.hwptDataSelftest,
                                      data: IOMMUHWPTSelftest(iotlb: 5).bytes)
        var handled: UInt32 = 9
        XCTAssertThrowsError(try fd.invalidate(hwpt: nested, dataType: IOMMUTestOp.invalidateDataSelftest, entryLength: 8,
                                               entries: [IOMMUHWPTInvalidateSelftest(iotlbId: 1).bytes,
                                                         IOMMUHWPTInvalidateSelftest(iotlbId: 7).bytes], handled: &handled)) {
            XCTAssertEqual($0 as? Errno, .invalidArgument)
        }
        XCTAssertEqual(handled, 1)
        XCTAssertEqual(s.checkIOTLB(nested.rawValue, 1, 0), 0)
        XCTAssertEqual(s.checkIOTLB(nested.rawValue, 0, 5), 0)
        let dirty = try fd.allocHWPT(device: dev, pt: ioas, flags: IOMMUFDConstant.hwptAllocDirtyTracking)
        try fd.setDirtyTracking(hwpt: dirty, enabled: true)
        XCTAssertThrowsError(try fd.setDirtyTracking(hwpt: hwpt, enabled: true)) { XCTAssertEqual($0 as? Errno, .notSupported) }
        let q = try fd.allocFaultQueue()
        XCTAssertThrowsError(try fd.destroy(q.id)) { XCTAssertEqual($0 as? Errno, .busy) }
        XCTAssertEqual(fd.closeFile(q.fd), 0)
        try fd.destroy(q.id)
        s.teardownCheck()
    }
}
