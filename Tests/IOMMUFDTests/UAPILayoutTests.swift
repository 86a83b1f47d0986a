import XCTest
@testable import IOMMUFD
import IOMMUFDSelftest

/// The uAPI structures' sizes and min_sizes (min_size: the last field each command's
/// `IOCTL_OP` entry in `iommufd_ioctl_ops[]` names), and the command numbers.
final class UAPILayoutTests: XCTestCase {
    func testStructSizesAndMinSizes() {
        let table: [(String, Int, Int, Int, Int)] = [
            ("iommu_destroy", IOMMUDestroy.size, IOMMUDestroy.minSize, 8, 8),
            ("iommu_ioas_alloc", IOMMUIOASAlloc.size, IOMMUIOASAlloc.minSize, 12, 12),
            ("iommu_ioas_allow_iovas", IOMMUIOASAllowIOVAs.size, IOMMUIOASAllowIOVAs.minSize, 24, 24),
            ("iommu_ioas_copy", IOMMUIOASCopy.size, IOMMUIOASCopy.minSize, 40, 40),
            ("iommu_ioas_iova_ranges", IOMMUIOASIOVARanges.size, IOMMUIOASIOVARanges.minSize, 32, 32),
            ("iommu_ioas_map", IOMMUIOASMap.size, IOMMUIOASMap.minSize, 40, 40),
            ("iommu_ioas_unmap", IOMMUIOASUnmap.size, IOMMUIOASUnmap.minSize, 24, 24),
            ("iommu_option", IOMMUOption.size, IOMMUOption.minSize, 24, 24),
            ("iommu_vfio_ioas", IOMMUVFIOIOAS.size, IOMMUVFIOIOAS.minSize, 12, 12),
            ("iommu_hwpt_alloc", IOMMUHWPTAlloc.size, IOMMUHWPTAlloc.minSize, 48, 24),
            ("iommu_hw_info", IOMMUHWInfo.size, IOMMUHWInfo.minSize, 40, 32),
            ("iommu_hwpt_set_dirty_tracking", IOMMUHWPTSetDirtyTracking.size, IOMMUHWPTSetDirtyTracking.minSize, 16, 16),
            ("iommu_hwpt_get_dirty_bitmap", IOMMUHWPTGetDirtyBitmap.size, IOMMUHWPTGetDirtyBitmap.minSize, 48, 48),
            ("iommu_hwpt_invalidate", IOMMUHWPTInvalidate.size, IOMMUHWPTInvalidate.minSize, 32, 32),
            ("iommu_fault_alloc", IOMMUFaultAlloc.size, IOMMUFaultAlloc.minSize, 16, 16),
            ("iommu_ioas_change_process", IOMMUIOASChangeProcess.size, IOMMUIOASChangeProcess.minSize, 8, 8),
            ("iommu_test_cmd", IOMMUTestCmd.size, IOMMUTestCmd.minSize, 72, 68),
        ]
        for (name, size, min, wantSize, wantMin) in table {
            XCTAssertEqual(size, wantSize, "sizeof(struct \(name))")
            XCTAssertEqual(min, wantMin, "min_size of \(name)")
        }
        XCTAssertEqual(IOMMUHWPTPgfault.size, 40)
        XCTAssertEqual(IOMMUHWPTPageResponse.size, 8)
        XCTAssertEqual(VFIOIOMMUType1Info.size, 24)
        XCTAssertEqual(VFIOIOMMUType1DMAMap.size, 32)
        XCTAssertEqual(VFIOIOMMUType1DMAUnmap.size, 24)
        XCTAssertEqual(IOMMUTestCmd.Dirty.size, 48)
    }

    func testCommandNumbers() {
        XCTAssertEqual(IOMMUFDCommand.destroy, 0x3B80)
        XCTAssertEqual(IOMMUFDCommand.ioasMapFile, 0x3B8F)
        XCTAssertEqual(IOMMUFDCommand.hwQueueAlloc, 0x3B94)
        XCTAssertEqual(IOMMUFDCommand.testCmd, 0x3BA0)
        XCTAssertEqual(IOMMUFDCommand.vfioGetAPIVersion, 0x3B64)
        XCTAssertEqual(IOMMUFDCommand.vfioIOMMUUnmapDMA, 0x3B72)
    }

    func testFieldOffsetsAreExplicit() {
        let m = IOMMUIOASMap(flags: 0x11, ioasId: 0x22, reserved: 0x33, userVa: 0x4444, length: 0x5555, iova: 0x6666)
        let b = UAPIBytes(m.bytes)
        XCTAssertEqual(b.u32(0), 40)
        XCTAssertEqual(b.u32(4), 0x11)
        XCTAssertEqual(b.u32(8), 0x22)
        XCTAssertEqual(b.u32(12), 0x33)
        XCTAssertEqual(b.u64(16), 0x4444)
        XCTAssertEqual(b.u64(24), 0x5555)
        XCTAssertEqual(b.u64(32), 0x6666)
        var t = IOMMUTestCmd(op: 13, id: 7, IOMMUTestCmd.Dirty(flags: 1, iova: 2, length: 3, pageSize: 4, uptr: 5, outNrDirty: 6))
        t.last = 0xabc
        let tb = UAPIBytes(t.bytes)
        XCTAssertEqual(tb.u32(16), 1)
        XCTAssertEqual(tb.u64(24), 2)
        XCTAssertEqual(tb.u64(48), 5)
        XCTAssertEqual(tb.u64(56), 6)
        XCTAssertEqual(tb.u32(64), 0xabc)
        let hi = IOMMUHWInfo(outMaxPasidLog2: 20, reserved2: 1, outCapabilities: 9)
        XCTAssertEqual(UAPIBytes(hi.bytes).u8(28), 20)
        XCTAssertEqual(UAPIBytes(hi.bytes).u8(31), 1)
        XCTAssertEqual(UAPIBytes(hi.bytes).u64(32), 9)
    }
}
