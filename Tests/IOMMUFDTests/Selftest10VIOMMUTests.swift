import XCTest
import IOMMUConformance
import IOMMUCore
import IOMMUDrivers
@testable import IOMMUFD
import IOMMUFDSelftest

/// The selftest's vIOMMU, vDEVICE, vEVENTQ and HW queue cases (fixture
/// `iommufd_viommu`, variants `no_viommu` and `mock_viommu`), plan cases 111–130, plus
/// the v6.17 `vdevice_tombstone`.
final class Selftest10VIOMMUTests: XCTestCase {
    let selftestData = IOMMUHWPTSelftest(iotlb: IOMMUTestOp.iotlbDefault).bytes

    /// 111 `viommu_auto_destroy`: the fixture alone, then close; nothing stays pinned and
    /// no object is left.
    func testSelftest111VIOMMUAutoDestroy() throws {
        try forEachVIOMMUVariant { f, _ in
            XCTAssertEqual(f.s.fd.objectSnapshot.count, f.viommu == 0 ? 1 : 7)
        }
    }

    /// 112 `viommu_negative_tests`: hwpt_id 0 → `ENOENT`.
    func testSelftest112VIOMMUAllocBadHWPTIsENOENT() throws {
        try withMockVIOMMU { f in
            XCTAssertEqual(f.s.viommuAlloc(dev: f.device, hwpt: 0).0, ENOENT)
            XCTAssertEqual(f.s.viommuAlloc(dev: f.device, hwpt: f.nested).0, ENOENT, "a nested HWPT is no HWPT_PAGING")
            XCTAssertEqual(f.s.viommuAlloc(dev: f.device, hwpt: f.ioas).0, ENOENT, "an IOAS is no HWPT_PAGING")
        }
    }

    /// 113: a HWPT allocated without NEST_PARENT → `EINVAL`.
    func testSelftest113VIOMMUAllocOnNonParentIsEINVAL() throws {
        try withMockVIOMMU { f in
            let (rc, plain) = f.s.hwptAlloc(dev: f.device, pt: f.ioas)
            XCTAssertEqual(rc, 0)
            XCTAssertEqual(f.s.viommuAlloc(dev: f.device, hwpt: plain).0, EINVAL)
            XCTAssertEqual(f.s.destroy(plain), 0)
        }
    }

    /// 114: an unknown type → `EOPNOTSUPP`; DEFAULT and flags too.
    func testSelftest114VIOMMUAllocBadTypeIsEOPNOTSUPP() throws {
        try withMockVIOMMU { f in
            XCTAssertEqual(f.s.viommuAlloc(dev: f.device, hwpt: f.hwpt, type: 0xdead).0, EOPNOTSUPP)
            XCTAssertEqual(f.s.viommuAlloc(dev: f.device, hwpt: f.hwpt, type: IOMMUVIOMMUType.default).0, EOPNOTSUPP)
            var c = IOMMUVIOMMUAlloc(flags: 1, type: IOMMUVIOMMUType.selftest, devId: f.device, hwptId: f.hwpt)
            XCTAssertEqual(f.s.call(IOMMUFDCommand.viommuAlloc, &c), EOPNOTSUPP)
            // `__reserved` is not checked.
            c = IOMMUVIOMMUAlloc(type: IOMMUVIOMMUType.selftest, devId: f.device, hwptId: f.hwpt, reserved: 7)
            XCTAssertEqual(f.s.call(IOMMUFDCommand.viommuAlloc, &c), 0)
            XCTAssertEqual(f.s.destroy(c.outViommuId), 0)
        }
    }

    /// 115: the parent HWPT and the vIOMMU are busy (the vIOMMU holds the parent, the
    /// nested HWPT holds the vIOMMU); `no_viommu`: device 0 → `ENOENT`.
    func testSelftest115VIOMMUAndParentAreBusy() throws {
        try forEachVIOMMUVariant { f, has in
            if has {
                XCTAssertEqual(f.s.destroy(f.hwpt), EBUSY)
                XCTAssertEqual(f.s.destroy(f.viommu), EBUSY)
                XCTAssertEqual(f.s.destroy(f.nested), 0)
                XCTAssertEqual(f.s.destroy(f.viommu), 0)
                XCTAssertEqual(f.s.destroy(f.hwpt), 0)
            } else {
                XCTAssertEqual(f.s.viommuAlloc(dev: f.device, hwpt: f.hwpt).0, ENOENT)
            }
        }
    }

    /// 116 `viommu_alloc_nested_iopf`: FAULT_ID_VALID checks on a vIOMMU; the device needs
    /// a vDEVICE before attaching (`ENOENT`); an attached iopf HWPT is busy; a page request
    /// goes round trip through the fault queue.
    func testSelftest116VIOMMUNestedIOPF() throws {
        try withMockVIOMMU { f in
            let (frc, fault, faultFD) = f.s.faultAlloc()
            XCTAssertEqual(frc, 0)
            XCTAssertEqual(f.s.nestedAlloc(dev: f.device, parent: f.viommu, flags: IOMMUFDConstant.hwptFaultIDValid,
                                           faultID: .max).0, ENOENT)
            XCTAssertEqual(f.s.nestedAlloc(dev: f.device, parent: f.viommu,
                                           flags: IOMMUFDConstant.hwptFaultIDValid | (1 << 31), faultID: fault).0,
                           EOPNOTSUPP)
            let (irc, iopf) = f.s.nestedAlloc(dev: f.device, parent: f.viommu, flags: IOMMUFDConstant.hwptFaultIDValid,
                                              faultID: fault)
            XCTAssertEqual(irc, 0)
            XCTAssertEqual(f.s.replace(f.stdev, iopf).0, ENOENT, "no vDEVICE yet")
            XCTAssertEqual(f.s.vdeviceAlloc(viommu: f.viommu, dev: f.device, virtID: 0x99).0, 0)
            XCTAssertEqual(f.s.replace(f.stdev, iopf).0, 0)
            XCTAssertEqual(f.s.destroy(iopf), EBUSY)
            // test_cmd_trigger_iopf: one page request, read and answered through the fd.
            XCTAssertEqual(f.s.test(IOMMUTestOp.triggerIOPF,
                                    IOMMUTestCmd.TriggerIOPF(devId: f.device, pasid: 0, grpid: 0x1, perm: 1, addr: 0)), 0)
            let at = f.s.arg + 0xD000
            XCTAssertEqual(f.s.fd.readFile(faultFD, buffer: at, count: IOMMUHWPTPgfault.size), IOMMUHWPTPgfault.size)
            let pgfault = IOMMUHWPTPgfault(bytes: try f.s.process.readMemory(address: at, count: IOMMUHWPTPgfault.size))
            XCTAssertEqual(pgfault.devId, f.device)
            try f.s.process.writeMemory(address: at, bytes: IOMMUHWPTPageResponse(cookie: pgfault.cookie, code: 0).bytes)
            XCTAssertEqual(f.s.fd.writeFile(faultFD, buffer: at, count: IOMMUHWPTPageResponse.size), IOMMUHWPTPageResponse.size)
            XCTAssertEqual(f.s.replace(f.stdev, f.ioas).0, 0)
            XCTAssertEqual(f.s.destroy(iopf), 0)
            XCTAssertEqual(f.s.fd.closeFile(faultFD), 0)
            XCTAssertEqual(f.s.destroy(fault), 0)
        }
    }

    /// 117 `viommu_alloc_with_data`: `out_data` echoes `in_data`; `mmap` of the fd only at
    /// the reported offset and length (`ENXIO` otherwise), which reads `in_data`; the
    /// vIOMMU cannot be destroyed while mapped.
    func testSelftest117VIOMMUAllocWithDataAndMMap() throws {
        try withMockVIOMMU { f in
            var data: IOMMUVIOMMUSelftest? = IOMMUVIOMMUSelftest(inData: 0xbeef)
            let (rc, viommu) = f.s.viommuAlloc(dev: f.device, hwpt: f.hwpt, data: &data)
            XCTAssertEqual(rc, 0)
            let d = try XCTUnwrap(data)
            XCTAssertEqual(d.outData, 0xbeef)
            XCTAssertEqual(d.outMmapLength, 2 * PAGE)
            XCTAssertGreaterThanOrEqual(d.outMmapOffset, PAGE, "offsets start past the first page")
            let length = Int(d.outMmapLength)
            for (len, off) in [(length, d.outMmapOffset + PAGE), (length, d.outMmapOffset + 2 * PAGE),
                               (length / 2, d.outMmapOffset), (length * 2, d.outMmapOffset)] {
                XCTAssertThrowsError(try f.s.fd.mmap(length: len, prot: [.read, .write], offset: off)) {
                    XCTAssertEqual($0 as? Errno, .noSuchDeviceOrAddress)
                }
            }
            XCTAssertThrowsError(try f.s.fd.mmap(length: length, prot: [.read], shared: false, offset: d.outMmapOffset)) {
                XCTAssertEqual($0 as? Errno, .invalidArgument, "not MAP_SHARED")
            }
            XCTAssertThrowsError(try f.s.fd.mmap(length: length, prot: [.read, .exec], offset: d.outMmapOffset)) {
                XCTAssertEqual($0 as? Errno, .notPermitted, "PROT_EXEC")
            }
            let va = try f.s.fd.mmap(length: length, prot: [.read, .write], offset: d.outMmapOffset)
            XCTAssertEqual(try f.s.process.readMemory(address: va, count: 4), [0xef, 0xbe, 0, 0])
            XCTAssertEqual(f.s.destroy(viommu), EBUSY, "the mapping holds the vIOMMU")
            try f.s.process.munmap(address: va, length: length)
            XCTAssertEqual(f.s.destroy(viommu), 0)
        }
    }

    /// A mapping cut in two by `munmap` and copied by `fork` holds the vIOMMU once per
    /// piece; closing the fd while it is mapped releases the context only when the last
    /// piece goes.
    func testMMapPiecesHoldTheOwnerAndTheContext() throws {
        try withMockVIOMMU { f in
            var data: IOMMUVIOMMUSelftest? = IOMMUVIOMMUSelftest(inData: 7)
            let (_, viommu) = f.s.viommuAlloc(dev: f.device, hwpt: f.hwpt, data: &data)
            let d = try XCTUnwrap(data)
            let va = try f.s.fd.mmap(length: Int(d.outMmapLength), prot: [.read], offset: d.outMmapOffset)
            let child = try f.s.process.fork(pid: 300)
            try f.s.process.munmap(address: va, length: 4096)
            XCTAssertEqual(try child.readMemory(address: va, count: 1), [7], "the child maps the same page")
            XCTAssertEqual(f.s.destroy(viommu), EBUSY)
            child.exit()
            XCTAssertEqual(f.s.destroy(viommu), EBUSY, "the parent's second page is still mapped")
            f.s.fd.close()
            XCTAssertTrue(f.s.fd.hasObjects, "the mapping holds the file: no release yet")
            XCTAssertEqual(f.s.fd.ioctl(IOMMUFDCommand.destroy, f.s.arg), -EBADF, "the fd itself is closed")
            try f.s.process.munmap(address: va + 4096, length: 4096)
            XCTAssertTrue(f.s.fd.isReleased)
            XCTAssertFalse(f.s.fd.hasObjects)
        }
    }

    /// 118 `vdevice_alloc`: attaching to the vIOMMU's nested HWPT needs a vDEVICE.
    func testSelftest118AttachToVIOMMUNestedNeedsVDevice() throws {
        try withMockVIOMMU { f in
            XCTAssertEqual(f.s.replace(f.stdev, f.nested).0, ENOENT)
        }
    }

    /// 119: a vEVENTQ, then a second of the same type → `EEXIST`; the argument checks.
    func testSelftest119VEventQAllocAndDuplicateIsEEXIST() throws {
        try withMockVIOMMU { f in
            let (rc, q, fd) = f.s.veventqAlloc(viommu: f.viommu)
            XCTAssertEqual(rc, 0)
            XCTAssertEqual(f.s.veventqAlloc(viommu: f.viommu).0, EEXIST)
            XCTAssertEqual(f.s.veventqAlloc(viommu: f.viommu, type: IOMMUVEventQType.default).0, EOPNOTSUPP)
            XCTAssertEqual(f.s.veventqAlloc(viommu: f.viommu, depth: 0).0, EINVAL)
            XCTAssertEqual(f.s.veventqAlloc(viommu: f.ioas).0, ENOENT)
            var c = IOMMUVEventQAlloc(viommuId: f.viommu, type: 1, veventqDepth: 2, reserved: 1)
            XCTAssertEqual(f.s.call(IOMMUFDCommand.veventqAlloc, &c), EOPNOTSUPP)
            XCTAssertEqual(f.s.destroy(q), EBUSY, "the fd holds the vEVENTQ")
            XCTAssertEqual(f.s.fd.pollFile(fd), 0, "nothing to read, and never writable")
            XCTAssertEqual(f.s.fd.closeFile(fd), 0)
            XCTAssertEqual(f.s.destroy(q), 0)
        }
    }

    /// 120: a vDEVICE (0x99), the nested attach, one event, read as header (sequence
    /// prev + 1, flags 0) and `virt_id` 0x99.
    func testSelftest120VEventRoundTrip() throws {
        try withMockVIOMMU { f in
            let (_, _, fd) = f.s.veventqAlloc(viommu: f.viommu)
            XCTAssertEqual(f.s.triggerVEvents(f.device, 1), ENOENT, "no vDEVICE, no vIOMMU attach")
            XCTAssertEqual(f.s.vdeviceAlloc(viommu: f.viommu, dev: f.device, virtID: 0x99).0, 0)
            XCTAssertEqual(f.s.replace(f.stdev, f.nested).0, 0)
            XCTAssertEqual(f.s.fd.pollFile(fd), 0)
            XCTAssertEqual(f.s.triggerVEvents(f.device, 1), 0)
            XCTAssertEqual(f.s.fd.pollFile(fd), 0x41, "POLLIN | POLLRDNORM")
            var prev = -1
            XCTAssertEqual(f.s.readVEvents(fd, 1, virtID: 0x99, prevSeq: &prev), 0)
            XCTAssertEqual(prev, 0)
            XCTAssertEqual(f.s.replace(f.stdev, f.ioas).0, 0)
        }
    }

    /// 121: a second vDEVICE for the same device → `EEXIST`; a virtual ID taken in the
    /// vIOMMU → `EEXIST`; a device of another IOMMU → `EINVAL`.
    func testSelftest121VDeviceDuplicateIsEEXIST() throws {
        try withMockVIOMMU { f in
            XCTAssertEqual(f.s.vdeviceAlloc(viommu: f.viommu, dev: f.device, virtID: 0x99).0, 0)
            XCTAssertEqual(f.s.vdeviceAlloc(viommu: f.viommu, dev: f.device, virtID: 0x99).0, EEXIST)
            XCTAssertEqual(f.s.vdeviceAlloc(viommu: f.viommu, dev: f.device, virtID: 0x77).0, EEXIST)
            let (_, _, _, dev2) = f.s.mockDomain(f.ioas)
            XCTAssertEqual(f.s.vdeviceAlloc(viommu: f.viommu, dev: dev2, virtID: 0x99).0, EEXIST, "virt_id taken")
            let (vrc, vdev2) = f.s.vdeviceAlloc(viommu: f.viommu, dev: dev2, virtID: 0x98)
            XCTAssertEqual(vrc, 0)
            XCTAssertEqual(f.s.destroy(vdev2), 0)
            let otherBackend = MockSelftestBackend(machine: f.s.machine)
            let other = try otherBackend.createMockDevice(on: f.s.machine, flags: 0)
            let idev = try f.s.fd.deviceBind(other)
            XCTAssertEqual(f.s.vdeviceAlloc(viommu: f.viommu, dev: idev.id.rawValue, virtID: 0x55).0, EINVAL, "another IOMMU")
            f.s.fd.deviceUnbind(idev)
        }
    }

    /// 122: back to the IOAS, destroy the vDEVICE, a new one (0x88), attach again.
    func testSelftest122VDeviceRealloc() throws {
        try withMockVIOMMU { f in
            let (_, vdev) = f.s.vdeviceAlloc(viommu: f.viommu, dev: f.device, virtID: 0x99)
            XCTAssertEqual(f.s.replace(f.stdev, f.nested).0, 0)
            XCTAssertEqual(f.s.replace(f.stdev, f.ioas).0, 0)
            XCTAssertEqual(f.s.destroy(vdev), 0)
            let (rc, vdev2) = f.s.vdeviceAlloc(viommu: f.viommu, dev: f.device, virtID: 0x88)
            XCTAssertEqual(rc, 0)
            XCTAssertEqual(vdev2, vdev, "the lowest free ID again")
            XCTAssertEqual(f.s.replace(f.stdev, f.nested).0, 0)
        }
    }

    /// 123: three events into a queue of depth 2: two events, then a LOST_EVENTS header;
    /// one more reads normally and the sequence goes on; then everything comes apart.
    func testSelftest123VEventQOverflow() throws {
        try withMockVIOMMU { f in
            let (_, q, fd) = f.s.veventqAlloc(viommu: f.viommu)
            let (_, vdev) = f.s.vdeviceAlloc(viommu: f.viommu, dev: f.device, virtID: 0x88)
            XCTAssertEqual(f.s.replace(f.stdev, f.nested).0, 0)
            var prev = -1
            XCTAssertEqual(f.s.triggerVEvents(f.device, 3), 0)
            // Reading 3 records' worth: two events of 12 bytes and the 8-byte LOST header.
            XCTAssertEqual(f.s.fd.readFile(fd, buffer: f.s.arg + 0xC000, count: 36), 32)
            let bytes = try f.s.process.readMemory(address: f.s.arg + 0xC000, count: 32)
            let lost = IOMMUFDVEventHeader(bytes: Array(bytes[24...]))
            XCTAssertEqual(lost.flags, IOMMUFDConstant.veventqFlagLostEvents)
            XCTAssertEqual(lost.sequence, 2)
            prev = Int(lost.sequence)
            XCTAssertEqual(f.s.fd.pollFile(fd), 0, "the overflow is gone once read")
            XCTAssertEqual(f.s.triggerVEvents(f.device, 1), 0)
            XCTAssertEqual(f.s.readVEvents(fd, 1, virtID: 0x88, prevSeq: &prev), 0)
            XCTAssertEqual(prev, 3)
            XCTAssertEqual(f.s.fd.closeFile(fd), 0)
            XCTAssertEqual(f.s.replace(f.stdev, f.ioas).0, 0)
            XCTAssertEqual(f.s.destroy(vdev), 0)
            XCTAssertEqual(f.s.destroy(q), 0)
        }
    }

    /// The selftest helper's view of case 123: reading three events reports the overflow.
    func testSelftest123ReadHelperSeesEOVERFLOW() throws {
        try withMockVIOMMU { f in
            let (_, _, fd) = f.s.veventqAlloc(viommu: f.viommu)
            _ = f.s.vdeviceAlloc(viommu: f.viommu, dev: f.device, virtID: 0x88)
            XCTAssertEqual(f.s.replace(f.stdev, f.nested).0, 0)
            var prev = -1
            XCTAssertEqual(f.s.triggerVEvents(f.device, 3), 0)
            XCTAssertEqual(f.s.readVEvents(fd, 3, virtID: 0x88, prevSeq: &prev), EOVERFLOW)
            XCTAssertEqual(f.s.triggerVEvents(f.device, 1), 0)
            XCTAssertEqual(f.s.readVEvents(fd, 1, virtID: 0x88, prevSeq: &prev), 0)
            XCTAssertEqual(f.s.replace(f.stdev, f.ioas).0, 0)
        }
    }

    /// After an overflow a real event replaces the LOST header at the tail: the reader sees
    /// the gap in the sequence instead; reports without a vEVENTQ are `EOPNOTSUPP`.
    func testVEventQLostHeaderIsReplacedByTheNextEvent() throws {
        try withMockVIOMMU { f in
            _ = f.s.vdeviceAlloc(viommu: f.viommu, dev: f.device, virtID: 0x88)
            XCTAssertEqual(f.s.replace(f.stdev, f.nested).0, 0)
            XCTAssertEqual(f.s.triggerVEvents(f.device, 1), EOPNOTSUPP, "no vEVENTQ of the type")
            let (_, _, fd) = f.s.veventqAlloc(viommu: f.viommu, depth: 1)
            XCTAssertEqual(f.s.triggerVEvents(f.device, 3), 0)
            // Read the one event (sequence 0), leaving the LOST header (sequence 2).
            XCTAssertEqual(f.s.fd.readFile(fd, buffer: f.s.arg + 0xC000, count: 12), 12)
            XCTAssertEqual(f.s.triggerVEvents(f.device, 1), 0)
            XCTAssertEqual(f.s.fd.readFile(fd, buffer: f.s.arg + 0xC000, count: 12), 12)
            let h = IOMMUFDVEventHeader(bytes: try f.s.process.readMemory(address: f.s.arg + 0xC000, count: 8))
            XCTAssertEqual(h.flags, 0)
            XCTAssertEqual(h.sequence, 3, "sequences 1 and 2 were lost")
            XCTAssertEqual(f.s.fd.readFile(fd, buffer: f.s.arg + 0xC000, count: 7), 0, "less than a header")
            XCTAssertEqual(f.s.replace(f.stdev, f.ioas).0, 0)
        }
    }

    /// 124: `no_viommu`: VDEVICE_ALLOC(viommu 0, dev 0) → `ENOENT`.
    func testSelftest124VDeviceWithoutVIOMMUIsENOENT() throws {
        try forEachVIOMMUVariant { f, has in
            guard !has else { return }
            XCTAssertEqual(f.s.vdeviceAlloc(viommu: f.viommu, dev: f.device, virtID: 0x99).0, ENOENT)
        }
    }

    /// 125 `vdevice_cache`: the vIOMMU form of HWPT_INVALIDATE and DEV_CHECK_CACHE.
    func testSelftest125VDeviceCacheInvalidate() throws {
        try withMockVIOMMU { f in
            let s = f.s
            let (_, vdev) = s.vdeviceAlloc(viommu: f.viommu, dev: f.device, virtID: 0x99)
            s.devCheckCacheAll(f.device, IOMMUTestOp.devCacheDefault)
            typealias E = IOMMUVIOMMUInvalidateSelftest
            let size = UInt32(E.size)
            func inv(_ entries: [E], type: UInt32 = IOMMUHWPTInvalidateDataType.viommuSelftest, len: UInt32 = size,
                     num: UInt32, null: Bool = false) -> (Int32, UInt32) {
                s.viommuInvalidate(f.viommu, entries, dataType: type, entryLen: len, num: num, nullData: null)
            }
            XCTAssertEqual(inv([E()], num: 0).0, 0, "a zero-length array checks the type")
            XCTAssertEqual(inv([E()], type: IOMMUHWPTInvalidateDataType.viommuSelftestInvalid, num: 1).0, EINVAL)
            XCTAssertTrue(inv([E()], len: size + 1, num: 1) == (EINVAL, 0), "vdev_id 0 is nobody's")
            XCTAssertTrue(inv([E()], len: 1, num: 1) == (EINVAL, 0))
            XCTAssertTrue(inv([E(flags: 0xffff_ffff, vdevId: 0x99)], num: 1) == (EOPNOTSUPP, 0))
            XCTAssertTrue(inv([E(vdevId: 0x99)], num: 1, null: true) == (EINVAL, 0))
            XCTAssertTrue(inv([E(vdevId: 0x99)], len: 0, num: 1) == (EINVAL, 0))
            XCTAssertTrue(inv([E(vdevId: 0x99, cacheId: Mock.devCacheIDMax + 1)], num: 1) == (EINVAL, 0))
            XCTAssertTrue(inv([E(vdevId: 0x9, cacheId: 0)], num: 1) == (EINVAL, 0))
            // The first entry applies, the second's bad flags stop the array.
            XCTAssertTrue(inv([E(vdevId: 0x99, cacheId: 0), E(flags: 0xffff_ffff, vdevId: 0x99, cacheId: 1)], num: 2)
                          == (EOPNOTSUPP, 1))
            XCTAssertEqual(s.devCheckCache(f.device, 0, 0), 0)
            for id: UInt32 in 1...3 { XCTAssertEqual(s.devCheckCache(f.device, id, IOMMUTestOp.devCacheDefault), 0) }
            XCTAssertTrue(inv([E(vdevId: 0x99, cacheId: 0), E(vdevId: 0x99, cacheId: Mock.devCacheIDMax + 1)], num: 2)
                          == (EINVAL, 1))
            XCTAssertTrue(inv([E(vdevId: 0x99, cacheId: 1)], num: 1) == (0, 1))
            XCTAssertEqual(s.devCheckCache(f.device, 1, 0), 0)
            XCTAssertEqual(s.devCheckCache(f.device, 2, IOMMUTestOp.devCacheDefault), 0)
            XCTAssertTrue(inv([E(vdevId: 0x99, cacheId: 2), E(vdevId: 0x99, cacheId: 3)], num: 2) == (0, 2))
            s.devCheckCacheAll(f.device, 0)
            XCTAssertTrue(inv([E(flags: IOMMUTestOp.invalidateFlagAll, vdevId: 0x99)], num: 1) == (0, 1))
            s.devCheckCacheAll(f.device, 0)
            XCTAssertEqual(s.devCheckCache(f.device, 4, 0), EINVAL, "cache id past MOCK_DEV_CACHE_ID_MAX")
            XCTAssertEqual(s.destroy(vdev), 0)
        }
    }

    /// FLAG_ALL on a fresh device clears all four words; the parent HWPT is no
    /// invalidation target (`EINVAL`).
    func testVIOMMUInvalidateAllAndParentIsEINVAL() throws {
        try withMockVIOMMU { f in
            _ = f.s.vdeviceAlloc(viommu: f.viommu, dev: f.device, virtID: 0x99)
            let all = [IOMMUVIOMMUInvalidateSelftest(flags: IOMMUTestOp.invalidateFlagAll, vdevId: 0x99)]
            XCTAssertTrue(f.s.viommuInvalidate(f.viommu, all, num: 1) == (0, 1))
            f.s.devCheckCacheAll(f.device, 0)
            XCTAssertTrue(f.s.viommuInvalidate(f.hwpt, all, num: 1) == (EINVAL, 0))
        }
    }

    // MARK: hw_queue (cases 126–130, one selftest case in the kernel)

    /// 126: type DEFAULT → `EOPNOTSUPP`.
    func testSelftest126HWQueueTypeDefaultIsEOPNOTSUPP() throws {
        try withMockVIOMMU { f in
            XCTAssertEqual(f.s.hwQueueAlloc(viommu: f.viommu, type: IOMMUHWQueueType.default, index: 0,
                                            iova: APERTURE_START, length: PAGE).0, EOPNOTSUPP)
            XCTAssertEqual(f.s.hwQueueAlloc(viommu: f.viommu, type: 0x1234, index: 0, iova: APERTURE_START,
                                            length: PAGE).0, EOPNOTSUPP, "a type the mock does not make")
        }
    }

    /// 127: length 0 → `EINVAL`; a range past the top → `EOVERFLOW`; an unmapped IOVA →
    /// `ENOENT`.
    func testSelftest127HWQueueArguments() throws {
        try withMockVIOMMU { f in
            XCTAssertEqual(f.s.hwQueueAlloc(viommu: f.viommu, index: 0, iova: APERTURE_START, length: 0).0, EINVAL)
            XCTAssertEqual(f.s.hwQueueAlloc(viommu: f.viommu, index: 0, iova: .max, length: PAGE).0, EOVERFLOW)
            XCTAssertEqual(f.s.hwQueueAlloc(viommu: f.viommu, index: 0, iova: APERTURE_START, length: PAGE).0, ENOENT)
            XCTAssertEqual(f.s.hwQueueAlloc(viommu: f.ioas, index: 0, iova: APERTURE_START, length: PAGE).0, ENOENT)
            XCTAssertEqual(f.s.fd.objectSnapshot.count, 7, "failed allocations leave nothing")
        }
    }

    /// 128–130: index order (1 first → `EIO`, MAX → `EINVAL`, 0 → ok, 0 again → `EEXIST`);
    /// the pinned page is locked against unmap (`EBUSY`) while the other unmaps; queue 1
    /// (unaligned) depends on queue 0, so 0 cannot go first; then everything unmaps.
    func testSelftest128To130HWQueueOrderLockingAndDependency() throws {
        try withMockVIOMMU { f in
            let s = f.s
            let (m1, iova) = s.mapAuto(f.ioas, s.buffer, PAGE)
            let (m2, iova2) = s.mapAuto(f.ioas, s.buffer + PAGE, PAGE)
            XCTAssertEqual(m1, 0)
            XCTAssertEqual(m2, 0)
            XCTAssertEqual(iova, APERTURE_START)
            // 128
            XCTAssertEqual(s.hwQueueAlloc(viommu: f.viommu, index: 1, iova: iova, length: PAGE).0, EIONeg)
            XCTAssertEqual(s.hwQueueAlloc(viommu: f.viommu, index: Mock.hwQueueMax, iova: iova, length: PAGE).0, EINVAL)
            let (q0rc, q0) = s.hwQueueAlloc(viommu: f.viommu, index: 0, iova: iova, length: PAGE)
            XCTAssertEqual(q0rc, 0)
            XCTAssertEqual(s.hwQueueAlloc(viommu: f.viommu, index: 0, iova: iova, length: PAGE).0, EEXIST)
            XCTAssertEqual(s.checkRefs(s.buffer, PAGE, 1), 0, "the queue's page is pinned")
            // 129
            XCTAssertEqual(s.unmap(f.ioas, iova, PAGE).0, EBUSY)
            XCTAssertEqual(s.unmap(f.ioas, iova2, PAGE).0, 0)
            // 130
            let (q1rc, q1) = s.hwQueueAlloc(viommu: f.viommu, index: 1, iova: iova + PAGE / 2, length: PAGE / 2)
            XCTAssertEqual(q1rc, 0)
            XCTAssertEqual(s.destroy(q0), EBUSY)
            XCTAssertEqual(s.destroy(f.viommu), EBUSY, "the queues hold the vIOMMU")
            XCTAssertEqual(s.destroy(q1), 0)
            XCTAssertEqual(s.destroy(q0), 0)
            XCTAssertEqual(s.unmap(f.ioas, iova, PAGE).0, 0)
        }
    }

    /// A queue whose pages are not physically contiguous is `EFAULT`; its internal access
    /// is an object of its own (an ID), gone with the queue.
    func testHWQueueNeedsContiguousPagesAndOwnsAnAccess() throws {
        try withMockVIOMMU { f in
            let s = f.s
            // Two IOVA-adjacent pages from two different buffers: not contiguous.
            XCTAssertEqual(s.mapFixed(f.ioas, s.buffer, PAGE, iova: APERTURE_START), 0)
            XCTAssertEqual(s.mapFixed(f.ioas, s.buffer + 5 * PAGE, PAGE, iova: APERTURE_START + PAGE), 0)
            XCTAssertEqual(s.hwQueueAlloc(viommu: f.viommu, index: 0, iova: APERTURE_START, length: 2 * PAGE).0, EFAULT)
            // The failed queue left no access behind: the area is not locked.
            XCTAssertEqual(s.unmap(f.ioas, APERTURE_START, 2 * PAGE).0, 0)
            XCTAssertEqual(s.checkRefs(s.buffer, PAGE, 0), 0, "unpinned")
            XCTAssertEqual(s.mapFixed(f.ioas, s.buffer, PAGE, iova: APERTURE_START), 0)
            let before = Set(s.fd.objectSnapshot.map(\.id))
            let (rc, q) = s.hwQueueAlloc(viommu: f.viommu, index: 0, iova: APERTURE_START, length: PAGE)
            XCTAssertEqual(rc, 0)
            let added = s.fd.objectSnapshot.filter { !before.contains($0.id) }
            XCTAssertEqual(added.map(\.type), [.hwQueue, .access])
            XCTAssertEqual(s.destroy(added[1].id.rawValue), EBUSY, "the queue's access is not the user's to destroy")
            XCTAssertEqual(s.destroy(q), 0)
            XCTAssertEqual(s.fd.objectSnapshot.count, before.count)
        }
    }

    /// v6.17 `vdevice_tombstone`: destroying the device (its stdev) destroys its vDEVICE,
    /// whose ID is then `ENOENT` and not reused before close.
    func testVDeviceTombstone() throws {
        try withMockVIOMMU { f in
            let (_, vdev) = f.s.vdeviceAlloc(viommu: f.viommu, dev: f.device, virtID: 0x99)
            XCTAssertEqual(f.s.destroy(f.stdev), 0)
            XCTAssertEqual(f.s.destroy(vdev), ENOENT)
            XCTAssertNotEqual(f.s.ioasAlloc(), vdev, "a tombstone's ID is not reused")
        }
    }

    /// Nested HWPTs on a vIOMMU take PASID attach like any PASID-compatible nested HWPT.
    func testPasidAttachThroughVIOMMUNested() throws {
        try withMockVIOMMU { f in
            let s = f.s
            let (_, stdev, _, dev) = s.mockDomain(f.ioas, flags: IOMMUTestOp.devicePasid)
            let (prc, parent) = s.hwptAlloc(dev: dev, pt: f.ioas,
                                            flags: IOMMUFDConstant.hwptAllocNestParent | IOMMUFDConstant.hwptAllocPasid)
            XCTAssertEqual(prc, 0)
            let (vrc, viommu) = s.viommuAlloc(dev: dev, hwpt: parent)
            XCTAssertEqual(vrc, 0)
            let (nrc, nested2) = s.nestedAlloc(dev: dev, parent: viommu, flags: IOMMUFDConstant.hwptAllocPasid)
            XCTAssertEqual(nrc, 0)
            XCTAssertEqual(s.replace(stdev, parent).0, 0)
            XCTAssertEqual(s.pasidAttach(stdev, 100, nested2), 0)
            XCTAssertEqual(s.pasidCheck(stdev, 100, nested2), 0)
            XCTAssertEqual(s.destroy(nested2), EBUSY)
            XCTAssertEqual(s.pasidDetach(stdev, 100), 0)
            XCTAssertEqual(s.pasidCheck(stdev, 100, 0), 0)
            XCTAssertEqual(s.destroy(nested2), 0)
        }
    }

    /// The size rules of the four commands: below `min_size` → `EINVAL` (VIOMMU_ALLOC's is
    /// `out_viommu_id`, VEVENTQ_ALLOC's `out_veventq_fd`), non-zero past `sizeof` →
    /// `E2BIG`, a short structure at least `min_size` is zero-extended.
    func testVIOMMUFamilySizeRules() throws {
        try withMockVIOMMU { f in
            XCTAssertEqual(IOMMUVIOMMUAlloc.minSize, 24)
            XCTAssertEqual(IOMMUVEventQAlloc.minSize, 28)
            var short = UAPIBytes(count: 24)
            short.setU32(0, 24)
            short.setU32(8, IOMMUVIOMMUType.selftest)
            short.setU32(12, f.device)
            short.setU32(16, f.hwpt)
            let (rc, out) = f.s.raw(IOMMUFDCommand.viommuAlloc, short.bytes)
            XCTAssertEqual(rc, 0, "data_len and data_uptr are optional")
            XCTAssertNotEqual(UAPIBytes(out).u32(20), 0)
            short.setU32(0, 23)
            XCTAssertEqual(f.s.raw(IOMMUFDCommand.viommuAlloc, short.bytes).0, EINVAL)
            var big = UAPIBytes(count: IOMMUHWQueueAlloc.size + 8)
            big.setU32(0, UInt32(big.count))
            big.setU64(IOMMUHWQueueAlloc.size, 1)
            XCTAssertEqual(f.s.raw(IOMMUFDCommand.hwQueueAlloc, big.bytes).0, E2BIG)
            var q = UAPIBytes(count: 28)
            q.setU32(0, 28)
            q.setU32(8, f.viommu)
            q.setU32(12, IOMMUVEventQType.selftest)
            q.setU32(16, 4)
            XCTAssertEqual(f.s.raw(IOMMUFDCommand.veventqAlloc, q.bytes).0, 0, "__reserved is optional")
        }
    }

    /// The typed face of the family: typed IDs in and out, the driver's data written back,
    /// a queue's events read from its fd, a vIOMMU invalidation, and a typed DESTROY of
    /// each object.
    func testTypedVIOMMUFamily() throws {
        try withMockVIOMMU { f in
            let fd = f.s.fd
            let device = DeviceObjectID(rawValue: f.device), parent = HWPTObjectID(rawValue: f.hwpt)
            let (viommu, data) = try fd.allocVIOMMU(device: device, parent: parent, type: IOMMUVIOMMUType.selftest,
                                                    data: IOMMUVIOMMUSelftest(inData: 0x1234).bytes)
            let out = IOMMUVIOMMUSelftest(bytes: data)
            XCTAssertEqual(out.outData, 0x1234)
            XCTAssertEqual(out.outMmapLength, 2 * PAGE)
            let vdev = try fd.allocVDevice(viommu: viommu, device: device, virtualID: 0x42)
            let nested = try fd.allocHWPT(device: device, pt: viommu, dataType: IOMMUTestOp.hwptDataSelftest,
                                          data: IOMMUHWPTSelftest(iotlb: IOMMUTestOp.iotlbDefault).bytes)
            XCTAssertEqual(f.s.replace(f.stdev, nested.rawValue).0, 0)
            let (queue, qfd) = try fd.allocVEventQueue(viommu: viommu, type: IOMMUVEventQType.selftest, depth: 4)
            XCTAssertEqual(f.s.triggerVEvents(f.device, 1), 0)
            var prev = -1
            XCTAssertEqual(f.s.readVEvents(qfd, 1, virtID: 0x42, prevSeq: &prev), 0)
            var handled: UInt32 = 0
            try fd.invalidate(viommu: viommu, dataType: IOMMUHWPTInvalidateDataType.viommuSelftest,
                              entryLength: UInt32(IOMMUVIOMMUInvalidateSelftest.size),
                              entries: [IOMMUVIOMMUInvalidateSelftest(flags: 1, vdevId: 0x42).bytes], handled: &handled)
            XCTAssertEqual(handled, 1)
            f.s.devCheckCacheAll(f.device, 0)
            XCTAssertEqual(f.s.mapFixed(f.ioas, f.s.buffer, PAGE, iova: APERTURE_START), 0)
            let hwq = try fd.allocHWQueue(viommu: viommu, type: IOMMUHWQueueType.selftest, index: 0,
                                          iova: IOVA(rawValue: APERTURE_START), length: PAGE)
            assertErrno(.busy) { () throws(Errno) in try fd.destroy(viommu) }
            try fd.destroy(hwq)
            XCTAssertEqual(fd.closeFile(qfd), 0)
            try fd.destroy(queue)
            XCTAssertEqual(f.s.replace(f.stdev, f.ioas).0, 0)
            try fd.destroy(nested)
            try fd.destroy(vdev)
            try fd.destroy(viommu)
        }
    }
}
