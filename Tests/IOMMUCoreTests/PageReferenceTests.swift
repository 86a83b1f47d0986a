import IOMMUConformance
import Synchronization
import XCTest
@testable import IOMMUCore

/// Frame reference counts (`get_page`/`put_page`, `pin_user_pages`/`unpin_user_page`):
/// a pinned page outlives the mapping that supplied it and is freed by its last put.
final class PageReferenceTests: XCTestCase {
    let memory = PhysicalMemory(size: 1 << 30)

    func testAllocatedFrameStartsAtOneAndLastPutFrees() throws {
        let base = memory.framesInUse
        let pa = try memory.allocFrame()
        XCTAssertEqual(memory.frameRefCount(pa), 1)
        try memory.getFrame(pa + 123)
        XCTAssertEqual(memory.frameRefCount(pa), 2, "any byte of the frame names it")
        memory.putFrame(pa)
        XCTAssertTrue(memory.isAllocated(pa))
        XCTAssertEqual(memory.framesInUse, base + 1)
        memory.freeFrame(pa)
        XCTAssertFalse(memory.isAllocated(pa))
        XCTAssertEqual(memory.frameRefCount(pa), 0)
        XCTAssertEqual(memory.framesInUse, base)
        XCTAssertEqual(memory.framesWithExtraReferences, 0)
    }

    /// Allocations inside `withoutInjectedFailures` (the service's mirrors of pages a
    /// client already has) are no fail-nth injection point: they neither fail nor use up
    /// N, on that thread only, and the exemption ends with the body.
    func testExemptAllocationsNeitherFailNorCount() throws {
        let memory = memory
        let counted = memory.allocationCount
        memory.failAllocation = { _ in true }
        defer { memory.failAllocation = nil }
        let otherThreadFailed = Atomic<Bool>(false)
        let exempt = try memory.withoutInjectedFailures { () throws(Errno) -> PhysicalAddress in
            let pa = try memory.allocFrame()
            // A thread of its own (DispatchQueue.sync would run the block on this one).
            let done = DispatchSemaphore(value: 0)
            Thread {
                otherThreadFailed.store((try? memory.allocFrame()) == nil, ordering: .relaxed)
                done.signal()
            }.start()
            done.wait()
            return pa
        }
        XCTAssertTrue(otherThreadFailed.load(ordering: .relaxed), "another thread's allocation is still an injection point")
        XCTAssertThrowsError(try memory.allocFrame(), "after the body this thread's allocations fail again")
        XCTAssertEqual(memory.allocationCount, counted + 2, "only the two injected allocations were counted")
        memory.freeFrame(exempt)
    }

    /// A contiguous run is one compound page: the last put of its first frame frees it
    /// whole (how a 16 or 64 KiB page table comes back from a gather's freelist), and a
    /// reference on its head keeps all of it.
    func testContiguousRunIsFreedWholeByItsFirstFrame() throws {
        let base = memory.framesInUse
        let run = try memory.allocContiguous(bytes: 16 << 10, alignment: 16 << 10)
        XCTAssertEqual(memory.framesInUse, base + 4)
        try memory.getFrame(run)
        memory.freeFrame(run)
        XCTAssertEqual(memory.framesInUse, base + 4, "the head's extra reference holds the run")
        memory.putFrame(run)
        XCTAssertEqual(memory.framesInUse, base, "the last put frees all four frames")
        for i in 0..<UInt64(4) { XCTAssertFalse(memory.isAllocated(run + i * 4096)) }
        let again = try memory.allocContiguous(bytes: 16 << 10, alignment: 16 << 10)
        XCTAssertEqual(again, run, "the run is reused whole")
        memory.free(again, bytes: 16 << 10)
        XCTAssertEqual(memory.framesInUse, base)
    }

    func testGetOfAFreeOrOutOfRangeFrameIsEFAULT() throws {
        let pa = try memory.allocFrame()
        memory.freeFrame(pa)
        assertErrno(.badAddress) { () throws(Errno) in try self.memory.getFrame(pa) }
        assertErrno(.badAddress) { () throws(Errno) in try self.memory.getFrame(PhysicalAddress(rawValue: self.memory.size)) }
        XCTAssertEqual(memory.framesWithExtraReferences, 0, "a refused get changes nothing")
    }

    /// `vm_insert_page`: frames of a contiguous run mapped at given VAs; the mm holds its
    /// own reference, so the run can be freed whole once the mm and every pin let go.
    func testInsertPageMapsGivenFramesAndTakesItsOwnReference() throws {
        let base = memory.framesInUse
        let p = try IOMMUCore.Process(memory: memory, pid: 301)
        let run = try memory.allocContiguous(bytes: 2 << 20, alignment: 2 << 20)
        let va = try p.mmap(length: 2 << 20, prot: [.read, .write], at: 0x4000_0000)
        for i in 0..<UInt64(512) { try p.insertPage(address: va + i * 4096, frame: run + i * 4096) }
        XCTAssertEqual(p.physicalAddress(of: va + 0x1000_07), run + 0x1000_07)
        XCTAssertEqual(memory.frameRefCount(run + 4096), 2)
        try p.writeMemory(address: va + 5, bytes: [1, 2])
        XCTAssertEqual(try memory.bytes(at: run + 5, count: 2), [1, 2])
        assertErrno(.busy) { () throws(Errno) in try p.insertPage(address: va, frame: run) }
        assertErrno(.badAddress) { () throws(Errno) in try p.insertPage(address: va + (2 << 20), frame: run) }
        assertErrno(.invalidArgument) { () throws(Errno) in try p.insertPage(address: va + 1, frame: run) }
        let pin = try p.pinUserPage(address: va, write: true)
        try p.munmap(address: va, length: 2 << 20)
        XCTAssertEqual(memory.frameRefCount(pin), 2, "the run's own reference and the pin")
        memory.putFrame(pin)
        XCTAssertEqual(memory.frameRefCount(run + (2 << 20) - 4096), 1)
        memory.free(run, bytes: 2 << 20)
        p.exit()
        XCTAssertEqual(memory.framesInUse, base)
    }

    func testPinnedPageSurvivesMunmapAndIsFreedOnUnpin() throws {
        let base = memory.framesInUse
        let p = try IOMMUCore.Process(memory: memory, pid: 300)
        let va = try p.mmap(length: 2 * 4096, prot: [.read, .write])
        try p.writeMemory(address: va, bytes: [7, 8, 9])
        let pa = try p.pinUserPage(address: va, write: true)
        XCTAssertEqual(p.physicalAddress(of: va), pa)
        XCTAssertEqual(memory.frameRefCount(pa), 2)
        try p.munmap(address: va, length: 2 * 4096)
        XCTAssertNil(p.physicalAddress(of: va))
        XCTAssertTrue(memory.isAllocated(pa), "the pin keeps the frame")
        XCTAssertEqual(try memory.bytes(at: pa, count: 3), [7, 8, 9], "with its contents")
        // A new mapping of the same VA gets a different frame: the pinned one is not reused.
        _ = try p.mmap(length: 4096, prot: [.read, .write], at: va, populate: true)
        XCTAssertNotEqual(p.physicalAddress(of: va), pa)
        memory.putFrame(pa)
        XCTAssertFalse(memory.isAllocated(pa))
        p.exit()
        XCTAssertEqual(memory.framesInUse, base, "nothing leaked")
    }

    func testPinnedPageSurvivesExitAndIsFreedOnUnpin() throws {
        let base = memory.framesInUse
        let p = try IOMMUCore.Process(memory: memory, pid: 301)
        let va = try p.mmap(length: 3 * 4096, prot: [.read, .write], populate: true)
        try p.writeMemory(address: va + 4096, bytes: [1, 2, 3, 4])
        let pinned = try (0..<3).map { i in try p.pinUserPage(address: va + UInt64(i) * 4096, write: false) }
        p.exit()
        XCTAssertTrue(pinned.allSatisfy(memory.isAllocated))
        XCTAssertEqual(memory.framesInUse - base, 3, "only the pinned pages remain; the page table is gone")
        XCTAssertEqual(try memory.bytes(at: pinned[1], count: 4), [1, 2, 3, 4])
        assertErrno(.badAddress) { () throws(Errno) in _ = try p.pinUserPage(address: va, write: false) }
        for pa in pinned { memory.putFrame(pa) }
        XCTAssertEqual(memory.framesInUse, base, "nothing leaked once everything is released")
        XCTAssertEqual(memory.framesWithExtraReferences, 0)
    }

    func testPinRefusesWhatAFaultWould() throws {
        let p = try IOMMUCore.Process(memory: memory, pid: 302)
        let ro = try p.mmap(length: 4096, prot: [.read])
        let none = try p.mmap(length: 4096, prot: [])
        assertErrno(.badAddress) { () throws(Errno) in _ = try p.pinUserPage(address: ro, write: true) }
        assertErrno(.badAddress) { () throws(Errno) in _ = try p.pinUserPage(address: none, write: false) }
        assertErrno(.badAddress) { () throws(Errno) in _ = try p.pinUserPage(address: 0x7000_0000, write: false) }
        XCTAssertEqual(memory.framesWithExtraReferences, 0, "nothing pinned on error")
        let pa = try p.pinUserPage(address: ro, write: false)
        XCTAssertEqual(memory.frameRefCount(pa), 2)
        memory.putFrame(pa)
        p.exit()
    }
}
