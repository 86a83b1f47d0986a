import XCTest
import IOMMUCore
@testable import IOMMUFD

/// Attach state is per iommu_group (`struct iommufd_group`): devices of one group share
/// one HWPT per PASID; only the first attach programs the hardware and only the last
/// detach removes it. Two mock functions behind a bridge without ACS form one group.
final class GroupAttachTests: XCTestCase {
    func testDevicesOfOneGroupShareTheHWPT() throws {
        let s = try SelftestFD()
        let fd = s.fd
        let bridge = PCIBridge(name: "noacs", acs: false)
        let a = try s.machine.addDevice(PCIDevice(rid: RID(bus: 0x40, device: 0, function: 0), upstream: bridge),
                                        behind: s.backend.unit)
        let b = try s.machine.addDevice(PCIDevice(rid: RID(bus: 0x40, device: 1, function: 0), upstream: bridge),
                                        behind: s.backend.unit)
        XCTAssertTrue(a.group === b.group)
        let ia = try fd.deviceBind(a)
        let ib = try fd.deviceBind(b)
        let ioas = try fd.allocIOAS()
        let ioas2 = try fd.allocIOAS()
        let hwpt = try fd.deviceAttach(ia, ptID: ioas)
        XCTAssertTrue(s.machine.iommu.domainForDevice(b) === (fd.table.live(hwpt.rawValue) as? HWPTObject)?.domain,
                      "the group's RID domain is the HWPT's for every member")
        XCTAssertThrowsError(try fd.deviceAttach(ib, ptID: ioas2)) { XCTAssertEqual($0 as? Errno, .invalidArgument) }
        XCTAssertEqual(try fd.deviceAttach(ib, ptID: hwpt), hwpt)
        XCTAssertThrowsError(try fd.deviceAttach(ib, ptID: hwpt)) { XCTAssertEqual($0 as? Errno, .busy) }
        XCTAssertThrowsError(try fd.destroy(hwpt)) { XCTAssertEqual($0 as? Errno, .busy) }
        fd.deviceDetach(ia)
        XCTAssertTrue(s.machine.iommu.domainForDevice(a) === (fd.table.live(hwpt.rawValue) as? HWPTObject)?.domain,
                      "the group stays attached while a member remains")
        fd.deviceDetach(ib)
        XCTAssertNil(fd.table.live(hwpt.rawValue), "the auto HWPT died with its last device")
        XCTAssertFalse(s.machine.iommu.domainForDevice(a)?.type == .unmanaged)
        fd.deviceUnbind(ia)
        fd.deviceUnbind(ib)
        XCTAssertTrue(s.machine.iommu.domainForDevice(a) === a.group?.defaultDomain, "ownership released")
        s.teardownCheck()
    }

    func testBindRequiresAGroupAndTheOwnerCookie() throws {
        let s = try SelftestFD()
        let other = IOMMUFD(machine: s.machine, process: s.process, testBackend: s.backend)
        let dev = try s.backend.unit.makeDevice(on: s.machine)
        let idev = try s.fd.deviceBind(dev)
        XCTAssertThrowsError(try other.deviceBind(dev)) { XCTAssertEqual($0 as? Errno, .notPermitted) }
        XCTAssertThrowsError(try s.fd.destroy(idev.id)) { XCTAssertEqual($0 as? Errno, .busy) }
        s.fd.deviceUnbind(idev)
        XCTAssertNoThrow(try other.deviceBind(dev))
        other.close()
        let bare = try s.machine.addDevice(PCIDevice(rid: RID(bus: 0x41, device: 0, function: 0)), behind: nil)
        XCTAssertThrowsError(try s.fd.deviceBind(bare)) { XCTAssertEqual($0 as? Errno, .invalidArgument) }
        s.teardownCheck()
    }
}
