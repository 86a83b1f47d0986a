import XCTest
import IOMMUCore
@testable import IOMMUFD
import IOMMUFDSelftest

/// The kernel iommufd selftest's PASID attach, replace and detach (fixture
/// `iommufd_device_pasid`). The fixture's vIOMMU-based nested HWPT is in
/// `Selftest10VIOMMUTests.testPasidAttachThroughVIOMMUNested`.
final class Selftest11PASIDTests: XCTestCase {
    final class Fixture {
        let s: SelftestFD
        let ioas: UInt32
        let stdev: UInt32, hwpt: UInt32, device: UInt32
        var noPasidStdev: UInt32 = 0
        var parent: UInt32 = 0, nested0: UInt32 = 0, nested1: UInt32 = 0, s2: UInt32 = 0
        var faultID: UInt32 = 0, faultFD: Int32 = 0, iopf: UInt32 = 0

        init(noPasid: Bool = false) throws {
            s = try SelftestFD()
            ioas = s.ioasAlloc()
            let (rc, st, hw, dev) = s.mockDomain(ioas, flags: IOMMUTestOp.devicePasid)
            precondition(rc == 0)
            (stdev, hwpt, device) = (st, hw, dev)
            if noPasid {
                let (rc2, st2, _, _) = s.mockDomain(ioas)
                precondition(rc2 == 0)
                noPasidStdev = st2
            }
            let P = IOMMUFDConstant.hwptAllocPasid
            parent = s.hwptAlloc(dev: device, pt: ioas, flags: IOMMUFDConstant.hwptAllocNestParent).1
            nested0 = s.nestedAlloc(dev: device, parent: parent, flags: P).1
            nested1 = s.nestedAlloc(dev: device, parent: parent, flags: P).1
            (_, faultID, faultFD) = s.faultAlloc()
            iopf = s.nestedAlloc(dev: device, parent: parent, flags: P | IOMMUFDConstant.hwptFaultIDValid, faultID: faultID).1
            s2 = s.hwptAlloc(dev: device, pt: ioas, flags: P).1
            precondition([parent, nested0, nested1, iopf, s2].allSatisfy { $0 != 0 })
        }
    }

    private func run(noPasid: Bool = false, _ body: (Fixture) throws -> Void) throws {
        let f = try Fixture(noPasid: noPasid)
        try body(f)
        f.s.teardownCheck()
    }

    func testSelftest131DetachNeverAttachedIsSuccess() throws {
        try run { f in XCTAssertEqual(f.s.pasidDetach(f.stdev, 100), 0) }
    }

    func testSelftest132PasidAttachNeedsCompatibleRID() throws {
        try run { f in
            XCTAssertEqual(f.s.replace(f.stdev, f.parent).0, 0)
            XCTAssertEqual(f.s.pasidAttach(f.stdev, 100, f.s2), EINVAL)
            XCTAssertEqual(f.s.pasidCheck(f.stdev, 100, 0), 0)
        }
    }

    func testSelftest133RIDReplaceToIncompatibleWithPasidIsEINVAL() throws {
        try run { f in
            XCTAssertEqual(f.s.replace(f.stdev, f.s2).0, 0)
            XCTAssertEqual(f.s.pasidAttach(f.stdev, 100, f.nested0), 0)
            XCTAssertEqual(f.s.pasidCheck(f.stdev, 100, f.nested0), 0)
            XCTAssertEqual(f.s.replace(f.stdev, f.parent).0, EINVAL)
            XCTAssertEqual(f.s.pasidDetach(f.stdev, 100), 0)
            XCTAssertEqual(f.s.pasidCheck(f.stdev, 100, 0), 0)
            XCTAssertEqual(f.s.replace(f.stdev, f.parent).0, 0)
        }
    }

    func testSelftest134DeviceWithoutPasid() throws {
        try run(noPasid: true) { f in
            XCTAssertEqual(f.s.replace(f.noPasidStdev, f.nested0).0, 0)
            XCTAssertEqual(f.s.replace(f.noPasidStdev, f.ioas).0, 0)
            XCTAssertEqual(f.s.pasidAttach(f.noPasidStdev, 100, f.parent), EINVAL)
            XCTAssertEqual(f.s.pasidAttach(f.noPasidStdev, 100, f.s2), EINVAL)
        }
    }

    func testSelftest135AttachNonCompatParentIsEINVAL() throws {
        try run { f in
            XCTAssertEqual(f.s.replace(f.stdev, f.s2).0, 0)
            XCTAssertEqual(f.s.pasidAttach(f.stdev, 100, f.parent), EINVAL)
            XCTAssertEqual(f.s.pasidCheck(f.stdev, 100, 0), 0)
        }
    }

    func testSelftest136AttachIOASIsEINVAL() throws {
        try run { f in
            XCTAssertEqual(f.s.replace(f.stdev, f.s2).0, 0)
            XCTAssertEqual(f.s.pasidAttach(f.stdev, 100, f.ioas), EINVAL)
            XCTAssertEqual(f.s.pasidCheck(f.stdev, 100, 0), 0)
        }
    }

    func testSelftest137AttachDoesNotOverwrite() throws {
        try run { f in
            XCTAssertEqual(f.s.replace(f.stdev, f.s2).0, 0)
            XCTAssertEqual(f.s.pasidAttach(f.stdev, 100, f.s2), 0)
            XCTAssertEqual(f.s.pasidCheck(f.stdev, 100, f.s2), 0)
            XCTAssertEqual(f.s.pasidAttach(f.stdev, 100, f.nested0), EBUSY)
            XCTAssertEqual(f.s.pasidCheck(f.stdev, 100, f.s2), 0)
            XCTAssertEqual(f.s.pasidDetach(f.stdev, 100), 0)
            XCTAssertEqual(f.s.pasidCheck(f.stdev, 100, 0), 0)
        }
    }

    func testSelftest138AttachSameNestedTwiceIsEBUSY() throws {
        try run { f in
            XCTAssertEqual(f.s.replace(f.stdev, f.s2).0, 0)
            XCTAssertEqual(f.s.pasidAttach(f.stdev, 100, f.nested0), 0)
            XCTAssertEqual(f.s.pasidCheck(f.stdev, 100, f.nested0), 0)
            XCTAssertEqual(f.s.pasidAttach(f.stdev, 100, f.nested0), EBUSY)
            XCTAssertEqual(f.s.pasidDetach(f.stdev, 100), 0)
        }
    }

    func testSelftest139ReplaceWithoutAttachIsEINVAL() throws {
        try run { f in
            XCTAssertEqual(f.s.replace(f.stdev, f.s2).0, 0)
            XCTAssertEqual(f.s.pasidReplace(f.stdev, 200, f.s2), EINVAL)
        }
    }

    func testSelftest140Replace() throws {
        try run { f in
            XCTAssertEqual(f.s.replace(f.stdev, f.s2).0, 0)
            XCTAssertEqual(f.s.pasidAttach(f.stdev, 200, f.s2), 0)
            XCTAssertEqual(f.s.pasidReplace(f.stdev, 200, f.ioas), EINVAL)
            XCTAssertEqual(f.s.pasidCheck(f.stdev, 200, f.s2), 0)
            XCTAssertEqual(f.s.pasidReplace(f.stdev, 200, f.nested0), 0)
            XCTAssertEqual(f.s.pasidCheck(f.stdev, 200, f.nested0), 0)
            XCTAssertEqual(f.s.pasidReplace(f.stdev, 200, f.nested1), 0)
            XCTAssertEqual(f.s.pasidCheck(f.stdev, 200, f.nested1), 0)
            XCTAssertEqual(f.s.destroy(f.nested0), 0)
            XCTAssertEqual(f.s.destroy(f.nested1), EBUSY)
            XCTAssertEqual(f.s.pasidDetach(f.stdev, 200), 0)
            XCTAssertEqual(f.s.destroy(f.nested1), 0)
        }
    }

    func testSelftest141FailedReplaceKeepsOldDomain() throws {
        try run { f in
            XCTAssertEqual(f.s.replace(f.stdev, f.s2).0, 0)
            XCTAssertEqual(f.s.pasidAttach(f.stdev, IOMMUTestOp.pasidReserved, f.s2), 0)
            XCTAssertEqual(f.s.pasidReplace(f.stdev, IOMMUTestOp.pasidReserved, f.nested0), ENOMEM)
            XCTAssertEqual(f.s.pasidCheck(f.stdev, IOMMUTestOp.pasidReserved, f.s2), 0)
            XCTAssertEqual(f.s.pasidDetach(f.stdev, IOMMUTestOp.pasidReserved), 0)
            XCTAssertEqual(f.s.pasidCheck(f.stdev, IOMMUTestOp.pasidReserved, 0), 0)
        }
    }

    func testSelftest142IOPFOnPasid() throws {
        try run { f in
            let s = f.s
            XCTAssertEqual(s.replace(f.stdev, f.s2).0, 0)
            XCTAssertEqual(s.pasidAttach(f.stdev, 2048, f.iopf), 0)
            XCTAssertEqual(s.test(IOMMUTestOp.triggerIOPF, IOMMUTestCmd.TriggerIOPF(devId: f.device, pasid: 2048,
                                                                                grpid: 0x1, perm: 3, addr: 0xdead0000)), 0)
            let rec = s.arg + 0x2000
            XCTAssertEqual(s.fd.readFile(f.faultFD, buffer: rec, count: 40), 40)
            let fault = IOMMUHWPTPgfault(bytes: try s.process.readMemory(address: rec, count: 40))
            XCTAssertEqual(fault.pasid, 2048)
            XCTAssertEqual(fault.devId, f.device)
            XCTAssertEqual(fault.addr, 0xdead0000)
            XCTAssertNotEqual(fault.flags & IOMMUFDConstant.pgfaultFlagPasidValid, 0)
            try s.process.writeMemory(address: rec, bytes: IOMMUHWPTPageResponse(cookie: fault.cookie, code: 0).bytes)
            XCTAssertEqual(s.fd.writeFile(f.faultFD, buffer: rec, count: 8), 8)
            XCTAssertEqual(s.pasidReplace(f.stdev, 2048, f.s2), 0)
            XCTAssertEqual(s.pasidDetach(f.stdev, 2048), 0)
            XCTAssertEqual(s.destroy(f.iopf), 0)
            XCTAssertEqual(s.destroy(f.faultID), EBUSY)
            XCTAssertEqual(s.fd.closeFile(f.faultFD), 0)
            XCTAssertEqual(s.destroy(f.faultID), 0)
            XCTAssertEqual(s.replace(f.stdev, f.ioas).0, 0)
        }
    }
}
