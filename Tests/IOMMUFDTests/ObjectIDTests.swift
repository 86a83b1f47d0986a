import Foundation
import XCTest
import IOMMUCore
@testable import IOMMUFD

/// Typed iommufd object IDs: each kind is its own type, a `pt_id` is an IOAS or a HWPT in
/// types, and the typed API returns and takes them; the raw uAPI keeps its integers.
final class ObjectIDTests: XCTestCase {
    func testValueSemantics() {
        let ioas: IOASObjectID = 2
        XCTAssertEqual(ioas.rawValue, 2)
        XCTAssertEqual(ioas.description, "IOAS#2")
        XCTAssertEqual(HWPTObjectID(rawValue: 7).description, "HWPT#7")
        XCTAssertEqual(VEventQueueObjectID(rawValue: 1).description, "VEVENTQ#1")
        XCTAssertLessThan(IOASObjectID(rawValue: 1), ioas)
        XCTAssertEqual(PageTableObjectID(ioas).rawValue, 2)
        XCTAssertEqual(PageTableObjectID(HWPTObjectID(rawValue: 3)), 3)
        XCTAssertEqual(AnyIOMMUFDObjectID(DeviceObjectID(rawValue: 4)), 4)
        XCTAssertEqual(MemoryLayout<HWPTObjectID>.size, 4, "a typed ID is its number")
    }

    /// The typed calls return typed IDs; an object's `id` has its kind's type; a `pt_id`
    /// accepts an IOAS, a HWPT or an erased one; narrowing checks the table.
    func testTypedCallsCarryTheKind() throws {
        let s = try SelftestFD()
        let fd = s.fd
        let dev = try s.machine.addDevice(PCIDevice(rid: RID(bus: 0x41, device: 0, function: 0)), behind: s.backend.unit)
        let idev = try fd.deviceBind(dev)
        let device: DeviceObjectID = idev.id
        let ioas: IOASObjectID = try fd.allocIOAS()
        let auto: HWPTObjectID = try fd.deviceAttach(idev, ptID: ioas)
        XCTAssertNotEqual(auto.rawValue, ioas.rawValue, "an IOAS attaches through an auto domain")
        let paging = try fd.allocHWPT(device: device, pt: ioas)
        XCTAssertEqual(try fd.deviceReplace(idev, ptID: paging), paging)
        let back = try fd.deviceReplace(idev, ptID: PageTableObjectID(ioas))
        XCTAssertEqual(fd.objectID(back, as: IOMMUFDKind.HWPT.self), back, "an erased pt_id resolves to a HWPT")
        fd.deviceDetach(idev)

        XCTAssertEqual(fd.objectID(AnyIOMMUFDObjectID(device), as: IOMMUFDKind.Device.self), device)
        XCTAssertNil(fd.objectID(AnyIOMMUFDObjectID(device), as: IOMMUFDKind.IOAS.self), "a DEVICE is not an IOAS")
        XCTAssertEqual(fd.objectID(ioas, as: IOMMUFDKind.PageTable.self), PageTableObjectID(ioas))
        XCTAssertEqual(fd.objectID(paging, as: IOMMUFDKind.HWPT.self), paging)
        XCTAssertNil(fd.objectID(999 as AnyIOMMUFDObjectID, as: IOMMUFDKind.Object.self), "nothing lives at 999")
        XCTAssertEqual(fd.objectSnapshot.first { $0.id == AnyIOMMUFDObjectID(ioas) }?.type, .ioas)

        let (fault, faultFD) = try fd.allocFaultQueue()
        XCTAssertEqual(fd.objectID(fault, as: IOMMUFDKind.Fault.self), fault)
        XCTAssertEqual(fd.closeFile(faultFD), 0)
        try fd.destroy(fault)
        XCTAssertThrowsError(try fd.destroy(ioas)) { XCTAssertEqual($0 as? Errno, .busy, "the paging HWPT holds it") }
        try fd.destroy(paging)
        fd.deviceUnbind(idev)
        try fd.destroy(ioas)
        XCTAssertFalse(fd.hasObjects)
    }

    // MARK: what must not compile

    /// Mix-ups the types refuse, each on its own line: the compiler must reject every
    /// one, for the ID's kind. One `swiftc -typecheck` over the built modules.
    static let mixUps: [(name: String, code: String)] = [
        ("a HWPT where an IOAS is required", "_ = try fd.map(ioas: hwpt, userVA: 0, length: 4096)"),
        ("an IOAS where a device is required", "_ = try fd.allocHWPT(device: ioas, pt: ioas)"),
        ("a device as an attach target", "_ = try fd.deviceAttach(idev, ptID: idev.id)"),
        ("a fault queue as a HWPT parent", "_ = try fd.allocHWPT(device: idev.id, pt: fault)"),
        ("a HWPT as an access's IOAS", "try fd.accessAttach(access, ioasID: hwpt)"),
        ("an IOAS as a HWPT", "try fd.setDirtyTracking(hwpt: ioas, enabled: true)"),
        ("an erased pt_id as an IOAS", "_ = try fd.iovaRanges(ioas: pt)"),
        ("a bare number", "_ = try fd.hugePages(ioas: UInt32(1))"),
    ]

    static let preamble = """
        import IOMMUCore
        import IOMMUFD
        func use(_ fd: IOMMUFD, _ idev: DeviceObject, _ access: AccessObject, _ ioas: IOASObjectID,
                 _ hwpt: HWPTObjectID, _ fault: FaultObjectID, _ pt: PageTableObjectID,
                 _ viommu: VIOMMUObjectID) throws(Errno) {
        """

    func testMixUpsDoNotCompile() throws {
        let body = Self.mixUps.map { "    \($0.code)" }.joined(separator: "\n")
        let (status, output) = try Self.typecheck(Self.preamble + "\n" + body + "\n}\n")
        XCTAssertNotEqual(status, 0)
        let firstLine = Self.preamble.split(separator: "\n", omittingEmptySubsequences: false).count + 1
        for (i, mixUp) in Self.mixUps.enumerated() {
            XCTAssertTrue(output.contains("snippet.swift:\(firstLine + i):"), "\(mixUp.name) compiled:\n\(output)")
        }
    }

    /// The harness itself: the same preamble with the right kinds compiles.
    func testRightKindsCompile() throws {
        let body = """
                _ = try fd.map(ioas: ioas, userVA: 0, length: 4096)
                _ = try fd.allocHWPT(device: idev.id, pt: ioas)
                _ = try fd.allocHWPT(device: idev.id, pt: hwpt, faultID: fault)
                _ = try fd.allocHWPT(device: idev.id, pt: viommu)
                _ = try fd.deviceAttach(idev, ptID: ioas)
                _ = try fd.deviceAttach(idev, ptID: hwpt)
                _ = try fd.deviceReplace(idev, ptID: pt)
                try fd.accessAttach(access, ioasID: ioas)
                try fd.setDirtyTracking(hwpt: hwpt, enabled: true)
                try fd.destroy(fault)
                try fd.destroy(PageTableObjectID(hwpt))
            }
            """
        let (status, output) = try Self.typecheck(Self.preamble + "\n" + body + "\n")
        XCTAssertEqual(status, 0, output)
    }

    /// `swiftc -typecheck` of `source` against the modules this test was built with.
    static func typecheck(_ source: String) throws -> (Int32, String) {
        guard let modules = builtModules() else { throw XCTSkip("the build's Modules directory is not found") }
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("iommukit-ids-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        let file = work.appendingPathComponent("snippet.swift")
        try source.write(to: file, atomically: true, encoding: .utf8)
        let p = Foundation.Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["swiftc", "-typecheck", "-I", modules.path, file.path]
        p.currentDirectoryURL = work
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// The `Modules` directory next to the test binary (or a few levels up, for a bundle)
    /// that holds `IOMMUFD.swiftmodule`.
    static func builtModules() -> URL? {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<5 {
            let m = dir.appendingPathComponent("Modules")
            if FileManager.default.fileExists(atPath: m.appendingPathComponent("IOMMUFD.swiftmodule").path) { return m }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }
}
