import Foundation
import XCTest
import IOMMUFD
import IOMMUFDSelftest

/// Every uAPI structure in `Sources` (DriverShims' own aside) against the kernel's layout: its field
/// table (``UAPIRecord``) must give the kernel's `sizeof` and each field's offset and
/// width, be consistent (no overlaps, natural alignment, `sizeof` as C derives it), and
/// round-trip a byte image.
///
/// The expected layouts are written from the kernel this model follows (v6.17):
/// `include/uapi/linux/iommufd.h`, `drivers/iommu/iommufd/iommufd_test.h` and, for the
/// VFIO type1 compatibility structures, `include/uapi/linux/vfio.h`. Each reads
/// `name sizeof: field@offset+width …`, with `union` for the anonymous union of
/// `struct iommu_test_cmd`, whose members follow with offsets from the start of the union.
final class UAPIKernelLayoutTests: XCTestCase {
    /// The kernel header a structure comes from.
    enum Header: String {
        case iommufd = "include/uapi/linux/iommufd.h"
        case iommufdTest = "drivers/iommu/iommufd/iommufd_test.h"
        case vfio = "include/uapi/linux/vfio.h"
    }

    static let kernel: [(type: any UAPIRecord.Type, header: Header, layout: String)] = [
        // include/uapi/linux/iommufd.h
        (IOMMUDestroy.self, .iommufd, "iommu_destroy 8: size@0+4 id@4+4"),
        (IOMMUIOASAlloc.self, .iommufd, "iommu_ioas_alloc 12: size@0+4 flags@4+4 out_ioas_id@8+4"),
        (IOMMUIOVARange.self, .iommufd, "iommu_iova_range 16: start@0+8 last@8+8"),
        (IOMMUIOASIOVARanges.self, .iommufd,
         "iommu_ioas_iova_ranges 32: size@0+4 ioas_id@4+4 num_iovas@8+4 __reserved@12+4 allowed_iovas@16+8"
            + " out_iova_alignment@24+8"),
        (IOMMUIOASAllowIOVAs.self, .iommufd,
         "iommu_ioas_allow_iovas 24: size@0+4 ioas_id@4+4 num_iovas@8+4 __reserved@12+4 allowed_iovas@16+8"),
        (IOMMUIOASMap.self, .iommufd,
         "iommu_ioas_map 40: size@0+4 flags@4+4 ioas_id@8+4 __reserved@12+4 user_va@16+8 length@24+8 iova@32+8"),
        (IOMMUIOASMapFile.self, .iommufd,
         "iommu_ioas_map_file 40: size@0+4 flags@4+4 ioas_id@8+4 fd@12+4 start@16+8 length@24+8 iova@32+8"),
        (IOMMUIOASCopy.self, .iommufd,
         "iommu_ioas_copy 40: size@0+4 flags@4+4 dst_ioas_id@8+4 src_ioas_id@12+4 length@16+8 dst_iova@24+8"
            + " src_iova@32+8"),
        (IOMMUIOASUnmap.self, .iommufd, "iommu_ioas_unmap 24: size@0+4 ioas_id@4+4 iova@8+8 length@16+8"),
        (IOMMUOption.self, .iommufd,
         "iommu_option 24: size@0+4 option_id@4+4 op@8+2 __reserved@10+2 object_id@12+4 val64@16+8"),
        (IOMMUVFIOIOAS.self, .iommufd, "iommu_vfio_ioas 12: size@0+4 ioas_id@4+4 op@8+2 __reserved@10+2"),
        (IOMMUHWPTAlloc.self, .iommufd,
         "iommu_hwpt_alloc 48: size@0+4 flags@4+4 dev_id@8+4 pt_id@12+4 out_hwpt_id@16+4 __reserved@20+4"
            + " data_type@24+4 data_len@28+4 data_uptr@32+8 fault_id@40+4 __reserved2@44+4"),
        (IOMMUHWInfo.self, .iommufd,
         "iommu_hw_info 40: size@0+4 flags@4+4 dev_id@8+4 data_len@12+4 data_uptr@16+8 out_data_type@24+4"
            + " out_max_pasid_log2@28+1 __reserved[0]@29+1 __reserved[1]@30+1 __reserved[2]@31+1"
            + " out_capabilities@32+8"),
        (IOMMUHWPTSetDirtyTracking.self, .iommufd,
         "iommu_hwpt_set_dirty_tracking 16: size@0+4 flags@4+4 hwpt_id@8+4 __reserved@12+4"),
        (IOMMUHWPTGetDirtyBitmap.self, .iommufd,
         "iommu_hwpt_get_dirty_bitmap 48: size@0+4 hwpt_id@4+4 flags@8+4 __reserved@12+4 iova@16+8 length@24+8"
            + " page_size@32+8 data@40+8"),
        (IOMMUHWPTInvalidate.self, .iommufd,
         "iommu_hwpt_invalidate 32: size@0+4 hwpt_id@4+4 data_uptr@8+8 data_type@16+4 entry_len@20+4"
            + " entry_num@24+4 __reserved@28+4"),
        (IOMMUHWPTPgfault.self, .iommufd,
         "iommu_hwpt_pgfault 40: flags@0+4 dev_id@4+4 pasid@8+4 grpid@12+4 perm@16+4 __reserved@20+4 addr@24+8"
            + " length@32+4 cookie@36+4"),
        (IOMMUHWPTPageResponse.self, .iommufd, "iommu_hwpt_page_response 8: cookie@0+4 code@4+4"),
        (IOMMUFaultAlloc.self, .iommufd,
         "iommu_fault_alloc 16: size@0+4 flags@4+4 out_fault_id@8+4 out_fault_fd@12+4"),
        (IOMMUIOASChangeProcess.self, .iommufd, "iommu_ioas_change_process 8: size@0+4 __reserved@4+4"),
        (IOMMUVIOMMUAlloc.self, .iommufd,
         "iommu_viommu_alloc 40: size@0+4 flags@4+4 type@8+4 dev_id@12+4 hwpt_id@16+4 out_viommu_id@20+4"
            + " data_len@24+4 __reserved@28+4 data_uptr@32+8"),
        (IOMMUVDeviceAlloc.self, .iommufd,
         "iommu_vdevice_alloc 24: size@0+4 viommu_id@4+4 dev_id@8+4 out_vdevice_id@12+4 virt_id@16+8"),
        (IOMMUVEventQAlloc.self, .iommufd,
         "iommu_veventq_alloc 32: size@0+4 flags@4+4 viommu_id@8+4 type@12+4 veventq_depth@16+4"
            + " out_veventq_id@20+4 out_veventq_fd@24+4 __reserved@28+4"),
        (IOMMUFDVEventHeader.self, .iommufd, "iommufd_vevent_header 8: flags@0+4 sequence@4+4"),
        (IOMMUHWQueueAlloc.self, .iommufd,
         "iommu_hw_queue_alloc 40: size@0+4 flags@4+4 viommu_id@8+4 type@12+4 index@16+4 out_hw_queue_id@20+4"
            + " nesting_parent_iova@24+8 length@32+8"),

        (IOMMUHWInfoARMSMMUv3.self, .iommufd,
         "iommu_hw_info_arm_smmuv3 40: flags@0+4 __reserved@4+4 idr@8+24 iidr@32+4 aidr@36+4"),
        (IOMMUHWPTARMSMMUv3.self, .iommufd, "iommu_hwpt_arm_smmuv3 16: ste@0+16"),
        (IOMMUVIOMMUARMSMMUv3Invalidate.self, .iommufd, "iommu_viommu_arm_smmuv3_invalidate 16: cmd@0+16"),
        // drivers/iommu/iommufd/iommufd_test.h
        (IOMMUTestCmd.self, .iommufdTest,
         "iommu_test_cmd 72: size@0+4 op@4+4 id@8+4 __reserved@12+4 union@16+48 last@64+4"),
        (IOMMUTestCmd.AddReserved.self, .iommufdTest, "add_reserved 16: start@0+8 length@8+8"),
        (IOMMUTestCmd.MockDomain.self, .iommufdTest,
         "mock_domain 12: out_stdev_id@0+4 out_hwpt_id@4+4 out_idev_id@8+4"),
        (IOMMUTestCmd.MockDomainFlags.self, .iommufdTest,
         "mock_domain_flags 16: out_stdev_id@0+4 out_hwpt_id@4+4 out_idev_id@8+4 dev_flags@12+4"),
        (IOMMUTestCmd.MockDomainReplace.self, .iommufdTest, "mock_domain_replace 4: pt_id@0+4"),
        (IOMMUTestCmd.CheckMap.self, .iommufdTest, "check_map 24: iova@0+8 length@8+8 uptr@16+8"),
        (IOMMUTestCmd.CheckRefs.self, .iommufdTest, "check_refs 24: length@0+8 uptr@8+8 refs@16+4"),
        (IOMMUTestCmd.CreateAccess.self, .iommufdTest, "create_access 8: out_access_fd@0+4 flags@4+4"),
        (IOMMUTestCmd.DestroyAccessPages.self, .iommufdTest, "destroy_access_pages 4: access_pages_id@0+4"),
        (IOMMUTestCmd.AccessPages.self, .iommufdTest,
         "access_pages 32: flags@0+4 out_access_pages_id@4+4 iova@8+8 length@16+8 uptr@24+8"),
        (IOMMUTestCmd.AccessRW.self, .iommufdTest, "access_rw 32: iova@0+8 length@8+8 uptr@16+8 flags@24+4"),
        (IOMMUTestCmd.MemoryLimit.self, .iommufdTest, "memory_limit 4: limit@0+4"),
        (IOMMUTestCmd.AccessReplaceIOAS.self, .iommufdTest, "access_replace_ioas 4: ioas_id@0+4"),
        (IOMMUTestCmd.Dirty.self, .iommufdTest,
         "dirty 48: flags@0+4 iova@8+8 length@16+8 page_size@24+8 uptr@32+8 out_nr_dirty@40+8"),
        (IOMMUTestCmd.CheckIOTLB.self, .iommufdTest, "check_iotlb 8: id@0+4 iotlb@4+4"),
        (IOMMUTestCmd.TriggerIOPF.self, .iommufdTest,
         "trigger_iopf 24: dev_id@0+4 pasid@4+4 grpid@8+4 perm@12+4 addr@16+8"),
        (IOMMUTestCmd.CheckDevCache.self, .iommufdTest, "check_dev_cache 8: id@0+4 cache@4+4"),
        (IOMMUTestCmd.TriggerVEvent.self, .iommufdTest, "trigger_vevent 4: dev_id@0+4"),
        (IOMMUTestCmd.PasidAttach.self, .iommufdTest, "pasid_attach 8: pasid@0+4 pt_id@4+4"),
        (IOMMUTestCmd.PasidReplace.self, .iommufdTest, "pasid_replace 8: pasid@0+4 pt_id@4+4"),
        (IOMMUTestCmd.PasidDetach.self, .iommufdTest, "pasid_detach 4: pasid@0+4"),
        (IOMMUTestCmd.PasidCheck.self, .iommufdTest, "pasid_check 8: pasid@0+4 hwpt_id@4+4"),
        (IOMMUTestHWInfo.self, .iommufdTest, "iommu_test_hw_info 8: flags@0+4 test_reg@4+4"),
        (IOMMUHWPTSelftest.self, .iommufdTest, "iommu_hwpt_selftest 4: iotlb@0+4"),
        (IOMMUHWPTInvalidateSelftest.self, .iommufdTest, "iommu_hwpt_invalidate_selftest 8: flags@0+4 iotlb_id@4+4"),
        (IOMMUVIOMMUSelftest.self, .iommufdTest,
         "iommu_viommu_selftest 24: in_data@0+4 out_data@4+4 out_mmap_offset@8+8 out_mmap_length@16+8"),
        (IOMMUVIOMMUInvalidateSelftest.self, .iommufdTest,
         "iommu_viommu_invalidate_selftest 12: flags@0+4 vdev_id@4+4 cache_id@8+4"),
        (IOMMUVIOMMUEventSelftest.self, .iommufdTest, "iommu_viommu_event_selftest 4: virt_id@0+4"),

        // include/uapi/linux/vfio.h: the type1 container structures of the compatibility layer
        (VFIOIOMMUType1Info.self, .vfio,
         "vfio_iommu_type1_info 24: argsz@0+4 flags@4+4 iova_pgsizes@8+8 cap_offset@16+4 pad@20+4"),
        (VFIOIOMMUType1DMAMap.self, .vfio,
         "vfio_iommu_type1_dma_map 32: argsz@0+4 flags@4+4 vaddr@8+8 iova@16+8 size@24+8"),
        (VFIOIOMMUType1DMAUnmap.self, .vfio,
         "vfio_iommu_type1_dma_unmap 24: argsz@0+4 flags@4+4 iova@8+8 size@16+8 data[]@24+0"),
        (VFIOInfoCapHeader.self, .vfio, "vfio_info_cap_header 8: id@0+2 version@2+2 next@4+4"),
        (VFIOIOVARange.self, .vfio, "vfio_iova_range 16: start@0+8 end@8+8"),
        (VFIOIOMMUType1InfoCapIOVARange.self, .vfio,
         "vfio_iommu_type1_info_cap_iova_range 16: header@0+8 nr_iovas@8+4 reserved@12+4 iova_ranges[]@16+0"),
        (VFIOIOMMUType1InfoDMAAvail.self, .vfio, "vfio_iommu_type1_info_dma_avail 12: header@0+8 avail@8+4"),
    ]

    /// `min_size` of each ioctl argument: `offsetofend` of the `last` field of the kernel's
    /// ioctl table (`IOCTL_OP` in `drivers/iommu/iommufd/main.c`), or the `minsz` of the
    /// VFIO handler (`drivers/iommu/iommufd/vfio_compat.c`).
    static let minSizes: [(type: any UAPIStruct.Type, last: String, minSize: Int)] = [
        (IOMMUDestroy.self, "id", 8),
        (IOMMUIOASAlloc.self, "out_ioas_id", 12),
        (IOMMUIOASAllowIOVAs.self, "allowed_iovas", 24),
        (IOMMUIOASCopy.self, "src_iova", 40),
        (IOMMUIOASIOVARanges.self, "out_iova_alignment", 32),
        (IOMMUIOASMap.self, "iova", 40),
        (IOMMUIOASMapFile.self, "iova", 40),
        (IOMMUIOASUnmap.self, "length", 24),
        (IOMMUOption.self, "val64", 24),
        (IOMMUVFIOIOAS.self, "__reserved", 12),
        (IOMMUHWPTAlloc.self, "__reserved", 24),
        (IOMMUHWInfo.self, "__reserved", 32),
        (IOMMUHWPTSetDirtyTracking.self, "__reserved", 16),
        (IOMMUHWPTGetDirtyBitmap.self, "data", 48),
        (IOMMUHWPTInvalidate.self, "__reserved", 32),
        (IOMMUFaultAlloc.self, "out_fault_fd", 16),
        (IOMMUIOASChangeProcess.self, "__reserved", 8),
        (IOMMUVIOMMUAlloc.self, "out_viommu_id", 24),
        (IOMMUVDeviceAlloc.self, "virt_id", 24),
        (IOMMUVEventQAlloc.self, "out_veventq_fd", 28),
        (IOMMUHWQueueAlloc.self, "length", 40),
        (IOMMUTestCmd.self, "last", 68),
        (VFIOIOMMUType1Info.self, "iova_pgsizes", 16),
        (VFIOIOMMUType1DMAMap.self, "size", 32),
        (VFIOIOMMUType1DMAUnmap.self, "size", 24),
    ]

    func testEveryStructureHasTheKernelLayout() {
        for (type, header, want) in Self.kernel {
            XCTAssertEqual(type.layout.summary, want, "struct \(type.cName) of \(header.rawValue)")
        }
    }

    func testEveryIoctlArgumentHasTheKernelMinSize() {
        for (type, last, want) in Self.minSizes {
            XCTAssertEqual(type.minSize, want, "min_size of struct \(type.cName) (offsetofend \(last))")
        }
        let arguments = Self.kernel.filter { $0.type is any UAPIStruct.Type }.map { $0.type.cName }
        XCTAssertEqual(Set(arguments), Set(Self.minSizes.map { $0.type.cName }), "every ioctl argument has its min_size here")
    }

    func testEveryFieldTableIsConsistent() {
        for (type, _, _) in Self.kernel {
            XCTAssertEqual(type.layout.problems, [], "struct \(type.cName)")
        }
    }

    func testEveryStructureRoundTripsItsBytes() {
        for (type, _, _) in Self.kernel {
            XCTAssertEqual(type.roundTripProblems, [], "struct \(type.cName)")
        }
    }

    /// A structure declared in `Sources` but missing above would go untested (DriverShims'
    /// own are listed by its tests).
    func testEveryDeclaredStructureIsListed() throws {
        let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources")
        let modules = try FileManager.default.contentsOfDirectory(atPath: sources.path).filter { $0 != "DriverShims" }
        let declared = try UAPISourceScan.declaredNames(in: modules.map { sources.appendingPathComponent($0) })
        XCTAssertFalse(declared.isEmpty, "the scan finds the declarations")
        let listed = Set(Self.kernel.map { $0.type.cName })
        XCTAssertEqual(Self.kernel.count, listed.count, "each structure is listed once")
        XCTAssertEqual(declared.subtracting(listed), [], "declared in Sources but without the kernel's layout here")
        XCTAssertEqual(listed.subtracting(declared), [], "listed here but not declared in Sources")
    }

    /// The union of `struct iommu_test_cmd` holds each member at its start: a member's
    /// fields land at the union's offset plus their own.
    func testTestCmdUnionMembersSitAtTheUnion() {
        let cmd = IOMMUTestCmd(op: IOMMUTestOp.dirty, id: 7,
                               IOMMUTestCmd.Dirty(flags: 1, iova: 2, length: 3, pageSize: 4, uptr: 5, outNrDirty: 6))
        let image = UAPIBytes(cmd.bytes)
        let union = IOMMUTestCmd.layout.fields.first { $0.kind == .union }!
        XCTAssertEqual(union.offset, 16)
        XCTAssertEqual(image.u64(union.offset + IOMMUTestCmd.Dirty.offset(of: "uptr")), 5)
        XCTAssertEqual(image.u64(union.offset + IOMMUTestCmd.Dirty.offset(of: "out_nr_dirty")), 6)
        XCTAssertEqual(IOMMUTestCmd(image).member(IOMMUTestCmd.Dirty.self).pageSize, 4)
        XCTAssertEqual(Set(union.members.map(\.name)),
                       Set(Self.kernel.filter { $0.type is any IOMMUTestPayload.Type }.map { $0.type.cName }))
    }

    /// A short image reads as zero-extended, and a field cut by the end keeps its bytes
    /// that are there, as before the tables.
    func testShortImagesReadZeroExtended() {
        let short = IOMMUIOASMap(bytes: [40, 0, 0, 0, 7, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0x11, 0x22, 0x33])
        XCTAssertEqual(short, IOMMUIOASMap(flags: 7, ioasId: 9, userVa: 0x33_2211))
        XCTAssertEqual(IOMMUIOASMap(bytes: []).size, 0, "a missing size word reads as 0, not sizeof")
    }

    /// A vSMMU invalidation entry is the guest's command as it sits in a command queue:
    /// `cmd[0]` at offset 0 with the opcode in its first byte, `cmd[1]` at 8, both
    /// little-endian; the image reads back as the same entry.
    func testVSMMUInvalidationEntryIsTwoLittleEndianWords() {
        let entry = IOMMUVIOMMUARMSMMUv3Invalidate(cmd0: 0x0007_0005_0000_0012, cmd1: 0x0000_1234_5000_0001)
        XCTAssertEqual(IOMMUVIOMMUARMSMMUv3Invalidate.offset(of: "cmd"), 0)
        let image = entry.bytes
        XCTAssertEqual(image.count, 16)
        XCTAssertEqual(image[0], 0x12, "TLBI_NH_VA's opcode is the entry's first byte")
        XCTAssertEqual(image[4], 0x05, "the VMID field starts at byte 4")
        XCTAssertEqual(UAPIBytes(image).u64(0), 0x0007_0005_0000_0012)
        XCTAssertEqual(UAPIBytes(image).u64(8), 0x0000_1234_5000_0001)
        XCTAssertEqual(IOMMUVIOMMUARMSMMUv3Invalidate(bytes: image), entry)
        XCTAssertEqual(IOMMUVIOMMUARMSMMUv3Invalidate(bytes: Array(image.prefix(8))).cmd, [0x0007_0005_0000_0012, 0],
                       "a short entry reads zero-extended")
    }
}

/// Finds the structures a module declares (a line `public static let cName = "…"`, not
/// in a comment) by reading its sources.
enum UAPISourceScan {
    static func declaredNames(in folders: [URL]) throws -> Set<String> {
        let pattern = try NSRegularExpression(pattern: #"^\s*(?:public |package )?static let cName = "([^"]+)""#,
                                                options: [.anchorsMatchLines])
        var names: Set<String> = []
        for folder in folders {
            guard let files = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: nil) else { continue }
            for case let file as URL in files where file.pathExtension == "swift" {
                let text = try String(contentsOf: file, encoding: .utf8)
                for m in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                    names.insert(String(text[Range(m.range(at: 1), in: text)!]))
                }
            }
        }
        return names
    }
}
