import XCTest
import IOMMUCore
@testable import IOMMUFD
import IOMMUFDSelftest

/// Object lifetimes: the kernel iommufd selftest's lifecycle cases, case 16, and the object
/// table's rules (`iommufd_object_remove`, `iommufd_fops_release`).
final class Selftest12LifecycleTests: XCTestCase {
    func testSelftest143CloseWithEveryObjectType() throws {
        let s = try SelftestFD()
        let ioas = s.ioasAlloc()
        let (_, stdev, _, dev) = s.mockDomain(ioas, flags: IOMMUTestOp.devicePasid)
        XCTAssertEqual(s.mapFixed(ioas, s.buffer, BUFFER_SIZE, iova: APERTURE_START), 0)
        let parent = s.hwptAlloc(dev: dev, pt: ioas, flags: IOMMUFDConstant.hwptAllocNestParent | IOMMUFDConstant.hwptAllocPasid).1
        let (_, fault, _) = s.faultAlloc()
        let nested = s.nestedAlloc(dev: dev, parent: parent, flags: IOMMUFDConstant.hwptFaultIDValid | IOMMUFDConstant.hwptAllocPasid,
                                   faultID: fault).1
        XCTAssertEqual(s.replace(stdev, nested).0, 0)
        XCTAssertEqual(s.pasidAttach(stdev, 7, parent), 0)
        let (_, access) = s.createAccess(ioas)
        XCTAssertEqual(s.accessPages(access, iova: APERTURE_START, length: PAGE, uptr: s.buffer).0, 0)
        XCTAssertEqual(s.test(IOMMUTestOp.triggerIOPF, IOMMUTestCmd.TriggerIOPF(devId: dev, grpid: 1, perm: 1)), 0)
        let types = Set(s.fd.objectSnapshot.map(\.type))
        XCTAssertEqual(types, [.ioas, .selftest, .device, .hwptPaging, .hwptNested, .fault, .access])
        let warnings = s.machine.warnings.count
        s.teardownCheck()
        XCTAssertEqual(s.machine.warnings.count, warnings)
        XCTAssertEqual(s.fd.faultInjection.warnings, [])
    }

    func testSelftest144DestroyAttachedStdev() throws {
        let s = try SelftestFD()
        let ioas = s.ioasAlloc()
        let (rc, stdev, hwpt, dev) = s.mockDomain(ioas)
        XCTAssertEqual(rc, 0)
        XCTAssertEqual(s.destroy(dev), EBUSY, "the stdev holds the device")
        XCTAssertEqual(s.destroy(stdev), 0)
        XCTAssertEqual(s.destroy(hwpt), ENOENT, "the auto domain died with its last device")
        XCTAssertEqual(s.destroy(dev), ENOENT)
        XCTAssertEqual(s.destroy(ioas), 0)
        s.teardownCheck()
    }

    func testSelftest16ChangeProcessRefusesNonFileMaps() throws {
        let s = try SelftestFD()
        let ioas = s.ioasAlloc()
        var c = IOMMUIOASChangeProcess()
        XCTAssertEqual(s.call(IOMMUFDCommand.ioasChangeProcess, &c), 0, "nothing to move")
        XCTAssertEqual(s.mapFixed(ioas, s.buffer, PAGE, iova: APERTURE_START), 0)
        XCTAssertEqual(s.call(IOMMUFDCommand.ioasChangeProcess, &c), EINVAL)
        c = IOMMUIOASChangeProcess(reserved: 1)
        XCTAssertEqual(s.call(IOMMUFDCommand.ioasChangeProcess, &c), EOPNOTSUPP)
        XCTAssertEqual(s.unmap(ioas, APERTURE_START, PAGE).0, 0)
        s.teardownCheck()
    }

    func testObjectIDsLowestFreeAndTwoPhase() throws {
        let s = try SelftestFD()
        let a = s.ioasAlloc(), b = s.ioasAlloc(), c = s.ioasAlloc()
        XCTAssertEqual([a, b, c], [1, 2, 3])
        XCTAssertEqual(s.destroy(b), 0)
        XCTAssertEqual(s.ioasAlloc(), 2)
        // A half-built object holds its ID but lookups do not see it; abort frees it.
        let fd = s.fd
        let pending = fd.lock.withLock { () -> IOASObject in
            let o = try! fd.ioasAlloc()
            return o
        }
        XCTAssertEqual(pending.id, 4)
        XCTAssertEqual(s.destroy(4), ENOENT)
        XCTAssertEqual(s.unmap(4, 0, .max).0, ENOENT)
        fd.lock.withLock { fd.abort(pending) }
        XCTAssertEqual(s.ioasAlloc(), 4)
        s.teardownCheck()
    }

    func testObjectTypedLookupAndTombstone() throws {
        let s = try SelftestFD()
        let ioas = s.ioasAlloc()
        let (_, stdev, hwpt, _) = s.mockDomain(ioas)
        // A HWPT id where an IOAS is expected is ENOENT.
        XCTAssertEqual(s.unmap(hwpt, 0, .max).0, ENOENT)
        XCTAssertEqual(s.replace(ioas, ioas).0, ENOENT, "an IOAS id where a stdev is expected")
        // A tombstoned ID gives ENOENT to everything and is not reused before close.
        let fd = s.fd
        let spare = s.ioasAlloc()
        fd.lock.withLock { fd.destroyToTombstone(fd.table.live(spare)!) }
        XCTAssertEqual(s.destroy(spare), ENOENT)
        XCTAssertNotEqual(s.ioasAlloc(), spare)
        XCTAssertEqual(s.destroy(stdev), 0)
        s.teardownCheck()
    }

    func testRawDispatcherTruncatesOutputToUserSize() throws {
        let s = try SelftestFD()
        // An IOAS_ALLOC struct cut after `flags` is shorter than min_size: EINVAL.
        var b = UAPIBytes(count: 16)
        b.setU32(0, 8)
        XCTAssertEqual(s.raw(IOMMUFDCommand.ioasAlloc, b.bytes).0, EINVAL)
        // GET_HW_INFO accepts 32 bytes (min_size) and never writes out_capabilities.
        let ioas = s.ioasAlloc()
        let (_, _, _, dev) = s.mockDomain(ioas)
        var h = UAPIBytes(count: 40)
        h.setU32(0, 32)
        h.setU32(8, dev)
        h.setU64(32, 0x1234)
        let (rc, out) = s.raw(IOMMUFDCommand.getHWInfo, h.bytes)
        XCTAssertEqual(rc, 0)
        XCTAssertEqual(UAPIBytes(out).u64(32), 0x1234)
        XCTAssertEqual(UAPIBytes(out).u32(24), IOMMUTestOp.hwInfoTypeSelftest)
        s.teardownCheck()
    }
}
