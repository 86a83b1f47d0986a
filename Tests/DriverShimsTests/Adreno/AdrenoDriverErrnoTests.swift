import DriverShims
import IOMMUConformance
import IOMMUCore
import IOMMUDrivers
import XCTest

/// The msm-like driver's failure paths: each refuses with the errno the kernel would give
/// and leaves nothing behind.
final class AdrenoDriverErrnoTests: XCTestCase {
    /// Without the TTBR1 split (an msm8996) there are no per-process tables:
    /// `msm_iommu_pagetable_create` WARNs "No per-process page tables" and is `ENODEV`;
    /// the private-PASID backdoor needs the split too (`EINVAL`).
    func testNoPerProcessTablesWithoutTheTTBR1Split() throws {
        let rig = try AdrenoRig(canDoTTBR1: false)
        let msm = try MSMGPU(gpu: rig.gpu, variant: .perProcess)
        assertErrno(.noDevice) { try msm.openContext("p") }
        XCTAssertEqual(rig.machine.warnings.map(\.message), ["No per-process page tables"])
        XCTAssertTrue(msm.openContexts.isEmpty)
        msm.shutdown()
        let rig2 = try AdrenoRig(canDoTTBR1: false)
        let pasids = try MSMGPU(gpu: rig2.gpu, variant: .privatePASID)
        assertErrno(.invalidArgument) { try pasids.openContext("p") }
        pasids.shutdown()
    }

    func testBadBuffersAndSubmissionsAreRefusedAndLeaveNothing() throws {
        for variant in AdrenoAddressSpaces.allCases {
            let rig = try AdrenoRig()
            let msm = try MSMGPU(gpu: rig.gpu, variant: variant)
            let ctx = try msm.openContext("p")
            let leaks = LeakCheck(machine: rig.machine)
            assertErrno(.invalidArgument, "\(variant): empty") { try msm.allocBuffer(ctx, bytes: 0) }
            // msm turns every failed map into EINVAL; the 2017 iommu_sva_map would pass the
            // io-pgtable's errno through, as iommu_map does.
            let pasid = variant == .privatePASID
            if variant != .globalTable {
                assertErrno(.invalidArgument, "\(variant): misaligned") { try msm.allocBuffer(ctx, bytes: 4096, at: 0x1001) }
                assertErrno(pasid ? .outOfRange : .invalidArgument, "\(variant): beyond the TTBR0 range") {
                    try msm.allocBuffer(ctx, bytes: 4096, at: IOVA(rawValue: 1 << 48))
                }
            }
            leaks.assertNoLeaks("\(variant)")
            let buf = try msm.allocBuffer(ctx, bytes: 4096, at: variant == .globalTable ? nil : 0x1_0000_0000)
            if variant != .globalTable {
                let before = rig.machine.memory.framesInUse
                assertErrno(pasid ? .exists : .invalidArgument, "\(variant): over a mapping") {
                    try msm.allocBuffer(ctx, bytes: 4096, at: buf.gpuAddress)
                }
                XCTAssertEqual(rig.machine.memory.framesInUse, before, "\(variant): the failed map gave its memory back")
            }
            assertErrno(.invalidArgument, "\(variant): negative length") {
                try msm.submit(ctx, [.fill(buf.gpuAddress, length: -1, byte: 0)])
            }
            assertErrno(.invalidArgument, "\(variant): too long") {
                try msm.submit(ctx, [.copy(from: 0, to: 0, length: AdrenoGPU.maxWorkBytes + 1)])
            }
            msm.run()
            XCTAssertTrue(rig.gpu.events.isEmpty, "\(variant): nothing was queued")
            msm.closeContext(ctx)
            msm.closeContext(ctx)
            assertErrno(.invalidArgument, "\(variant): closed") { try msm.submit(ctx, []) }
            assertErrno(.invalidArgument, "\(variant): closed") { try msm.allocBuffer(ctx, bytes: 4096) }
            XCTAssertEqual(msm.unmap(ctx, iova: 0x1_0000_0000, size: 4096), .invalidArgument)
            msm.shutdown()
            assertNoViolations(rig.machine)
        }
    }

    /// A whole session (contexts, buffers, submissions, faults, teardown) gives back every
    /// frame, context bank and table it took.
    func testShutdownGivesEverythingBack() throws {
        for variant in AdrenoAddressSpaces.allCases {
            let rig = try AdrenoRig()
            let leaks = LeakCheck(machine: rig.machine)
            let banks = rig.smmu.allocatedContextBanks
            let msm = try MSMGPU(gpu: rig.gpu, variant: variant)
            let a = try msm.openContext("a")
            let b = try msm.openContext("b", vmBind: false)
            let x = try msm.allocBuffer(a, bytes: 3 << 20)
            _ = try msm.allocBuffer(b, bytes: 8192)
            try msm.submit(a, [.fill(x.gpuAddress, length: 4096, byte: 1)])
            try msm.submit(b, [.readBack(from: x.gpuAddress, into: x.gpuAddress + 8192, length: 8)])
            msm.closeContext(a)
            msm.shutdown()
            leaks.assertNoLeaks("\(variant)")
            XCTAssertEqual(rig.smmu.allocatedContextBanks, banks, "\(variant)")
            XCTAssertTrue(msm.openContexts.isEmpty)
        }
    }
}
