import XCTest
import IOMMUConformance
import IOMMUCore
@testable import IOMMUDrivers

/// Check 69: the errno rules of `adreno_smmu_priv.set_ttbr0_cfg`.
final class SMMUv2Check69Tests: XCTestCase {
    /// The GPU's domain attached on a Qualcomm SMMU, its interface, and a TTBR0 table
    /// configured as msm does it (the TTBR1 configuration cloned, the quirk cleared).
    private func gpuDomain(canDoTTBR1: Bool = true) throws -> (SMMUv2Testbed, ARMSMMUv2Domain, AdrenoSMMUPriv,
                                                                ARMLPAEPgtable) {
        let t = try SMMUv2Testbed(qualcomm: true, canDoTTBR1: canDoTTBR1)
        let gpu = try t.gpu()
        let domain = try t.paging(gpu)
        try t.iommu.attachDevice(domain, to: gpu)
        let priv = try XCTUnwrap(AdrenoSMMUPriv.of(gpu))
        var cfg = try XCTUnwrap(priv.getTTBR1Cfg(domain))
        cfg.quirks.remove(.armTTBR1)
        cfg.tlb = nil
        return (t, domain, priv, try ARMLPAEPgtable(cfg, memory: t.memory))
    }

    /// Check 69: enabling TTBR0 twice is `EINVAL` for the second call, disabling it while
    /// disabled is `EINVAL`, and neither changes the context bank.
    func testCheck69SetTTBR0CfgTwiceAndNullWhenDisabledAreEINVAL() throws {
        let (t, domain, priv, table) = try gpuDomain()
        let before = try XCTUnwrap(t.unit.contextBankCopy(0))
        assertErrno(.invalidArgument, "disable while disabled") { try priv.setTTBR0Cfg(domain, nil) }
        XCTAssertEqual(t.unit.contextBankCopy(0)?.tcr, before.tcr)
        try priv.setTTBR0Cfg(domain, table.cfg)
        let enabled = try XCTUnwrap(t.unit.contextBankCopy(0))
        XCTAssertEqual(enabled.tcr & (SMMUv2Field.tcrEPD0 | SMMUv2Field.tcrEPD1), 0, "both ranges walk")
        XCTAssertEqual(enabled.ttbr0, table.cfg.ttbr.rawValue | 0 << 48, "the table with the bank's ASID (0)")
        XCTAssertEqual(t.hw { $0.read64(.contextBank(0), SMMUv2Reg.ttbr0) }, enabled.ttbr0, "written to the bank")
        assertErrno(.invalidArgument, "enable while enabled") { try priv.setTTBR0Cfg(domain, table.cfg) }
        XCTAssertEqual(t.unit.contextBankCopy(0)?.tcr, enabled.tcr)
        try priv.setTTBR0Cfg(domain, nil)
        let disabled = try XCTUnwrap(t.unit.contextBankCopy(0))
        XCTAssertEqual(disabled.tcr, before.tcr, "the TTBR1-only TCR again")
        XCTAssertEqual(disabled.ttbr0, 0, "TTBR0 is the ASID alone")
        assertErrno(.invalidArgument, "disable twice") { try priv.setTTBR0Cfg(domain, nil) }
        table.free()
    }

    /// Check 69: without the TTBR1 split (EPD1 set: an msm8996, where the Qualcomm
    /// implementation does not enable it), both enabling and disabling are `EINVAL`.
    func testCheck69SetTTBR0CfgWithoutTTBR1SplitIsEINVAL() throws {
        let (t, domain, priv, table) = try gpuDomain(canDoTTBR1: false)
        let before = try XCTUnwrap(t.unit.contextBankCopy(0))
        XCTAssertNotEqual(before.tcr & SMMUv2Field.tcrEPD1, 0)
        assertErrno(.invalidArgument, "enable") { try priv.setTTBR0Cfg(domain, table.cfg) }
        assertErrno(.invalidArgument, "disable") { try priv.setTTBR0Cfg(domain, nil) }
        XCTAssertEqual(t.unit.contextBankCopy(0)?.tcr, before.tcr)
        XCTAssertEqual(t.unit.contextBankCopy(0)?.ttbr0, before.ttbr0)
        table.free()
    }

    /// Before the SMMU driver fills the interface (a device it made no GPU context for)
    /// the callbacks are absent: the model's `ENODEV`.
    func testInterfaceIsEmptyUntilTheGPUContextIsInitialised() throws {
        let t = try SMMUv2Testbed(qualcomm: true)
        let gpu = try t.gpu()
        let priv = try XCTUnwrap(AdrenoSMMUPriv.of(gpu))
        XCTAssertNil(priv.cookie)
        XCTAssertFalse(priv.isFilled)
        let other = try t.device(1)
        let d = try XCTUnwrap(other.group?.domain as? ARMSMMUv2Domain)
        assertErrno(.noDevice) { try priv.setTTBR0Cfg(d, nil) }
        XCTAssertNil(priv.getFaultInfo(d))
    }
}
