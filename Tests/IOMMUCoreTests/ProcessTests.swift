import IOMMUConformance
import XCTest
@testable import IOMMUCore

final class RecordingNotifier: MMUNotifier {
    var ranges: [(UInt64, UInt64)] = []
    var released = 0
    var pagesAtRelease: PhysicalAddress?
    func invalidateRange(_ process: IOMMUCore.Process, start: UInt64, end: UInt64) { ranges.append((start, end)) }
    func release(_ process: IOMMUCore.Process) {
        released += 1
        pagesAtRelease = process.pageTable.isDestroyed ? nil : process.pgdPhysical
    }
}

final class ProcessTests: XCTestCase {
    let memory = PhysicalMemory(size: 8 << 30)

    func testMmapIsLazyAndFaultsOnTouch() throws {
        let p = try IOMMUCore.Process(memory: memory, pid: 100)
        let va = try p.mmap(length: 3 * 4096, prot: [.read, .write])
        XCTAssertEqual(va & 0xFFF, 0)
        XCTAssertNil(p.physicalAddress(of: va), "nothing populated before the first touch")
        XCTAssertEqual(try p.readMemory(address: va + 10, count: 4), [0, 0, 0, 0])
        XCTAssertNotNil(p.physicalAddress(of: va))
        XCTAssertNil(p.physicalAddress(of: va + 4096))
    }

    func testWriteThenReadAcrossPages() throws {
        let p = try IOMMUCore.Process(memory: memory, pid: 101)
        let va = try p.mmap(length: 2 * 4096, prot: [.read, .write])
        let data = (0..<100).map { UInt8($0) }
        try p.writeMemory(address: va + 4096 - 50, bytes: data)
        XCTAssertEqual(try p.readMemory(address: va + 4096 - 50, count: 100), data)
        let pa = try XCTUnwrap(p.physicalAddress(of: va + 4096))
        XCTAssertEqual(memory.bytes(at: pa, count: 50), Array(data[50...]), "bytes are in the frame the PTE names")
    }

    func testCPUPageTableIsX86UserWithDirtyBit() throws {
        let p = try IOMMUCore.Process(memory: memory, pid: 102)
        let va = try p.mmap(length: 4096, prot: [.read, .write])
        try p.writeMemory(address: va, bytes: [1])
        let r = IOPageTable.walk(memory: memory, format: .x86_64(levels: 4), root: p.pgdPhysical, iova: IOVA(rawValue: va),
                                 access: [.read, .user], setAccessedDirty: false)
        guard case .translated(_, let size, let perms) = r else { return XCTFail("\(r)") }
        XCTAssertEqual(size, 4096)
        XCTAssertEqual(perms, [.read, .write, .noexec])
        var dirty: [UInt64] = []
        p.pageTable.readAndClearDirty(iova: IOVA(rawValue: va), size: 4096, clear: false) { iova, _ in
            dirty.append(iova.rawValue)
        }
        XCTAssertEqual(dirty, [va])
    }

    func testHandleFaultChecksVMAPermissions() throws {
        let p = try IOMMUCore.Process(memory: memory, pid: 103)
        let ro = try p.mmap(length: 4096, prot: .read)
        assertErrno(.badAddress) { () throws(Errno) in try p.handleFault(address: ro, write: true) }
        assertErrno(.badAddress) { () throws(Errno) in try p.handleFault(address: ro, write: false, exec: true) }
        assertErrno(.badAddress) { () throws(Errno) in try p.handleFault(address: 0x10, write: false) }
        try p.handleFault(address: ro + 8, write: false)
        XCTAssertNotNil(p.physicalAddress(of: ro))
        try p.handleFault(address: ro, write: false)
    }

    func testEFAULTOutsideVMAsAndOnReadOnlyWrite() throws {
        let p = try IOMMUCore.Process(memory: memory, pid: 104)
        let ro = try p.mmap(length: 4096, prot: .read)
        assertErrno(.badAddress) { () throws(Errno) in try p.writeMemory(address: ro, bytes: [1]) }
        assertErrno(.badAddress) { () throws(Errno) in try p.readMemory(address: ro + 4000, count: 200) }
        assertErrno(.badAddress) { () throws(Errno) in try p.readMemory(address: 0x7000_0000, count: 1) }
        let none = try p.mmap(length: 4096, prot: [])
        assertErrno(.badAddress) { () throws(Errno) in try p.readMemory(address: none, count: 1) }
    }

    func testMmapArguments() throws {
        let p = try IOMMUCore.Process(memory: memory, pid: 105)
        assertErrno(.invalidArgument) { () throws(Errno) in try p.mmap(length: 0, prot: .read) }
        assertErrno(.invalidArgument) { () throws(Errno) in try p.mmap(length: 4096, prot: .read, at: 0x1000_0800) }
        assertErrno(.invalidArgument) { () throws(Errno) in try p.mmap(length: 4096, prot: .read, at: 1 << 47) }
        let fixed = try p.mmap(length: 5000, prot: .read, at: 0x2000_0000)
        XCTAssertEqual(fixed, 0x2000_0000)
        assertErrno(.exists) { () throws(Errno) in try p.mmap(length: 4096, prot: .read, at: 0x2000_1000) }
        let a = try p.mmap(length: 4096, prot: .read)
        let b = try p.mmap(length: 4096, prot: .read)
        XCTAssertEqual(b, a + 4096, "lowest free range first")
    }

    func testPopulateMapsEveryPage() throws {
        let p = try IOMMUCore.Process(memory: memory, pid: 106)
        let before = memory.framesInUse
        let va = try p.mmap(length: 4 * 4096, prot: [.read, .write], populate: true)
        for i in 0..<4 { XCTAssertNotNil(p.physicalAddress(of: va + UInt64(i) * 4096)) }
        XCTAssertEqual(memory.framesInUse, before + 4 + 3, "four pages and three new tables")
    }

    func testMunmapFiresNotifierAndFreesFrames() throws {
        let p = try IOMMUCore.Process(memory: memory, pid: 107)
        let n = RecordingNotifier()
        p.registerNotifier(n)
        let before = memory.framesInUse
        let va = try p.mmap(length: 4 * 4096, prot: [.read, .write])
        try p.writeMemory(address: va, bytes: [1, 2, 3])
        try p.writeMemory(address: va + 3 * 4096, bytes: [4])
        try p.munmap(address: va, length: 4 * 4096)
        XCTAssertEqual(n.ranges.map(\.0), [va])
        XCTAssertEqual(n.ranges.map(\.1), [va + 4 * 4096], "end is exclusive")
        XCTAssertNil(p.physicalAddress(of: va))
        XCTAssertEqual(memory.framesInUse, before, "pages and emptied tables freed")
        assertErrno(.badAddress) { () throws(Errno) in try p.readMemory(address: va, count: 1) }
    }

    func testPartialMunmapSplitsVMA() throws {
        let p = try IOMMUCore.Process(memory: memory, pid: 108)
        let n = RecordingNotifier()
        p.registerNotifier(n)
        let va = try p.mmap(length: 3 * 4096, prot: [.read, .write], populate: true)
        try p.munmap(address: va + 4096, length: 4096)
        XCTAssertEqual(n.ranges.first?.0, va + 4096)
        XCTAssertEqual(n.ranges.first?.1, va + 2 * 4096)
        XCTAssertNotNil(p.physicalAddress(of: va))
        XCTAssertNil(p.physicalAddress(of: va + 4096))
        XCTAssertNotNil(p.physicalAddress(of: va + 2 * 4096))
        assertErrno(.badAddress) { () throws(Errno) in try p.handleFault(address: va + 4096, write: false) }
        assertErrno(.invalidArgument) { () throws(Errno) in try p.munmap(address: va + 1, length: 4096) }
    }

    func testMprotectChangesPTEsAndFiresNotifier() throws {
        let p = try IOMMUCore.Process(memory: memory, pid: 109)
        let n = RecordingNotifier()
        p.registerNotifier(n)
        let va = try p.mmap(length: 2 * 4096, prot: [.read, .write])
        try p.writeMemory(address: va, bytes: [42])
        let pa = p.physicalAddress(of: va)
        try p.mprotect(address: va, length: 4096, prot: .read)
        XCTAssertEqual(n.ranges.map(\.0), [va])
        XCTAssertEqual(n.ranges.map(\.1), [va + 4096])
        XCTAssertEqual(p.physicalAddress(of: va), pa, "same frame, new permissions")
        assertErrno(.badAddress) { () throws(Errno) in try p.writeMemory(address: va, bytes: [1]) }
        XCTAssertEqual(try p.readMemory(address: va, count: 1), [42])
        try p.writeMemory(address: va + 4096, bytes: [7])
        try p.mprotect(address: va, length: 4096, prot: [])
        XCTAssertNil(p.physicalAddress(of: va), "PROT_NONE removes the PTE")
        try p.mprotect(address: va, length: 4096, prot: [.read, .write])
        XCTAssertEqual(try p.readMemory(address: va, count: 1), [42], "the frame survived PROT_NONE")
        assertErrno(.noMemory) { () throws(Errno) in try p.mprotect(address: va, length: 3 * 4096, prot: .read) }
    }

    func testExitFiresReleaseThenFreesEverything() throws {
        let baseline = memory.framesInUse
        let p = try IOMMUCore.Process(memory: memory, pid: 110)
        let n = RecordingNotifier()
        XCTAssertTrue(p.registerNotifier(n))
        let va = try p.mmap(length: 64 * 4096, prot: [.read, .write], populate: true)
        try p.writeMemory(address: va, bytes: [1])
        XCTAssertGreaterThan(memory.framesInUse, baseline + 64)
        p.exit()
        XCTAssertEqual(n.released, 1)
        XCTAssertEqual(n.pagesAtRelease, p.pgdPhysical, "release ran while the table was intact")
        XCTAssertTrue(p.isExiting)
        XCTAssertTrue(p.hasExited)
        XCTAssertEqual(memory.framesInUse, baseline)
        p.exit()
        XCTAssertEqual(n.released, 1, "exit is idempotent")
        XCTAssertFalse(p.registerNotifier(RecordingNotifier()))
        assertErrno(.badAddress) { () throws(Errno) in try p.readMemory(address: va, count: 1) }
    }

    func testUnregisteredNotifierHearsNothing() throws {
        let p = try IOMMUCore.Process(memory: memory, pid: 111)
        let n = RecordingNotifier()
        p.registerNotifier(n)
        p.unregisterNotifier(n)
        let va = try p.mmap(length: 4096, prot: .read, populate: true)
        try p.munmap(address: va, length: 4096)
        p.exit()
        XCTAssertTrue(n.ranges.isEmpty)
        XCTAssertEqual(n.released, 0)
    }

    func testFiveLevelProcess() throws {
        let p = try IOMMUCore.Process(memory: memory, pid: 112, levels: 5)
        XCTAssertEqual(p.pageTable.format, .x86_64(levels: 5))
        let va = try p.mmap(length: 4096, prot: [.read, .write], at: 1 << 50)
        try p.writeMemory(address: va, bytes: [9])
        XCTAssertEqual(try p.readMemory(address: va, count: 1), [9])
    }
}
