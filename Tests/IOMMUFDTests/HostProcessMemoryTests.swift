import Glibc
import XCTest
import IOMMUCore
@testable import IOMMUFD

/// `HostProcessMemory` (copy_from_user / copy_to_user on a real host process) and the
/// foreign-frame coherence rule, on this test process itself: `process_vm_readv` on
/// one's own pid is allowed everywhere the tests run.
final class HostProcessMemoryTests: XCTestCase {
    func testCopiesAndEFAULT() throws {
        let mem = HostProcessMemory(pid: getpid())
        let buf = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 8)
        defer { buf.deallocate() }
        buf.initializeMemory(as: UInt8.self, repeating: 7, count: 64)
        let addr = UInt64(UInt(bitPattern: buf))
        XCTAssertEqual(try mem.copyFromUser(addr, count: 4), [7, 7, 7, 7])
        try mem.copyToUser(addr + 8, [1, 2, 3])
        XCTAssertEqual(buf.load(fromByteOffset: 8, as: UInt8.self), 1)
        XCTAssertEqual(buf.load(fromByteOffset: 10, as: UInt8.self), 3)
        // Page 0 is never mapped: EFAULT, and a range running into it is EFAULT too.
        XCTAssertThrowsError(try mem.copyFromUser(0x10, count: 4)) { XCTAssertEqual($0 as? Errno, .badAddress) }
        XCTAssertThrowsError(try mem.copyToUser(0x10, [1])) { XCTAssertEqual($0 as? Errno, .badAddress) }
        XCTAssertThrowsError(try mem.copyFromUser(UInt64.max - 1, count: 4)) { XCTAssertEqual($0 as? Errno, .badAddress) }
        XCTAssertEqual(try mem.copyFromUser(0x10, count: 0), [])
        XCTAssertTrue(mem.isAlive)
    }

    /// A device DMA into a foreign frame lands in the owner's memory; a DMA read sees what
    /// the owner stored last; a frame whose owner is gone keeps working as plain memory.
    func testDMAThroughForeignFrameReachesOwner() throws {
        let machine = Machine(memory: 1 << 30)
        let dev = try machine.addDevice(PCIDevice(rid: RID(bus: 0x42, device: 0, function: 0)), behind: nil)
        let page = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
        defer { page.deallocate() }
        page.initializeMemory(as: UInt8.self, repeating: 0, count: 4096)
        let owner = HostProcessMemory(pid: getpid())
        let pa = try machine.memory.allocFrame()
        // No IOMMU: the device's bus address is the physical address.
        let bus = IOVA(identity: pa)
        machine.foreignFrames.register(pa.rawValue, backing: owner, address: UInt64(UInt(bitPattern: page)))
        XCTAssertEqual(machine.foreignFrames.count, 1)

        try dev.dmaWrite(at: bus + 100, bytes: [0xAB, 0xCD])
        XCTAssertEqual(page.load(fromByteOffset: 100, as: UInt8.self), 0xAB)
        XCTAssertEqual(page.load(fromByteOffset: 101, as: UInt8.self), 0xCD)
        page.storeBytes(of: 0x5A, toByteOffset: 200, as: UInt8.self)
        XCTAssertEqual(try dev.dmaRead(at: bus + 200, count: 1), [0x5A])

        // A backing that cannot be reached is dropped; the frame keeps its bytes.
        let gone = HostProcessMemory(pid: 0x7fff_fff0)
        machine.foreignFrames.register(pa.rawValue, backing: gone, address: 0x1000)
        try dev.dmaWrite(at: bus + 300, bytes: [9])
        XCTAssertEqual(machine.foreignFrames.count, 0)
        XCTAssertEqual(try dev.dmaRead(at: bus + 300, count: 1), [9])
        XCTAssertEqual(try dev.dmaRead(at: bus + 100, count: 2), [0xAB, 0xCD])
        machine.memory.freeFrame(pa)
    }
}
