import XCTest
import IOMMUCore
import IOMMUDrivers
@testable import IOMMUFD
import IOMMUFDSelftest

/// `iommufd_fops_release` runs when the last file reference goes, whether or not the
/// owner closed the fd first: dropping the last `IOMMUFD` reference with objects alive
/// must tear everything down exactly like ``IOMMUFD/close()``.
final class ReleaseWithoutCloseTests: XCTestCase {
    func testReleaseWithoutCloseWithEveryObjectType() throws {
        let s = try SelftestFD()
        weak var dropped: IOMMUFD?
        do {
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
            XCTAssertGreaterThan(PagePinRegistry.shared.pinnedPages(s.machine.memory), 0)
            dropped = s.fd
            // Swap in a fresh context: the old one loses its last reference, unclosed.
            s.fd = IOMMUFD(machine: s.machine, process: s.process, testBackend: s.backend)
        }
        XCTAssertNil(dropped, "the context was released")
        XCTAssertEqual(PagePinRegistry.shared.pinnedPages(s.machine.memory), 0, "release unpinned everything")
        s.teardownCheck()
    }

    /// The VMM shape: VT-d, two bound devices each attached to a paging HWPT of one IOAS
    /// with memory mapped, and the last reference dropped with no unbind and no close.
    func testReleaseWithoutCloseWithBoundVTdDevices() throws {
        let machine = Machine(memory: 1 << 30)
        let unit = try IntelIOMMU(name: "dmar0", driver: IntelIOMMUDriver(),
                                  hardware: VTdHardware(memory: machine.memory, caps: VTdCapabilities()))
        machine.addIOMMU(unit)
        let process = try IOMMUCore.Process(memory: machine.memory, pid: 101)
        let va = try process.mmap(length: 1 << 20, prot: [.read, .write], at: 0x1_0000_0000, populate: true)
        var pcis: [PCIDevice] = []
        weak var dropped: IOMMUFD?
        do {
            let fd = IOMMUFD(machine: machine, process: process)
            let ioas = try fd.allocIOAS()
            for slot in UInt8(1)...2 {
                let dev = try machine.addDevice(PCIDevice(rid: RID(bus: 0, device: slot, function: 0)), behind: unit)
                pcis.append(dev)
                let idev = try fd.deviceBind(dev)
                let hwpt = try fd.allocHWPT(device: idev.id, pt: ioas)
                _ = try fd.deviceAttach(idev, ptID: hwpt)
            }
            _ = try fd.map(ioas: ioas, userVA: va, length: 1 << 20, iova: 0x4000_0000)
            XCTAssertEqual(PagePinRegistry.shared.pinnedPages(machine.memory), 256)
            dropped = fd
        }
        XCTAssertNil(dropped, "the context was released")
        XCTAssertEqual(PagePinRegistry.shared.pinnedPages(machine.memory), 0, "release unpinned everything")
        // The devices are free again: a new context can bind them.
        let again = IOMMUFD(machine: machine, process: process)
        for dev in pcis { _ = try again.deviceBind(dev) }
        again.close()
    }
}
