import XCTest
import IOMMUFD

/// The field-table mechanism itself (``UAPIRecord``): the parts no iommufd structure of
/// today exercises alone (fixed arrays), the layout checks catching a bad table, and the
/// description a reader sees.
final class UAPIRecordTests: XCTestCase {
    /// `struct iommu_hw_info_arm_smmuv3` of `include/uapi/linux/iommufd.h`, declared here as
    /// a vendor would: a fixed array (`__u32 idr[6]`) among scalars.
    struct SMMUv3HWInfo: UAPIRecord, Equatable {
        static let cName = "iommu_hw_info_arm_smmuv3"
        static let size = 40
        static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
            f.field("flags", 0, &v.flags)
            f.field("__reserved", 4, &v.reserved)
            f.array("idr", 8, count: 6, &v.idr)
            f.field("iidr", 32, &v.iidr)
            f.field("aidr", 36, &v.aidr)
        }
        var flags: UInt32 = 0
        var reserved: UInt32 = 0
        var idr = [UInt32](repeating: 0, count: 6)
        var iidr: UInt32 = 0
        var aidr: UInt32 = 0
    }

    func testFixedArraysDecodeEncodeAndCheck() {
        XCTAssertEqual(SMMUv3HWInfo.layout.summary,
                       "iommu_hw_info_arm_smmuv3 40: flags@0+4 __reserved@4+4 idr@8+24 iidr@32+4 aidr@36+4")
        XCTAssertEqual(SMMUv3HWInfo.layout.problems, [])
        XCTAssertEqual(SMMUv3HWInfo.roundTripProblems, [])
        var v = SMMUv3HWInfo()
        v.idr[1] = 0x1122_3344
        v.aidr = 7
        let image = UAPIBytes(v.bytes)
        XCTAssertEqual(image.u32(8 + 4), 0x1122_3344)
        XCTAssertEqual(image.u32(36), 7)
        XCTAssertEqual(SMMUv3HWInfo(image), v)
        XCTAssertEqual(SMMUv3HWInfo.offset(of: "iidr"), 32)
        XCTAssertEqual(SMMUv3HWInfo.offsetOfEnd("idr"), 32)
    }

    /// A table the checks refuse: a field that overlaps the one before it, a misaligned
    /// `__u64`, a `sizeof` that is not the fields', an array of the wrong default length.
    struct Broken: UAPIRecord {
        static let cName = "broken"
        static let size = 20
        static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
            f.field("a", 0, &v.a)
            f.field("b", 2, &v.b)
            f.field("c", 4, &v.c)
            f.array("d", 12, count: 2, &v.d)
        }
        var a: UInt32 = 0
        var b: UInt32 = 0
        var c: UInt64 = 0
        var d: [UInt32] = []
    }

    func testTheChecksCatchABrokenTable() {
        XCTAssertEqual(Broken.layout.problems, [
            "d holds 0 elements by default; the table says 2",
            "broken.b at 2 overlaps the field before it (ends at 4)",
            "broken.b at 2 is not 4-byte aligned",
            "broken.c at 4 overlaps the field before it (ends at 6)",
            "broken.c at 4 is not 8-byte aligned",
            "broken: sizeof is declared 20; the fields make it 24",
        ])
    }

    /// Nested structures decode in place, and the description prints the structure as C
    /// declares it.
    func testNestedStructuresAndDescription() {
        let cap = VFIOIOMMUType1InfoDMAAvail(header: VFIOInfoCapHeader(id: 3, version: 1, next: 0x40), avail: 9)
        XCTAssertEqual(cap.bytes, [3, 0, 1, 0, 0x40, 0, 0, 0, 9, 0, 0, 0])
        XCTAssertEqual(VFIOIOMMUType1InfoDMAAvail(bytes: cap.bytes), cap)
        XCTAssertEqual(VFIOIOMMUType1InfoCapIOVARange.layout.description, """
            struct vfio_iommu_type1_info_cap_iova_range {
                struct vfio_info_cap_header header;         /* 0 8 */
                __u32 nr_iovas;                             /* 8 4 */
                __u32 reserved;                             /* 12 4 */
                struct vfio_iova_range iova_ranges[];       /* 16 0 */
            };                                              /* sizeof 16 */
            """)
    }

    /// Decoding at an offset reads an element of an array.
    func testArrayElementsDecodeAtTheirOffset() {
        let ranges = [IOMMUIOVARange(start: 1, last: 2), IOMMUIOVARange(start: 3, last: 4)]
        let image = UAPIBytes(ranges.flatMap(\.bytes))
        XCTAssertEqual(IOMMUIOVARange(image, at: IOMMUIOVARange.size), ranges[1])
    }
}
