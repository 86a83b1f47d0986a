import IOMMUConformance
import IOMMUCore
import XCTest

/// The `failMapAfterPages` hook's contract, shared by the VT-d and SMMUv3 vendor tests:
/// over one-page calls into `domain`, exactly the budget's pages get through, across
/// calls, then `map_pages` fails with `ENOMEM` having mapped only those; nil lifts it.
/// `budget` reads the domain's `failMapAfterPages`.
func assertMapBudgetCountsPagesAcrossCalls(_ vendor: some ConformanceVendor, rig: Rig, domain d: IOMMUDomain,
                                           budget: () -> Int?, file: StaticString = #filePath,
                                           line: UInt = #line) throws {
    let buf = try rig.buffer(bytes: 4 * 4096)
    XCTAssertNil(budget(), file: file, line: line)
    try vendor.failMapPages(after: 3, in: d)
    XCTAssertEqual(budget(), 3, file: file, line: line)
    var mapped: UInt64 = 0
    try d.mapPages(iova: 0x10_0000, paddr: buf, pgsize: 4096, pgcount: 2, prot: [.read], mapped: &mapped)
    XCTAssertEqual(mapped, 2 * 4096, file: file, line: line)
    XCTAssertEqual(budget(), 1, file: file, line: line)
    mapped = 0
    assertErrno(.noMemory, file: file, line: line) {
        try d.mapPages(iova: 0x10_2000, paddr: buf + 0x2000, pgsize: 4096, pgcount: 2, prot: [.read], mapped: &mapped)
    }
    XCTAssertEqual(mapped, 4096, "one page of the budget was left", file: file, line: line)
    XCTAssertEqual(d.iovaToPhys(0x10_2000), buf + 0x2000, file: file, line: line)
    XCTAssertEqual(d.iovaToPhys(0x10_3000), 0, file: file, line: line)
    XCTAssertEqual(budget(), 0, file: file, line: line)
    assertErrno(.noMemory, file: file, line: line) {
        try d.mapPages(iova: 0x10_3000, paddr: buf + 0x3000, pgsize: 4096, pgcount: 1, prot: [.read], mapped: &mapped)
    }
    XCTAssertEqual(d.iovaToPhys(0x10_3000), 0, file: file, line: line)
    try vendor.failMapPages(after: nil, in: d)
    XCTAssertNil(budget(), file: file, line: line)
    try d.mapPages(iova: 0x10_3000, paddr: buf + 0x3000, pgsize: 4096, pgcount: 1, prot: [.read], mapped: &mapped)
    XCTAssertEqual(d.iovaToPhys(0x10_3000), buf + 0x3000, file: file, line: line)
}
