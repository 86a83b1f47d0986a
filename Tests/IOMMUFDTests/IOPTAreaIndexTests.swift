import XCTest
import IOMMUCore
@testable import IOMMUFD

/// ``IOPTAreaIndex`` (the model's `area_itree`) against a plain sorted array, across
/// enough areas to split and empty many chunks.
final class IOPTAreaIndexTests: XCTestCase {
    func testMatchesSortedArrayUnderRandomInsertAndRemove() throws {
        let s = try SelftestFD()
        let pages = try s.fd.lock.withLock { () throws(Errno) in
            try IOPTPages(ctx: s.fd, uptr: s.buffer, length: IOPTPages.pageSize, writable: true)
        }
        var index = IOPTAreaIndex()
        var naive: [IOPTArea] = []
        var rng = SystemRandomNumberGenerator()
        var free = Array(0..<2000).shuffled(using: &rng)
        func check() {
            XCTAssertEqual(index.count, naive.count)
            XCTAssertTrue(zip(index, naive).allSatisfy { $0 === $1 })
            for _ in 0..<20 {
                let a = UInt64.random(in: 0..<2100, using: &rng) * 0x2000 + UInt64.random(in: 0..<0x2000, using: &rng)
                let b = a + UInt64.random(in: 0..<0x8000, using: &rng)
                let expect = naive.filter { $0.iova <= b && a <= $0.last }
                var got: [IOPTArea] = []
                var p = index.firstIntersecting(a, b)
                while let q = p, index.iova(at: q) <= b { got.append(index[q]); p = index.next(q) }
                XCTAssertTrue(got.count == expect.count && zip(got, expect).allSatisfy { $0 === $1 })
                XCTAssertTrue(index.area(containing: a) === naive.first { $0.iova <= a && a <= $0.last })
                XCTAssertTrue(index.area(startingAt: a) === naive.first { $0.iova == a })
            }
        }
        for round in 0..<6000 {
            if !free.isEmpty && (naive.count < 50 || Bool.random(using: &rng) || round < 1500) {
                let slot = UInt64(free.removeLast())
                let area = IOPTArea(iova: slot * 0x2000, length: 0x1000, pages: pages, startByte: 0, prot: [.read])
                index.insert(area)
                naive.insert(area, at: naive.firstIndex { $0.iova > area.iova } ?? naive.count)
            } else if !naive.isEmpty {
                let victim = naive.remove(at: Int.random(in: 0..<naive.count, using: &rng))
                index.remove(victim)
                free.append(Int(victim.iova / 0x2000))
            }
            if round % 500 == 0 { check() }
        }
        check()
        // In-order removal from the front, as a VMM's unmap run does.
        while let p = index.firstPosition {
            XCTAssertTrue(index[p] === naive.removeFirst())
            index.remove(at: p)
        }
        XCTAssertTrue(index.isEmpty && naive.isEmpty)
    }
}
