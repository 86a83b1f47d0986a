import IOMMUConformance
import IOMMUCore
import IOMMUDrivers
import XCTest

/// The SVA bind rules (checks 36-41) are vendor-neutral and run in the conformance
/// suite on every vendor with SVA. What stays here is how particular drivers refuse a
/// bind.
final class SVABindCheckTests: XCTestCase {
    /// VT-d without SVM support refuses in `domain_alloc_sva` (`ENODEV`); the PASID
    /// the bind allocated for the mm goes back.
    func testVTdWithoutSVMRefusesAndTheMMPasidGoesBack() throws {
        let rig = try SVARig(caps: VTdCapabilities(svmCapable: false))
        let dev = try rig.device(2)
        let mm = try rig.process()
        assertErrno(.noDevice) { try rig.iommu.svaBindDevice(dev, mm: mm) }
        XCTAssertNil(mm.enqcmdPasid)
        XCTAssertEqual(try rig.iommu.allocGlobalPasid(for: dev), 1, "the PASID went back")
    }

    /// A driver without `domain_alloc_sva` (the mock): `EOPNOTSUPP`, the mm keeps no
    /// PASID.
    func testDriverWithoutDomainAllocSVAIsEOPNOTSUPP() throws {
        let machine = Machine(memory: 1 << 28)
        let mock = MockIOMMU(driver: MockIOMMUDriver())
        machine.addIOMMU(mock)
        let dev = try mock.makeDevice(on: machine, flags: [.pasid])
        let mm = try Process(memory: machine.memory, pid: 1)
        assertErrno(.notSupported) { try machine.iommu.svaBindDevice(dev, mm: mm) }
        XCTAssertNil(mm.enqcmdPasid)
        XCTAssertEqual(machine.iommu.globalPasidsInUse, 0)
    }
}
