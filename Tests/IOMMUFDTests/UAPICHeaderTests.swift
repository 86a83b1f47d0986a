import Foundation
import XCTest
import IOMMUFD
import IOMMUFDSelftest

/// The project's own C headers (`Tests/CPrograms/include/linux/iommufd.h` and
/// `Tests/CPrograms/include/selftest/iommufd_test.h`, which the C programs build against)
/// agree with the Swift field tables: a C file of `_Static_assert`s on `sizeof`,
/// `offsetof` and each field's size, written from the tables, must compile against them.
final class UAPICHeaderTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The structures of the two headers; the members of `iommu_test_cmd`'s union are
    /// checked through it.
    static var structures: [any UAPIRecord.Type] {
        UAPIKernelLayoutTests.kernel.filter { entry in
            entry.header != .vfio && !(entry.type is any IOMMUTestPayload.Type)
        }.map { $0.type }
    }

    func testProjectHeadersAgreeWithTheFieldTables() throws {
        let checks = Self.structures.flatMap { Self.assertions(for: $0.layout) }
        XCTAssertGreaterThan(checks.count, 300, "every field of every structure is checked")
        let (status, output) = try Self.compile(checks)
        XCTAssertEqual(status, 0, "the C headers disagree with the Swift field tables:\n\(output)")
    }

    /// The check can fail: one wrong offset is refused by the compiler, naming the field.
    func testAWrongOffsetIsCaught() throws {
        let (status, output) = try Self.compile([Self.assertion("offsetof(struct iommu_ioas_map, iova) == 33")])
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(output.contains("offsetof(struct iommu_ioas_map, iova) == 33"), output)
    }

    // MARK: the C file

    static func assertion(_ condition: String) -> String {
        "_Static_assert(\(condition), \"\(condition)\");"
    }

    /// `sizeof` of the structure, then `offsetof` and size of each field: a nested
    /// structure's and a union member's fields by their C path (`dirty.uptr`), a flexible
    /// array by its offset only.
    static func assertions(for layout: UAPILayout) -> [String] {
        let type = "struct \(layout.name)"
        var out = [assertion("sizeof(\(type)) == \(layout.size)")]
        func fields(of l: UAPILayout, path: String, base: Int) {
            for f in l.fields {
                if f.kind == .union {
                    for member in f.members {
                        out.append(assertion("offsetof(\(type), \(path)\(member.name)) == \(base + f.offset)"))
                        out.append(assertion("sizeof(((\(type) *)0)->\(path)\(member.name)) == \(member.size)"))
                        fields(of: member, path: "\(path)\(member.name).", base: base + f.offset)
                    }
                    continue
                }
                let name = f.kind == .flexibleArray ? String(f.name.dropLast(2)) : f.name
                out.append(assertion("offsetof(\(type), \(path)\(name)) == \(base + f.offset)"))
                if f.kind == .flexibleArray { continue }
                out.append(assertion("sizeof(((\(type) *)0)->\(path)\(name)) == \(f.size)"))
                if f.kind == .structure, let nested = f.members.first {
                    fields(of: nested, path: "\(path)\(name).", base: base + f.offset)
                }
            }
        }
        fields(of: layout, path: "", base: 0)
        return out
    }

    /// Compiles the assertions against the project's headers (never the host's
    /// `<linux/iommufd.h>`): the exit status and the compiler's output.
    static func compile(_ checks: [String]) throws -> (Int32, String) {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("iommukit-uapi-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        let source = work.appendingPathComponent("layout.c")
        let text = ["#include <stddef.h>", "#include <linux/iommufd.h>", "#include \"iommufd_test.h\"", ""] + checks
        try text.joined(separator: "\n").appending("\n").write(to: source, atomically: true, encoding: .utf8)
        let include = root.appendingPathComponent("Tests/CPrograms/include").path
        let p = Foundation.Process()
        p.executableURL = URL(fileURLWithPath: compiler)
        p.arguments = ["-std=c11", "-fsyntax-only", "-I", include, "-I", include + "/selftest", source.path]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, output)
    }

    /// The host C compiler: cc, gcc or clang on PATH (the Swift toolchain ships clang).
    static var compiler: String {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":")
        for name in ["cc", "gcc", "clang"] {
            for dir in path where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
                return "\(dir)/\(name)"
            }
        }
        return "/usr/bin/cc"
    }
}
