import XCTest
@testable import IOMMUCore

/// The hardware walk: permissions, faults and A/D bits.
final class PageWalkTests: XCTestCase {
    let memory = PhysicalMemory(size: 8 << 30)

    func walk(_ t: IOPageTable, _ iova: UInt64, _ access: WalkAccess, ad: Bool = false) -> PageWalkResult {
        IOPageTable.walk(memory: memory, format: t.format, root: t.root, iova: IOVA(rawValue: iova), access: access, setAccessedDirty: ad)
    }

    func testX86WriteToReadOnlyFaults() throws {
        let t = try IOPageTable(format: .x86_64(levels: 4), memory: memory)
        try mapOne(t, 0x1000, 0x9000, K4, prot: .read)
        XCTAssertEqual(walk(t, 0x1000, [.write, .user]), .permission(level: 1))
        XCTAssertEqual(walk(t, 0x1000, .write), .permission(level: 1), "supervisor writes fault too (CR0.WP)")
        XCTAssertEqual(walk(t, 0x1010, [.read, .user]), .translated(pa: 0x9010, pageSize: K4, perms: [.read]))
    }

    func testX86UserAccessToPrivPageFaults() throws {
        let t = try IOPageTable(format: .x86_64(levels: 5), memory: memory)
        try mapOne(t, M2, 0x40_0000, M2, prot: [.read, .write, .priv])
        XCTAssertEqual(walk(t, M2 + 8, [.read, .user]), .permission(level: 2))
        XCTAssertEqual(walk(t, M2 + 8, [.read, .write]),
                       .translated(pa: 0x40_0008, pageSize: M2, perms: [.read, .write, .priv]))
    }

    func testX86ExecuteBlockedByXD() throws {
        let t = try IOPageTable(format: .x86_64(levels: 4), memory: memory)
        try mapOne(t, 0, 0x9000, K4, prot: [.read, .noexec])
        try mapOne(t, K4, 0xA000, K4, prot: [.read])
        XCTAssertEqual(walk(t, 0, [.execute, .user]), .permission(level: 1))
        XCTAssertEqual(walk(t, K4, [.execute, .user]), .translated(pa: 0xA000, pageSize: K4, perms: [.read]))
    }

    func testNotPresentReportsLevel() throws {
        let t = try IOPageTable(format: .x86_64(levels: 4), memory: memory)
        XCTAssertEqual(walk(t, 0x1000, .read), .notPresent(level: 4))
        try mapOne(t, 0x1000, 0x9000, K4)
        XCTAssertEqual(walk(t, 0x2000, .read), .notPresent(level: 1))
        XCTAssertEqual(walk(t, M2, .read), .notPresent(level: 2))
        XCTAssertEqual(walk(t, 1 << 48, .read), .notPresent(level: 4), "beyond vaBits")
    }

    func testVTdReadWritePermissions() throws {
        let t = try IOPageTable(format: .vtdSecondStage(levels: 3), memory: memory)
        try mapOne(t, 0, 0x9000, K4, prot: [.write])
        try mapOne(t, K4, 0xA000, K4, prot: [.read, .noexec])
        XCTAssertEqual(walk(t, 0, .read), .permission(level: 1))
        XCTAssertEqual(walk(t, 0, .write), .translated(pa: 0x9000, pageSize: K4, perms: [.write]))
        XCTAssertEqual(walk(t, K4, .write), .permission(level: 1))
        XCTAssertEqual(walk(t, K4, .execute), .permission(level: 1))
        XCTAssertEqual(walk(t, K4 + 4, [.read, .user]), .translated(pa: 0xA004, pageSize: K4, perms: [.read, .noexec]))
    }

    func testAccessedAndDirtyBitsX86() throws {
        let t = try IOPageTable(format: .x86_64(levels: 4), memory: memory)
        try mapOne(t, 0, 0x9000, K4)
        let leafSlot: () -> UInt64 = {
            var table = t.root
            for _ in 0..<3 { table = PhysicalAddress(rawValue: self.memory.load64(table) & 0x000F_FFFF_FFFF_F000) }
            return self.memory.load64(table)
        }
        XCTAssertEqual(leafSlot() & 0x60, 0)
        _ = walk(t, 0, .read, ad: true)
        XCTAssertEqual(leafSlot() & 0x60, 0x20, "read sets A only")
        _ = walk(t, 0, .write, ad: false)
        XCTAssertEqual(leafSlot() & 0x60, 0x20, "no A/D update when not asked")
        _ = walk(t, 0, .write, ad: true)
        XCTAssertEqual(leafSlot() & 0x60, 0x60, "write sets D")
    }

    func testVTdDirtyIsBit9() throws {
        let t = try IOPageTable(format: .vtdSecondStage(levels: 4), memory: memory)
        try mapOne(t, 0, 0x9000, K4)
        _ = walk(t, 0, .write, ad: true)
        var table = t.root
        for _ in 0..<3 {
            XCTAssertEqual(memory.load64(table) & 0x100, 0x100, "A on every entry used")
            table = PhysicalAddress(rawValue: memory.load64(table) & 0x000F_FFFF_FFFF_F000)
        }
        XCTAssertEqual(memory.load64(table) & 0x300, 0x300)
    }
}
