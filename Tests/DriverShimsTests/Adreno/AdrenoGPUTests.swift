@testable import DriverShims
import IOMMUConformance
import IOMMUCore
import IOMMUDrivers
import XCTest

/// The Adreno GPU model's command processor: PM4 packets, the table update it performs on
/// the SMMU itself, memory writes and fences, stalls and their RESUME.
final class AdrenoGPUTests: XCTestCase {
    func testType7HeadersCarryOpcodeCountAndParity() {
        // OUT_PKT7 headers as the kernel's PM4_PARITY makes them.
        XCTAssertEqual(PM4.header(.smmuTableUpdate, count: 4), 0x70D3_0004)
        XCTAssertEqual(PM4.header(.eventWrite, count: 1), 0x7046_0001)
        XCTAssertEqual(PM4.header(.memWrite, count: 4), 0x703D_0004)
        for op in [PM4.Opcode.nop, .memWrite, .eventWrite, .smmuTableUpdate, .modelCopy, .modelFill, .modelReadBack] {
            for n in [0, 1, 4, 5, 0x3FFF] {
                let d = PM4.decode(PM4.header(op, count: n))
                XCTAssertEqual(d?.opcode, op)
                XCTAssertEqual(d?.count, n)
            }
        }
        XCTAssertNil(PM4.decode(PM4.header(.nop, count: 1) ^ 1 << 15), "bad count parity")
        XCTAssertNil(PM4.decode(0x4000_0000), "not a type-7 packet")
    }

    /// The CP fetches its ring from the GPU's TTBR1 range through the SMMU, writes the
    /// context bank's TTBR0/CONTEXTIDR for `CP_SMMU_TABLE_UPDATE` and invalidates the ASID
    /// (logged as the client's), writes memory and fences.
    func testCommandProcessorRunsTheRingThroughTheSMMU() throws {
        let rig = try AdrenoRig()
        let msm = try MSMGPU(gpu: rig.gpu, variant: .perProcess)
        let ctx = try msm.openContext("p")
        let buf = try msm.allocBuffer(ctx, bytes: 4096, at: 0x1_0000_0000)
        try msm.submit(ctx, [.fill(buf.gpuAddress, length: 16, byte: 0x5A),
                             .copy(from: buf.gpuAddress, to: buf.gpuAddress + 2048, length: 16)])
        let walksBefore = rig.smmu.hardwareLock.withLock { rig.smmu.smmu.counters.walks }
        msm.run()
        XCTAssertEqual(msm.read(buf, count: 4), [0x5A, 0x5A, 0x5A, 0x5A])
        XCTAssertEqual(Array(msm.read(buf)[2048..<2064]), [UInt8](repeating: 0x5A, count: 16))
        let events = rig.gpu.events
        XCTAssertEqual(events.count, 6, "\(events)")
        XCTAssertEqual(events.first, .tableUpdate(ttbr0: ctx.tableBase!, asid: 0, contextBank: 0))
        XCTAssertEqual(events.last, .fence(address: msm.ring.gpuAddress + 4096 * 4, value: 1), "the memstore follows the ring")
        let cb0 = rig.smmu.hardwareLock.withLock { rig.smmu.smmu.read64(.contextBank(0), SMMUv2Reg.ttbr0) }
        XCTAssertEqual(cb0, ctx.tableBase?.rawValue, "the CP wrote TTBR0 itself")
        XCTAssertGreaterThan(rig.smmu.hardwareLock.withLock { rig.smmu.smmu.counters.walks }, walksBefore,
                             "the ring fetch and the work went through the SMMU")
        XCTAssertEqual(rig.gpu.readPointer, msm.wptr, "the CP ran up to the write pointer")
        msm.shutdown()
        assertNoViolations(rig.machine)
    }

    /// An unknown opcode stops the CP where it is.
    func testAnUnknownPacketStopsTheCP() throws {
        let rig = try AdrenoRig()
        let msm = try MSMGPU(gpu: rig.gpu, variant: .globalTable)
        msm.emit([PM4.header(PM4.Opcode(rawValue: 0x01), count: 0)])
        msm.run()
        XCTAssertEqual(rig.gpu.events, [.badPacket(PM4.header(PM4.Opcode(rawValue: 0x01), count: 0))])
        msm.shutdown()
    }

    /// With stall-on-fault the faulting access waits; msm's handler terminates it (the
    /// packet fails, the CP goes on with the next one). A handler that maps the missing
    /// page and asks for a retry (`EAGAIN`) gets the access completed.
    func testStalledAccessEndsAsTheFaultHandlerDecides() throws {
        let rig = try AdrenoRig()
        let msm = try MSMGPU(gpu: rig.gpu, variant: .perProcess)
        let ctx = try msm.openContext("p")
        let buf = try msm.allocBuffer(ctx, bytes: 4096, at: 0x1_0000_0000)
        try msm.submit(ctx, [.fill(0x1_0000_8000, length: 4, byte: 1), .fill(buf.gpuAddress, length: 4, byte: 2)])
        msm.run()
        XCTAssertEqual(msm.faults.count, 1)
        XCTAssertEqual(msm.faults.first?.terminated, true)
        XCTAssertEqual((msm.faults.first?.fsr ?? 0) & (SMMUv2Field.fsrSS | SMMUv2Field.fsrTF),
                       SMMUv2Field.fsrSS | SMMUv2Field.fsrTF, "the stalled syndrome get_fault_info read")
        XCTAssertTrue(rig.gpu.events.contains { if case .fault(_, true, _, .terminated) = $0 { true } else { false } })
        XCTAssertEqual(msm.read(buf, count: 4), [2, 2, 2, 2], "the next packet ran")

        let target: IOVA = 0x1_0002_0000
        let mapped = Box<MSMBuffer?>(nil)
        rig.machine.iommu.setFaultHandler(msm.domain) { _, _, iova, _ throws(Errno) in
            guard mapped.value == nil, iova == target else { return }
            mapped.value = try msm.allocBuffer(ctx, bytes: 4096, at: target)
            throw .tryAgain
        }
        rig.gpu.clearEvents()
        try msm.submit(ctx, [.fill(target, length: 4, byte: 3)])
        msm.run()
        let page = try XCTUnwrap(mapped.value, "the handler ran")
        XCTAssertEqual(msm.read(page, count: 4), [3, 3, 3, 3], "retried after RESUME and completed")
        XCTAssertFalse(rig.gpu.events.contains { if case .fault = $0 { true } else { false } })
        msm.shutdown()
        assertNoViolations(rig.machine)
    }
}

/// A mutable box for closures that must be `Sendable`.
final class Box<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}
