import XCTest
import IOMMUCore
@testable import IOMMUFD
import IOMMUFDSelftest

/// The kernel iommufd selftest's IOAS lifetime and mapping cases (fixture `iommufd_ioas`,
/// 4 variants).
final class Selftest04IOASTests: XCTestCase {
    let RW = IOMMUFDConstant.mapWriteable | IOMMUFDConstant.mapReadable

    func testSelftest19IOASAutoDestroy() throws {
        try forEachIOASVariant { f in
            XCTAssertEqual(f.s.mapFixed(f.ioas, f.buffer, PAGE, iova: f.baseIOVA), 0)
        }
    }

    func testSelftest20IOASDestroyInUseIsEBUSY() throws {
        try forEachIOASVariant(IOASVariant.all.filter { $0.mockDomains > 0 }) { f in
            XCTAssertEqual(f.s.destroy(f.ioas), EBUSY)
        }
    }

    func testSelftest21IOASDestroyUnused() throws {
        try forEachIOASVariant(IOASVariant.all.filter { $0.mockDomains == 0 }) { f in
            XCTAssertEqual(f.s.destroy(f.ioas), 0)
            XCTAssertEqual(f.s.destroy(f.ioas), ENOENT)
        }
    }

    func testSelftest22IOASAreaDestroy() throws {
        try forEachIOASVariant { f in
            XCTAssertEqual(f.s.mapFixed(f.ioas, f.buffer, PAGE, iova: f.baseIOVA), 0)
            XCTAssertEqual(f.s.destroy(f.ioas), f.variant.mockDomains > 0 ? EBUSY : 0)
        }
    }

    func testSelftest23IOASAreaAutoDestroy() throws {
        try forEachIOASVariant { f in
            for i in 0..<10 as Range<UInt64> {
                XCTAssertEqual(f.s.mapFixed(f.ioas, f.buffer, PAGE, iova: f.baseIOVA + i * PAGE), 0)
            }
        }
    }

    func testSelftest24HWPTAttachDirect() throws {
        try forEachIOASVariant { f in
            if f.variant.mockDomains > 0 {
                let (rc, _, hwpt, _) = f.s.mockDomain(f.hwpt)
                XCTAssertEqual(rc, 0)
                XCTAssertEqual(hwpt, f.hwpt)
            } else {
                XCTAssertEqual(f.s.mockDomain(f.hwpt).0, ENOENT)
            }
        }
    }

    func testSelftest25UnmapOfNothingIsENOENT() throws {
        try forEachIOASVariant { f in
            for i in 0..<10 as Range<UInt64> { XCTAssertEqual(f.s.unmap(f.ioas, i * PAGE, PAGE).0, ENOENT) }
        }
    }

    func testSelftest26PerPageUnmap() throws {
        try forEachIOASVariant { f in
            for i in 0..<10 as Range<UInt64> {
                XCTAssertEqual(f.s.mapFixed(f.ioas, f.buffer, PAGE, iova: f.baseIOVA + i * PAGE), 0)
            }
            for i in 0..<10 as Range<UInt64> {
                let (rc, n) = f.s.unmap(f.ioas, f.baseIOVA + i * PAGE, PAGE)
                XCTAssertEqual(rc, 0)
                XCTAssertEqual(n, PAGE)
            }
        }
    }

    func testSelftest27UnmapCutsAreaIsENOENT() throws {
        try forEachIOASVariant { f in
            XCTAssertEqual(f.s.mapFixed(f.ioas, f.buffer, 2 * PAGE, iova: f.baseIOVA + 16 * PAGE), 0)
            XCTAssertEqual(f.s.unmap(f.ioas, f.baseIOVA + 16 * PAGE, PAGE).0, ENOENT)
            XCTAssertEqual(f.s.unmap(f.ioas, f.baseIOVA + 17 * PAGE, PAGE).0, ENOENT)
            XCTAssertEqual(f.s.unmap(f.ioas, f.baseIOVA + 16 * PAGE, 2 * PAGE).1, 2 * PAGE)
        }
    }

    func testSelftest28MapOverlapIsEEXIST() throws {
        try forEachIOASVariant { f in
            let b = f.baseIOVA
            XCTAssertEqual(f.s.mapFixed(f.ioas, f.buffer, 2 * PAGE, iova: b + 16 * PAGE), 0)
            XCTAssertEqual(f.s.mapFixed(f.ioas, f.buffer, 2 * PAGE, iova: b + 16 * PAGE), EEXIST)
            XCTAssertEqual(f.s.mapFixed(f.ioas, f.buffer, PAGE, iova: b + 16 * PAGE), EEXIST)
            XCTAssertEqual(f.s.mapFixed(f.ioas, f.buffer, PAGE, iova: b + 17 * PAGE), EEXIST)
            XCTAssertEqual(f.s.mapFixed(f.ioas, f.buffer, 2 * PAGE, iova: b + 15 * PAGE), EEXIST)
            XCTAssertEqual(f.s.mapFixed(f.ioas, f.buffer, 3 * PAGE, iova: b + 15 * PAGE), EEXIST)
        }
    }

    func testSelftest29UnmapAll() throws {
        try forEachIOASVariant { f in
            XCTAssertEqual(f.s.mapFixed(f.ioas, f.buffer, 2 * PAGE, iova: f.baseIOVA + 16 * PAGE), 0)
            XCTAssertEqual(f.s.unmap(f.ioas, 0, .max).0, 0)
            let (rc, n) = f.s.unmap(f.ioas, 0, .max)
            XCTAssertEqual(rc, 0)
            XCTAssertEqual(n, 0)
        }
    }

    func testSelftest30UnmapFullyContainedAreas() throws {
        try forEachIOASVariant { f in
            let base = f.baseIOVA + 4 * PAGE
            for i in 0..<4 as Range<UInt64> {
                XCTAssertEqual(f.s.mapFixed(f.ioas, f.buffer, 8 * PAGE, iova: base + i * 16 * PAGE), 0)
            }
            XCTAssertEqual(f.s.unmap(f.ioas, base - 4 * PAGE, 8 * PAGE).0, ENOENT)
            XCTAssertEqual(f.s.unmap(f.ioas, base + 3 * 16 * PAGE + 8 * PAGE - 4 * PAGE, 8 * PAGE).0, ENOENT)
            let (rc, n) = f.s.unmap(f.ioas, base - 4 * PAGE, 3 * 16 * PAGE + 8 * PAGE + 4 * PAGE)
            XCTAssertEqual(rc, 0)
            XCTAssertEqual(n, 32 * PAGE)
        }
    }

    func testSelftest31AutoIOVAPlain() throws {
        try forEachIOASVariant { f in
            var iovas: [UInt64] = []
            for _ in 0..<10 {
                let (rc, iova) = f.s.mapAuto(f.ioas, f.buffer, PAGE)
                XCTAssertEqual(rc, 0)
                iovas.append(iova)
            }
            for iova in iovas { XCTAssertEqual(f.s.unmap(f.ioas, iova, PAGE).0, 0) }
        }
    }

    func testSelftest32AutoIOVANaturalAlignment() throws {
        try forEachIOASVariant { f in
            var iovas: [(UInt64, UInt64)] = []
            for i in 0..<10 as Range<UInt64> {
                let length = PAGE * (i + 1)
                let va = f.variant.mockDomains > 0 ? f.buffer : 1 << 31
                let (rc, iova) = f.s.mapAuto(f.ioas, va, length)
                XCTAssertEqual(rc, 0)
                XCTAssertEqual(iova % (UInt64(1) << UInt64(length.trailingZeroBitCount)), 0)
                iovas.append((iova, length))
            }
            for (iova, length) in iovas { XCTAssertEqual(f.s.unmap(f.ioas, iova, length).0, 0) }
        }
    }

    func testSelftest33AutoIOVAAvoidsReserved() throws {
        try forEachIOASVariant { f in
            XCTAssertEqual(f.s.addReserved(f.ioas, 4 * PAGE, 100 * PAGE), 0)
            for i in 0..<10 as Range<UInt64> {
                let length = PAGE * (i + 1)
                let (rc, iova) = f.s.mapAuto(f.ioas, f.buffer, length)
                XCTAssertEqual(rc, 0)
                XCTAssertFalse(iova > 4 * PAGE && iova < 100 * PAGE)
            }
        }
    }

    func testSelftest34AllowOverReservedIsEADDRINUSE() throws {
        try forEachIOASVariant { f in
            XCTAssertEqual(f.s.addReserved(f.ioas, 4 * PAGE, 100 * PAGE), 0)
            XCTAssertEqual(f.s.allow(f.ioas, [IOMMUIOVARange(start: PAGE, last: 600 * PAGE)]), EADDRINUSE)
        }
    }

    func testSelftest35AutoIOVAInsideAllowed() throws {
        try forEachIOASVariant { f in
            XCTAssertEqual(f.s.addReserved(f.ioas, 4 * PAGE, 100 * PAGE), 0)
            let r = f.variant.mockDomains > 0
                ? IOMMUIOVARange(start: APERTURE_START + PAGE, last: APERTURE_START + 600 * PAGE - 1)
                : IOMMUIOVARange(start: 200 * PAGE, last: 600 * PAGE - 1)
            XCTAssertEqual(f.s.allow(f.ioas, [r]), 0)
            for i in 0..<10 as Range<UInt64> {
                let length = PAGE * (i + 1)
                let (rc, iova) = f.s.mapAuto(f.ioas, f.buffer, length)
                XCTAssertEqual(rc, 0)
                XCTAssertEqual(iova % (UInt64(1) << UInt64(length.trailingZeroBitCount)), 0)
                XCTAssertTrue(iova >= r.start && iova + length <= r.last + 1)
            }
        }
    }

    func testSelftest36ReservedOverflowIsENOSPC() throws {
        try forEachIOASVariant { f in
            XCTAssertEqual(f.s.addReserved(f.ioas, 6, 0xffff_ffff_ffff_8001), 0)
            XCTAssertEqual(f.s.mapAuto(f.ioas, f.buffer, 0x5000).0, ENOSPC)
        }
    }

    func testSelftest37ReserveInsideAllowedIsEADDRINUSE() throws {
        try forEachIOASVariant { f in
            XCTAssertEqual(f.s.allow(f.ioas, [IOMMUIOVARange(start: f.baseIOVA, last: f.baseIOVA + 600 * PAGE)]), 0)
            XCTAssertEqual(f.s.addReserved(f.ioas, f.baseIOVA + PAGE, PAGE), EADDRINUSE)
            XCTAssertEqual(f.s.allow(f.ioas, []), 0)
        }
    }

    func testSelftest38AllowOverReservedIsEADDRINUSE() throws {
        try forEachIOASVariant { f in
            XCTAssertEqual(f.s.addReserved(f.ioas, f.baseIOVA + PAGE, PAGE), 0)
            XCTAssertEqual(f.s.allow(f.ioas, [IOMMUIOVARange(start: f.baseIOVA, last: f.baseIOVA + 600 * PAGE)]), EADDRINUSE)
        }
    }

    func testSelftest39CopyArea() throws {
        try forEachIOASVariant { f in
            XCTAssertEqual(f.s.mapFixed(f.ioas, f.buffer, PAGE, iova: f.baseIOVA), 0)
            var c = IOMMUIOASCopy(flags: IOMMUFDConstant.mapFixedIOVA | IOMMUFDConstant.mapWriteable,
                                  dstIoasId: f.ioas, srcIoasId: f.ioas, length: PAGE,
                                  dstIova: f.baseIOVA + PAGE, srcIova: f.baseIOVA)
            XCTAssertEqual(f.s.call(IOMMUFDCommand.ioasCopy, &c), 0)
            c.dstIova = 0
            c.dstIoasId = f.s.ioasAlloc()
            XCTAssertEqual(f.s.call(IOMMUFDCommand.ioasCopy, &c), 0)
        }
    }

    private func ranges(_ f: IOASFixture, capacity: UInt32) -> (Int32, IOMMUIOASIOVARanges, [IOMMUIOVARange]) {
        let at = f.s.arg + 0x4000
        try! f.s.process.writeMemory(address: at, bytes: [UInt8](repeating: 0, count: 64))
        var c = IOMMUIOASIOVARanges(ioasId: f.ioas, numIovas: capacity, allowedIovas: at)
        let rc = f.s.call(IOMMUFDCommand.ioasIOVARanges, &c)
        let raw = UAPIBytes(try! f.s.process.readMemory(address: at, count: 64))
        return (rc, c, (0..<4).map { IOMMUIOVARange(raw, at: $0 * 16) })
    }

    func testSelftest40IOVARangesFull() throws {
        try forEachIOASVariant { f in
            let (rc, c, r) = ranges(f, capacity: 4)
            XCTAssertEqual(rc, 0)
            XCTAssertEqual(c.numIovas, 1)
            if f.variant.mockDomains > 0 {
                XCTAssertEqual(r[0], IOMMUIOVARange(start: APERTURE_START, last: APERTURE_LAST))
                XCTAssertEqual(c.outIovaAlignment, MOCK_PAGE)
            } else {
                XCTAssertEqual(r[0], IOMMUIOVARange(start: 0, last: .max))
                XCTAssertEqual(c.outIovaAlignment, 1)
            }
        }
    }

    func testSelftest41IOVARangesTooSmallIsEMSGSIZE() throws {
        try forEachIOASVariant { f in
            let (rc, c, r) = ranges(f, capacity: 0)
            XCTAssertEqual(rc, EMSGSIZE)
            XCTAssertEqual(c.numIovas, 1)
            XCTAssertEqual(r[0], IOMMUIOVARange(start: 0, last: 0))
        }
    }

    func testSelftest42IOVARangesTwoRanges() throws {
        try forEachIOASVariant { f in
            XCTAssertEqual(f.s.addReserved(f.ioas, PAGE, PAGE), 0)
            let (rc, c, r) = ranges(f, capacity: 4)
            XCTAssertEqual(rc, 0)
            if f.variant.mockDomains > 0 {
                XCTAssertEqual(c.numIovas, 1)
                XCTAssertEqual(r[0], IOMMUIOVARange(start: APERTURE_START, last: APERTURE_LAST))
            } else {
                XCTAssertEqual(c.numIovas, 2)
                XCTAssertEqual(r[0], IOMMUIOVARange(start: 0, last: PAGE - 1))
                XCTAssertEqual(r[1], IOMMUIOVARange(start: 2 * PAGE, last: .max))
            }
        }
    }

    func testSelftest43IOVARangesPartialFill() throws {
        try forEachIOASVariant { f in
            XCTAssertEqual(f.s.addReserved(f.ioas, PAGE, PAGE), 0)
            let (rc, c, r) = ranges(f, capacity: 1)
            if f.variant.mockDomains > 0 {
                XCTAssertEqual(rc, 0)
                XCTAssertEqual(c.numIovas, 1)
            } else {
                XCTAssertEqual(rc, EMSGSIZE)
                XCTAssertEqual(c.numIovas, 2)
                XCTAssertEqual(r[0], IOMMUIOVARange(start: 0, last: PAGE - 1))
                XCTAssertEqual(r[1], IOMMUIOVARange(start: 0, last: 0))
            }
        }
    }

    private func hugePages(_ f: IOASFixture, op: UInt16, _ val: UInt64 = 0) -> (Int32, UInt64) {
        var o = IOMMUOption(optionId: IOMMUFDConstant.optionHugePages, op: op, objectId: f.ioas, val64: val)
        let rc = f.s.call(IOMMUFDCommand.option, &o)
        return (rc, o.val64)
    }

    func testSelftest44IOASOptionHugePages() throws {
        try forEachIOASVariant { f in
            XCTAssertEqual(hugePages(f, op: IOMMUFDConstant.optionOpGet).1, 1)
            XCTAssertEqual(hugePages(f, op: IOMMUFDConstant.optionOpSet, 0).0, 0)
            let (rc, v) = hugePages(f, op: IOMMUFDConstant.optionOpGet)
            XCTAssertEqual(rc, 0)
            XCTAssertEqual(v, 0)
            XCTAssertEqual(hugePages(f, op: IOMMUFDConstant.optionOpSet, 2).0, EINVAL)
            XCTAssertEqual(hugePages(f, op: IOMMUFDConstant.optionOpSet, 1).0, 0)
            XCTAssertEqual(hugePages(f, op: IOMMUFDConstant.optionOpGet).1, 1)
        }
    }

    func testSelftest45IOASIOVAAlloc() throws {
        try forEachIOASVariant { f in
            for length in 1..<(2 * PAGE) {
                if f.variant.mockDomains > 0 && length % MOCK_PAGE != 0 {
                    XCTAssertEqual(f.s.mapAuto(f.ioas, f.buffer, length).0, EINVAL)
                } else {
                    let (rc, iova) = f.s.mapAuto(f.ioas, f.buffer, length)
                    XCTAssertEqual(rc, 0)
                    XCTAssertEqual(f.s.unmap(f.ioas, iova, length).0, 0)
                }
            }
        }
    }

    func testSelftest46IOASAlignChange() throws {
        try forEachIOASVariant(IOASVariant.all.filter { $0.mockDomains == 0 }) { f in
            XCTAssertEqual(f.s.mapFixed(f.ioas, f.buffer, PAGE, iova: APERTURE_START), 0)
            XCTAssertEqual(hugePages(f, op: IOMMUFDConstant.optionOpSet, 0).0, 0)
            XCTAssertEqual(f.s.mapFixed(f.ioas, f.buffer + MOCK_PAGE, PAGE, iova: APERTURE_START + PAGE), EINVAL)
            XCTAssertEqual(hugePages(f, op: IOMMUFDConstant.optionOpSet, 0).0, 0)
            XCTAssertEqual(hugePages(f, op: IOMMUFDConstant.optionOpSet, 1).0, 0)
            XCTAssertEqual(f.s.mapFixed(f.ioas, f.buffer + MOCK_PAGE, PAGE, iova: APERTURE_START + PAGE), 0)
            XCTAssertEqual(hugePages(f, op: IOMMUFDConstant.optionOpSet, 0).0, EADDRINUSE)
            XCTAssertEqual(f.s.unmap(f.ioas, APERTURE_START + PAGE, PAGE).0, 0)
            XCTAssertEqual(f.s.unmap(f.ioas, APERTURE_START, PAGE).0, 0)
        }
    }

    func testSelftest47CopySweep() throws {
        try forEachIOASVariant { f in
            let dst = f.s.ioasAlloc()
            let last = f.variant.mockDomains > 0 ? APERTURE_START + BUFFER_SIZE - 1 : APERTURE_START + BUFFER_SIZE - 2
            XCTAssertEqual(f.s.mapFixed(f.ioas, f.buffer, last - APERTURE_START + 1, iova: APERTURE_START), 0)
            var c = IOMMUIOASCopy(flags: IOMMUFDConstant.mapFixedIOVA | IOMMUFDConstant.mapWriteable,
                                  dstIoasId: dst, srcIoasId: f.ioas, length: MOCK_PAGE, dstIova: APERTURE_START)
            var iova = APERTURE_START - PAGE
            while iova <= last {
                c.srcIova = iova
                c.dstIova = APERTURE_START
                if iova < APERTURE_START || iova + c.length - 1 > last {
                    XCTAssertEqual(f.s.call(IOMMUFDCommand.ioasCopy, &c), ENOENT)
                } else {
                    XCTAssertEqual(f.s.call(IOMMUFDCommand.ioasCopy, &c), 0)
                    XCTAssertEqual(f.s.unmap(dst, APERTURE_START, MOCK_PAGE).0, 0)
                }
                iova += 511
            }
            XCTAssertEqual(f.s.unmap(f.ioas, APERTURE_START, last - APERTURE_START + 1).0, 0)
            XCTAssertEqual(f.s.destroy(dst), 0)
        }
    }

    private func hwInfo(_ f: IOASFixture, dev: UInt32, len: UInt32, flags: UInt32 = 0,
                        type: UInt32 = 0) -> (Int32, IOMMUHWInfo, [UInt8]) {
        let at = f.s.arg + 0x5000
        try! f.s.process.writeMemory(address: at, bytes: [UInt8](repeating: 0xAA, count: 32))
        var c = IOMMUHWInfo(flags: flags, devId: dev, dataLen: len, dataUptr: len == 0 ? 0 : at, dataType: type)
        let rc = f.s.call(IOMMUFDCommand.getHWInfo, &c)
        return (rc, c, try! f.s.process.readMemory(address: at, count: 32))
    }

    func testSelftest48GetHWInfoSizes() throws {
        try forEachIOASVariant(IOASVariant.all.filter { $0.mockDomains > 0 }) { f in
            XCTAssertEqual(hwInfo(f, dev: f.device, len: 0).0, 0)
            var (rc, c, data) = hwInfo(f, dev: f.device, len: 8)
            XCTAssertEqual(rc, 0)
            XCTAssertEqual(c.dataType, IOMMUTestOp.hwInfoTypeSelftest)
            XCTAssertEqual(c.dataLen, 8)
            let info = IOMMUTestHWInfo(bytes: Array(data[0..<8]))
            XCTAssertEqual(info.testReg, IOMMUTestOp.hwInfoSelftestRegval)
            XCTAssertEqual(info.flags, 0)
            (rc, c, data) = hwInfo(f, dev: f.device, len: 16)
            XCTAssertEqual(rc, 0)
            XCTAssertEqual(Array(data[8..<16]), [UInt8](repeating: 0, count: 8))
            XCTAssertEqual(data[16], 0xAA)
            (rc, c, data) = hwInfo(f, dev: f.device, len: 4)
            XCTAssertEqual(rc, 0)
            XCTAssertEqual(Array(data[0..<4]), [0, 0, 0, 0])
            XCTAssertEqual(data[4], 0xAA)
        }
    }

    func testSelftest49GetHWInfoInputType() throws {
        try forEachIOASVariant(IOASVariant.all.filter { $0.mockDomains > 0 }) { f in
            XCTAssertEqual(hwInfo(f, dev: f.device, len: 8, flags: IOMMUFDConstant.hwInfoFlagInputType,
                                  type: IOMMUTestOp.hwInfoTypeSelftest + 1).0, EOPNOTSUPP)
            XCTAssertEqual(hwInfo(f, dev: f.device, len: 8, flags: IOMMUFDConstant.hwInfoFlagInputType,
                                  type: IOMMUTestOp.hwInfoTypeSelftest).0, 0)
        }
    }

    func testSelftest50GetHWInfoPasidWidth() throws {
        try forEachIOASVariant(IOASVariant.all.filter { $0.pasidCapable }) { f in
            XCTAssertEqual(hwInfo(f, dev: f.device, len: 0).1.outMaxPasidLog2, 0)
            XCTAssertEqual(hwInfo(f, dev: f.devicePasid, len: 0).1.outMaxPasidLog2, IOMMUTestOp.pasidWidth)
            XCTAssertNotEqual(hwInfo(f, dev: f.device, len: 0).1.outCapabilities & IOMMUFDConstant.hwCapDirtyTracking, 0)
        }
    }

    func testSelftest51GetHWInfoNoDeviceIsENOENT() throws {
        try forEachIOASVariant(IOASVariant.all.filter { $0.mockDomains == 0 }) { f in
            XCTAssertEqual(hwInfo(f, dev: 0, len: 0).0, ENOENT)
        }
    }
}
