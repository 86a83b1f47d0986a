import XCTest
import IOMMUCore
@testable import IOMMUFD

/// The typed API's calls as the raw dispatcher sees them: each typed call
/// issues exactly one ioctl with the expected structure, and a forced errno from the
/// backend funnel comes back unchanged.
final class MockingTests: XCTestCase {
    struct Case {
        let name: String
        let cmd: UInt32
        let expected: (UAPIBytes) -> Bool
        let call: (IOMMUFD) throws(Errno) -> Void
    }

    func testTypedCallsIssueTheirIoctl() throws {
        let s = try SelftestFD()
        let fd = s.fd
        let ioas = try fd.allocIOAS()
        let cases = [
            Case(name: "allocIOAS", cmd: IOMMUFDCommand.ioasAlloc, expected: { $0.u32(0) == 12 && $0.u32(4) == 0 },
                 call: { fd throws(Errno) in _ = try fd.allocIOAS() }),
            Case(name: "map", cmd: IOMMUFDCommand.ioasMap,
                 expected: { $0.u32(4) == 7 && $0.u32(8) == ioas.rawValue && $0.u64(16) == s.buffer && $0.u64(24) == PAGE && $0.u64(32) == 0x5000 },
                 call: { fd throws(Errno) in _ = try fd.map(ioas: ioas, userVA: s.buffer, length: PAGE, iova: 0x5000) }),
            Case(name: "unmap", cmd: IOMMUFDCommand.ioasUnmap,
                 expected: { $0.u32(4) == ioas.rawValue && $0.u64(8) == 0x5000 && $0.u64(16) == PAGE },
                 call: { fd throws(Errno) in _ = try fd.unmap(ioas: ioas, iova: 0x5000, length: PAGE) }),
            Case(name: "destroy", cmd: IOMMUFDCommand.destroy, expected: { $0.u32(4) == 2 },
                 call: { fd throws(Errno) in try fd.destroy(2 as AnyIOMMUFDObjectID) }),
        ]
        fd.mocking.tracing = true
        for c in cases {
            fd.mocking.clearTrace()
            XCTAssertNoThrow(try c.call(fd), c.name)
            let t = fd.mocking.trace
            XCTAssertEqual(t.count, 1, c.name)
            XCTAssertEqual(t.first?.cmd, c.cmd, c.name)
            XCTAssertEqual(t.first?.result, 0, c.name)
            XCTAssertTrue(t.first.map { c.expected(UAPIBytes($0.argument)) } ?? false, c.name)
            // A forced errno from the funnel reaches the typed caller unchanged, once.
            fd.mocking.force(c.cmd, .counted(.ioError, 1))
            XCTAssertThrowsError(try c.call(fd), c.name) { XCTAssertEqual($0 as? Errno, .ioError) }
        }
        fd.mocking.force(IOMMUFDCommand.ioasAlloc, .always(.noMemory))
        XCTAssertEqual(s.raw(IOMMUFDCommand.ioasAlloc, IOMMUIOASAlloc().bytes).0, ENOMEM)
        XCTAssertEqual(s.raw(IOMMUFDCommand.ioasAlloc, IOMMUIOASAlloc().bytes).0, ENOMEM)
        fd.mocking.force(IOMMUFDCommand.ioasAlloc, nil)
        // Size rules still run before the funnel.
        fd.mocking.force(IOMMUFDCommand.destroy, .always(.ioError))
        XCTAssertEqual(s.fd.ioctl(IOMMUFDCommand.destroy, 0), EFAULT)
        fd.mocking.force(IOMMUFDCommand.destroy, nil)
        s.teardownCheck()
    }
}
