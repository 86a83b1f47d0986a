import XCTest
import IOMMUCore
@testable import IOMMUFD
import IOMMUFDSelftest

/// The kernel iommufd selftest's nested HWPTs and invalidation
/// (`iommufd_ioas.alloc_hwpt_nested`).
final class Selftest05NestedTests: XCTestCase {
    /// The state the kernel test builds step by step: a parent, a non-parent, a fault queue,
    /// two nested HWPTs and an IOPF-capable nested HWPT.
    final class Nested {
        let f: IOASFixture
        var s: SelftestFD { f.s }
        var parent: UInt32 = 0, nonParent: UInt32 = 0, nested: [UInt32] = [0, 0]
        var faultID: UInt32 = 0, faultFD: Int32 = 0, iopf: UInt32 = 0
        init(_ f: IOASFixture) {
            self.f = f
            parent = s.hwptAlloc(dev: f.device, pt: f.ioas, flags: IOMMUFDConstant.hwptAllocNestParent).1
            nonParent = s.hwptAlloc(dev: f.device, pt: f.ioas).1
            (_, faultID, faultFD) = s.faultAlloc()
            nested[0] = s.nestedAlloc(dev: f.device, parent: parent).1
            nested[1] = s.nestedAlloc(dev: f.device, parent: parent).1
            iopf = s.nestedAlloc(dev: f.device, parent: parent, flags: IOMMUFDConstant.hwptFaultIDValid, faultID: faultID).1
        }

        func invalidate(_ hwpt: UInt32, entries: [IOMMUHWPTInvalidateSelftest], dataType: UInt32 = IOMMUTestOp.invalidateDataSelftest,
                        entryLen: UInt32 = 8, num: UInt32? = nil, ptr: UInt64? = nil) -> (Int32, UInt32) {
            let at = s.arg + 0xA000
            try! s.process.writeMemory(address: at, bytes: entries.flatMap { $0.bytes } + [UInt8](repeating: 0, count: 16))
            var c = IOMMUHWPTInvalidate(hwptId: hwpt, dataUptr: ptr ?? at, dataType: dataType, entryLen: entryLen,
                                        entryNum: num ?? UInt32(entries.count))
            let rc = s.call(IOMMUFDCommand.hwptInvalidate, &c)
            return (rc, c.entryNum)
        }

        func iotlb(_ hwpt: UInt32, _ want: [UInt32]) -> Bool {
            want.enumerated().allSatisfy { s.checkIOTLB(hwpt, UInt32($0.offset), $0.element) == 0 }
        }
    }

    private func withNested(_ body: (Nested) throws -> Void) throws {
        try forEachIOASVariant(IOASVariant.all.filter { $0.mockDomains > 0 }) { f in try body(Nested(f)) }
    }
    let D = IOMMUTestOp.iotlbDefault

    func testSelftest52DevIDOfWrongTypeIsENOENT() throws {
        try forEachIOASVariant(IOASVariant.all.filter { $0.mockDomains > 0 }) { f in
            XCTAssertEqual(f.s.hwptAlloc(dev: f.ioas, pt: f.ioas).0, ENOENT)
        }
    }

    func testSelftest53PtIDOfWrongTypeIsEINVAL() throws {
        try forEachIOASVariant(IOASVariant.all.filter { $0.mockDomains > 0 }) { f in
            XCTAssertEqual(f.s.hwptAlloc(dev: f.device, pt: f.device).0, EINVAL)
            XCTAssertEqual(f.s.hwptAlloc(dev: f.device, pt: 9999).0, EINVAL)
        }
    }

    func testSelftest54NestParentWithFaultIDIsEOPNOTSUPP() throws {
        try forEachIOASVariant(IOASVariant.all.filter { $0.mockDomains > 0 }) { f in
            XCTAssertEqual(f.s.hwptAlloc(dev: f.device, pt: f.ioas,
                                         flags: IOMMUFDConstant.hwptAllocNestParent | IOMMUFDConstant.hwptFaultIDValid).0, EOPNOTSUPP)
        }
    }

    func testSelftest55ParentAndNonParent() throws {
        try withNested { n in
            XCTAssertNotEqual(n.parent, 0)
            XCTAssertNotEqual(n.nonParent, 0)
        }
    }

    func testSelftest56NoneTypeWithLengthIsEINVAL() throws {
        try withNested { n in
            XCTAssertEqual(n.s.hwptAlloc(dev: n.f.device, pt: n.parent, dataType: 0, data: [0, 0, 0, 0]).0, EINVAL)
        }
    }

    func testSelftest57WrongDataTypeIsEOPNOTSUPP() throws {
        try withNested { n in
            XCTAssertEqual(n.s.hwptAlloc(dev: n.f.device, pt: n.parent, dataType: IOMMUTestOp.hwptDataSelftest + 1,
                                         data: IOMMUHWPTSelftest(iotlb: 1).bytes).0, EOPNOTSUPP)
        }
    }

    func testSelftest58ShortDataIsEINVAL() throws {
        try withNested { n in
            XCTAssertEqual(n.s.hwptAlloc(dev: n.f.device, pt: n.parent, dataType: IOMMUTestOp.hwptDataSelftest,
                                         data: [1, 2, 3]).0, EINVAL)
        }
    }

    func testSelftest59NullDataIsEFAULT() throws {
        try withNested { n in
            XCTAssertEqual(n.s.hwptAlloc(dev: n.f.device, pt: n.parent, dataType: IOMMUTestOp.hwptDataSelftest,
                                         dataLen: 4, dataPtr: 0).0, EFAULT)
        }
    }

    func testSelftest60NestedWithNestParentFlagIsEOPNOTSUPP() throws {
        try withNested { n in
            XCTAssertEqual(n.s.nestedAlloc(dev: n.f.device, parent: n.parent, flags: IOMMUFDConstant.hwptAllocNestParent).0,
                           EOPNOTSUPP)
        }
    }

    func testSelftest61NestedOnNonParentIsEINVAL() throws {
        try withNested { n in XCTAssertEqual(n.s.nestedAlloc(dev: n.f.device, parent: n.nonParent).0, EINVAL) }
    }

    func testSelftest62FaultQueueAndTwoNested() throws {
        try withNested { n in
            XCTAssertNotEqual(n.faultID, 0)
            XCTAssertGreaterThan(n.faultFD, 0)
            XCTAssertTrue(n.nested.allSatisfy { $0 != 0 })
            XCTAssertTrue(n.iotlb(n.nested[0], [D, D, D, D]))
            XCTAssertTrue(n.iotlb(n.nested[1], [D, D, D, D]))
            XCTAssertEqual(n.s.checkIOTLB(n.nested[0], 4, D), EINVAL)
        }
    }

    func testSelftest63FaultIDChecks() throws {
        try withNested { n in
            XCTAssertEqual(n.s.nestedAlloc(dev: n.f.device, parent: n.parent, flags: IOMMUFDConstant.hwptFaultIDValid,
                                           faultID: .max).0, ENOENT)
            XCTAssertNotEqual(n.iopf, 0)
        }
    }

    func testSelftest64NestedOnNestedIsEINVAL() throws {
        try withNested { n in XCTAssertEqual(n.s.nestedAlloc(dev: n.f.device, parent: n.nested[0]).0, EINVAL) }
    }

    func testSelftest65DestroyParentWithChildrenIsEBUSY() throws {
        try withNested { n in XCTAssertEqual(n.s.destroy(n.parent), EBUSY) }
    }

    func testSelftest66InvalidateParentIsEINVAL() throws {
        try withNested { n in
            let (rc, num) = n.invalidate(n.parent, entries: [IOMMUHWPTInvalidateSelftest(iotlbId: 0)])
            XCTAssertEqual(rc, EINVAL)
            XCTAssertEqual(num, 0)
        }
    }

    func testSelftest67InvalidateZeroEntries() throws {
        try withNested { n in
            let (rc, num) = n.invalidate(n.nested[0], entries: [])
            XCTAssertEqual(rc, 0)
            XCTAssertEqual(num, 0)
        }
    }

    func testSelftest68InvalidateBadDataTypeIsEINVAL() throws {
        try withNested { n in
            let (rc, num) = n.invalidate(n.nested[0], entries: [IOMMUHWPTInvalidateSelftest(iotlbId: 0)],
                                         dataType: IOMMUTestOp.invalidateDataSelftestInvalid)
            XCTAssertEqual(rc, EINVAL)
            XCTAssertEqual(num, 0)
        }
    }

    func testSelftest69InvalidateBadEntryLenIsEINVAL() throws {
        try withNested { n in
            for len: UInt32 in [9, 1] {
                let (rc, num) = n.invalidate(n.nested[0], entries: [IOMMUHWPTInvalidateSelftest(iotlbId: 0)], entryLen: len)
                XCTAssertEqual(rc, EINVAL)
                XCTAssertEqual(num, 0)
            }
        }
    }

    func testSelftest70InvalidateBadFlagsIsEOPNOTSUPP() throws {
        try withNested { n in
            let (rc, num) = n.invalidate(n.nested[0], entries: [IOMMUHWPTInvalidateSelftest(flags: .max, iotlbId: 0)])
            XCTAssertEqual(rc, EOPNOTSUPP)
            XCTAssertEqual(num, 0)
        }
    }

    func testSelftest71InvalidateNullOrZeroLenIsEINVAL() throws {
        try withNested { n in
            var (rc, num) = n.invalidate(n.nested[0], entries: [IOMMUHWPTInvalidateSelftest(iotlbId: 0)], ptr: 0)
            XCTAssertEqual(rc, EINVAL)
            XCTAssertEqual(num, 0)
            (rc, num) = n.invalidate(n.nested[0], entries: [IOMMUHWPTInvalidateSelftest(iotlbId: 0)], entryLen: 0)
            XCTAssertEqual(rc, EINVAL)
            XCTAssertEqual(num, 0)
        }
    }

    func testSelftest72InvalidateBadIDIsEINVAL() throws {
        try withNested { n in
            let (rc, num) = n.invalidate(n.nested[0], entries: [IOMMUHWPTInvalidateSelftest(iotlbId: 4)])
            XCTAssertEqual(rc, EINVAL)
            XCTAssertEqual(num, 0)
            XCTAssertTrue(n.iotlb(n.nested[0], [D, D, D, D]))
        }
    }

    func testSelftest73PartialInvalidateBadFlags() throws {
        try withNested { n in
            let (rc, num) = n.invalidate(n.nested[0], entries: [IOMMUHWPTInvalidateSelftest(iotlbId: 0),
                                                                  IOMMUHWPTInvalidateSelftest(flags: .max, iotlbId: 0)])
            XCTAssertEqual(rc, EOPNOTSUPP)
            XCTAssertEqual(num, 1)
            XCTAssertTrue(n.iotlb(n.nested[0], [0, D, D, D]))
        }
    }

    func testSelftest74PartialInvalidateBadID() throws {
        try withNested { n in
            let (rc, num) = n.invalidate(n.nested[0], entries: [IOMMUHWPTInvalidateSelftest(iotlbId: 0),
                                                                  IOMMUHWPTInvalidateSelftest(iotlbId: 4)])
            XCTAssertEqual(rc, EINVAL)
            XCTAssertEqual(num, 1)
            XCTAssertTrue(n.iotlb(n.nested[0], [0, D, D, D]))
        }
    }

    func testSelftest75InvalidateByID() throws {
        try withNested { n in
            XCTAssertEqual(n.invalidate(n.nested[0], entries: [IOMMUHWPTInvalidateSelftest(iotlbId: 0)]).1, 1)
            let (rc, num) = n.invalidate(n.nested[0], entries: [IOMMUHWPTInvalidateSelftest(iotlbId: 1)])
            XCTAssertEqual(rc, 0)
            XCTAssertEqual(num, 1)
            XCTAssertTrue(n.iotlb(n.nested[0], [0, 0, D, D]))
            let (rc2, num2) = n.invalidate(n.nested[0], entries: [IOMMUHWPTInvalidateSelftest(iotlbId: 2),
                                                                   IOMMUHWPTInvalidateSelftest(iotlbId: 3)])
            XCTAssertEqual(rc2, 0)
            XCTAssertEqual(num2, 2)
            XCTAssertTrue(n.iotlb(n.nested[0], [0, 0, 0, 0]))
        }
    }

    func testSelftest76InvalidateAll() throws {
        try withNested { n in
            let (rc, num) = n.invalidate(n.nested[1], entries: [IOMMUHWPTInvalidateSelftest(flags: IOMMUTestOp.invalidateFlagAll,
                                                                                          iotlbId: 0)])
            XCTAssertEqual(rc, 0)
            XCTAssertEqual(num, 1)
            XCTAssertTrue(n.iotlb(n.nested[1], [0, 0, 0, 0]))
            XCTAssertTrue(n.iotlb(n.nested[0], [D, D, D, D]))
        }
    }

    func testSelftest77AttachNestedThenDestroyIsEBUSY() throws {
        try withNested { n in
            XCTAssertEqual(n.s.replace(n.f.stdev, n.nested[0]).0, 0)
            XCTAssertEqual(n.s.destroy(n.nested[0]), EBUSY)
        }
    }

    func testSelftest78ReplaceBetweenNested() throws {
        try withNested { n in
            XCTAssertEqual(n.s.replace(n.f.stdev, n.nested[0]).0, 0)
            XCTAssertEqual(n.s.replace(n.f.stdev, n.nested[1]).0, 0)
            XCTAssertEqual(n.s.destroy(n.nested[1]), EBUSY)
            XCTAssertEqual(n.s.destroy(n.nested[0]), 0)
        }
    }

    func testSelftest79IOPFRoundTrip() throws {
        try withNested { n in
            let s = n.s
            XCTAssertEqual(s.replace(n.f.stdev, n.iopf).0, 0)
            XCTAssertEqual(s.destroy(n.iopf), EBUSY)
            XCTAssertEqual(s.test(IOMMUTestOp.triggerIOPF, IOMMUTestCmd.TriggerIOPF(devId: n.f.device, pasid: 0, grpid: 0x2,
                                                                                perm: 1, addr: 0x1000)), 0)
            let rec = s.arg + 0x2000
            XCTAssertEqual(s.fd.pollFile(n.faultFD), 0x5)
            XCTAssertEqual(s.fd.readFile(n.faultFD, buffer: rec, count: 39), Int(ESPIPE))
            XCTAssertEqual(s.fd.readFile(n.faultFD, buffer: rec, count: 80), 40)
            XCTAssertEqual(s.fd.pollFile(n.faultFD), 0x4)
            let fault = IOMMUHWPTPgfault(bytes: try s.process.readMemory(address: rec, count: 40))
            XCTAssertEqual(fault.devId, n.f.device)
            XCTAssertEqual(fault.flags & IOMMUFDConstant.pgfaultFlagPasidValid, 0)
            XCTAssertEqual(fault.grpid, 2)
            try s.process.writeMemory(address: rec, bytes: IOMMUHWPTPageResponse(cookie: fault.cookie + 7, code: 0).bytes)
            XCTAssertEqual(s.fd.writeFile(n.faultFD, buffer: rec, count: 8), Int(EINVAL))
            try s.process.writeMemory(address: rec, bytes: IOMMUHWPTPageResponse(cookie: fault.cookie, code: 0).bytes)
            XCTAssertEqual(s.fd.writeFile(n.faultFD, buffer: rec, count: 8), 8)
        }
    }

    func testSelftest80UnwindToAutoDomain() throws {
        try withNested { n in
            let s = n.s
            XCTAssertEqual(s.replace(n.f.stdev, n.parent).0, 0)
            XCTAssertEqual(s.destroy(n.nested[1]), 0)
            XCTAssertEqual(s.destroy(n.iopf), 0)
            XCTAssertEqual(s.replace(n.f.stdev, n.f.ioas).0, 0)
            XCTAssertEqual(s.destroy(n.nested[0]), 0)
            XCTAssertEqual(s.destroy(n.parent), 0)
            XCTAssertEqual(s.destroy(n.nonParent), 0)
            XCTAssertEqual(s.fd.closeFile(n.faultFD), 0)
            XCTAssertEqual(s.destroy(n.faultID), 0)
        }
    }

    func testSelftest81NoDeviceIsENOENT() throws {
        try forEachIOASVariant(IOASVariant.all.filter { $0.mockDomains == 0 }) { f in
            XCTAssertEqual(f.s.hwptAlloc(dev: 0, pt: f.ioas).0, ENOENT)
            XCTAssertEqual(f.s.nestedAlloc(dev: 0, parent: f.ioas).0, ENOENT)
            XCTAssertEqual(f.s.replace(0, f.ioas).0, ENOENT)
        }
    }
}
