import XCTest
import IOMMUCore
@testable import IOMMUFD
import IOMMUFDSelftest

/// Pinned-page accounting (`iopt_pages_update_pinned`, `IOMMU_OPTION_RLIMIT_MODE`): NONE
/// with CAP_IPC_LOCK, USER
/// against RLIMIT_MEMLOCK, MM after `IOMMU_OPTION_RLIMIT_MODE`; `pinned_vm` always.
final class AccountingTests: XCTestCase {
    private func context(capIPCLock: Bool, limit: UInt64) throws -> SelftestFD {
        let s = try SelftestFD()
        s.fd.close()
        s.fd = IOMMUFD(machine: s.machine, process: s.process,
                       credentials: IOMMUFDCredentials(capIPCLock: capIPCLock, capSysResource: true, memlockLimitPages: limit),
                       testBackend: s.backend)
        return s
    }

    func testUserModeChargesLockedVMAndEnforcesTheLimit() throws {
        let s = try context(capIPCLock: false, limit: 8)
        let acct = s.fd.accounting
        let ioas = s.ioasAlloc()
        XCTAssertEqual(s.mapFixed(ioas, s.buffer, 4 * PAGE, iova: APERTURE_START), 0, "no domain: nothing pinned")
        XCTAssertEqual(acct.pinnedPages, 0)
        XCTAssertEqual(s.mockDomain(ioas).0, 0)
        XCTAssertEqual(acct.userLockedPages, 4)
        XCTAssertEqual(acct.pinnedPages, 4)
        XCTAssertEqual(s.mapFixed(ioas, s.buffer + 4 * PAGE, 8 * PAGE, iova: APERTURE_START + 4 * PAGE), ENOMEM)
        XCTAssertEqual(acct.userLockedPages, 4, "a failed map charges nothing")
        XCTAssertEqual(s.unmap(ioas, 0, .max).1, 4 * PAGE)
        XCTAssertEqual(acct.userLockedPages, 0)
        XCTAssertEqual(acct.pinnedPages, 0)
        s.teardownCheck()
    }

    func testMMModeAfterRlimitOption() throws {
        let s = try context(capIPCLock: false, limit: 64)
        var o = IOMMUOption(optionId: IOMMUFDConstant.optionRlimitMode, op: IOMMUFDConstant.optionOpSet, val64: 1)
        XCTAssertEqual(s.call(IOMMUFDCommand.option, &o), 0)
        let ioas = s.ioasAlloc()
        XCTAssertEqual(s.mockDomain(ioas).0, 0)
        XCTAssertEqual(s.mapFixed(ioas, s.buffer, 2 * PAGE, iova: APERTURE_START), 0)
        let acct = s.fd.accounting
        XCTAssertEqual(acct.mmLockedPages, 2)
        XCTAssertEqual(acct.userLockedPages, 0)
        s.teardownCheck()
        XCTAssertEqual(acct.mmLockedPages, 0)
        XCTAssertEqual(acct.pinnedPages, 0)
    }

    func testNoneModeOnlyCountsPinnedVM() throws {
        let s = try context(capIPCLock: true, limit: 1)
        let ioas = s.ioasAlloc()
        XCTAssertEqual(s.mockDomain(ioas).0, 0)
        XCTAssertEqual(s.mapFixed(ioas, s.buffer, 4 * PAGE, iova: APERTURE_START), 0)
        XCTAssertEqual(s.fd.accounting.pinnedPages, 4)
        XCTAssertEqual(s.fd.accounting.userLockedPages, 0)
        s.teardownCheck()
    }

    func testRlimitModeNeedsCapSysResource() throws {
        let s = try SelftestFD()
        s.fd.close()
        s.fd = IOMMUFD(machine: s.machine, process: s.process,
                       credentials: IOMMUFDCredentials(capIPCLock: true, capSysResource: false), testBackend: s.backend)
        var o = IOMMUOption(optionId: IOMMUFDConstant.optionRlimitMode, op: IOMMUFDConstant.optionOpSet, val64: 1)
        XCTAssertEqual(s.call(IOMMUFDCommand.option, &o), EPERM)
        o = IOMMUOption(optionId: IOMMUFDConstant.optionRlimitMode, op: IOMMUFDConstant.optionOpGet, objectId: 1)
        XCTAssertEqual(s.call(IOMMUFDCommand.option, &o), EOPNOTSUPP)
        s.teardownCheck()
    }

    func testPagingHWPTWithUserDataIsEOPNOTSUPPBeforeCopy() throws {
        let s = try SelftestFD()
        let ioas = s.ioasAlloc()
        let (_, _, _, dev) = s.mockDomain(ioas)
        XCTAssertEqual(s.hwptAlloc(dev: dev, pt: ioas, dataType: IOMMUTestOp.hwptDataSelftest, dataLen: 4, dataPtr: 0).0,
                       EOPNOTSUPP)
        s.teardownCheck()
    }
}
