import IOMMUConformance
import XCTest
@testable import IOMMUCore
@testable import Platform

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

/// The mm. Every test that is not about one architecture's table runs on an x86-64 and
/// an arm64 machine (``ArchitectureTestCase``).
final class ProcessTests: ArchitectureTestCase {
    let memory = PhysicalMemory(size: 8 << 30)

    /// Runs `body` once per architecture with a fresh process.
    func forEachArchitecture(pid: Int32, _ body: (IOMMUCore.Process) throws -> Void) throws {
        try forEachArchitecture { architecture throws in
            try body(IOMMUCore.Process(memory: memory, pid: pid, architecture: architecture))
        }
    }

    func testMmapIsLazyAndFaultsOnTouch() throws {
        try forEachArchitecture(pid: 100) { p in
            let va = try p.mmap(length: 3 * 4096, prot: [.read, .write])
            XCTAssertEqual(va & 0xFFF, 0)
            XCTAssertNil(p.physicalAddress(of: va), "nothing populated before the first touch")
            XCTAssertEqual(try p.readMemory(address: va + 10, count: 4), [0, 0, 0, 0])
            XCTAssertNotNil(p.physicalAddress(of: va))
            XCTAssertNil(p.physicalAddress(of: va + 4096))
        }
    }

    func testWriteThenReadAcrossPages() throws {
        try forEachArchitecture(pid: 101) { p in
            let va = try p.mmap(length: 2 * 4096, prot: [.read, .write])
            let data = (0..<100).map { UInt8($0) }
            try p.writeMemory(address: va + 4096 - 50, bytes: data)
            XCTAssertEqual(try p.readMemory(address: va + 4096 - 50, count: 100), data)
            let pa = try XCTUnwrap(p.physicalAddress(of: va + 4096))
            XCTAssertEqual(try memory.bytes(at: pa, count: 50), Array(data[50...]), "bytes are in the frame the PTE names")
        }
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
        try forEachArchitecture(pid: 103) { p in
            let ro = try p.mmap(length: 4096, prot: .read)
            assertErrno(.badAddress) { () throws(Errno) in try p.handleFault(address: ro, write: true) }
            assertErrno(.badAddress) { () throws(Errno) in try p.handleFault(address: ro, write: false, exec: true) }
            assertErrno(.badAddress) { () throws(Errno) in try p.handleFault(address: 0x10, write: false) }
            try p.handleFault(address: ro + 8, write: false)
            XCTAssertNotNil(p.physicalAddress(of: ro))
            try p.handleFault(address: ro, write: false)
        }
    }

    func testEFAULTOutsideVMAsAndOnReadOnlyWrite() throws {
        try forEachArchitecture(pid: 104) { p in
            let ro = try p.mmap(length: 4096, prot: .read)
            assertErrno(.badAddress) { () throws(Errno) in try p.writeMemory(address: ro, bytes: [1]) }
            assertErrno(.badAddress) { () throws(Errno) in try p.readMemory(address: ro + 4000, count: 200) }
            assertErrno(.badAddress) { () throws(Errno) in try p.readMemory(address: 0x7000_0000, count: 1) }
            let none = try p.mmap(length: 4096, prot: [])
            assertErrno(.badAddress) { () throws(Errno) in try p.readMemory(address: none, count: 1) }
        }
    }

    func testMmapArguments() throws {
        try forEachArchitecture(pid: 105) { p in
            assertErrno(.invalidArgument) { () throws(Errno) in try p.mmap(length: 0, prot: .read) }
            assertErrno(.invalidArgument) { () throws(Errno) in try p.mmap(length: 4096, prot: .read, at: 0x1000_0800) }
            assertErrno(.invalidArgument) { () throws(Errno) in try p.mmap(length: 4096, prot: .read, at: p.userLimit) }
            let fixed = try p.mmap(length: 5000, prot: .read, at: 0x2000_0000)
            XCTAssertEqual(fixed, 0x2000_0000)
            assertErrno(.exists) { () throws(Errno) in try p.mmap(length: 4096, prot: .read, at: 0x2000_1000) }
            let a = try p.mmap(length: 4096, prot: .read)
            let b = try p.mmap(length: 4096, prot: .read)
            XCTAssertEqual(b, a + 4096, "lowest free range first")
        }
    }

    func testPopulateMapsEveryPage() throws {
        try forEachArchitecture(pid: 106) { p in
            let before = memory.framesInUse
            let va = try p.mmap(length: 4 * 4096, prot: [.read, .write], populate: true)
            for i in 0..<4 { XCTAssertNotNil(p.physicalAddress(of: va + UInt64(i) * 4096)) }
            XCTAssertEqual(memory.framesInUse, before + 4 + 3, "four pages and three new tables")
        }
    }

    func testMunmapFiresNotifierAndFreesFrames() throws {
        try forEachArchitecture(pid: 107) { p in
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
    }

    func testPartialMunmapSplitsVMA() throws {
        try forEachArchitecture(pid: 108) { p in
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
    }

    func testMprotectChangesPTEsAndFiresNotifier() throws {
        try forEachArchitecture(pid: 109) { p in
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
    }

    func testExitFiresReleaseThenFreesEverything() throws {
        try forEachArchitecture(pid: 110) { p in
            let baseline = memory.framesInUse - p.pageTable.tablePages
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
            XCTAssertEqual(memory.framesInUse, baseline, "pages and every table, root included, freed")
            p.exit()
            XCTAssertEqual(n.released, 1, "exit is idempotent")
            XCTAssertFalse(p.registerNotifier(RecordingNotifier()))
            assertErrno(.badAddress) { () throws(Errno) in try p.readMemory(address: va, count: 1) }
        }
    }

    func testUnregisteredNotifierHearsNothing() throws {
        try forEachArchitecture(pid: 111) { p in
            let n = RecordingNotifier()
            p.registerNotifier(n)
            p.unregisterNotifier(n)
            let va = try p.mmap(length: 4096, prot: .read, populate: true)
            try p.munmap(address: va, length: 4096)
            p.exit()
            XCTAssertTrue(n.ranges.isEmpty)
            XCTAssertEqual(n.released, 0)
        }
    }

    func testFiveLevelProcess() throws {
        let p = try IOMMUCore.Process(memory: memory, pid: 112, levels: 5)
        XCTAssertEqual(p.pageTable.format, .x86_64(levels: 5))
        let va = try p.mmap(length: 4096, prot: [.read, .write], at: 1 << 50)
        try p.writeMemory(address: va, bytes: [9])
        XCTAssertEqual(try p.readMemory(address: va, count: 1), [9])
    }

    /// arm64 user pages: LPAE stage-1 page descriptors with AP[1] (user), nG, AF, inner
    /// shareable normal write-back memory (MAIR index 1) and XN unless executable; no
    /// DBM, so nothing is dirty-tracked.
    func testCPUPageTableIsArm64UserNormalMemory() throws {
        let p = try IOMMUCore.Process(memory: memory, pid: 113, architecture: .arm64)
        XCTAssertEqual(p.pageTable.format, .arm64CPU)
        let va = try p.mmap(length: 2 * 4096, prot: [.read, .write])
        try p.writeMemory(address: va, bytes: [1])
        let r = IOPageTable.walk(memory: memory, format: .arm64CPU, root: p.pgdPhysical, iova: IOVA(sva: va),
                                 access: [.read, .user], setAccessedDirty: false)
        guard case .translated(let pa, let size, let perms) = r else { return XCTFail("\(r)") }
        XCTAssertEqual(size, 4096)
        XCTAssertEqual(perms, [.read, .write, .noexec, .cache])
        XCTAssertEqual(p.pageTable.findLeaf(va).pte, pa.rawValue | 0x0060_0000_0000_0F47,
                       "page | AttrIndx 1 | AP[1] | SH inner | AF | nG | PXN | UXN")
        try p.mprotect(address: va + 4096, length: 4096, prot: [.read, .exec])
        _ = try p.readMemory(address: va + 4096, count: 1)
        XCTAssertEqual(p.pageTable.findLeaf(va + 4096).pte & 0x0060_0000_0000_0FFF, 0xFC7,
                       "read-only (AP[2]) and executable")
        var dirty = 0
        p.pageTable.readAndClearDirty(iova: IOVA(sva: va), size: 2 * 4096, clear: false) { _, _ in dirty += 1 }
        XCTAssertEqual(dirty, 0)
    }

    /// arm64 user space is TTBR0's whole 48 bits, with 4 levels only; a machine makes its
    /// processes in its own architecture.
    func testArm64UserSpaceAndMachineArchitecture() throws {
        let p = try IOMMUCore.Process(memory: memory, pid: 114, architecture: .arm64)
        XCTAssertEqual(p.userLimit, 1 << 48)
        let top = try p.mmap(length: 4096, prot: [.read, .write], at: (1 << 48) - 4096)
        try p.writeMemory(address: top, bytes: [7])
        XCTAssertEqual(try p.readMemory(address: top, count: 1), [7])
        assertErrno(.invalidArgument) { () throws(Errno) in
            try IOMMUCore.Process(memory: self.memory, pid: 115, architecture: .arm64, levels: 5)
        }
        let machine = Machine(memory: 1 << 30, architecture: .arm64)
        let mm = try machine.makeProcess(pid: 116)
        XCTAssertEqual(mm.architecture, .arm64)
        XCTAssertEqual(mm.pageTable.format, .arm64CPU)
        XCTAssertEqual(try Machine(memory: 1 << 30).makeProcess(pid: 117).pageTable.format, .x86_64(levels: 4))
        let child = try p.fork(pid: 118)
        XCTAssertEqual(child.architecture, .arm64, "fork keeps the architecture")
        XCTAssertEqual(try child.readMemory(address: top, count: 1), [7])
    }

    /// The SVA fault path on either architecture: a device walking the mm's own table
    /// misses, the SVA page-fault handler (`iommu_sva_handle_mm` → `handle_mm_fault`)
    /// populates the page, and the device's next walk finds the frame the CPU uses.
    func testSVAFaultPathWalkFaultHandleWalk() throws {
        try forEachArchitecture(pid: 119) { p in
            let va = try p.mmap(length: 4096, prot: [.read, .write])
            let ro = try p.mmap(length: 4096, prot: .read)
            let deviceWrite = {
                IOPageTable.walk(memory: self.memory, format: p.pageTable.format, root: p.pgdPhysical, iova: IOVA(sva: va),
                                 access: [.write, .user], setAccessedDirty: true)
            }
            guard case .notPresent = deviceWrite() else { return XCTFail("nothing is mapped before the fault") }
            let fault = IOPFFault(flags: [.pasidValid, .lastPage], pasid: 1, grpid: 0, perm: [.read, .write],
                                  address: IOVA(sva: va))
            XCTAssertEqual(SVAIOPFHandler.handle(fault, in: p), .success)
            guard case .translated(let pa, _, let perms) = deviceWrite() else { return XCTFail("the fault mapped it") }
            XCTAssertTrue(perms.contains(.write))
            try memory.write(pa + 8, [0xAB])
            XCTAssertEqual(try p.readMemory(address: va + 8, count: 1), [0xAB], "the device wrote the CPU's page")
            let writeToReadOnly = IOPFFault(flags: [.pasidValid, .lastPage], pasid: 1, grpid: 1, perm: .write,
                                            address: IOVA(sva: ro))
            XCTAssertEqual(SVAIOPFHandler.handle(writeToReadOnly, in: p), .invalid)
        }
    }

    /// A driver mapping (`remap_pfn_range` with `vm_ops`): the frames stay the driver's
    /// (no fault, referenced while mapped), every piece made by a split or a fork is
    /// `open`ed and every piece removed by munmap or exit is `close`d; the first mapping
    /// is not `open`ed.
    func testDriverMappingHearsOfEveryPiece() throws {
        final class Counting: VMAOperations, @unchecked Sendable {
            var opens = 0, closes = 0
            func open() { opens += 1 }
            func close() { closes += 1 }
        }
        let p = try IOMMUCore.Process(memory: memory, pid: 120)
        let frames = [try memory.allocFrame(), try memory.allocFrame(), try memory.allocFrame()]
        try memory.write(frames[1], [0x5a])
        let ops = Counting()
        let va = try p.mapFrames(frames, prot: [.read, .write], ops: ops)
        XCTAssertEqual(ops.opens, 0)
        XCTAssertEqual(try p.readMemory(address: va + 4096, count: 1), [0x5a])
        XCTAssertEqual(memory.frameRefCount(frames[0]), 2, "the driver's and the mm's")
        try p.mprotect(address: va + 4096, length: 4096, prot: .read)
        XCTAssertEqual(ops.opens, 2, "mprotect cut the mapping in three")
        let child = try p.fork(pid: 121)
        XCTAssertEqual(ops.opens, 5, "the child's three pieces")
        XCTAssertEqual(try child.readMemory(address: va + 4096, count: 1), [0x5a], "the same frame")
        try p.munmap(address: va, length: 2 * 4096)
        XCTAssertEqual(ops.closes, 2)
        child.exit()
        XCTAssertEqual(ops.closes, 5)
        p.exit()
        XCTAssertEqual(ops.closes, 6)
        for pa in frames {
            XCTAssertEqual(memory.frameRefCount(pa), 1, "only the driver's reference is left")
            memory.putFrame(pa)
        }
    }
}
