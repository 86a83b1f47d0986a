import IOMMUConformance
import XCTest
@testable import IOMMUCore

/// The memfd model: descriptors, shared mappings, truncation, pinning, fork; the tests
/// with a process run on an x86-64 and an arm64 machine.
final class MemfdTests: ArchitectureTestCase {
    let memory = PhysicalMemory(size: 1 << 30)

    func testCreateLookupDupCloseAndEBADF() throws {
        try forEachArchitecture { architecture in
            let p = try IOMMUCore.Process(memory: memory, pid: 10, architecture: architecture)
            let fd = try p.memfdCreate(name: "buffer", size: 4 * 4096)
            XCTAssertEqual(fd, 3, "the lowest descriptor past the standard streams")
            XCTAssertEqual(try p.memfd(fd).size, 4 * 4096)
            let fd2 = try p.dup(fd)
            XCTAssertEqual(fd2, 4)
            XCTAssertTrue(try p.memfd(fd) === p.memfd(fd2))
            try p.close(fd: fd)
            assertErrno(.badFileDescriptor) { () throws(Errno) in _ = try p.memfd(fd) }
            assertErrno(.badFileDescriptor) { () throws(Errno) in try p.close(fd: fd) }
            assertErrno(.badFileDescriptor) { () throws(Errno) in try p.ftruncate(fd: 99, length: 0) }
            XCTAssertEqual(try p.memfdCreate(name: "again", size: 0), 3, "a closed descriptor is reused")
            assertErrno(.invalidArgument) { () throws(Errno) in
                _ = try p.memfdCreate(name: String(repeating: "n", count: 250), size: 0)
            }
            XCTAssertEqual(p.openFileDescriptors, [3, 4], "a refused create installs nothing")
        }
    }

    func testSharedMappingsSeeEachOtherAndTheFile() throws {
        try forEachArchitecture { architecture in
            let base = memory.framesInUse
            do {
                let p = try IOMMUCore.Process(memory: memory, pid: 11, architecture: architecture)
                let fd = try p.memfdCreate(name: "m", size: 2 * 4096)
                let a = try p.mmap(fd: fd, length: 2 * 4096, prot: [.read, .write])
                let b = try p.mmap(fd: fd, offset: 4096, length: 4096, prot: [.read, .write])
                try p.writeMemory(address: a + 4096 + 5, bytes: [1, 2, 3])
                XCTAssertEqual(try p.readMemory(address: b + 5, count: 3), [1, 2, 3])
                XCTAssertEqual(p.physicalAddress(of: a + 4096), p.physicalAddress(of: b))
                try p.memfd(fd).write(offset: 4096 + 6, bytes: [9])
                XCTAssertEqual(try p.readMemory(address: a + 4096 + 5, count: 3), [1, 9, 3])
                XCTAssertEqual(try p.memfd(fd).read(offset: 4096 + 5, count: 3), [1, 9, 3])
                XCTAssertEqual(try p.memfd(fd).read(offset: 2 * 4096 - 1, count: 10).count, 1, "pread stops at EOF")
                let pa = try XCTUnwrap(p.physicalAddress(of: b))
                XCTAssertEqual(memory.frameRefCount(pa), 3, "the cache and two PTEs")
                try p.close(fd: fd)
                XCTAssertEqual(try p.readMemory(address: b + 5, count: 3), [1, 9, 3], "the mapping keeps the file")
                p.exit()
            }
            XCTAssertEqual(memory.framesInUse, base, "the last reference released the page cache")
        }
    }

    func testTruncateZapsMappingsAndPinnedPagesSurvive() throws {
        try forEachArchitecture { architecture in
            let base = memory.framesInUse
            let p = try IOMMUCore.Process(memory: memory, pid: 12, architecture: architecture)
            let fd = try p.memfdCreate(name: "t", size: 3 * 4096)
            let va = try p.mmap(fd: fd, length: 3 * 4096, prot: [.read, .write], populate: true)
            try p.writeMemory(address: va + 2 * 4096, bytes: [42])
            let pins = try p.memfd(fd).pinPages(firstIndex: 2, count: 1)
            try p.ftruncate(fd: fd, length: 4096 + 100)
            XCTAssertNil(p.physicalAddress(of: va + 2 * 4096), "the PTE past EOF is gone")
            assertErrno(.badAddress) { () throws(Errno) in _ = try p.readMemory(address: va + 2 * 4096, count: 1) }
            XCTAssertNotNil(p.physicalAddress(of: va + 4096), "the partial last page stays")
            XCTAssertEqual(try memory.bytes(at: pins[0], count: 1), [42], "the pinned page keeps its data")
            XCTAssertEqual(memory.frameRefCount(pins[0]), 1, "only the pin is left")
            assertErrno(.invalidArgument) { () throws(Errno) in
                _ = try p.memfd(fd).pinPages(firstIndex: 1, count: 1)
            }
            memory.putFrame(pins[0])
            try p.munmap(address: va, length: 3 * 4096)
            try p.close(fd: fd)
            XCTAssertFalse(memory.isAllocated(pins[0]), "the unpinned page went with its last reference")
            p.exit()
            XCTAssertEqual(memory.framesInUse, base)
        }
    }

    func testPinPastEOFIsEINVALAndPinsNothing() throws {
        let f = try Memfd(memory: memory, name: "p", size: 2 * 4096)
        assertErrno(.invalidArgument) { () throws(Errno) in _ = try f.pinPages(firstIndex: 0, count: 3) }
        assertErrno(.invalidArgument) { () throws(Errno) in _ = try f.pinPages(firstIndex: 0, count: 0) }
        XCTAssertEqual(memory.framesWithExtraReferences, 0)
        let pas = try f.pinPages(firstIndex: 0, count: 2)
        XCTAssertEqual(pas.map { memory.frameRefCount($0) }, [2, 2])
        for pa in pas { memory.putFrame(pa) }
        XCTAssertEqual(f.residentPages, 2)
    }

    func testForkSharesFilesAndCopiesAnonymousMemory() throws {
        try forEachArchitecture { architecture in
            let p = try IOMMUCore.Process(memory: memory, pid: 13, architecture: architecture)
            let anon = try p.mmap(length: 4096, prot: [.read, .write])
            try p.writeMemory(address: anon, bytes: [5])
            let fd = try p.memfdCreate(name: "f", size: 4096)
            let shared = try p.mmap(fd: fd, length: 4096, prot: [.read, .write])
            let c = try p.fork(pid: 14)
            XCTAssertEqual(try c.readMemory(address: anon, count: 1), [5])
            try c.writeMemory(address: anon, bytes: [6])
            XCTAssertEqual(try p.readMemory(address: anon, count: 1), [5], "private memory is copied")
            try c.writeMemory(address: shared, bytes: [7])
            XCTAssertEqual(try p.readMemory(address: shared, count: 1), [7], "shared memory is shared")
            XCTAssertTrue(try c.memfd(fd) === p.memfd(fd), "the descriptor table is inherited")
            try p.ftruncate(fd: fd, length: 0)
            XCTAssertNil(c.physicalAddress(of: shared), "truncation reaches the child's mapping too")
            c.exit()
            p.exit()
        }
    }
}
