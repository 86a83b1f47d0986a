import XCTest
import IOMMUCore
@testable import IOMMUFD

/// The in-kernel access API (`iommufd_access_create`, `iommufd_access_pin_pages`,
/// `iommufd_access_notify_unmap`):
/// the unmap callback, `EDEADLOCK` after 100 retries with the unmapped bytes still
/// reported, and the pin errno set.
final class AccessAPITests: XCTestCase {
    final class Recorder: @unchecked Sendable {
        var calls: [(IOVA, UInt64)] = []
        var unpin: ((IOVA, UInt64) -> Void)?
    }

    func testUnmapCallbackUnpinsAndUnmapSucceeds() throws {
        let s = try SelftestFD()
        let fd = s.fd
        let ioas = s.ioasAlloc()
        XCTAssertEqual(s.mapFixed(ioas, s.buffer, BUFFER_SIZE, iova: APERTURE_START), 0)
        let rec = Recorder()
        let access = try fd.accessCreate(ops: IOMMUFDAccessOps(needsPinPages: true, unmap: { iova, length in
            rec.calls.append((iova, length))
            rec.unpin?(iova, length)
        }))
        XCTAssertThrowsError(try fd.accessPinPages(access, iova: IOVA(rawValue: APERTURE_START), length: PAGE, write: true)) {
            XCTAssertEqual($0 as? Errno, .noEntry, "pin before attach")
        }
        try fd.accessAttach(access, ioasID: IOASObjectID(rawValue: ioas))
        let pas = try fd.accessPinPages(access, iova: IOVA(rawValue: APERTURE_START + PAGE), length: 2 * PAGE, write: true)
        XCTAssertEqual(pas.count, 2)
        XCTAssertEqual(pas[0], s.process.physicalAddress(of: s.buffer + PAGE))
        rec.unpin = { [weak fd] _, _ in fd?.accessUnpinPages(access, iova: IOVA(rawValue: APERTURE_START + PAGE), length: 2 * PAGE) }
        XCTAssertEqual(s.unmap(ioas, APERTURE_START, BUFFER_SIZE).0, 0)
        XCTAssertEqual(rec.calls.count, 1)
        XCTAssertEqual(rec.calls.first?.0, IOVA(rawValue: APERTURE_START))
        XCTAssertEqual(rec.calls.first?.1, BUFFER_SIZE)
        fd.accessDestroy(access)
        s.teardownCheck()
    }

    func testAccessThatNeverUnpinsGetsEDEADLOCK() throws {
        let s = try SelftestFD()
        let fd = s.fd
        let ioas = s.ioasAlloc()
        XCTAssertEqual(s.mapFixed(ioas, s.buffer, PAGE, iova: APERTURE_START), 0)
        XCTAssertEqual(s.mapFixed(ioas, s.buffer + PAGE, PAGE, iova: APERTURE_START + PAGE), 0)
        let rec = Recorder()
        let access = try fd.accessCreate(ops: IOMMUFDAccessOps(needsPinPages: true, unmap: { iova, length in
            rec.calls.append((iova, length))
        }))
        try fd.accessAttach(access, ioasID: IOASObjectID(rawValue: ioas))
        _ = try fd.accessPinPages(access, iova: IOVA(rawValue: APERTURE_START + PAGE), length: PAGE, write: false)
        // Internally the bytes already unmapped are reported with the error.
        let obj = fd.lock.withLock { fd.table.live(ioas) as! IOASObject }
        let (e, n) = fd.lock.withLock { obj.iopt.unmap(iova: APERTURE_START, length: 2 * PAGE) }
        XCTAssertEqual(e, .deadlock)
        XCTAssertEqual(n, PAGE, "the first area was unmapped before the stuck one")
        XCTAssertEqual(rec.calls.count, 101)
        // Through the uAPI: EDEADLOCK again.
        XCTAssertEqual(s.unmap(ioas, APERTURE_START, 2 * PAGE).0, EDEADLOCK)
        XCTAssertEqual(rec.calls.count, 202)
        // Pins of an area with an unmap pending are refused.
        XCTAssertThrowsError(try fd.accessPinPages(access, iova: IOVA(rawValue: APERTURE_START + PAGE), length: PAGE, write: false)) {
            XCTAssertEqual($0 as? Errno, .invalidArgument)
        }
        fd.accessUnpinPages(access, iova: IOVA(rawValue: APERTURE_START + PAGE), length: PAGE)
        XCTAssertEqual(s.unmap(ioas, APERTURE_START + PAGE, PAGE).0, 0)
        fd.accessDestroy(access)
        XCTAssertTrue(fd.faultInjection.warnings.contains { $0.hasPrefix("iopt_unmap_iova_range") })
        s.teardownCheck()
    }

    func testPinPermissionAndAlignment() throws {
        let s = try SelftestFD()
        let fd = s.fd
        let ioas = s.ioasAlloc()
        XCTAssertEqual(s.mapFixed(ioas, s.buffer, PAGE, iova: APERTURE_START, flags: IOMMUFDConstant.mapReadable), 0)
        let access = try fd.accessCreate(ops: IOMMUFDAccessOps(needsPinPages: true, unmap: { _, _ in }))
        try fd.accessAttach(access, ioasID: IOASObjectID(rawValue: ioas))
        XCTAssertThrowsError(try fd.accessPinPages(access, iova: IOVA(rawValue: APERTURE_START), length: PAGE, write: true)) {
            XCTAssertEqual($0 as? Errno, .notPermitted)
        }
        XCTAssertThrowsError(try fd.accessPinPages(access, iova: IOVA(rawValue: APERTURE_START), length: 0, write: false)) {
            XCTAssertEqual($0 as? Errno, .invalidArgument)
        }
        XCTAssertThrowsError(try fd.accessPinPages(access, iova: .max, length: 2, write: false)) {
            XCTAssertEqual($0 as? Errno, .overflow)
        }
        XCTAssertThrowsError(try fd.accessAttach(access, ioasID: IOASObjectID(rawValue: ioas))) { XCTAssertEqual($0 as? Errno, .invalidArgument) }
        XCTAssertThrowsError(try fd.destroy(access.id)) { XCTAssertEqual($0 as? Errno, .busy) }
        fd.accessDestroy(access)
        XCTAssertEqual(s.unmap(ioas, APERTURE_START, PAGE).0, 0)
        s.teardownCheck()
    }

    /// `iommufd_access_destroy` detaches through `iommufd_access_change_ioas(access, NULL)`,
    /// which calls the driver's `unmap(0, ULONG_MAX)` before leaving the IOAS: pins a driver
    /// still holds at destroy are released, and the same memory used again afterwards (by
    /// a new context and a new access) carries no stale pin.
    func testDestroyWithPinsLeftCallsUnmapAndLeavesNoStalePin() throws {
        let s = try SelftestFD()
        let fd = s.fd
        let ioas = s.ioasAlloc()
        XCTAssertEqual(s.mapFixed(ioas, s.buffer, BUFFER_SIZE, iova: APERTURE_START), 0)
        let rec = Recorder()
        let access = try fd.accessCreate(ops: IOMMUFDAccessOps(needsPinPages: true, unmap: { iova, length in
            rec.calls.append((iova, length))
            rec.unpin?(iova, length)
        }))
        try fd.accessAttach(access, ioasID: IOASObjectID(rawValue: ioas))
        let pas = try fd.accessPinPages(access, iova: IOVA(rawValue: APERTURE_START), length: 2 * PAGE, write: true)
        XCTAssertEqual(PagePinRegistry.shared.pinCount(s.machine.memory, pas[0]), 1)
        // A well-behaved driver unpins on unmap; it did not unpin before destroy.
        rec.unpin = { [weak fd] _, _ in fd?.accessUnpinPages(access, iova: IOVA(rawValue: APERTURE_START), length: 2 * PAGE) }
        fd.accessDestroy(access)
        XCTAssertEqual(rec.calls.count, 1)
        XCTAssertEqual(rec.calls.first?.0, 0)
        XCTAssertEqual(rec.calls.first?.1, UInt64.max, "ULONG_MAX, as iommufd_access_change_ioas passes")
        XCTAssertEqual(s.unmap(ioas, APERTURE_START, BUFFER_SIZE).0, 0, "no EDEADLOCK: the area is free")
        XCTAssertEqual(rec.calls.count, 1, "a destroyed access gets no more callbacks")
        XCTAssertEqual(PagePinRegistry.shared.pinCount(s.machine.memory, pas[0]), 0)
        XCTAssertEqual(s.fd.faultInjection.warnings, [])
        s.teardownCheck()

        // The same memory again, through a fresh context and access: exactly one pin.
        s.reopen()
        let fd2 = s.fd
        let ioas2 = s.ioasAlloc()
        XCTAssertEqual(s.mapFixed(ioas2, s.buffer, BUFFER_SIZE, iova: APERTURE_START), 0)
        XCTAssertEqual(s.checkRefs(s.buffer, BUFFER_SIZE, 0), 0, "no stale pin on the reused buffer")
        let again = try fd2.accessCreate(ops: IOMMUFDAccessOps(needsPinPages: true, unmap: { _, _ in }))
        try fd2.accessAttach(again, ioasID: IOASObjectID(rawValue: ioas2))
        let pas2 = try fd2.accessPinPages(again, iova: IOVA(rawValue: APERTURE_START), length: PAGE, write: false)
        XCTAssertEqual(pas2.first, pas[0])
        XCTAssertEqual(PagePinRegistry.shared.pinCount(s.machine.memory, pas2[0]), 1)
        fd2.accessUnpinPages(again, iova: IOVA(rawValue: APERTURE_START), length: PAGE)
        fd2.accessDestroy(again)
        s.teardownCheck()
    }

    /// A replace moves the access; the old IOAS's pins are released through the same
    /// `unmap(0, ULONG_MAX)` call, and unpins during it still reach the old IOAS.
    func testReplaceCallsUnmapOnTheOldIOAS() throws {
        let s = try SelftestFD()
        let fd = s.fd
        let a = s.ioasAlloc(), b = s.ioasAlloc()
        XCTAssertEqual(s.mapFixed(a, s.buffer, PAGE, iova: APERTURE_START), 0)
        let rec = Recorder()
        let access = try fd.accessCreate(ops: IOMMUFDAccessOps(needsPinPages: true, unmap: { iova, length in
            rec.calls.append((iova, length))
            rec.unpin?(iova, length)
        }))
        try fd.accessAttach(access, ioasID: IOASObjectID(rawValue: a))
        _ = try fd.accessPinPages(access, iova: IOVA(rawValue: APERTURE_START), length: PAGE, write: false)
        rec.unpin = { [weak fd] _, _ in fd?.accessUnpinPages(access, iova: IOVA(rawValue: APERTURE_START), length: PAGE) }
        try fd.accessReplace(access, ioasID: IOASObjectID(rawValue: b))
        XCTAssertEqual(rec.calls.count, 1)
        XCTAssertEqual(s.checkRefs(s.buffer, PAGE, 0), 0)
        XCTAssertEqual(s.unmap(a, APERTURE_START, PAGE).0, 0)
        XCTAssertEqual(fd.machine.warnings.count, 0)
        fd.accessDestroy(access)
        s.teardownCheck()
    }
}
