import XCTest
import IOMMUCore
@testable import IOMMUFD

/// The kernel iommufd selftest's VFIO compatibility with a domain (fixture
/// `vfio_compat_mock_domain`, variants TYPE1v2 and TYPE1).
final class Selftest09VFIOCompatDomainTests: XCTestCase {
    final class Fixture {
        let s: SelftestFD
        let ioas: UInt32
        let type: UInt64
        init(type: UInt64) throws {
            s = try SelftestFD()
            self.type = type
            ioas = s.ioasAlloc()
            precondition(s.mockDomain(ioas).0 == 0)
            var c = IOMMUVFIOIOAS(ioasId: ioas, op: IOMMUFDConstant.vfioIOASSet)
            precondition(s.call(IOMMUFDCommand.vfioIOAS, &c) == 0)
            precondition(s.fd.ioctl(IOMMUFDCommand.vfioSetIOMMU, type) == 0)
        }
        func mapDMA(_ va: UInt64, _ iova: UInt64, _ size: UInt64) -> Int32 {
            s.raw(IOMMUFDCommand.vfioIOMMUMapDMA, VFIOIOMMUType1DMAMap(argsz: 32, flags: 3, vaddr: va, iova: iova, size: size).bytes).0
        }
        func unmapDMA(_ iova: UInt64, _ size: UInt64, flags: UInt32 = 0) -> (Int32, UInt64) {
            let (rc, out) = s.raw(IOMMUFDCommand.vfioIOMMUUnmapDMA,
                                  VFIOIOMMUType1DMAUnmap(argsz: 24, flags: flags, iova: iova, size: size).bytes)
            return (rc, VFIOIOMMUType1DMAUnmap(bytes: out).size)
        }
    }

    private func forEachType(_ body: (Fixture) throws -> Void) throws {
        for t in [VFIOConstant.type1v2IOMMU, VFIOConstant.type1IOMMU] {
            let f = try Fixture(type: t)
            try body(f)
            f.s.teardownCheck()
        }
    }

    func testSelftest106SimpleClose() throws {
        try forEachType { _ in }
    }

    func testSelftest107OptionHugePages() throws {
        try forEachType { f in
            var o = IOMMUOption(optionId: IOMMUFDConstant.optionHugePages, op: IOMMUFDConstant.optionOpGet, objectId: f.ioas)
            XCTAssertEqual(f.s.call(IOMMUFDCommand.option, &o), 0)
            XCTAssertEqual(o.val64, f.type == VFIOConstant.type1IOMMU ? 0 : 1)
        }
    }

    func testSelftest108GetInfo() throws {
        try forEachType { f in
            let s = f.s
            func info(_ argsz: UInt32) -> (Int32, VFIOIOMMUType1Info, [UInt8]) {
                var b = [UInt8](repeating: 0xAA, count: 256)
                b.replaceSubrange(0..<24, with: VFIOIOMMUType1Info(argsz: argsz).bytes)
                for i in Int(min(argsz, 24))..<24 { b[i] = 0xAA }
                let (rc, out) = s.raw(IOMMUFDCommand.vfioIOMMUGetInfo, b)
                XCTAssertTrue(out[Int(argsz)...].allSatisfy { $0 == 0xAA }, "wrote past argsz \(argsz)")
                return (rc, VFIOIOMMUType1Info(bytes: out), out)
            }
            let both = VFIOConstant.infoPgsizes | VFIOConstant.infoCaps
            var (rc, i, _) = info(16)
            XCTAssertEqual(rc, 0)
            XCTAssertNotEqual(i.iovaPgsizes, 0)
            XCTAssertEqual(i.flags, both)
            (rc, i, _) = info(24)
            XCTAssertEqual(rc, 0)
            XCTAssertEqual(i.capOffset, 0)
            XCTAssertGreaterThan(i.argsz, 24)
            let caplen = i.argsz
            for n in 24..<caplen {
                let (r, ii, _) = info(n)
                XCTAssertEqual(r, 0)
                XCTAssertEqual(ii.flags, both)
                XCTAssertEqual(ii.capOffset, 0)
            }
            let (r, full, raw) = info(caplen)
            XCTAssertEqual(r, 0)
            XCTAssertEqual(full.capOffset, 24)
            // Walk the chain: DMA_AVAIL then IOVA_RANGE with the mock aperture.
            let b = UAPIBytes(raw)
            var off = Int(full.capOffset)
            var seen: [UInt16] = []
            while off != 0 {
                let id = b.u16(off)
                XCTAssertEqual(b.u16(off + 2), 1)
                seen.append(id)
                if id == VFIOConstant.capIOVARange {
                    XCTAssertEqual(b.u32(off + 8), 1)
                    XCTAssertEqual(b.u64(off + 16), APERTURE_START)
                    XCTAssertEqual(b.u64(off + 24), APERTURE_LAST)
                } else if id == VFIOConstant.capDMAAvail {
                    XCTAssertNotEqual(b.u32(off + 8), 0)
                }
                off = Int(b.u32(off + 4))
            }
            XCTAssertEqual(seen, [VFIOConstant.capDMAAvail, VFIOConstant.capIOVARange])
        }
    }

    func testSelftest109Map() throws {
        try forEachType { f in
            XCTAssertEqual(f.mapDMA(f.s.buffer, APERTURE_START, BUFFER_SIZE), 0)
            XCTAssertEqual(f.unmapDMA(APERTURE_START, BUFFER_SIZE).1, BUFFER_SIZE)
            XCTAssertEqual(f.mapDMA(f.s.buffer, APERTURE_START, BUFFER_SIZE), 0)
            XCTAssertEqual(f.unmapDMA(APERTURE_START, BUFFER_SIZE, flags: VFIOConstant.dmaUnmapFlagAll).0, EINVAL)
            let (rc, n) = f.unmapDMA(0, 0, flags: VFIOConstant.dmaUnmapFlagAll)
            XCTAssertEqual(rc, 0)
            XCTAssertEqual(n, BUFFER_SIZE)
            for i in 0..<16 as Range<UInt64> {
                XCTAssertEqual(f.mapDMA(f.s.buffer + i * PAGE, APERTURE_START + i * PAGE, PAGE), 0)
            }
            for i in (0..<16 as Range<UInt64>).shuffled() {
                let (r, m) = f.unmapDMA(APERTURE_START + i * PAGE, PAGE)
                XCTAssertEqual(r, 0)
                XCTAssertEqual(m, PAGE)
            }
            let (er, en) = f.unmapDMA(APERTURE_START, PAGE)
            XCTAssertEqual(er, 0, "an empty range unmaps 0 bytes (mainline afb47765)")
            XCTAssertEqual(en, 0)
        }
    }

    func testSelftest110HugeMap() throws {
        try forEachType { f in
            let size: UInt64 = 4 << 20
            let buf = try f.s.process.mmap(length: Int(size), prot: [.read, .write], at: 0x8000_0000, populate: true)
            XCTAssertEqual(f.mapDMA(buf, APERTURE_START, size), 0)
            let chunk = size / 16
            for i in (0..<16 as Range<UInt64>).shuffled() {
                let (rc, n) = f.unmapDMA(APERTURE_START + i * chunk, chunk)
                if f.type == VFIOConstant.type1IOMMU {
                    XCTAssertEqual(rc, 0)
                    XCTAssertEqual(n, chunk)
                } else {
                    XCTAssertEqual(rc, ENOENT)
                }
            }
            XCTAssertEqual(f.unmapDMA(0, 0, flags: VFIOConstant.dmaUnmapFlagAll).0, 0)
        }
    }
}
