import XCTest
import IOMMUCore

/// The hook for frames whose bytes live outside the model (``ExternalFrameOwner``): a
/// device read refreshes them first, a device write is written back after, a frame
/// freed is reported, and an owner that owns nothing is never called.
final class ExternalFramesTests: XCTestCase {
    /// An owner that owns one frame, stands for its bytes with `outside`, and records calls.
    final class Owner: ExternalFrameOwner, @unchecked Sendable {
        let memory: PhysicalMemory
        let frame: PhysicalAddress
        var outside = [UInt8](repeating: 0xEE, count: 4096)
        var calls: [String] = []
        init(memory: PhysicalMemory, frame: PhysicalAddress) { self.memory = memory; self.frame = frame }

        func refresh(_ pa: PhysicalAddress, count: Int) {
            calls.append("refresh \(pa.rawValue - frame.rawValue) \(count)")
            guard pa.alignedDown(to: 4096) == frame else { return }
            let off = Int(pa.rawValue - frame.rawValue)
            Array(outside[off..<off + count]).withUnsafeBytes { memory.uncheckedWrite(pa, from: $0) }
        }

        func writeBack(_ pa: PhysicalAddress, count: Int) {
            calls.append("writeBack \(pa.rawValue - frame.rawValue) \(count)")
            guard pa.alignedDown(to: 4096) == frame else { return }
            let off = Int(pa.rawValue - frame.rawValue)
            outside.replaceSubrange(off..<off + count, with: memory.uncheckedBytes(at: pa, count: count))
        }

        func released(_ pa: PhysicalAddress, frames: Int) {
            calls.append("released \(pa.rawValue - frame.rawValue) \(frames)")
        }
    }

    func testDeviceReadsRefreshAndWritesWriteBack() throws {
        let machine = Machine(memory: 1 << 30)
        let dev = try machine.addDevice(PCIDevice(rid: RID(bus: 0x42, device: 0, function: 0)), behind: nil)
        let pa = try machine.memory.allocFrame()
        let owner = Owner(memory: machine.memory, frame: pa)
        machine.memory.setExternalFrameOwner(owner)
        machine.memory.setExternalFramesActive(true)
        // No IOMMU: the device's bus address is the physical address.
        let bus = IOVA(identity: pa)

        owner.outside[100] = 0x5A
        XCTAssertEqual(try dev.dmaRead(at: bus + 100, count: 2), [0x5A, 0xEE], "the read sees the outside bytes")
        try dev.dmaWrite(at: bus + 300, bytes: [1, 2, 3])
        XCTAssertEqual(Array(owner.outside[300..<303]), [1, 2, 3], "the write reached the outside")
        XCTAssertEqual(owner.calls, ["refresh 100 2", "writeBack 300 3"])

        machine.memory.freeFrame(pa)
        XCTAssertEqual(owner.calls.last, "released 0 1")
        machine.memory.setExternalFrameOwner(nil)
    }

    func testAnOwnerThatOwnsNothingIsNeverCalled() throws {
        let machine = Machine(memory: 1 << 30)
        let dev = try machine.addDevice(PCIDevice(rid: RID(bus: 0x42, device: 0, function: 0)), behind: nil)
        let pa = try machine.memory.allocFrame()
        let owner = Owner(memory: machine.memory, frame: pa)
        machine.memory.setExternalFrameOwner(owner)
        XCTAssertFalse(machine.memory.externalFramesActive.isSet)
        try dev.dmaWrite(at: IOVA(identity: pa), bytes: [9])
        XCTAssertEqual(try dev.dmaRead(at: IOVA(identity: pa), count: 1), [9])
        machine.memory.freeFrame(pa)
        XCTAssertEqual(owner.calls, [])
        machine.memory.setExternalFrameOwner(nil)
    }
}
