import XCTest
import IOMMUCore
@testable import IOMMUFD
import IOMMUFDSelftest

/// The kernel iommufd selftest's cases 89-91 (`fork_gone`, `fork_present`) and case 94
/// (`ro_unshare`). A "child" is a second model process sharing the fd: its ioctls go
/// through ``IOMMUFD/ioctl(_:_:from:)``, so pages it maps come from its own mm.
final class Selftest06ForkTests: XCTestCase {
    /// A child with its own copy of `buffer` (same VA, different contents) and scratch page.
    private func child(of s: SelftestFD) throws -> IOMMUCore.Process {
        let c = try IOMMUCore.Process(memory: s.machine.memory, pid: 200)
        _ = try c.mmap(length: Int(BUFFER_SIZE), prot: [.read, .write], at: s.buffer, populate: true)
        try c.writeMemory(address: s.buffer, bytes: (0..<Int(BUFFER_SIZE)).map { UInt8(truncatingIfNeeded: $0 * 7 + 3) })
        _ = try c.mmap(length: Int(PAGE), prot: [.read, .write], at: s.arg, populate: true)
        return c
    }

    private func childMap(_ s: SelftestFD, _ c: IOMMUCore.Process, ioas: UInt32) -> Int32 {
        let m = IOMMUIOASMap(flags: IOMMUFDConstant.mapFixedIOVA | IOMMUFDConstant.mapReadable | IOMMUFDConstant.mapWriteable,
                             ioasId: ioas, userVa: s.buffer, length: BUFFER_SIZE, iova: APERTURE_START)
        try! c.writeMemory(address: s.arg, bytes: m.bytes)
        return s.fd.ioctl(IOMMUFDCommand.ioasMap, s.arg, from: c)
    }

    /// With a domain the child's pages are pinned at MAP time, and the pins hold frame
    /// references: after the child exits the frames stay allocated with the child's
    /// data, a new domain is filled from them, and the access reads them. Unmap frees
    /// them.
    func testSelftest89ForkGoneWithDomainKeepsPinnedPages() throws {
        try forEachIOASVariant(IOASVariant.all.filter { $0.mockDomains > 0 }) { f in
            let memory = f.s.machine.memory
            let c = try child(of: f.s)
            let expected = try c.readMemory(address: f.s.buffer, count: Int(BUFFER_SIZE))
            XCTAssertEqual(childMap(f.s, c, ioas: f.ioas), 0, "a domain exists: the pages are pinned at once")
            let frames = (0..<BUFFER_SIZE / PAGE).compactMap { c.physicalAddress(of: f.s.buffer + $0 * PAGE) }
            XCTAssertEqual(frames.count, Int(BUFFER_SIZE / PAGE))
            c.exit()
            XCTAssertTrue(frames.allSatisfy { memory.isAllocated($0) }, "pinned frames outlive the mm")
            XCTAssertTrue(frames.allSatisfy { memory.frameRefCount($0) == 1 }, "only the pin is left")
            let (mrc, _, hwpt, _) = f.s.mockDomain(f.ioas)
            XCTAssertEqual(mrc, 0, "the new domain is filled from the pinned pages")
            let pa = f.s.fd.lock.withLock { () -> PhysicalAddress? in
                (f.s.fd.table.live(hwpt) as? HWPTPagingObject)?.domain.map { f.s.machine.iommu.iovaToPhys($0, iova: IOVA(rawValue: APERTURE_START)) }
            }
            XCTAssertEqual(pa, frames.first)
            let (rc, access) = f.s.createAccess(f.ioas, flags: 0)
            XCTAssertEqual(rc, 0)
            let out = f.s.arg + 0x20000
            XCTAssertEqual(f.s.test(IOMMUTestOp.accessRW, id: access,
                                    IOMMUTestCmd.AccessRW(iova: APERTURE_START, length: BUFFER_SIZE, uptr: out)), 0)
            XCTAssertEqual(try f.s.process.readMemory(address: out, count: Int(BUFFER_SIZE)), expected,
                           "the access reads the dead child's pages")
            XCTAssertEqual(f.s.fd.closeFile(Int32(bitPattern: access)), 0)
            XCTAssertEqual(f.s.unmap(f.ioas, APERTURE_START, BUFFER_SIZE).0, 0)
            XCTAssertTrue(frames.allSatisfy { !memory.isAllocated($0) }, "the last unpin frees the frames")
            XCTAssertEqual(memory.framesWithExtraReferences, 0, "no frame reference leaked")
        }
    }

    func testSelftest90ForkGoneNoDomainIsEFAULT() throws {
        try forEachIOASVariant(IOASVariant.all.filter { $0.mockDomains == 0 }) { f in
            let c = try child(of: f.s)
            XCTAssertEqual(childMap(f.s, c, ioas: f.ioas), 0, "nothing is pinned without a domain")
            c.exit()
            XCTAssertEqual(f.s.mockDomain(f.ioas).0, EFAULT, "the pages of a dead mm cannot be pinned")
            XCTAssertEqual(f.s.unmap(f.ioas, APERTURE_START, BUFFER_SIZE).0, 0)
        }
    }

    func testSelftest91ForkPresent() throws {
        try forEachIOASVariant(IOASVariant.all.filter { $0.mockDomains == 0 }) { f in
            let c = try child(of: f.s)
            XCTAssertEqual(childMap(f.s, c, ioas: f.ioas), 0)
            let (rc, access) = f.s.createAccess(f.ioas, flags: 0)
            XCTAssertEqual(rc, 0)
            let (mrc, _, hwpt, _) = f.s.mockDomain(f.ioas)
            XCTAssertEqual(mrc, 0)
            // The domain maps the child's pages, not the parent's.
            let pa = f.s.fd.lock.withLock { () -> PhysicalAddress? in
                (f.s.fd.table.live(hwpt) as? HWPTPagingObject)?.domain.map { f.s.machine.iommu.iovaToPhys($0, iova: IOVA(rawValue: APERTURE_START)) }
            }
            XCTAssertEqual(pa, c.physicalAddress(of: f.s.buffer))
            let out = f.s.arg + 0x20000
            XCTAssertEqual(f.s.test(IOMMUTestOp.accessRW, id: access,
                                    IOMMUTestCmd.AccessRW(iova: APERTURE_START, length: BUFFER_SIZE, uptr: out)), 0)
            XCTAssertEqual(try f.s.process.readMemory(address: out, count: Int(BUFFER_SIZE)),
                           try c.readMemory(address: f.s.buffer, count: Int(BUFFER_SIZE)))
            XCTAssertEqual(f.s.fd.closeFile(Int32(bitPattern: access)), 0)
            XCTAssertEqual(f.s.unmap(f.ioas, APERTURE_START, BUFFER_SIZE).0, 0)
            c.exit()
        }
    }

    /// The model's processes have no file-backed private mappings, so there is no COW
    /// break to observe; what remains of `ro_unshare` is that a read-only mapping can be
    /// mapped READABLE (pinned without write), and later CPU writes after mprotect do not
    /// move the pinned page.
    func testSelftest94ROUnshare() throws {
        let s = try SelftestFD()
        let ioas = s.ioasAlloc()
        let (rc, _, hwpt, _) = s.mockDomain(ioas)
        XCTAssertEqual(rc, 0)
        let ro = try s.process.mmap(length: Int(PAGE), prot: [.read], at: 0x9000_0000, populate: true)
        XCTAssertEqual(s.mapAuto(ioas, ro, PAGE, flags: IOMMUFDConstant.mapWriteable).0, EFAULT,
                       "a writable pin of a read-only VMA fails")
        let (mrc, iova) = s.mapAuto(ioas, ro, PAGE, flags: IOMMUFDConstant.mapReadable)
        XCTAssertEqual(mrc, 0)
        XCTAssertEqual(s.checkMap(hwpt, iova, PAGE, ro), 0)
        try s.process.mprotect(address: ro, length: Int(PAGE), prot: [.read, .write])
        try s.process.writeMemory(address: ro, bytes: [1, 2, 3])
        XCTAssertEqual(s.checkMap(hwpt, iova, PAGE, ro), 0)
        XCTAssertEqual(s.unmap(ioas, iova, PAGE).0, 0)
        s.teardownCheck()
    }
}
