import XCTest
@testable import IOMMUCore

final class IOTLBGatherTests: XCTestCase {
    func testEmptyAndAddRange() {
        var g = IOTLBGather()
        XCTAssertTrue(g.isEmpty)
        XCTAssertEqual(g.start, .max)
        g.addRange(iova: 0x5000, size: 0x1000)
        g.addRange(iova: 0x2000, size: 0x2000)
        XCTAssertFalse(g.isEmpty)
        XCTAssertEqual(g.start, 0x2000)
        XCTAssertEqual(g.end, 0x5FFF)
        XCTAssertEqual(g.pgsize, 0x1000)
    }

    func testDisjoint() {
        var g = IOTLBGather()
        XCTAssertFalse(g.isDisjoint(iova: 0, size: 0x1000), "an empty gather is never disjoint")
        g.addRange(iova: 0x10000, size: 0x1000)
        XCTAssertFalse(g.isDisjoint(iova: 0x11000, size: 0x1000), "adjacent ranges merge")
        XCTAssertFalse(g.isDisjoint(iova: 0xF000, size: 0x1000))
        XCTAssertTrue(g.isDisjoint(iova: 0x12000, size: 0x1000))
        XCTAssertTrue(g.isDisjoint(iova: 0x0, size: 0x1000))
    }
}
