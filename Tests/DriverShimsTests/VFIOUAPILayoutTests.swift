import Foundation
import XCTest
import IOMMUFD
import DriverShims

/// The VFIO cdev structures of DriverShims against the kernel's layout
/// (`include/uapi/linux/vfio.h`, v6.17): `sizeof`, each field's offset and width as
/// `name sizeof: field@offset+width …`, `minsz`, a consistent table, a byte round trip.
final class VFIOUAPILayoutTests: XCTestCase {
    static let kernel: [(type: any UAPIStruct.Type, layout: String, minsz: Int)] = [
        (VFIODeviceBindIOMMUFD.self,
         "vfio_device_bind_iommufd 24: argsz@0+4 flags@4+4 iommufd@8+4 out_devid@12+4 token_uuid_ptr@16+8",
         16),  // vfio_df_ioctl_bind_iommufd: offsetofend(out_devid)
        (VFIODeviceAttachIOMMUFDPT.self,
         "vfio_device_attach_iommufd_pt 16: argsz@0+4 flags@4+4 pt_id@8+4 pasid@12+4",
         12),  // vfio_df_ioctl_attach_pt: offsetofend(pt_id)
        (VFIODeviceDetachIOMMUFDPT.self,
         "vfio_device_detach_iommufd_pt 12: argsz@0+4 flags@4+4 pasid@8+4",
         8),  // vfio_df_ioctl_detach_pt: offsetofend(flags)
    ]

    func testEveryStructureHasTheKernelLayout() {
        for (type, want, minsz) in Self.kernel {
            XCTAssertEqual(type.layout.summary, want, "struct \(type.cName)")
            XCTAssertEqual(type.minSize, minsz, "minsz of struct \(type.cName)")
            XCTAssertEqual(type.layout.problems, [], "struct \(type.cName)")
            XCTAssertEqual(type.roundTripProblems, [], "struct \(type.cName)")
        }
    }

    /// A structure declared in DriverShims but missing above would go untested.
    func testEveryDeclaredStructureIsListed() throws {
        let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources/DriverShims")
        let pattern = try NSRegularExpression(pattern: #"^\s*(?:public |package )?static let cName = "([^"]+)""#,
                                              options: [.anchorsMatchLines])
        var declared: Set<String> = []
        for case let file as URL in FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)!
        where file.pathExtension == "swift" {
            let text = try String(contentsOf: file, encoding: .utf8)
            for m in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                declared.insert(String(text[Range(m.range(at: 1), in: text)!]))
            }
        }
        XCTAssertEqual(declared, Set(Self.kernel.map { $0.type.cName }))
    }
}
