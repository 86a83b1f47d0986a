import IOMMUConformance
import XCTest
import IOMMUCore
import IOMMUDrivers
import IOMMUFD
import Synchronization
@testable import DriverShims

/// A tiny mdev driver: it remembers what it pinned and, unless told to misbehave,
/// unpins everything inside a range when `dma_unmap` arrives.
final class PinningDriver: @unchecked Sendable {
    let lock = Mutex<[(iova: IOVA, npage: Int)]>([])
    let calls = Mutex<[(IOVA, UInt64)]>([])
    let unpinsOnUnmap: Bool
    /// Called inside `dma_unmap` before unpinning (check 88: pin during unmap).
    var duringUnmap: (@Sendable (MdevDevice, IOVA, UInt64) -> Void)?

    init(unpinsOnUnmap: Bool = true) { self.unpinsOnUnmap = unpinsOnUnmap }

    var ops: MdevDriverOps {
        MdevDriverOps { [self] dev, iova, length in
            calls.withLock { $0.append((iova, length)) }
            duringUnmap?(dev, iova, length)
            guard unpinsOnUnmap else { return }
            let victims = lock.withLock { pins -> [(iova: IOVA, npage: Int)] in
                let hit = pins.filter { $0.iova >= iova && $0.iova < iova + length }
                pins.removeAll { $0.iova >= iova && $0.iova < iova + length }
                return hit
            }
            for p in victims { dev.unpinPages(iova: p.iova, npage: p.npage) }
        }
    }

    func pin(_ dev: MdevDevice, iova: IOVA, npage: Int, write: Bool) throws(Errno) -> [PhysicalAddress] {
        let pages = try dev.pinPages(iova: iova, npage: npage, write: write)
        lock.withLock { $0.append((iova, npage)) }
        return pages
    }

    var pinned: Int { lock.withLock { $0.count } }
    var unmapCalls: [(IOVA, UInt64)] { calls.withLock { $0 } }
}

/// An mdev (an emulated device with no IOMMU of its own) pinning,
/// reading and writing guest memory through an iommufd access.
final class MdevCheckTests: XCTestCase {
    private func boundMdev(_ rig: VFIORig, _ driver: PinningDriver) throws -> (MdevDevice, VFIODeviceFile) {
        let mdev = MdevDevice(name: "mdev-vgpu0", ops: driver.ops)
        let f = mdev.openCdev(user: rig.user, files: rig.files)
        _ = try f.bindIOMMUFD(rig.fd)
        return (mdev, f)
    }

    func testCheck88PinBeforeAttachIsENOENT() throws {
        let rig = try VFIORig.mock()
        let driver = PinningDriver()
        let mdev = MdevDevice(name: "mdev0", ops: driver.ops)
        // Not even open (bound): vfio_assert_device_open fails.
        assertErrno(.invalidArgument) { try mdev.pinPages(iova: 0x1010_0000, npage: 1, write: false) }
        let f = mdev.openCdev(user: rig.user, files: rig.files)
        _ = try f.bindIOMMUFD(rig.fd)
        let ioas = try rig.mappedIOAS()
        assertErrno(.noEntry) { try mdev.pinPages(iova: 0x1010_0000, npage: 1, write: false) }
        XCTAssertEqual(PagePinRegistry.shared.pinCount(rig.machine.memory, try pa(rig, 0)), 0, "no domain, no pin")
        _ = try f.attach(ptID: ioas)
        let pages = try driver.pin(mdev, iova: 0x1010_0000, npage: 2, write: true)
        XCTAssertEqual(pages.count, 2)
        XCTAssertEqual(pages[0], try pa(rig, 0))
        assertErrno(.invalidArgument) { try mdev.pinPages(iova: 0x1010_0000, npage: 0, write: false) }
        assertErrno(.noEntry) { try mdev.pinPages(iova: 0x1090_0000, npage: 1, write: false) }
        mdev.unpinPages(iova: 0x1010_0000, npage: 2)
        XCTAssertEqual(PagePinRegistry.shared.pinnedPages(rig.machine.memory), 0)
    }

    func testCheck88WritePinOfReadOnlyAreaIsEPERM() throws {
        let rig = try VFIORig.mock()
        let driver = PinningDriver()
        let (mdev, f) = try boundMdev(rig, driver)
        let ioas = rig.ioasAlloc()
        XCTAssertEqual(rig.map(ioas, va: rig.buffer, length: VFIORig.bufferSize, iova: 0x1010_0000, writable: false), 0)
        _ = try f.attach(ptID: ioas)
        assertErrno(.notPermitted) { try mdev.pinPages(iova: 0x1010_0000, npage: 1, write: true) }
        assertErrno(.notPermitted) { try mdev.dmaRW(iova: 0x1010_0000, write: [1]) }
        XCTAssertEqual(driver.pinned, 0)
        // A read pin of the same page is fine, and an unmap then needs the driver.
        _ = try driver.pin(mdev, iova: 0x1010_0000, npage: 1, write: false)
        XCTAssertEqual(rig.unmap(ioas, iova: 0x1010_0000, length: VFIORig.bufferSize).0, 0)
        XCTAssertEqual(driver.unmapCalls.count, 1)
    }

    func testCheck88PinDuringInProgressUnmapIsEINVAL() throws {
        let rig = try VFIORig.mock()
        let driver = PinningDriver()
        let results = Mutex<[Errno?]>([])
        driver.duringUnmap = { dev, iova, _ in
            do throws(Errno) {
                let p = try dev.pinPages(iova: iova, npage: 1, write: false)
                dev.unpinPages(iova: iova, npage: p.count)
                results.withLock { $0.append(nil) }
            } catch {
                results.withLock { $0.append(error) }
            }
        }
        let (mdev, f) = try boundMdev(rig, driver)
        let ioas = try rig.mappedIOAS()
        _ = try f.attach(ptID: ioas)
        _ = try driver.pin(mdev, iova: 0x1010_0000 + PAGE, npage: 1, write: true)
        let (rc, unmapped) = rig.unmap(ioas, iova: 0x1010_0000, length: VFIORig.bufferSize)
        XCTAssertEqual(rc, 0)
        XCTAssertEqual(unmapped, VFIORig.bufferSize)
        XCTAssertEqual(results.withLock { $0 }, [.invalidArgument])
        XCTAssertEqual(PagePinRegistry.shared.pinnedPages(rig.machine.memory), 0)
    }

    func testCheck89UnmapOverPinnedPagesCallsDMAUnmapDriverUnpinsUnmapSucceeds() throws {
        let rig = try VFIORig.mock()
        let driver = PinningDriver()
        let (mdev, f) = try boundMdev(rig, driver)
        let ioas = rig.ioasAlloc()
        XCTAssertEqual(rig.map(ioas, va: rig.buffer, length: 8 * PAGE, iova: 0x1010_0000), 0)
        XCTAssertEqual(rig.map(ioas, va: rig.buffer + 8 * PAGE, length: 8 * PAGE, iova: 0x1020_0000), 0)
        _ = try f.attach(ptID: ioas)
        _ = try driver.pin(mdev, iova: 0x1020_0000 + 2 * PAGE, npage: 3, write: true)
        _ = try driver.pin(mdev, iova: 0x1020_0000 + 6 * PAGE, npage: 1, write: false)
        XCTAssertEqual(PagePinRegistry.shared.pinCount(rig.machine.memory, try pa(rig, 10 * PAGE)), 1)

        // Unmapping the unpinned area needs no callback.
        XCTAssertEqual(rig.unmap(ioas, iova: 0x1010_0000, length: 8 * PAGE).0, 0)
        XCTAssertTrue(driver.unmapCalls.isEmpty)
        // Unmapping the pinned one: dma_unmap gets the whole area, the driver unpins.
        let (rc, unmapped) = rig.unmap(ioas, iova: 0x1020_0000, length: 8 * PAGE)
        XCTAssertEqual(rc, 0)
        XCTAssertEqual(unmapped, 8 * PAGE)
        XCTAssertEqual(driver.unmapCalls.map { [$0.0.rawValue, $0.1] }, [[0x1020_0000, 8 * PAGE]])
        XCTAssertEqual(driver.pinned, 0)
        XCTAssertEqual(PagePinRegistry.shared.pinnedPages(rig.machine.memory), 0)
        assertErrno(.noEntry) { try mdev.pinPages(iova: 0x1020_0000, npage: 1, write: false) }
    }

    func testCheck89DriverThatNeverUnpinsIsEDEADLOCKAndUnmappedBytesAreReported() throws {
        let rig = try VFIORig.mock()
        let driver = PinningDriver(unpinsOnUnmap: false)
        let (mdev, f) = try boundMdev(rig, driver)
        let ioas = rig.ioasAlloc()
        XCTAssertEqual(rig.map(ioas, va: rig.buffer, length: 4 * PAGE, iova: 0x1010_0000), 0)
        XCTAssertEqual(rig.map(ioas, va: rig.buffer + 4 * PAGE, length: 4 * PAGE, iova: 0x1010_0000 + 4 * PAGE), 0)
        _ = try f.attach(ptID: ioas)
        _ = try driver.pin(mdev, iova: 0x1010_0000 + 5 * PAGE, npage: 1, write: true)

        // The VFIO type1 compatibility unmap copies the unmapped size back even on error.
        var set = IOMMUVFIOIOAS(ioasId: ioas.rawValue, op: IOMMUFDConstant.vfioIOASSet)
        XCTAssertEqual(rig.iommuCall(IOMMUFDCommand.vfioIOAS, &set), 0)
        var u = VFIOIOMMUType1DMAUnmap(argsz: UInt32(VFIOIOMMUType1DMAUnmap.size), iova: 0x1010_0000, size: 8 * PAGE)
        let (rc, out) = rig.raw(rig.iommufd.ioctl, IOMMUFDCommand.vfioIOMMUUnmapDMA, u.bytes)
        u = VFIOIOMMUType1DMAUnmap(bytes: out)
        XCTAssertEqual(rc, neg(.deadlock))
        XCTAssertEqual(u.size, 4 * PAGE, "the first, unpinned area was unmapped and is reported")
        XCTAssertEqual(driver.unmapCalls.count, 101, "one call per try: the first and 100 retries")
        XCTAssertTrue(driver.unmapCalls.allSatisfy { $0 == (0x1010_0000 + 4 * PAGE, 4 * PAGE) })
        XCTAssertTrue(rig.iommufd.faultInjection.warnings.contains { $0.contains("iopt_unmap_iova_range") })
        // The pinned area is still there; once the driver unpins, unmap works.
        XCTAssertEqual(try mdev.dmaRW(iova: 0x1010_0000 + 5 * PAGE, count: 1).count, 1)
        mdev.unpinPages(iova: 0x1010_0000 + 5 * PAGE, npage: 1)
        let (rc2, bytes2) = rig.unmap(ioas, iova: 0x1010_0000 + 4 * PAGE, length: 4 * PAGE)
        XCTAssertEqual(rc2, 0)
        XCTAssertEqual(bytes2, 4 * PAGE)
    }

    func testItem24DriverWithoutDMAUnmapCannotPinButCanRW() throws {
        let rig = try VFIORig.mock()
        let mdev = MdevDevice(name: "mdev-rw-only", ops: MdevDriverOps(dmaUnmap: nil))
        let f = mdev.openCdev(user: rig.user, files: rig.files)
        _ = try f.bindIOMMUFD(rig.fd)
        let ioas = try rig.mappedIOAS()
        _ = try f.attach(ptID: ioas)
        assertErrno(.invalidArgument) { try mdev.pinPages(iova: 0x1010_0000, npage: 1, write: false) }
        XCTAssertEqual(PagePinRegistry.shared.pinCount(rig.machine.memory, try pa(rig, 0)), 0)
        // vfio_dma_rw needs no unmap callback: it pins only for the copy.
        try mdev.dmaRW(iova: IOVA(rawValue: 0x1010_0000 + PAGE - 3), write: Array("across".utf8))
        XCTAssertEqual(try rig.bufferBytes(at: PAGE - 3, count: 6), Array("across".utf8))
        try rig.process.writeMemory(address: rig.buffer + 0x40, bytes: Array("guest".utf8))
        XCTAssertEqual(try mdev.dmaRW(iova: 0x1010_0040, count: 5), Array("guest".utf8))
        assertErrno(.invalidArgument) { try mdev.dmaRW(iova: 0x1010_0000, count: 0) }
        assertErrno(.noEntry) { try mdev.dmaRW(iova: 0x1090_0000, count: 4) }
        // With no pins, unmap never waits on this driver.
        XCTAssertEqual(rig.unmap(ioas, iova: 0x1010_0000, length: VFIORig.bufferSize).0, 0)
    }

    func testMdevAttachReplaceAndUnbindReleaseTheAccess() throws {
        let rig = try VFIORig.mock()
        let driver = PinningDriver()
        let (mdev, f) = try boundMdev(rig, driver)
        let ioas1 = try rig.mappedIOAS(iova: 0x1010_0000)
        let ioas2 = try rig.mappedIOAS(iova: 0x1030_0000)
        assertErrno(.noEntry) { try f.attach(ptID: 999 as PageTableObjectID) }
        XCTAssertFalse(mdev.isAttached)
        _ = try f.attach(ptID: ioas1)
        _ = try f.attach(ptID: ioas2)
        XCTAssertEqual(try mdev.dmaRW(iova: 0x1030_0000, count: 2).count, 2)
        assertErrno(.noEntry) { try mdev.dmaRW(iova: 0x1010_0000, count: 2) }
        // The group of no device was ever claimed: an emulated device owns no DMA.
        XCTAssertTrue(rig.machine.iommu.allGroups.allSatisfy { $0.owner == nil })
        f.close()
        XCTAssertEqual(rig.objects(.access), 0)
        assertErrno(.invalidArgument) { try mdev.dmaRW(iova: 0x1030_0000, count: 2) }
    }

    private func pa(_ rig: VFIORig, _ offset: UInt64) throws -> PhysicalAddress {
        try XCTUnwrap(rig.process.physicalAddress(of: rig.buffer + offset))
    }
}
