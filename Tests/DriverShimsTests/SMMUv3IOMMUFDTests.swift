import IOMMUConformance
import IOMMUCore
import IOMMUDrivers
import IOMMUFD
import XCTest
@testable import DriverShims

/// iommufd on ARM SMMUv3, through the raw dispatcher as a VMM drives it: the hardware
/// info a VMM builds its vSMMU from, nesting parents and nested HWPTs built from a virtual
/// STE (`IOMMU_HWPT_DATA_ARM_SMMUV3`).
final class SMMUv3IOMMUFDTests: XCTestCase {
    /// `IOMMU_GET_HW_INFO` returns `IOMMU_HW_INFO_TYPE_ARM_SMMUV3` with the SMMU's ID
    /// registers, and the PASID width.
    func testGetHWInfoReturnsTheIDRegisters() throws {
        let rig = try VFIORig.smmuv3()
        let dev = try rig.device()
        let (_, file, devid) = try rig.bound(dev)
        defer { withExtendedLifetime(file) {} }
        let at = rig.arg + 0x4000
        var info = IOMMUHWInfo()
        info.devId = devid.rawValue
        info.dataLen = UInt32(IOMMUHWInfoARMSMMUv3.size)
        info.dataUptr = at
        XCTAssertEqual(rig.iommuCall(IOMMUFDCommand.getHWInfo, &info), 0)
        XCTAssertEqual(info.dataType, IOMMUHWInfoType.armSMMUv3)
        XCTAssertEqual(info.outMaxPasidLog2, 20)
        let data = IOMMUHWInfoARMSMMUv3(bytes: try rig.process.readMemory(address: at, count: IOMMUHWInfoARMSMMUv3.size))
        let unit = try XCTUnwrap(rig.unit as? ArmSMMUv3)
        XCTAssertEqual(data.idr, unit.smmu.idRegisters.idr)
        XCTAssertEqual(data.iidr, unit.smmu.idRegisters.iidr)
        XCTAssertEqual(data.aidr, unit.smmu.idRegisters.aidr)
        XCTAssertEqual(data.idr[0] & 3, 3, "IDR0: S1P and S2P")
        XCTAssertEqual(data.idr[1] >> 6 & 0x1F, 20, "IDR1.SSIDSIZE")
        // Asking for another vendor's structure is refused.
        info.dataType = IOMMUHWInfoType.intelVTd
        info.flags = IOMMUFDConstant.hwInfoFlagInputType
        XCTAssertEqual(rig.iommuCall(IOMMUFDCommand.getHWInfo, &info), neg(.notSupported))
    }

    /// A nesting parent is a stage-2 domain with a VMID; a nested HWPT takes a vSTE. Bits a
    /// guest does not own, a stage-2 or nested Config, or S1CHK EATS are `EIO`; a short
    /// structure is `EINVAL`; the nested domain installs a NESTED STE on the parent's
    /// stage 2 when attached.
    func testNestedHWPTFromAVirtualSTE() throws {
        let rig = try VFIORig.smmuv3()
        let dev = try rig.device()
        let (_, f, devid) = try rig.bound(dev)
        let ioas = try rig.mappedIOAS()
        let (rc, parent) = rig.hwptAlloc(dev: devid, ioas: ioas, flags: IOMMUFDConstant.hwptAllocNestParent)
        XCTAssertEqual(rc, 0)
        let unit = try XCTUnwrap(rig.unit as? ArmSMMUv3)
        XCTAssertEqual(unit.allocatedVMIDs.count, 1, "the parent holds a VMID")
        let v = SMMUv3STE.valid
        XCTAssertEqual(nested(rig, devid, parent, ste0: v | SMMUv3STE.Config.stage2.rawValue << 1).0, neg(.ioError))
        XCTAssertEqual(nested(rig, devid, parent, ste0: v | SMMUv3STE.Config.nested.rawValue << 1).0, neg(.ioError))
        XCTAssertEqual(nested(rig, devid, parent, ste0: v | SMMUv3STE.Config.bypass.rawValue << 1, ste1: 0xFFFF << 32).0,
                       neg(.ioError))
        XCTAssertEqual(nested(rig, devid, parent, ste0: v | SMMUv3STE.Config.stage1.rawValue << 1, ste1: 2 << 28).0,
                       neg(.ioError))
        XCTAssertEqual(nested(rig, devid, parent, ste0: v, length: 8).0, neg(.invalidArgument))
        let (ok, hwpt) = nested(rig, devid, parent, ste0: v | SMMUv3STE.Config.bypass.rawValue << 1)
        XCTAssertEqual(ok, 0)
        XCTAssertEqual(try f.attach(.rid, ptID: hwpt), PageTableObjectID(hwpt))
        let ste = try XCTUnwrap(unit.ste(dev.rid))
        XCTAssertEqual(ste.config, .stage2, "a BYPASS vSTE is the parent's stage 2")
        try dev.dmaWrite(at: 0x1010_0000 + 0x80, bytes: Array("through s2".utf8))
        XCTAssertEqual(try rig.bufferBytes(at: 0x80, count: 10), Array("through s2".utf8))
        try f.detach()
    }

    /// `IOMMU_HWPT_ALLOC` of a nested HWPT with a vSTE on `parent`.
    private func nested(_ rig: VFIORig, _ devid: DeviceObjectID, _ parent: HWPTObjectID, ste0: UInt64, ste1: UInt64 = 0,
                        length: Int = IOMMUHWPTARMSMMUv3.size) -> (Int32, HWPTObjectID) {
        let data = Array(IOMMUHWPTARMSMMUv3(ste0: ste0, ste1: ste1).bytes.prefix(length))
        let at = rig.arg + 0x8000
        try! rig.process.writeMemory(address: at, bytes: data)
        var c = IOMMUHWPTAlloc(devId: devid.rawValue, ptId: parent.rawValue, dataType: IOMMUHWPTDataType.armSMMUv3,
                               dataLen: UInt32(data.count), dataUptr: at)
        let rc = rig.iommuCall(IOMMUFDCommand.hwptAlloc, &c)
        return (rc, HWPTObjectID(rawValue: c.outHwptId))
    }
}
