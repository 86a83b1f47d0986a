import XCTest
import IOMMUCore
import IOMMUDrivers
@testable import IOMMUFD
import IOMMUFDSelftest

/// Mock device numbers (`mock_dev_ida`): freed when a device goes, reused lowest first,
/// and `ENOSPC` when all are in use, however many devices a context makes over its life.
final class MockDeviceNumberTests: XCTestCase {
    /// 5,000 mock devices, made and destroyed one after another through
    /// `IOMMU_TEST_OP_MOCK_DOMAIN`: each gets number 0 again (name `iommufd_mock0`), and the
    /// machine holds no device once each is gone.
    func testMoreThan4096MockDevicesOverAContextsLife() throws {
        let s = try SelftestFD()
        let ioas = s.ioasAlloc()
        let baseline = s.machine.allDevices.count
        for i in 0..<5000 {
            let (rc, stdev, _, _) = s.mockDomain(ioas)
            guard rc == 0 else { return XCTFail("mock device \(i): \(rc)") }
            if i % 1000 == 0 {
                XCTAssertEqual(s.machine.allDevices.last?.name, "iommufd_mock0")
            }
            guard s.destroy(stdev) == 0 else { return XCTFail("destroy of mock device \(i)") }
        }
        XCTAssertEqual(s.machine.allDevices.count, baseline)
        s.teardownCheck()
    }

    /// Numbers are the lowest free: with 0, 1, 2 made and 1 destroyed, the next is 1.
    func testNumbersAreReusedLowestFirst() throws {
        let s = try SelftestFD()
        let ioas = s.ioasAlloc()
        let stdevs = (0..<3).map { _ in s.mockDomain(ioas).1 }
        XCTAssertEqual(s.destroy(stdevs[1]), 0)
        XCTAssertEqual(s.mockDomain(ioas).0, 0)
        XCTAssertEqual(s.machine.allDevices.filter { $0.name.hasPrefix("iommufd_mock") }.map(\.name).sorted(),
                       ["iommufd_mock0", "iommufd_mock1", "iommufd_mock2"])
        s.teardownCheck()
    }

    /// With every number in use the next device is `ENOSPC`, and nothing is left behind.
    func testAllNumbersInUseIsENOSPC() throws {
        let machine = Machine(memory: 1 << 30)
        let backend = MockSelftestBackend(machine: machine)
        var devices: [PCIDevice] = []
        for _ in 0..<Mock.maxDevices { devices.append(try backend.createMockDevice(on: machine, flags: 0)) }
        XCTAssertThrowsError(try backend.createMockDevice(on: machine, flags: 0)) {
            XCTAssertEqual($0 as? Errno, .noSpace)
        }
        backend.destroyMockDevice(devices[77], on: machine)
        XCTAssertEqual(try backend.createMockDevice(on: machine, flags: 0).name, "iommufd_mock77")
    }
}
