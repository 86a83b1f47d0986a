import XCTest
@testable import IOMMUCore

/// `PhysicalMemory.returnFreeFrames()`: the host memory behind frames freed since the
/// last call goes back to the host, and those frames, which then read as zero, are
/// handed out again without being cleared; nothing is handed out twice.
final class ReturnFreeFramesTests: XCTestCase {
    let page = PhysicalMemory.frameSize

    private func fill(_ memory: PhysicalMemory, _ pa: PhysicalAddress, _ byte: UInt8, count: Int) throws {
        try memory.write(pa, [UInt8](repeating: byte, count: count))
    }

    private func isZero(_ memory: PhysicalMemory, _ pa: PhysicalAddress, count: Int) throws -> Bool {
        try memory.bytes(at: pa, count: count).allSatisfy { $0 == 0 }
    }

    func testReturnedFramesComeBackZeroedOnceEach() throws {
        let memory = PhysicalMemory(size: 64 << 20)
        XCTAssertEqual(memory.returnFreeFrames(), 0, "the first call only starts the bookkeeping")
        let a = try memory.allocFrame(), b = try memory.allocFrame(), kept = try memory.allocFrame()
        let run = try memory.allocContiguous(bytes: 2 * page)
        for pa in [a, b, kept] { try fill(memory, pa, 0xAB, count: page) }
        try fill(memory, run, 0xCD, count: 2 * page)
        memory.freeFrame(a)
        XCTAssertEqual(try memory.allocFrame(), a, "a dirty free frame is reused first")
        XCTAssertTrue(try isZero(memory, a, count: page), "and cleared")
        try fill(memory, a, 0xAB, count: page)
        memory.freeFrame(a)                              // freed twice since the last return
        memory.freeFrame(b)
        memory.free(run, bytes: 2 * page)
        let inUse = memory.framesInUse

        XCTAssertEqual(memory.returnFreeFrames(), 4 * page, "a and b once each, and the run's two frames")
        XCTAssertEqual(memory.framesInUse, inUse, "returning memory allocates nothing")
        let first = try memory.allocFrame(), second = try memory.allocFrame()
        XCTAssertEqual([first, second], [a, b], "returned frames go out once each, in ascending order")
        XCTAssertTrue(try isZero(memory, a, count: page))
        XCTAssertTrue(try isZero(memory, b, count: page))
        XCTAssertEqual(try memory.bytes(at: kept, count: 1), [0xAB], "an allocated frame keeps its bytes")
        XCTAssertEqual(try memory.allocContiguous(bytes: 2 * page), run, "the run stays a run")
        XCTAssertTrue(try isZero(memory, run, count: 2 * page))
        let fresh = try memory.allocFrame()
        XCTAssertFalse([a, b, kept].contains(fresh))
        XCTAssertFalse(fresh >= run && fresh < run + UInt64(2 * page), "no frame of the run is handed out alone")
    }

    func testAFrameFreedAfterTheReturnIsClearedOnReuse() throws {
        let memory = PhysicalMemory(size: 64 << 20)
        memory.returnFreeFrames()
        let a = try memory.allocFrame()
        try fill(memory, a, 0xEE, count: page)
        memory.freeFrame(a)
        memory.returnFreeFrames()
        let b = try memory.allocFrame()
        XCTAssertEqual(b, a)
        try fill(memory, b, 0xEE, count: page)
        memory.freeFrame(b)                              // not returned: still dirty
        XCTAssertEqual(try memory.allocFrame(), a)
        XCTAssertTrue(try isZero(memory, a, count: page))
    }
}
