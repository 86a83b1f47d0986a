import XCTest
import IOMMUCore
@testable import IOMMUFD
import IOMMUFDSelftest

/// Fail-nth sweeps (the kernel's `iommufd_fail_nth` selftest): every error-unwind path
/// leaves nothing behind.
final class FailNthTests: XCTestCase {
    let RW = IOMMUFDConstant.mapWriteable | IOMMUFDConstant.mapReadable

    func testFailNthBasicMapCopyUnmap() throws {
        let n = try failNthSweep("basic") { s in
            var step = Steps()
            var a = IOMMUIOASAlloc()
            step(s.call(IOMMUFDCommand.ioasAlloc, &a))
            let ioas = a.outIoasId
            step(s.allow(ioas, [IOMMUIOVARange(start: 16 << 10, last: (2 << 20) + (16 << 10) * 600 - 1)]))
            var iova: UInt64 = 0
            step({ let r = s.mapAuto(ioas, s.buffer, BUFFER_SIZE); iova = r.1; return r.0 }())
            var c = IOMMUIOASCopy(flags: RW, dstIoasId: ioas, srcIoasId: ioas, length: 160, srcIova: iova)
            step(s.call(IOMMUFDCommand.ioasCopy, &c))
            step(s.unmap(ioas, iova, BUFFER_SIZE).0)
            return step.rc
        }
        XCTAssertGreaterThan(n, 3)
    }

    func testFailNthMapDomain() throws {
        try failNthSweep("map_domain") { s in
            var step = Steps()
            let ioas = step.ioas(s)
            var stdev: UInt32 = 0
            step({ let r = s.mockDomain(ioas); stdev = r.1; return r.0 }())
            step(s.mapFixed(ioas, s.buffer, BUFFER_SIZE, iova: APERTURE_START))
            step(s.destroy(stdev))
            step(s.mockDomain(ioas).0)
            return step.rc
        }
    }

    func testFailNthMapTwoDomains() throws {
        try failNthSweep("map_two_domains") { s in
            var step = Steps()
            let ioas = step.ioas(s)
            step(s.mockDomain(ioas).0)
            step(s.mockDomain(ioas, flags: IOMMUTestOp.deviceHugeIOVA).0)
            step(s.mapFixed(ioas, s.buffer, BUFFER_SIZE, iova: APERTURE_START))
            step(s.unmap(ioas, APERTURE_START, BUFFER_SIZE).0)
            return step.rc
        }
    }

    func testFailNthCopyBetweenIOAS() throws {
        try failNthSweep("copy") { s in
            var step = Steps()
            let src = step.ioas(s), dst = step.ioas(s)
            step(s.mockDomain(dst).0)
            step(s.mapFixed(src, s.buffer, BUFFER_SIZE, iova: APERTURE_START))
            var c = IOMMUIOASCopy(flags: IOMMUFDConstant.mapFixedIOVA | RW, dstIoasId: dst, srcIoasId: src,
                                  length: BUFFER_SIZE, dstIova: APERTURE_START, srcIova: APERTURE_START)
            step(s.call(IOMMUFDCommand.ioasCopy, &c))
            return step.rc
        }
    }

    func testFailNthAttachAndReplace() throws {
        try failNthSweep("replace") { s in
            var step = Steps()
            let ioas1 = step.ioas(s), ioas2 = step.ioas(s)
            step(s.mapFixed(ioas1, s.buffer, PAGE, iova: APERTURE_START))
            step(s.mapFixed(ioas2, s.buffer, PAGE, iova: APERTURE_START))
            var stdev: UInt32 = 0, dev: UInt32 = 0
            step({ let r = s.mockDomain(ioas1, flags: IOMMUTestOp.devicePasid); stdev = r.1; dev = r.3; return r.0 }())
            var hwpt: UInt32 = 0
            step({ let r = s.hwptAlloc(dev: dev, pt: ioas1, flags: IOMMUFDConstant.hwptAllocPasid); hwpt = r.1; return r.0 }())
            step(s.replace(stdev, ioas2).0)
            step(s.replace(stdev, hwpt).0)
            return step.rc
        }
    }

    func testFailNthAccessPin() throws {
        try failNthSweep("access_pin", setup: { s in
            let ioas = s.ioasAlloc()
            precondition(s.mapFixed(ioas, s.buffer, BUFFER_SIZE, iova: APERTURE_START) == 0)
        }) { s in
            var step = Steps()
            var access: UInt32 = 0
            step({ let r = s.createAccess(1); access = r.1; return r.0 }())
            var item: UInt32 = 0
            step({ let r = s.accessPages(access, iova: APERTURE_START, length: BUFFER_SIZE, uptr: s.buffer); item = r.1; return r.0 }())
            step(s.destroyAccessPages(access, item))
            if access != 0 { step(s.fd.closeFile(Int32(bitPattern: access))) }
            return step.rc
        }
    }

    func testFailNthAccessPinDomainAndUnmap() throws {
        try failNthSweep("access_pin_domain") { s in
            var step = Steps()
            let ioas = step.ioas(s)
            step(s.mockDomain(ioas).0)
            step(s.mapFixed(ioas, s.buffer, BUFFER_SIZE, iova: APERTURE_START))
            var access: UInt32 = 0
            step({ let r = s.createAccess(ioas); access = r.1; return r.0 }())
            step(s.accessPages(access, iova: APERTURE_START, length: BUFFER_SIZE, uptr: s.buffer).0)
            step(s.unmap(ioas, APERTURE_START, BUFFER_SIZE).0)
            return step.rc
        }
    }

    func testFailNthAccessRW() throws {
        try failNthSweep("access_rw") { s in
            var step = Steps()
            let ioas = step.ioas(s)
            step(s.mapFixed(ioas, s.buffer, BUFFER_SIZE, iova: APERTURE_START))
            var access: UInt32 = 0
            step({ let r = s.createAccess(ioas, flags: 0); access = r.1; return r.0 }())
            for flags in [0, IOMMUTestOp.accessRWWrite, IOMMUTestOp.accessRWSlowPath] {
                step(s.test(IOMMUTestOp.accessRW, id: access,
                            IOMMUTestCmd.AccessRW(iova: APERTURE_START + 100, length: 64, uptr: s.arg + 0x3000, flags: flags)))
            }
            return step.rc
        }
    }

    func testFailNthNestedAlloc() throws {
        try failNthSweep("nested") { s in
            var step = Steps()
            let ioas = step.ioas(s)
            var dev: UInt32 = 0, stdev: UInt32 = 0
            step({ let r = s.mockDomain(ioas); stdev = r.1; dev = r.3; return r.0 }())
            var parent: UInt32 = 0, nested: UInt32 = 0
            step({ let r = s.hwptAlloc(dev: dev, pt: ioas, flags: IOMMUFDConstant.hwptAllocNestParent); parent = r.1; return r.0 }())
            step({ let r = s.nestedAlloc(dev: dev, parent: parent); nested = r.1; return r.0 }())
            step(s.replace(stdev, nested).0)
            step(s.replace(stdev, ioas).0)
            step(s.destroy(nested))
            return step.rc
        }
    }

    func testFailNthFaultQueue() throws {
        try failNthSweep("fault_queue") { s in
            var step = Steps()
            let ioas = step.ioas(s)
            var dev: UInt32 = 0, stdev: UInt32 = 0
            step({ let r = s.mockDomain(ioas); stdev = r.1; dev = r.3; return r.0 }())
            var parent: UInt32 = 0, fault: UInt32 = 0, ffd: Int32 = 0, iopf: UInt32 = 0
            step({ let r = s.hwptAlloc(dev: dev, pt: ioas, flags: IOMMUFDConstant.hwptAllocNestParent); parent = r.1; return r.0 }())
            step({ let r = s.faultAlloc(); fault = r.1; ffd = r.2; return r.0 }())
            step({ let r = s.nestedAlloc(dev: dev, parent: parent, flags: IOMMUFDConstant.hwptFaultIDValid, faultID: fault); iopf = r.1; return r.0 }())
            step(s.replace(stdev, iopf).0)
            step(s.test(IOMMUTestOp.triggerIOPF, IOMMUTestCmd.TriggerIOPF(devId: dev, pasid: 0, grpid: 1, perm: 1, addr: 0)))
            if ffd != 0 { _ = s.fd.closeFile(ffd) }
            return step.rc
        }
    }

    func testFailNthPasidAttach() throws {
        try failNthSweep("pasid_attach") { s in
            var step = Steps()
            let ioas = step.ioas(s)
            step(s.mapFixed(ioas, s.buffer, PAGE, iova: APERTURE_START))
            var dev: UInt32 = 0, stdev: UInt32 = 0
            step({ let r = s.mockDomain(ioas, flags: IOMMUTestOp.devicePasid); stdev = r.1; dev = r.3; return r.0 }())
            var s2: UInt32 = 0, parent: UInt32 = 0
            step({ let r = s.hwptAlloc(dev: dev, pt: ioas, flags: IOMMUFDConstant.hwptAllocPasid); s2 = r.1; return r.0 }())
            step({ let r = s.hwptAlloc(dev: dev, pt: ioas, flags: IOMMUFDConstant.hwptAllocNestParent | IOMMUFDConstant.hwptAllocPasid); parent = r.1; return r.0 }())
            step(s.replace(stdev, s2).0)
            step(s.pasidAttach(stdev, 200, parent))
            step(s.pasidReplace(stdev, 200, s2))
            step(s.pasidDetach(stdev, 200))
            return step.rc
        }
    }

    /// The kernel's `basic_fail_nth.device` body: a PASID-capable mock device, GET_HW_INFO,
    /// replaces, a nesting parent, a vIOMMU with a vDEVICE and a HW queue, a fault queue and
    /// a nested HWPT reporting to it, a vEVENTQ, and a PASID attach, replace and detach.
    func testFailNthDevice() throws {
        let n = try failNthSweep("device", setup: { s in
            let ioas = s.ioasAlloc(), ioas2 = s.ioasAlloc()
            precondition(s.mapFixed(ioas, s.buffer, PAGE, iova: APERTURE_START) == 0)
            precondition(s.mapFixed(ioas2, s.buffer, PAGE, iova: APERTURE_START) == 0)
        }) { s in
            let ioas: UInt32 = 1, ioas2: UInt32 = 2
            var step = Steps()
            var dev: UInt32 = 0, stdev: UInt32 = 0
            step({ let r = s.mockDomain(ioas, flags: IOMMUTestOp.devicePasid); stdev = r.1; dev = r.3; return r.0 }())
            step({
                var c = IOMMUHWInfo()
                c.devId = dev
                c.dataLen = UInt32(IOMMUTestHWInfo.size)
                c.dataUptr = s.arg + 0x3000
                return s.call(IOMMUFDCommand.getHWInfo, &c)
            }())
            var hwpt: UInt32 = 0
            step({ let r = s.hwptAlloc(dev: dev, pt: ioas, flags: IOMMUFDConstant.hwptAllocPasid); hwpt = r.1; return r.0 }())
            step(s.replace(stdev, ioas2).0)
            step(s.replace(stdev, hwpt).0)
            step({
                let r = s.hwptAlloc(dev: dev, pt: ioas,
                                    flags: IOMMUFDConstant.hwptAllocNestParent | IOMMUFDConstant.hwptAllocPasid)
                hwpt = r.1
                return r.0
            }())
            var viommu: UInt32 = 0
            step({ let r = s.viommuAlloc(dev: dev, hwpt: hwpt); viommu = r.1; return r.0 }())
            step(s.vdeviceAlloc(viommu: viommu, dev: dev, virtID: 0).0)
            step(s.hwQueueAlloc(viommu: viommu, index: 0, iova: APERTURE_START, length: PAGE).0)
            var fault: UInt32 = 0
            step({
                let r = s.faultAlloc()
                fault = r.1
                if r.0 == 0 { _ = s.fd.closeFile(r.2) }
                return r.0
            }())
            step(s.nestedAlloc(dev: dev, parent: hwpt, flags: IOMMUFDConstant.hwptFaultIDValid, faultID: fault).0)
            step({
                let r = s.veventqAlloc(viommu: viommu)
                if r.0 == 0 { _ = s.fd.closeFile(r.2) }
                return r.0
            }())
            var test: UInt32 = 0
            step({ let r = s.hwptAlloc(dev: dev, pt: ioas, flags: IOMMUFDConstant.hwptAllocPasid); test = r.1; return r.0 }())
            step(s.pasidAttach(stdev, 200, hwpt))
            step(s.pasidReplace(stdev, 200, test))
            step(s.pasidDetach(stdev, 200))
            return step.rc
        }
        XCTAssertGreaterThan(n, 20)
    }

    func testFailNthUnmapAndDestroy() throws {
        try failNthSweep("unmap_destroy") { s in
            var step = Steps()
            let ioas = step.ioas(s)
            var stdev: UInt32 = 0, hwpt: UInt32 = 0
            step({ let r = s.mockDomain(ioas); stdev = r.1; hwpt = r.2; return r.0 }())
            for i in 0..<4 as Range<UInt64> { step(s.mapFixed(ioas, s.buffer + i * PAGE, PAGE, iova: APERTURE_START + i * PAGE)) }
            step(s.unmap(ioas, APERTURE_START, 2 * PAGE).0)
            step(s.destroy(stdev))
            step(s.destroy(hwpt) == ENOENT ? 0 : -1)
            step(s.destroy(ioas))
            return step.rc
        }
    }

    // MARK: the pin path's injection points, batched as pages.c batches them

    /// The 2 MiB buffer of `iommufd_fail_nth.c` (its `BUFFER_SIZE`), at a fixed address.
    static let big: UInt64 = 0x4800_0000
    static let bigSize: UInt64 = 2 << 20

    private static func mapBig(_ s: SelftestFD) {
        try! s.process.mmap(length: Int(bigSize), prot: [.read, .write], at: big, populate: true)
    }

    /// The kernel's `access_pin`: a 2 MiB pin through an access is one span for
    /// `iopt_pages_fill_xarray`, so one pin call (`EFAULT`), one xarray store (`EINVAL`)
    /// and one accounting update (`ENOMEM`), not one point per page.
    func testFailNthAccessPin2MiBIsBatched() throws {
        let n = try failNthSweep("access_pin_2m", memory: Self.mapBig, setup: { s in
            let ioas = s.ioasAlloc()
            precondition(s.test(IOMMUTestOp.setTempMemoryLimit, IOMMUTestCmd.MemoryLimit(limit: 32)) == 0)
            precondition(s.mapFixed(ioas, Self.big, Self.bigSize, iova: APERTURE_START) == 0)
            precondition(s.createAccess(ioas).0 == 0)
        }) { s in
            var step = Steps()
            var item: UInt32 = 0
            step({ let r = s.accessPages(1000, iova: APERTURE_START, length: Self.bigSize, uptr: Self.big); item = r.1; return r.0 }())
            step(s.destroyAccessPages(1000, item))
            step(s.fd.closeFile(1000))
            return step.rc
        }
        XCTAssertEqual(n, 3, "pin call, xarray store, accounting")
    }

    /// Pinning through an access pages a domain already holds still has the kernel's
    /// injection point (the copy of their PFNs into the access's xarray, `EINVAL`), so the
    /// sweep tests something.
    func testFailNthAccessPinOfPagesADomainHolds() throws {
        var errnos: [Int32] = []
        let n = try failNthSweep("access_pin_domain_held", setup: { s in
            let ioas = s.ioasAlloc()
            precondition(s.mockDomain(ioas).0 == 0)
            precondition(s.mapFixed(ioas, s.buffer, BUFFER_SIZE, iova: APERTURE_START) == 0)
            precondition(s.createAccess(ioas).0 == 0)
        }) { s in
            var step = Steps()
            var item: UInt32 = 0
            step({ let r = s.accessPages(1000, iova: APERTURE_START, length: BUFFER_SIZE, uptr: s.buffer); item = r.1; return r.0 }())
            errnos.append(step.rc)
            step(s.destroyAccessPages(1000, item))
            return step.rc
        }
        XCTAssertEqual(n, 1)
        XCTAssertEqual(errnos.dropFirst().first, EINVAL, "pages_to_xarray's injection")
    }

    /// Attaching a domain to an IOAS whose pages an access holds reads them for the
    /// domain through a `pfn_reader`: its batch allocation is an injection point.
    func testFailNthDomainFillOfPagesAnAccessHolds() throws {
        try failNthSweep("domain_fill_access_held", setup: { s in
            let ioas = s.ioasAlloc()
            precondition(s.mapFixed(ioas, s.buffer, BUFFER_SIZE, iova: APERTURE_START) == 0)
            let (_, access) = s.createAccess(ioas)
            precondition(s.accessPages(access, iova: APERTURE_START, length: BUFFER_SIZE, uptr: s.buffer).0 == 0)
        }) { s in
            var step = Steps()
            var hwpt: UInt32 = 0, dev: UInt32 = 0, stdev: UInt32 = 0
            step({ let r = s.mockDomain(1); stdev = r.1; dev = r.3; return r.0 }())
            // A second domain on the same IOAS: the area is filled already, so it is read
            // from the first domain, again through a reader with its batch point.
            step({ let r = s.hwptAlloc(dev: dev, pt: 1); hwpt = r.1; return r.0 }())
            step(s.replace(stdev, hwpt).0)
            return step.rc
        }
    }

    /// The kernel's `map_domain`: with a memory limit of 32 bytes the reader's page array
    /// holds 4 page pointers, so mapping 256 KiB into a domain takes 16 pin calls, each an
    /// injection point.
    func testFailNthMapDomainPinCallsFollowTheMemoryLimit() throws {
        let n = try failNthSweep("map_domain_limit_32", memory: Self.mapBig, setup: { s in
            _ = s.ioasAlloc()
            precondition(s.test(IOMMUTestOp.setTempMemoryLimit, IOMMUTestCmd.MemoryLimit(limit: 32)) == 0)
        }) { s in
            var step = Steps()
            var stdev: UInt32 = 0
            step({ let r = s.mockDomain(1); stdev = r.1; return r.0 }())
            step(s.mapFixed(1, Self.big, 256 << 10, iova: APERTURE_START))
            step(s.destroy(stdev))
            step(s.mockDomain(1).0)
            return step.rc
        }
        // Two fills of 64 pages: batch + page array + 16 pin calls + accounting each.
        XCTAssertGreaterThanOrEqual(n, 2 * (1 + 1 + 16 + 1))
    }
}
