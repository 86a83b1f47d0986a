import Glibc
import XCTest
import IOMMUCore
@testable import IOMMUFD

/// `HostProcessMemory` (copy_from_user / copy_to_user on a real host process, and the
/// whole-page moves of a host that mirrors it), on this test process itself:
/// `process_vm_readv` on one's own pid is allowed everywhere the tests run.
final class HostProcessMemoryTests: XCTestCase {
    func testCopiesAndEFAULT() throws {
        let mem = HostProcessMemory(pid: getpid())
        let buf = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 8)
        defer { buf.deallocate() }
        buf.initializeMemory(as: UInt8.self, repeating: 7, count: 64)
        let addr = UInt64(UInt(bitPattern: buf))
        XCTAssertEqual(try mem.copyFromUser(addr, count: 4), [7, 7, 7, 7])
        try mem.copyToUser(addr + 8, [1, 2, 3])
        XCTAssertEqual(buf.load(fromByteOffset: 8, as: UInt8.self), 1)
        XCTAssertEqual(buf.load(fromByteOffset: 10, as: UInt8.self), 3)
        // Page 0 is never mapped: EFAULT, and a range running into it is EFAULT too.
        XCTAssertThrowsError(try mem.copyFromUser(0x10, count: 4)) { XCTAssertEqual($0 as? Errno, .badAddress) }
        XCTAssertThrowsError(try mem.copyToUser(0x10, [1])) { XCTAssertEqual($0 as? Errno, .badAddress) }
        XCTAssertThrowsError(try mem.copyFromUser(UInt64.max - 1, count: 4)) { XCTAssertEqual($0 as? Errno, .badAddress) }
        XCTAssertEqual(try mem.copyFromUser(0x10, count: 0), [])
        XCTAssertTrue(mem.isAlive)
    }

    /// Whole-page moves for a host that mirrors the process's pages: what `refresh` reads
    /// is the process's memory, what `writeBack` writes lands in it; an unreachable
    /// address fails without touching the buffer.
    func testPageMovesReachTheProcess() throws {
        let mem = HostProcessMemory(pid: getpid())
        let page = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
        defer { page.deallocate() }
        page.initializeMemory(as: UInt8.self, repeating: 0x11, count: 4096)
        let buf = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 8)
        defer { buf.deallocate() }
        buf.initializeMemory(as: UInt8.self, repeating: 0, count: 4096)
        let addr = UInt64(UInt(bitPattern: page))
        XCTAssertTrue(mem.refresh(addr, into: buf, count: 4096))
        XCTAssertEqual(buf.load(fromByteOffset: 4095, as: UInt8.self), 0x11)
        buf.storeBytes(of: 0x77, toByteOffset: 9, as: UInt8.self)
        XCTAssertTrue(mem.writeBack(addr, from: buf, count: 4096))
        XCTAssertEqual(page.load(fromByteOffset: 9, as: UInt8.self), 0x77)
        buf.storeBytes(of: 0x55, toByteOffset: 0, as: UInt8.self)
        XCTAssertFalse(mem.refresh(0x1000, into: buf, count: 16))
        XCTAssertEqual(buf.load(fromByteOffset: 0, as: UInt8.self), 0x55)
    }
}
