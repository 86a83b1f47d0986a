import IOMMUConformance
import IOMMUCore
import IOMMUDrivers
import IOMMUFD
import VendorFixtures
import XCTest
@testable import DriverShims

/// The ARM SMMUv3 vSMMU (`IOMMU_VIOMMU_TYPE_ARM_SMMUV3`, `arm-smmu-v3-iommufd.c`) as a
/// VMM drives it through iommufd: a vIOMMU over a stage-2 nesting parent, nested HWPTs
/// made on it from the guest's vSTE, vDEVICEs giving the guest's StreamIDs, and the
/// guest's invalidation commands, converted and run on the SMMU's command queue.
final class SMMUv3VSMMUTests: XCTestCase {
    /// A vIOMMU needs a nesting parent of the SMMU the device sits behind: a plain paging
    /// HWPT is `EINVAL` (iommufd), a parent on another SMMU is `EINVAL`
    /// (`arm_vsmmu_init`); a type other than ARM_SMMUV3, an SMMU without nesting, or one
    /// with neither S2FWB nor a CANWBS root complex is `EOPNOTSUPP`
    /// (`arm_smmu_get_viommu_size`). The vSMMU takes no VMID of its own and holds its
    /// parent.
    func testVIOMMUAllocNeedsANestingParentOfThisSMMU() throws {
        let b = try Bench()
        let fd = b.rig.iommufd
        let smmuv3 = IOMMUVIOMMUType.armSMMUv3
        let (rc, plain) = b.rig.hwptAlloc(dev: b.devid, ioas: b.ioas)
        XCTAssertEqual(rc, 0)
        assertErrno(.invalidArgument, "not a nesting parent") { try fd.allocVIOMMU(device: b.devid, parent: plain, type: smmuv3) }
        assertErrno(.notSupported, "Tegra241 CMDQV") {
            try fd.allocVIOMMU(device: b.devid, parent: b.parent, type: IOMMUVIOMMUType.tegra241CMDQV)
        }
        assertErrno(.notSupported, "the selftest type") {
            try fd.allocVIOMMU(device: b.devid, parent: b.parent, type: IOMMUVIOMMUType.selftest)
        }
        let viommu = try fd.allocVIOMMU(device: b.devid, parent: b.parent, type: smmuv3).id
        XCTAssertEqual(b.unit.allocatedVMIDs, [b.vmid], "the vSMMU uses its parent's VMID")
        assertErrno(.busy, "the vIOMMU holds its parent") { try fd.destroy(b.parent) }

        // A parent allocated for a device behind a second SMMU of the same driver.
        let unit2 = try XCTUnwrap(try SMMUv3Vendor(configuration: Bench.configuration)
            .makeUnit(on: b.rig.machine, sharingDriverWith: b.unit) as? ArmSMMUv3)
        b.rig.machine.addIOMMU(unit2)
        let dev2 = try b.rig.machine.addDevice(PCIDevice(rid: RID(bus: 0x20, device: 0, function: 0), caps: PCICapabilities()),
                                               behind: unit2)
        let (v2, f2, devid2) = try b.rig.bound(dev2)
        let (rc2, parent2) = b.rig.hwptAlloc(dev: devid2, ioas: b.ioas, flags: IOMMUFDConstant.hwptAllocNestParent)
        XCTAssertEqual(rc2, 0)
        assertErrno(.invalidArgument, "a parent of smmu1 for a vIOMMU of smmu0") {
            try fd.allocVIOMMU(device: b.devid, parent: parent2, type: smmuv3)
        }
        XCTAssertNoThrow(try fd.allocVIOMMU(device: devid2, parent: parent2, type: smmuv3), "smmu1's own parent")

        // Hardware that cannot keep a guest coherent: no S2FWB and no CANWBS firmware.
        let plainRig = try VFIORig.smmuv3()
        let dev3 = try plainRig.device()
        let (v3, f3, devid3) = try plainRig.bound(dev3)
        let (rc3, parent3) = plainRig.hwptAlloc(dev: devid3, ioas: try plainRig.mappedIOAS(),
                                               flags: IOMMUFDConstant.hwptAllocNestParent)
        XCTAssertEqual(rc3, 0)
        assertErrno(.notSupported, "neither S2FWB nor CANWBS") {
            try plainRig.iommufd.allocVIOMMU(device: devid3, parent: parent3, type: smmuv3)
        }
        try XCTUnwrap(plainRig.unit as? ArmSMMUv3).smmuDriver.setCANWBS(dev3.rid)
        XCTAssertNoThrow(try plainRig.iommufd.allocVIOMMU(device: devid3, parent: parent3, type: smmuv3),
                         "a CANWBS root complex is enough")

        // No nesting (stage 1 only): refused before the HWPT is even looked up.
        var s1Only = Bench.configuration
        s1Only.features.remove(.stage2)
        let s1Rig = try VFIORig.smmuv3(s1Only)
        let dev4 = try s1Rig.device()
        let (v4, f4, devid4) = try s1Rig.bound(dev4)
        assertErrno(.notSupported, "an SMMU without stage 2") {
            try s1Rig.iommufd.allocVIOMMU(device: devid4, parent: HWPTObjectID(rawValue: 0), type: smmuv3)
        }
        withExtendedLifetime((viommu, v2, f2, v3, f3, v4, f4)) {}
    }

    /// A nested HWPT allocated on the vIOMMU (`pt_id` = the vIOMMU) from the guest's
    /// vSTE attaches once the device has a vDEVICE: the STE is NESTED on the parent's
    /// stage 2 with the parent's VMID, the driver knows the device by its vSID, and DMA
    /// goes through the guest's CD table. The data is checked as
    /// `arm_vsmmu_alloc_domain_nested` does.
    func testNestedHWPTOnTheVIOMMUAttachesThroughAVDevice() throws {
        let b = try Bench()
        let fd = b.rig.iommufd
        let viommu = try fd.allocVIOMMU(device: b.devid, parent: b.parent, type: IOMMUVIOMMUType.armSMMUv3).id
        let data = b.guest.userData
        let smmuData = IOMMUHWPTDataType.armSMMUv3
        assertErrno(.notSupported, "IOMMU_HWPT_ALLOC_PASID") {
            try fd.allocHWPT(device: b.devid, pt: viommu, flags: IOMMUFDConstant.hwptAllocPasid, dataType: smmuData, data: data)
        }
        assertErrno(.invalidArgument, "VT-d data") {
            try fd.allocHWPT(device: b.devid, pt: viommu, dataType: IOMMUHWPTDataType.vtdS1, data: data)
        }
        assertErrno(.invalidArgument, "shorter than ste") {
            try fd.allocHWPT(device: b.devid, pt: viommu, dataType: smmuData, data: Array(data.prefix(8)))
        }
        assertErrno(.tooBig, "a byte past ste") {
            try fd.allocHWPT(device: b.devid, pt: viommu, dataType: smmuData, data: data + [0, 0, 0, 1])
        }
        let s2Config = IOMMUHWPTARMSMMUv3(ste0: SMMUv3STE.valid | SMMUv3STE.Config.stage2.rawValue << 1, ste1: 0).bytes
        assertErrno(.ioError, "a stage-2 vSTE") { try fd.allocHWPT(device: b.devid, pt: viommu, dataType: smmuData, data: s2Config) }
        XCTAssertEqual(b.rig.objects(.hwptNested), 0, "nothing was left of the refused allocations")

        let nested = try fd.allocHWPT(device: b.devid, pt: viommu, dataType: smmuData, data: data + [0, 0, 0, 0])
        _ = try fd.allocVDevice(viommu: viommu, device: b.devid, virtualID: 0x42)
        XCTAssertEqual(try b.file.attach(ptID: nested), PageTableObjectID(nested))
        let ste = try XCTUnwrap(b.unit.ste(b.dev.rid))
        XCTAssertEqual(ste.config, .nested)
        XCTAssertEqual(ste.vmid, b.vmid, "the vSMMU's VMID is its parent's")
        let domain = try XCTUnwrap(b.dev.group?.domain as? SMMUv3NestedDomain)
        let vsmmu = try XCTUnwrap(domain.vsmmu)
        XCTAssertEqual(vsmmu.vmid, b.vmid)
        XCTAssertEqual(b.master.vmaster?.vsid, 0x42)
        XCTAssertTrue(b.master.vmaster?.vsmmu === vsmmu)
        try b.dev.dmaWrite(at: 0x1010_0000 + 0x300, bytes: Array("via vsmmu".utf8))
        XCTAssertEqual(try b.rig.bufferBytes(at: 0x300, count: 9), Array("via vsmmu".utf8))
        assertErrno(.busy, "the nested HWPT holds the vIOMMU") { try fd.destroy(viommu) }
        try b.file.detach()
        XCTAssertNil(b.master.vmaster, "leaving the nested domain forgets the vSID")
        XCTAssertTrue(b.rig.machine.checker.violations.isEmpty, "\(b.rig.machine.checker.violations)")
    }

    /// A device without a vDEVICE in the vIOMMU cannot attach a stage-1 vSTE (`ENOENT`,
    /// `arm_smmu_attach_prepare_vmaster`) and its STE stays as it was; an ABORT or BYPASS
    /// vSTE, which needs no guest invalidations, attaches without one.
    func testAttachWithoutAVDeviceIsRefusedForAStage1VSTE() throws {
        let b = try Bench()
        let fd = b.rig.iommufd
        let viommu = try fd.allocVIOMMU(device: b.devid, parent: b.parent, type: IOMMUVIOMMUType.armSMMUv3).id
        let smmuData = IOMMUHWPTDataType.armSMMUv3
        let nested = try fd.allocHWPT(device: b.devid, pt: viommu, dataType: smmuData, data: b.guest.userData)
        let before = b.unit.ste(b.dev.rid)
        let domainBefore = b.dev.group?.domain
        assertErrno(.noEntry) { try b.file.attach(ptID: nested) }
        XCTAssertEqual(b.unit.ste(b.dev.rid), before, "a refused attach leaves the STE")
        XCTAssertTrue(b.dev.group?.domain === domainBefore, "and the group's domain")
        XCTAssertNil(b.master.vmaster)

        // A vDEVICE in another vIOMMU over the same parent does not count.
        let other = try fd.allocVIOMMU(device: b.devid, parent: b.parent, type: IOMMUVIOMMUType.armSMMUv3).id
        _ = try fd.allocVDevice(viommu: other, device: b.devid, virtualID: 0x42)
        assertErrno(.noEntry) { try b.file.attach(ptID: nested) }

        let bypass = IOMMUHWPTARMSMMUv3(ste0: SMMUv3STE.valid | SMMUv3STE.Config.bypass.rawValue << 1, ste1: 0).bytes
        let bypassHWPT = try fd.allocHWPT(device: b.devid, pt: viommu, dataType: smmuData, data: bypass)
        XCTAssertEqual(try b.file.attach(ptID: bypassHWPT), PageTableObjectID(bypassHWPT))
        XCTAssertEqual(b.unit.ste(b.dev.rid)?.config, .stage2, "BYPASS is the parent's stage 2")
        XCTAssertNil(b.master.vmaster, "attached without a vSID")
        try b.dev.dmaWrite(at: 0x1010_0000 + 0x80, bytes: [0x5A])
        XCTAssertEqual(try b.rig.bufferBytes(at: 0x80, count: 1), [0x5A])

        let invalid = IOMMUHWPTARMSMMUv3(ste0: 0, ste1: 0).bytes
        let abortHWPT = try fd.allocHWPT(device: b.devid, pt: viommu, dataType: smmuData, data: invalid)
        XCTAssertEqual(try b.file.attach(ptID: abortHWPT), PageTableObjectID(abortHWPT))
        XCTAssertEqual(b.unit.ste(b.dev.rid)?.config, .abort, "a non-valid vSTE aborts")
        try b.file.detach()
    }

    /// `IOMMU_HWPT_INVALIDATE` on the vIOMMU: every TLBI a guest may send carries the VM's
    /// VMID whatever it wrote (TLBI_NSNH_ALL becomes TLBI_NH_ALL of the VM), and ATC_INV,
    /// CFGI_CD and CFGI_CD_ALL name the physical StreamID instead of the vSID; the run
    /// ends with a CMD_SYNC. The SMMU acts on it: the CD the guest cleared stays cached
    /// until its CFGI_CD arrives, then DMA through it is refused.
    func testInvalidationConvertsTheVSIDAndForcesTheVMID() throws {
        let b = try Bench()
        let fd = b.rig.iommufd
        let viommu = try fd.allocVIOMMU(device: b.devid, parent: b.parent, type: IOMMUVIOMMUType.armSMMUv3).id
        let nested = try fd.allocHWPT(device: b.devid, pt: viommu, dataType: IOMMUHWPTDataType.armSMMUv3,
                                      data: b.guest.userData)
        _ = try fd.allocVDevice(viommu: viommu, device: b.devid, virtualID: 0x42)
        _ = try b.file.attach(ptID: nested)
        try b.dev.dmaWrite(at: 0x1010_0000 + 0x100, bytes: [1])
        // The guest clears its CD 0; the SMMU still has the old one cached.
        try b.rig.process.writeMemory(address: try b.guestCD0(), bytes: [UInt8](repeating: 0, count: 64))
        try b.dev.dmaWrite(at: 0x1010_0000 + 0x100, bytes: [2])
        XCTAssertEqual(try b.rig.bufferBytes(at: 0x100, count: 1), [2], "the cached CD still translates")

        let cfgiCDAll = { (sid: UInt32) in SMMUv3Command(w0: UInt64(SMMUv3Command.Opcode.cfgiCDAll.rawValue) | UInt64(sid) << 32, w1: 0) }
        let guest: [SMMUv3Command] = [
            .tlbiAddress(.tlbiNHVA, asid: 7, vmid: 0x99, address: 0x1010_0000, leaf: true),
            .tlbi(.tlbiNSNHAll, asid: 0, vmid: 0),
            .cfgiCD(sid: 0x42, ssid: 0, leaf: true),
            .atcInvalidate(sid: 0x42, ssid: 3, address: 0x2000, size: 1),
            cfgiCDAll(0x42),
            .tlbi(.tlbiNHASID, asid: 7, vmid: 0xFFFF),
            .tlbiAddress(.tlbiNHVAA, asid: 0, vmid: 3, address: 0x3000, leaf: false),
        ]
        b.unit.clearOperations()
        var handled: UInt32 = 0
        try fd.invalidate(viommu: viommu, dataType: IOMMUHWPTInvalidateDataType.armSMMUv3, entryLength: 16,
                          entries: guest.map(entry), handled: &handled)
        XCTAssertEqual(handled, 7)
        let sid = UInt32(b.dev.rid.raw)
        XCTAssertNotEqual(sid, 0x42)
        XCTAssertEqual(b.commandRuns(), [[
            .tlbiAddress(.tlbiNHVA, asid: 7, vmid: b.vmid, address: 0x1010_0000, leaf: true),
            .tlbi(.tlbiNHAll, asid: 0, vmid: b.vmid),
            .cfgiCD(sid: sid, ssid: 0, leaf: true),
            .atcInvalidate(sid: sid, ssid: 3, address: 0x2000, size: 1),
            cfgiCDAll(sid),
            .tlbi(.tlbiNHASID, asid: 7, vmid: b.vmid),
            .tlbiAddress(.tlbiNHVAA, asid: 0, vmid: b.vmid, address: 0x3000, leaf: false),
            .sync,
        ]])
        XCTAssertThrowsError(try b.dev.dmaWrite(at: 0x1010_0000 + 0x100, bytes: [3]), "the SMMU refetched the cleared CD")
        XCTAssertEqual(try b.rig.bufferBytes(at: 0x100, count: 1), [2])

        // The nested HWPT itself takes no invalidation: the guest's go through the vIOMMU.
        assertErrno(.notSupported) {
            try fd.invalidate(hwpt: nested, dataType: IOMMUHWPTInvalidateDataType.armSMMUv3, entryLength: 16,
                              entries: [entry(.tlbi(.tlbiNHAll, asid: 0, vmid: 0))], handled: &handled)
        }
        try b.file.detach()
    }

    /// A command a guest may not send (the kernel's own CFGI_STE, CFGI_ALL, stage-2 and
    /// EL2 TLBIs, CMD_SYNC, PRI_RESP, RESUME, an unknown opcode) or a vSID without a
    /// vDEVICE is `EIO`, and `entry_num` comes back as its index. As in mainline, the
    /// converted entries of the unfinished run before it are counted but not issued, and
    /// nothing after it is. A type or copy error handles nothing.
    func testARefusedCommandIsEIOWithEntryNumAtItsIndex() throws {
        let b = try Bench()
        let fd = b.rig.iommufd
        let viommu = try fd.allocVIOMMU(device: b.devid, parent: b.parent, type: IOMMUVIOMMUType.armSMMUv3).id
        _ = try fd.allocVDevice(viommu: viommu, device: b.devid, virtualID: 0x42)
        let type = IOMMUHWPTInvalidateDataType.armSMMUv3
        var handled: UInt32 = 99
        func invalidate(_ commands: [SMMUv3Command]) throws(Errno) {
            handled = 99
            try fd.invalidate(viommu: viommu, dataType: type, entryLength: 16, entries: commands.map(entry), handled: &handled)
        }

        b.unit.clearOperations()
        assertErrno(.ioError) {
            try invalidate([.tlbi(.tlbiNHASID, asid: 1, vmid: 0), .tlbiAddress(.tlbiNHVA, asid: 1, vmid: 0, address: 0x4000, leaf: true),
                            .cfgiSTE(sid: 0x42, leaf: true), .tlbi(.tlbiNHAll, asid: 0, vmid: 0)])
        }
        XCTAssertEqual(handled, 2)
        XCTAssertEqual(b.commandRuns(), [],
                       "arm_vsmmu_cache_invalidate returns at the refusal: the two converted entries of the open run are not issued")

        let kernelOnly: [SMMUv3Command] = [
            .cfgiAll, .tlbiAddress(.tlbiS2IPA, asid: 0, vmid: 0, address: 0x1000, leaf: true),
            .tlbi(.tlbiS12VMAll, asid: 0, vmid: 0), .tlbi(.tlbiEL2All, asid: 0, vmid: 0), .sync, .prefetchConfig(sid: 0x42),
            .priResponse(sid: 0x42, ssid: 0, ssv: false, groupIndex: 1, response: .success),
            .resume(sid: 0x42, stallTag: 1, action: .retry), SMMUv3Command(w0: 0x7F, w1: 0),
        ]
        for command in kernelOnly {
            b.unit.clearOperations()
            assertErrno(.ioError, "\(command)") { try invalidate([command]) }
            XCTAssertEqual(handled, 0, "\(command)")
            XCTAssertEqual(b.commandRuns(), [], "\(command)")
        }

        assertErrno(.ioError, "vSID 0x43 has no vDEVICE") {
            try invalidate([.tlbi(.tlbiNHAll, asid: 0, vmid: 0), .atcInvalidateAll(sid: 0x43, ssid: 0)])
        }
        XCTAssertEqual(handled, 1)

        b.unit.clearOperations()
        let one = entry(.tlbi(.tlbiNHAll, asid: 0, vmid: 0))
        assertErrno(.invalidArgument, "the VT-d type") {
            try fd.invalidate(viommu: viommu, dataType: IOMMUHWPTInvalidateDataType.vtdS1, entryLength: 16, entries: [one],
                              handled: &handled)
        }
        XCTAssertEqual(handled, 0)
        assertErrno(.invalidArgument, "no entry") {
            try fd.invalidate(viommu: viommu, dataType: type, entryLength: 16, entries: [], handled: &handled)
        }
        assertErrno(.tooBig, "a non-zero byte past cmd") {
            try fd.invalidate(viommu: viommu, dataType: type, entryLength: 24, entries: [one + [0, 0, 0, 0, 0, 0, 0, 0], one + [1, 0, 0, 0, 0, 0, 0, 0]],
                              handled: &handled)
        }
        XCTAssertEqual(handled, 0)
        XCTAssertEqual(b.commandRuns(), [], "a copy error issues nothing")
        var h: UInt32 = 0
        try fd.invalidate(viommu: viommu, dataType: type, entryLength: 24, entries: [one + [UInt8](repeating: 0, count: 8)], handled: &h)
        XCTAssertEqual(h, 1, "a longer entry with a zero tail is accepted")
    }

    /// An array larger than one kernel allocation (`KMALLOC_MAX_SIZE`, 4 MiB of 16-byte
    /// entries) is `ENOMEM` before any entry is read: nothing handled, nothing issued.
    func testAnArrayLargerThanOneAllocationIsENOMEM() throws {
        let b = try Bench()
        let fd = b.rig.iommufd
        let viommu = try fd.allocVIOMMU(device: b.devid, parent: b.parent, type: IOMMUVIOMMUType.armSMMUv3).id
        let one = entry(.tlbi(.tlbiNHAll, asid: 0, vmid: 0))
        let tooMany = (4 << 20) / 16 + 1
        b.unit.clearOperations()
        var handled: UInt32 = 99
        assertErrno(.noMemory) {
            try fd.invalidate(viommu: viommu, dataType: IOMMUHWPTInvalidateDataType.armSMMUv3, entryLength: 16,
                              entries: Array(repeating: one, count: tooMany), handled: &handled)
        }
        XCTAssertEqual(handled, 0)
        XCTAssertEqual(b.commandRuns().count, 0, "nothing issued")
    }

    /// More than 63 commands go to the queue in runs of `CMDQ_BATCH_ENTRIES - 1`, each
    /// followed by its CMD_SYNC: 130 make 63 + 63 + 4 and three syncs; 126 make exactly
    /// two runs (no lone sync at the end). A refusal in the second run leaves the first
    /// run issued; what came before it in the second is counted but not issued.
    func testLongArraysRunInBatchesOf63WithASyncAfterEach() throws {
        let b = try Bench()
        let fd = b.rig.iommufd
        let viommu = try fd.allocVIOMMU(device: b.devid, parent: b.parent, type: IOMMUVIOMMUType.armSMMUv3).id
        let type = IOMMUHWPTInvalidateDataType.armSMMUv3
        func vas(_ n: Int) -> [SMMUv3Command] {
            (0..<n).map { .tlbiAddress(.tlbiNHVA, asid: 1, vmid: 0, address: UInt64($0) << 12, leaf: true) }
        }
        let smmu = b.unit.smmu
        XCTAssertEqual(SMMUv3VSMMU.batchEntries, 64)

        b.unit.clearOperations()
        let syncs = smmu.executedCount(.sync), vaCount = smmu.executedCount(.tlbiNHVA)
        var handled: UInt32 = 0
        try fd.invalidate(viommu: viommu, dataType: type, entryLength: 16, entries: vas(130).map(entry), handled: &handled)
        XCTAssertEqual(handled, 130)
        let runs = b.commandRuns()
        XCTAssertEqual(runs.map(\.count), [64, 64, 5])
        XCTAssertEqual(runs.map { $0.filter { $0.opcode == .sync }.count }, [1, 1, 1])
        XCTAssertTrue(runs.allSatisfy { $0.last == .sync })
        XCTAssertEqual(runs.flatMap { $0.dropLast() },
                       (0..<130).map { .tlbiAddress(.tlbiNHVA, asid: 1, vmid: b.vmid, address: UInt64($0) << 12, leaf: true) },
                       "in order, each with the VM's VMID")
        XCTAssertEqual(smmu.executedCount(.sync) - syncs, 3, "the SMMU ran three CMD_SYNCs")
        XCTAssertEqual(smmu.executedCount(.tlbiNHVA) - vaCount, 130)

        b.unit.clearOperations()
        try fd.invalidate(viommu: viommu, dataType: type, entryLength: 16, entries: vas(126).map(entry), handled: &handled)
        XCTAssertEqual(handled, 126)
        XCTAssertEqual(b.commandRuns().map(\.count), [64, 64])

        b.unit.clearOperations()
        var refused = vas(100)
        refused[70] = .cfgiSTE(sid: 0x42, leaf: true)
        assertErrno(.ioError) {
            try fd.invalidate(viommu: viommu, dataType: type, entryLength: 16, entries: refused.map(entry), handled: &handled)
        }
        XCTAssertEqual(handled, 70)
        XCTAssertEqual(b.commandRuns().map(\.count), [64], "the first whole run of 63 + sync; the 7 converted before the refusal are not issued")
    }
}

/// One `struct iommu_viommu_arm_smmuv3_invalidate` entry holding `command`.
private func entry(_ command: SMMUv3Command) -> [UInt8] {
    IOMMUVIOMMUARMSMMUv3Invalidate(cmd0: command.w0, cmd1: command.w1).bytes
}

/// An SMMUv3 with S2FWB (so a vSMMU is possible) behind a VMM: one device bound to the
/// iommufd, an IOAS with the buffer at 0x1010_0000 and the guest's RAM (CD table and
/// identity stage 1 of ``SMMUv3Guest``) at its IPA, and a nesting parent on it.
private final class Bench {
    static var configuration: SMMUv3Configuration {
        var c = SMMUv3Configuration()
        c.features.insert(.s2fwb)
        return c
    }

    let rig: VFIORig
    let dev: PCIDevice
    let vfio: VFIOPCIDevice
    let file: VFIODeviceFile
    let devid: DeviceObjectID
    let ioas: IOASObjectID
    let guestRAM: UInt64
    let guest: SMMUv3Guest
    let parent: HWPTObjectID
    let unit: ArmSMMUv3
    let master: SMMUv3Master
    /// The parent's VMID.
    let vmid: UInt16

    init() throws {
        rig = try VFIORig.smmuv3(Self.configuration)
        dev = try rig.device()
        let bound = try rig.bound(dev)
        vfio = bound.0
        file = bound.1
        devid = bound.2
        ioas = try rig.mappedIOAS()
        guestRAM = try rig.process.mmap(length: SMMUv3Guest.guestBytes, prot: [.read, .write], at: 0x5000_0000)
        try rig.process.writeMemory(address: guestRAM, bytes: [UInt8](repeating: 0, count: SMMUv3Guest.guestBytes))
        XCTAssertEqual(rig.map(ioas, va: guestRAM, length: UInt64(SMMUv3Guest.guestBytes), iova: SMMUv3Guest.tablesIPA.rawValue), 0)
        let process = rig.process, ram = guestRAM
        guest = try SMMUv3Guest(memory: rig.machine.memory) { ipa, bytes in
            try process.writeMemory(address: ram + (ipa.rawValue - SMMUv3Guest.tablesIPA.rawValue), bytes: bytes)
        }
        let (rc, parent) = rig.hwptAlloc(dev: devid, ioas: ioas, flags: IOMMUFDConstant.hwptAllocNestParent)
        XCTAssertEqual(rc, 0)
        self.parent = parent
        unit = try XCTUnwrap(rig.unit as? ArmSMMUv3)
        master = try XCTUnwrap(dev.driverPrivate as? SMMUv3Master)
        XCTAssertEqual(unit.allocatedVMIDs.count, 1)
        vmid = try XCTUnwrap(unit.allocatedVMIDs.first)
    }

    /// The address in the VMM's memory of the guest's CD 0: the first CD of the leaf the
    /// vSTE's level-1 descriptor 0 points at.
    func guestCD0() throws -> UInt64 {
        let base = SMMUv3Guest.tablesIPA.rawValue
        let l1IPA = guest.vste.0 & SMMUv3STE.s1ContextPtrMask
        let desc = try rig.process.readMemory(address: guestRAM + (l1IPA - base), count: 8).reversed()
            .reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return guestRAM + ((desc & SMMUv3CDL1.pointerMask) - base)
    }

    /// The command runs the driver submitted since the last `clearOperations()`.
    func commandRuns() -> [[SMMUv3Command]] {
        unit.operations.compactMap { if case .commands(let c) = $0 { c } else { nil } }
    }
}
