import Foundation
import XCTest

/// The dependency arrows of the README's layout, checked on the sources: a target may not
/// import a module above it. SwiftPM does not always catch such an import (a module built
/// earlier in the same build directory can be found without a declared dependency), so
/// the rule is checked here, on every `import` line of every Swift file of each target.
final class TargetArrowTests: XCTestCase {
    /// The modules each target must never import.
    static let forbidden: [String: Set<String>] = [
        "Platform": ["IOMMUCore", "IOMMUFDDriver", "IOMMUFD", "IOMMUDrivers", "IOMMUFDSelftest", "DriverShims"],
        "IOMMUCore": ["IOMMUFDDriver", "IOMMUFD", "IOMMUDrivers", "IOMMUFDSelftest", "DriverShims"],
        "IOMMUFDDriver": ["IOMMUFD", "IOMMUDrivers", "IOMMUFDSelftest", "DriverShims"],
        "IOMMUDrivers": ["IOMMUFD", "IOMMUFDSelftest", "DriverShims"],
        "IOMMUFD": ["IOMMUDrivers", "IOMMUFDSelftest", "DriverShims"],
        "DriverShims": ["IOMMUFDSelftest"],
        // The conformance suite is vendor-neutral: the core and XCTest only.
        "IOMMUConformance": ["IOMMUFDDriver", "IOMMUFD", "IOMMUDrivers", "IOMMUFDSelftest", "DriverShims"],
    ]

    /// The module names a Swift source imports (`import M`, `@_exported import M`,
    /// `@testable import M`, `import struct M.T`).
    static func importedModules(_ source: String) -> Set<String> {
        var modules: Set<String> = []
        let kinds: Set<String> = ["struct", "class", "enum", "protocol", "typealias", "func", "var", "let"]
        for line in source.split(separator: "\n") {
            var words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            while let first = words.first, first.hasPrefix("@") { words.removeFirst() }
            guard words.first == "import", words.count >= 2 else { continue }
            var name = words[1]
            if kinds.contains(name), words.count >= 3 { name = words[2] }
            modules.insert(String(name.split(separator: ".")[0]))
        }
        return modules
    }

    func testTheScannerSeesEveryImportForm() {
        let source = """
            import Platform
            @_exported import IOMMUCore
              @testable import IOMMUFD
            import struct IOMMUDrivers.Mock
            // import DriverShims (a comment is not an import)
            let important = 1
            """
        XCTAssertEqual(Self.importedModules(source), ["Platform", "IOMMUCore", "IOMMUFD", "IOMMUDrivers"])
    }

    func testNoTargetImportsAModuleAboveIt() throws {
        let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources")
        for (target, banned) in Self.forbidden.sorted(by: { $0.key < $1.key }) {
            let dir = sources.appendingPathComponent(target)
            let files = try XCTUnwrap(FileManager.default.enumerator(atPath: dir.path), "\(target): no sources at \(dir.path)")
                .compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") }
            XCTAssertFalse(files.isEmpty, "\(target): no Swift files under \(dir.path)")
            for file in files {
                let text = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
                let wrong = Self.importedModules(text).intersection(banned)
                XCTAssertTrue(wrong.isEmpty, "Sources/\(target)/\(file) imports \(wrong.sorted()), above \(target) in the layout")
            }
        }
    }
}
