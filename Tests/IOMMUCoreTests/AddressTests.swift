import XCTest
import IOMMUCore

/// `IOVA` and `PhysicalAddress`: the arithmetic address code uses, and that the two never
/// mix without saying so.
final class AddressTests: XCTestCase {
    func testLiteralsPrintAsHexAndOrder() {
        let iova: IOVA = 0x10_0000
        let pa: PhysicalAddress = 0xdead_b000
        XCTAssertEqual(iova.rawValue, 0x10_0000)
        XCTAssertEqual("\(iova)", "0x100000")
        XCTAssertEqual("\(pa)", "0xdeadb000")
        XCTAssertLessThan(iova, 0x10_0001)
        XCTAssertEqual([IOVA(rawValue: 3), 1, 2].sorted(), [1, 2, 3])
        XCTAssertTrue((IOVA(0x1000)...0x1fff).contains(0x1800))
    }

    func testOffsetsAndDistance() {
        let iova: IOVA = 0x20_0000
        XCTAssertEqual(iova + 0x10, 0x20_0010)
        XCTAssertEqual(iova - 0x1000, 0x1f_f000)
        XCTAssertEqual(iova.distance(to: 0x20_3000), 0x3000, "distance in bytes")
        var cursor = iova
        cursor += 4096
        XCTAssertEqual(cursor, 0x20_1000)
        XCTAssertEqual(IOVA.max &+ 1, 0, "wrapping add for checked hot paths")
    }

    func testCheckedAddReportsOverflow() {
        let top = IOVA.max - 0xfff
        XCTAssertEqual(top.addingReportingOverflow(0xfff).overflow, false)
        XCTAssertEqual(top.addingReportingOverflow(0x1000).overflow, true)
        XCTAssertEqual(top.addingReportingOverflow(0x1000).partialValue, 0)
        XCTAssertEqual(PhysicalAddress(rawValue: .max).addingReportingOverflow(1).overflow, true)
    }

    func testAlignment() {
        let pa: PhysicalAddress = 0x20_1234
        XCTAssertFalse(pa.isAligned(to: 4096))
        XCTAssertTrue(pa.alignedDown(to: 4096).isAligned(to: 4096))
        XCTAssertEqual(pa.alignedDown(to: 4096), 0x20_1000)
        XCTAssertEqual(pa.alignedDown(to: 2 << 20), 0x20_0000)
        XCTAssertEqual(pa.offset(within: 4096), 0x234)
    }

    func testNamedCrossingsKeepTheNumber() {
        XCTAssertEqual(IOVA(identity: 0x5000).rawValue, 0x5000)
        XCTAssertEqual(PhysicalAddress(identity: 0x5000).rawValue, 0x5000)
        XCTAssertEqual(IOVA(sva: 0x7f00_0000_1000).rawValue, 0x7f00_0000_1000)
    }

    /// A device behind no IOMMU puts physical addresses on the bus: its DMA at
    /// `IOVA(identity: pa)` reaches `pa`.
    func testDMAWithoutIOMMUUsesTheIdentity() throws {
        let machine = Machine(memory: 1 << 30)
        let dev = try machine.addDevice(PCIDevice(rid: RID(bus: 0, device: 9, function: 0)), behind: nil)
        let pa = try machine.memory.allocFrame()
        try dev.dmaWrite(at: IOVA(identity: pa) + 8, bytes: [1, 2, 3])
        XCTAssertEqual(try machine.memory.bytes(at: pa + 8, count: 3), [1, 2, 3])
        machine.memory.freeFrame(pa)
    }
}
