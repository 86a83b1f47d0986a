import IOMMUConformance
import IOMMUCore
@testable import IOMMUDrivers
import XCTest

/// Checks 61-68: the SMMUv3 driver's attach paths, IDs, ATS sequencing, invalidation
/// ordering and SVA release, each shown on the hardware model.
final class SMMUv3ChecksTests: XCTestCase {
    // MARK: check 61

    /// Check 61: attaching a stage-2 domain to the RID while PASIDs are in use is `EBUSY`
    /// (a stage-2 STE has no CD table); the RID stays on its domain and the PASID works.
    func testCheck61S2RIDAttachWhilePasidsInUseIsEBUSY() throws {
        let tb = try SMMUv3Testbed()
        let dev = try tb.device(1)
        let s1 = try tb.paging(dev)
        let buf = try tb.buffer([0x61])
        try tb.iommu.map(s1, iova: 0x10_0000, paddr: buf, size: 4096, prot: [.read, .write])
        try tb.iommu.attachDevicePasid(s1, to: dev, pasid: 3)
        let s2 = try tb.paging(dev, flags: [.nestParent])
        XCTAssertEqual(s2.stage, .s2)
        let before = try tb.ste(dev)
        assertErrno(.busy) { try tb.iommu.attachDevice(s2, to: dev) }
        XCTAssertTrue(dev.group?.domain === dev.group?.defaultDomain)
        XCTAssertEqual(try tb.ste(dev), before, "the STE is untouched")
        XCTAssertEqual(try dev.dmaRead(at: 0x10_0000, count: 1, pasid: 3), [0x61])
        tb.iommu.detachDevicePasid(s1, from: dev, pasid: 3)
        try tb.iommu.attachDevice(s2, to: dev)
        XCTAssertEqual(try tb.ste(dev).config, .stage2, "with no PASID left the stage-2 attach works")
        assertNoViolations(tb.machine)
    }

    // MARK: check 62

    /// Check 62: a PASID attach while the RID is on a stage-2 domain is `EINVAL`: the STE
    /// has no CD table and the RID is neither identity nor blocked.
    func testCheck62PasidAttachWhileRIDOnS2IsEINVAL() throws {
        let tb = try SMMUv3Testbed()
        let dev = try tb.device(1)
        let s2 = try tb.paging(dev, flags: [.nestParent])
        try tb.iommu.attachDevice(s2, to: dev)
        let s1 = try tb.paging(dev)
        assertErrno(.invalidArgument) { try tb.iommu.attachDevicePasid(s1, to: dev, pasid: 3) }
        XCTAssertEqual(try tb.ste(dev).config, .stage2)
        XCTAssertNil(tb.unit.cd(dev.rid, ssid: 3)?.isValid == true ? 3 : nil, "no CD was written")
        XCTAssertFalse(tb.smmu.hasLiveEntry(rid: dev.rid, pasid: 3))
    }

    /// Check 62, nested: while the RID is on a nested domain (Config NESTED, the guest
    /// owns every PASID) a kernel PASID attach is refused too.
    func testCheck62PasidAttachWhileRIDOnNestedIsEINVAL() throws {
        let tb = try SMMUv3Testbed()
        let dev = try tb.device(1)
        let parent = try tb.paging(dev, flags: [.nestParent])
        let nested = try tb.driver.domainAllocNested(dev, parent: parent, flags: [], userData: vste(0, 0))
        try tb.iommu.attachDevice(nested, to: dev)
        XCTAssertEqual(try tb.ste(dev).config, .abort, "a non-valid vSTE gives an abort STE")
        let s1 = try tb.paging(dev)
        assertErrno(.invalidArgument) { try tb.iommu.attachDevicePasid(s1, to: dev, pasid: 3) }
    }

    // MARK: check 63

    /// Check 63: with the RID on the identity domain (a plain BYPASS STE), attaching PASID
    /// 3 turns the STE into a CD-table STE with S1DSS=BYPASS hitlessly (the RID keeps
    /// bypassing at every step); detaching it returns to the plain BYPASS STE.
    func testCheck63IdentityRIDPlusPasidUsesS1DSSBypassAndDowngrades() throws {
        let tb = try SMMUv3Testbed(defaultDomainType: .identity)
        let dev = try tb.device(1)
        let plain = try tb.ste(dev)
        XCTAssertEqual(plain.config, .bypass)
        let domain = try tb.paging(dev)
        let buf = try tb.buffer([0x63])
        try tb.iommu.map(domain, iova: 0x20_0000, paddr: buf, size: 4096, prot: [.read])
        tb.unit.clearOperations()
        try tb.iommu.attachDevicePasid(domain, to: dev, pasid: 3)
        let ste = try tb.ste(dev)
        XCTAssertEqual(ste.config, .stage1)
        XCTAssertEqual(ste.s1dss, .bypass)
        let steps = tb.steSteps(dev)
        XCTAssertFalse(steps.isEmpty)
        for case .steWrite(_, _, let e) in steps {
            XCTAssertTrue(e.isValid, "hitless: V stays set at every step")
            let rid = [SMMUv3STE.Config.bypass, .stage1].contains(e.config) && (e.config == .bypass || e.s1dss == .bypass)
            XCTAssertTrue(rid, "the RID bypasses at every step: \(e)")
        }
        XCTAssertEqual(try dev.dmaRead(at: 0x20_0000, count: 1, pasid: 3), [0x63])
        XCTAssertEqual(try dev.dmaRead(at: IOVA(identity: buf), count: 1), [0x63], "the RID still bypasses")
        tb.iommu.detachDevicePasid(domain, from: dev, pasid: 3)
        XCTAssertEqual(try tb.ste(dev), plain, "the last PASID gone, the STE is plain BYPASS again")
        XCTAssertThrowsError(try dev.dmaRead(at: 0x20_0000, count: 1, pasid: 3))
        assertNoViolations(tb.machine)
    }

    // MARK: check 64

    /// Check 64: a nested attach while the kernel has PASIDs on the device is `EBUSY`;
    /// a vSTE with bits the guest does not own, or with Config S2_TRANS or NESTED, is
    /// `EIO` at allocation.
    func testCheck64NestedAttachWithPasidsIsEBUSYAndBadVSTEIsEIO() throws {
        let tb = try SMMUv3Testbed()
        let dev = try tb.device(1)
        let parent = try tb.paging(dev, flags: [.nestParent])
        let valid = SMMUv3STE.valid
        let config = { (c: SMMUv3STE.Config) in valid | c.rawValue << 1 }
        assertErrno(.ioError) { _ = try tb.driver.domainAllocNested(dev, parent: parent, flags: [], userData: vste(config(.stage2), 0)) }
        assertErrno(.ioError) { _ = try tb.driver.domainAllocNested(dev, parent: parent, flags: [], userData: vste(config(.nested), 0)) }
        assertErrno(.ioError, "S2VMID is the host's") {
            _ = try tb.driver.domainAllocNested(dev, parent: parent, flags: [], userData: vste(config(.bypass), 1 << 20))
        }
        assertErrno(.ioError, "EATS S1CHK") {
            _ = try tb.driver.domainAllocNested(dev, parent: parent, flags: [], userData: vste(config(.stage1), 2 << 28))
        }
        let nested = try tb.driver.domainAllocNested(dev, parent: parent, flags: [], userData: vste(config(.bypass), 0))
        let s1 = try tb.paging(dev)
        try tb.iommu.attachDevicePasid(s1, to: dev, pasid: 5)
        assertErrno(.busy) { try tb.iommu.attachDeviceAllPasids(nested, to: dev) }
        XCTAssertTrue(dev.group?.domain === dev.group?.defaultDomain)
        tb.iommu.detachDevicePasid(s1, from: dev, pasid: 5)
        try tb.iommu.attachDeviceAllPasids(nested, to: dev)
        XCTAssertEqual(try tb.ste(dev).config, .stage2, "a BYPASS vSTE installs the parent's stage 2")
        XCTAssertEqual(try tb.ste(dev).vmid, parent.vmid)
    }

    // MARK: check 65

    /// Check 65: ASIDs and VMIDs are never 0; freeing a domain returns its ID; an SVA
    /// domain's ASID is invalidated (TLBI_NH_ASID) before it goes back to the allocator.
    func testCheck65ASIDsAndVMIDsAreNeverZeroAndComeBack() throws {
        let tb = try SMMUv3Testbed()
        let dev = try tb.device(1)
        let s1 = try tb.paging(dev)
        let s2 = try tb.paging(dev, flags: [.nestParent])
        XCTAssertNotEqual(s1.asid, 0)
        XCTAssertNotEqual(s2.vmid, 0)
        let asidsBefore = tb.driver.allocatedASIDs
        XCTAssertTrue(asidsBefore.contains(s1.asid))
        XCTAssertEqual(tb.unit.allocatedVMIDs, [s2.vmid])
        tb.iommu.freeDomain(s1)
        tb.iommu.freeDomain(s2)
        XCTAssertFalse(tb.driver.allocatedASIDs.contains(s1.asid))
        XCTAssertEqual(tb.unit.allocatedVMIDs, [])
        XCTAssertEqual(try tb.paging(dev).asid, s1.asid, "the lowest free ASID comes back")

        let mm = try SMMUv3Testbed.process(tb.machine)
        let va = try mm.mmap(length: 4096, prot: [.read, .write])
        try mm.writeMemory(address: va, bytes: [0x65])
        let bond = try tb.iommu.svaBindDevice(dev, mm: mm)
        let sva = try XCTUnwrap(bond.domain as? SMMUv3Domain)
        XCTAssertNotEqual(sva.asid, 0)
        XCTAssertEqual(try dev.dmaRead(at: IOVA(sva: va), count: 1, pasid: tb.iommu.svaGetPasid(bond)), [0x65])
        XCTAssertTrue(tb.smmu.tlbHolds(vmid: 0, asid: sva.asid))
        tb.unit.clearOperations()
        let asid = sva.asid
        tb.iommu.svaUnbindDevice(bond)
        XCTAssertFalse(tb.driver.allocatedASIDs.contains(asid))
        XCTAssertFalse(tb.smmu.tlbHolds(vmid: 0, asid: asid), "nothing tagged with the freed ASID is left")
        XCTAssertTrue(tb.executed.contains { $0.opcode == .tlbiNHASID && $0.asid == asid })
        assertNoViolations(tb.machine)
    }

    // MARK: check 66

    /// Check 66: PCI ATS is never on while the STE is a plain BYPASS or ABORT STE, and is
    /// on with a CD-table STE (S1DSS=BYPASS on identity, SSID0 on a paging domain).
    func testCheck66ATSNeverOnWithPlainBypassOrAbort() throws {
        let tb = try SMMUv3Testbed(defaultDomainType: .identity)
        let dev = try tb.device(1, ats: true)
        XCTAssertEqual(try tb.ste(dev).config, .bypass)
        XCTAssertFalse(dev.atsEnabled, "identity RID: plain bypass STE, ATS off")
        let domain = try tb.paging(dev)
        try tb.iommu.attachDevicePasid(domain, to: dev, pasid: 7)
        XCTAssertEqual(try tb.ste(dev).s1dss, .bypass)
        XCTAssertTrue(dev.atsEnabled, "CD-table STE: ATS on")
        XCTAssertEqual(try tb.ste(dev).rawEATS, SMMUv3STE.EATS.translate.rawValue)
        tb.iommu.detachDevicePasid(domain, from: dev, pasid: 7)
        XCTAssertEqual(try tb.ste(dev).config, .bypass)
        XCTAssertFalse(dev.atsEnabled, "back to plain bypass: ATS off")
        let paging = try tb.paging(dev)
        try tb.iommu.attachDevice(paging, to: dev)
        XCTAssertTrue(dev.atsEnabled, "S1 paging: CD-table STE with SSID0, ATS on")
        tb.iommu.detachDevice(paging, from: dev)
        try tb.iommu.attachDevice(try XCTUnwrap(tb.driver.blockedDomain), to: dev)
        XCTAssertEqual(try tb.ste(dev).config, .abort)
        XCTAssertFalse(dev.atsEnabled, "abort STE: ATS off")
        assertNoViolations(tb.machine)
    }

    // MARK: check 67

    /// Check 67: while the RID moves from A to B, an unmap in A after B's STE is live
    /// still reaches the device's ATC (A keeps the master until commit), and an unmap in
    /// B before the STE write is not lost (B includes the master from prepare on).
    func testCheck67UnmapsDuringAttachReachBothDomains() throws {
        let tb = try SMMUv3Testbed()
        let dev = try tb.device(1, ats: true)
        let a = try tb.paging(dev)
        let b = try tb.paging(dev)
        let buf = try tb.buffer([1])
        try tb.iommu.map(a, iova: 0x30_0000, paddr: buf, size: 4096, prot: [.read])
        try tb.iommu.map(b, iova: 0x40_0000, paddr: buf, size: 4096, prot: [.read])
        try tb.iommu.attachDevice(a, to: dev)
        XCTAssertTrue(dev.atsEnabled)
        let sid = UInt32(dev.rid.raw)
        final class Seen: @unchecked Sendable { var ats: [String: Bool] = [:] }
        let seen = Seen()
        let smmu = tb.smmu
        let iommu = tb.iommu
        tb.driver.attachObserver = { phase, rid in
            guard rid == dev.rid, seen.ats["\(phase)"] == nil else { return }
            let before = smmu.executed.count
            switch phase {
            case .prepared: _ = iommu.unmap(b, iova: 0x40_0000, size: 4096)
            case .installed: _ = iommu.unmap(a, iova: 0x30_0000, size: 4096)
            }
            seen.ats["\(phase)"] = smmu.executed.dropFirst(before).contains { $0.opcode == .atcInvalidate && $0.streamID == sid }
        }
        // A direct switch, as iommufd's replace does it (no stop on the default domain).
        try iommu.replaceGroupDomain(b, of: try XCTUnwrap(dev.group))
        tb.driver.attachObserver = nil
        XCTAssertEqual(seen.ats["prepared"], true, "B invalidates the device's ATC before its STE is written")
        XCTAssertEqual(seen.ats["installed"], true, "A still invalidates the device's ATC after B's STE is live")
        assertNoViolations(tb.machine)
    }

    // MARK: check 68

    /// Check 68: at mm release every SVA CD is rewritten hitlessly (V stays 1) to the
    /// EPD0 "fault everything" form; DMA then faults with F_TRANSLATION, never C_BAD_CD;
    /// the later unbind clears the CD.
    func testCheck68SVAReleaseKeepsTheCDValidWithEPD0() throws {
        let tb = try SMMUv3Testbed()
        let dev = try tb.device(1)
        let mm = try SMMUv3Testbed.process(tb.machine)
        let va = try mm.mmap(length: 4096, prot: [.read, .write])
        try mm.writeMemory(address: va, bytes: [0x68])
        let bond = try tb.iommu.svaBindDevice(dev, mm: mm)
        let pasid = tb.iommu.svaGetPasid(bond)
        XCTAssertEqual(try dev.dmaRead(at: IOVA(sva: va), count: 1, pasid: pasid), [0x68])
        let live = try XCTUnwrap(tb.unit.cd(dev.rid, ssid: pasid.rawValue))
        XCTAssertEqual(live.ttb0, mm.pgdPhysical, "TTB0 is the mm's own table")
        tb.unit.clearOperations()
        mm.exit()
        let released = try XCTUnwrap(tb.unit.cd(dev.rid, ssid: pasid.rawValue))
        XCTAssertTrue(released.isValid)
        XCTAssertTrue(released.ttb0Disabled)
        XCTAssertEqual(released.asid, live.asid)
        let writes = tb.unit.operations.compactMap { op -> SMMUv3CD? in
            if case .cdWrite(_, let ssid, _, let e) = op, ssid == pasid.rawValue { e } else { nil }
        }
        XCTAssertFalse(writes.isEmpty)
        XCTAssertTrue(writes.allSatisfy(\.isValid), "hitless: V=1 at every step")
        XCTAssertThrowsError(try dev.dmaRead(at: IOVA(sva: va), count: 1, pasid: pasid)) { error in
            XCTAssertEqual((error as? DMAFault)?.reason, SMMUv3Event.ID.translation.reason)
        }
        tb.unit.processEventQueue()
        XCTAssertFalse(tb.unit.unhandledEvents.contains { $0.id == .badCD })
        tb.iommu.svaUnbindDevice(bond)
        XCTAssertEqual(tb.unit.cd(dev.rid, ssid: pasid.rawValue)?.isValid, false, "unbind clears the CD")
    }

    /// A 16-byte `struct iommu_hwpt_arm_smmuv3`.
    private func vste(_ w0: UInt64, _ w1: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: w0 >> (8 * $0)) } + (0..<8).map { UInt8(truncatingIfNeeded: w1 >> (8 * $0)) }
    }
}

extension SMMUv3Testbed {
    /// A process whose page table the SMMU can share.
    static func process(_ machine: Machine, pid: Int32 = 100) throws -> IOMMUCore.Process {
        try machine.makeProcess(pid: pid)
    }
}
