import IOMMUConformance
import XCTest
import DriverShims
import IOMMUCore
import IOMMUDrivers

/// The idxd device model: submission paths, retry, completion records, error paths.
final class IDXDDeviceTests: XCTestCase {
    func testTwoProcessesOnOneSharedWQCannotReachEachOthersMemory() throws {
        let t = try IDXDTestbed()
        try t.dsa.configureWQ(0, mode: .shared, size: 8)
        try t.dsa.enableWQ(0, type: .user)
        // Same VA in both processes, different memory behind it.
        let (a, aVA) = try t.process(60, bytes: Array("AAAA".utf8))
        let (b, bVA) = try t.process(61, bytes: Array("BBBB".utf8))
        XCTAssertEqual(aVA, bVA)
        let ctxA = try t.dsa.open(wq: 0, process: a), ctxB = try t.dsa.open(wq: 0, process: b)
        let portalA = try ctxA.mmap(from: a)
        // A fills "its" second page at the VA that B also uses: only A's memory changes.
        XCTAssertEqual(portalA.enqcmd(.fill(IOVA(sva: aVA + 4096), pattern: 0x5858_5858_5858_5858, count: 8, completion: IOVA(sva: aVA + 8192))), .accepted)
        XCTAssertEqual(try a.readMemory(address: aVA + 4096, count: 8), [UInt8](repeating: 0x58, count: 8))
        XCTAssertEqual(try b.readMemory(address: bVA + 4096, count: 8), [UInt8](repeating: 0, count: 8))
        // A copies from the shared VA: it reads its own data, never B's.
        XCTAssertEqual(portalA.enqcmd(.memmove(from: IOVA(sva: aVA), to: IOVA(sva: aVA + 4096), count: 4, completion: IOVA(sva: aVA + 8192))), .accepted)
        XCTAssertEqual(try a.readMemory(address: aVA + 4096, count: 4), Array("AAAA".utf8))
        // Raw DMA with A's PASID at B's address space: A's frames.
        let pa = try XCTUnwrap(ctxA.userPasid), pb = try XCTUnwrap(ctxB.userPasid)
        XCTAssertEqual(try t.pci.dmaRead(at: IOVA(sva: aVA), count: 4, pasid: pa), Array("AAAA".utf8))
        XCTAssertEqual(try t.pci.dmaRead(at: IOVA(sva: bVA), count: 4, pasid: pb), Array("BBBB".utf8))
        ctxA.close()
        ctxB.close()
        a.exit()
        b.exit()
        XCTAssertEqual(t.violations, [])
    }

    func testSharedWQFullRetriesThenEAGAINOrSucceedsWhenTheDeviceProgresses() throws {
        let t = try IDXDTestbed(options: IDXDOptions(enqcmdsRetries: 5))
        try t.dsa.configureWQ(0, mode: .shared, size: 2)
        try t.dsa.enableWQ(0, type: .kernel)
        let src = try t.kernelBuffer(Array("x".utf8)), dst = try t.kernelBuffer(), cr = try t.kernelBuffer()
        let d = IDXDDescriptor.memmove(from: src.iova, to: dst.iova, count: 1, completion: cr.iova)
        t.dsa.manualEngine = true
        try t.dsa.submitKernel(d, wq: 0)
        try t.dsa.submitKernel(d, wq: 0)
        XCTAssertEqual(t.dsa.workQueues[0].occupancy, 2)
        // Stalled device: 1 + 5 attempts, then EAGAIN with nothing queued.
        assertErrno(.tryAgain) { try t.dsa.submitKernel(d, wq: 0) }
        XCTAssertEqual(t.dsa.enqcmdsRetryCount, 5)
        XCTAssertEqual(t.dsa.workQueues[0].occupancy, 2)
        XCTAssertEqual(t.dsa.completions.count, 0)
        // The device completes one descriptor per spin: the first retry succeeds.
        t.dsa.descriptorsCompletedPerRetry = 1
        try t.dsa.submitKernel(d, wq: 0)
        XCTAssertEqual(t.dsa.enqcmdsRetryCount, 6)
        XCTAssertEqual(t.dsa.completions.count, 1)
        XCTAssertEqual(t.dsa.workQueues[0].occupancy, 2)
        XCTAssertEqual(t.dsa.runEngine(), 2)
        XCTAssertEqual(t.dsa.completions.map(\.record.status), [.success, .success, .success])
        // User ENQCMD stops at the threshold and reports retry to user space.
        try t.dsa.configureWQ(1, mode: .shared, size: 4, threshold: 1)
        try t.dsa.enableWQ(1, type: .user)
        let (p, va) = try t.process(62)
        let ctx = try t.dsa.open(wq: 1, process: p)
        let portal = try ctx.mmap(from: p)
        let u = IDXDDescriptor(opcode: .noop, completionAddress: IOVA(sva: va))
        XCTAssertEqual(portal.enqcmd(u), .accepted)
        XCTAssertEqual(portal.enqcmd(u), .retry)
        XCTAssertEqual(t.dsa.runEngine(), 1)
        XCTAssertEqual(portal.enqcmd(u), .accepted)
        t.dsa.manualEngine = false
        ctx.close()
        p.exit()
    }

    func testCompletionRecordsForMemmoveFillCompareAndErrors() throws {
        let t = try IDXDTestbed()
        try t.dsa.configureWQ(0, mode: .dedicated)
        try t.dsa.enableWQ(0, type: .kernel)
        let data = (0..<6000).map { UInt8(truncatingIfNeeded: $0) }
        let pa = try t.machine.memory.allocContiguous(bytes: 4 * 4096)
        try t.machine.memory.write(pa, data)
        let iova = try t.iommu.dmaMapPage(t.pci, paddr: pa, size: 4 * 4096)
        let cr = try t.kernelBuffer()
        func record() throws -> DSACompletionRecord {
            try XCTUnwrap(DSACompletionRecord(bytes: t.machine.memory.bytes(at: cr.pa, count: 32)))
        }
        // MEMMOVE across page boundaries.
        try t.dsa.submitKernel(.memmove(from: iova, to: iova + 8192, count: 6000, completion: cr.iova), wq: 0)
        XCTAssertEqual(try record(), DSACompletionRecord(status: .success, bytesCompleted: 6000))
        XCTAssertEqual(try t.machine.memory.bytes(at: pa + 8192, count: 6000), data)
        // COMPARE equal, then different at offset 4100.
        try t.dsa.submitKernel(.compare(iova, iova + 8192, count: 6000, completion: cr.iova), wq: 0)
        XCTAssertEqual(try record().result, 0)
        try t.machine.memory.write(pa + 8192 + 4100, [0xEE])
        try t.dsa.submitKernel(.compare(iova, iova + 8192, count: 6000, completion: cr.iova), wq: 0)
        XCTAssertEqual(try record(), DSACompletionRecord(status: .success, result: 1, bytesCompleted: 4100))
        // MEMFILL with an 8-byte pattern.
        try t.dsa.submitKernel(.fill(iova + 8192, pattern: 0x0807_0605_0403_0201, count: 20, completion: cr.iova), wq: 0)
        XCTAssertEqual(try t.machine.memory.bytes(at: pa + 8192, count: 20), [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4])
        // A fault part way: bytes completed and the faulting IOVA.
        try t.dsa.submitKernel(.memmove(from: iova + 4096, to: iova + 4 * 4096 - 100, count: 300, completion: cr.iova), wq: 0)
        let f = try record()
        XCTAssertEqual(f.status.code, .pageFault)
        XCTAssertTrue(f.status.faultedOnWrite)
        XCTAssertEqual(f.bytesCompleted, 100)
        XCTAssertEqual(f.faultAddress, iova + 4 * 4096)
        // Unknown opcode and a transfer beyond the limit.
        try t.dsa.submitKernel(IDXDDescriptor(opcode: DSAOpcode(rawValue: 0x7f), completionAddress: cr.iova), wq: 0)
        XCTAssertEqual(try record().status, .badOpcode)
        try t.dsa.submitKernel(.memmove(from: iova, to: iova, count: 4 << 20, completion: cr.iova), wq: 0)
        XCTAssertEqual(try record().status, .transferSizeOutOfRange)
        // A completion record the device cannot write: SWERR, the record is lost.
        try t.dsa.submitKernel(IDXDDescriptor(opcode: .noop, completionAddress: 0x7000_0000), wq: 0)
        XCTAssertEqual(t.dsa.completions.last?.recordWritten, false)
        XCTAssertEqual(t.dsa.softwareErrors.count, 1)
        XCTAssertEqual(DSACompletionRecord(bytes: DSACompletionRecord(status: .success, result: 1, bytesCompleted: 7, faultAddress: 9).bytes),
                       DSACompletionRecord(status: .success, result: 1, bytesCompleted: 7, faultAddress: 9))
        XCTAssertNil(DSACompletionRecord(bytes: [1, 2]))
    }

    func testPageFaultCompletionThenTouchAndResubmit() throws {
        let t = try IDXDTestbed()
        try t.dsa.configureWQ(0, mode: .shared, size: 8)
        try t.dsa.enableWQ(0, type: .user)
        let (p, va) = try t.process(63, bytes: Array("fault me in".utf8))
        let lazy = try p.mmap(length: 4096, prot: [.read, .write])
        let ctx = try t.dsa.open(wq: 0, process: p)
        let portal = try ctx.mmap(from: p)
        XCTAssertEqual(portal.enqcmd(.memmove(from: IOVA(sva: va), to: IOVA(sva: lazy), count: 11, completion: IOVA(sva: va + 8192))), .accepted)
        let r = try XCTUnwrap(DSACompletionRecord(bytes: try p.readMemory(address: va + 8192, count: 32)))
        XCTAssertEqual(r.status.code, .pageFault)
        XCTAssertEqual(r.faultAddress, IOVA(sva: lazy))
        try p.handleFault(address: r.faultAddress.rawValue, write: r.status.faultedOnWrite)
        let done = UInt64(r.bytesCompleted)
        XCTAssertEqual(portal.enqcmd(.memmove(from: IOVA(sva: va + done), to: IOVA(sva: lazy + done),
                                              count: 11 - r.bytesCompleted, completion: IOVA(sva: va + 8192))), .accepted)
        XCTAssertEqual(t.dsa.completions.last?.record.status, .success)
        XCTAssertEqual(try p.readMemory(address: lazy, count: 11), Array("fault me in".utf8))
        ctx.close()
        p.exit()
        XCTAssertEqual(t.violations, [])
    }

    func testDedicatedKernelWQWithPasidNeedsPrivilegedMode() throws {
        let t = try IDXDTestbed(privilegedMode: false)
        XCTAssertNotNil(t.dsa.kernelPasid)
        try t.dsa.configureWQ(0, mode: .dedicated)
        assertErrno(.noSuchDeviceOrAddress) { try t.dsa.enableWQ(0, type: .kernel) }
        XCTAssertEqual(t.dsa.commandStatus, .wqNoPriv)
        XCTAssertFalse(t.dsa.workQueues[0].isEnabled)
        XCTAssertEqual(t.dsa.workQueues[0].config, IDXDWQConfig())
        // A shared kernel WQ has no WQCFG PASID of its own: fine without Privileged Mode.
        try t.dsa.configureWQ(1, mode: .shared, size: 4)
        try t.dsa.enableWQ(1, type: .kernel)
        XCTAssertEqual(t.dsa.commandStatus, .ok)
    }

    func testErrorPathsLeaveStateUnchanged() throws {
        let t = try IDXDTestbed()
        assertErrno(.invalidArgument) { try t.dsa.configureWQ(9, mode: .shared) }
        assertErrno(.invalidArgument) { try t.dsa.configureWQ(0, mode: .shared, size: 0) }
        assertErrno(.invalidArgument) { try t.dsa.configureWQ(0, mode: .shared, size: 4, threshold: 5) }
        XCTAssertEqual(t.dsa.workQueues[0].mode, .dedicated)
        XCTAssertEqual(t.dsa.workQueues[0].size, 16)
        try t.dsa.configureWQ(0, mode: .shared, size: 4, threshold: 0)
        assertErrno(.noSuchDeviceOrAddress) { try t.dsa.enableWQ(0, type: .kernel) }
        XCTAssertEqual(t.dsa.commandStatus, .wqNoThreshold)
        XCTAssertEqual(t.dsa.workQueues[0].type, .none)
        assertErrno(.invalidArgument) { try t.dsa.enableWQ(0, type: .none) }
        try t.dsa.configureWQ(0, mode: .shared, size: 4)
        try t.dsa.enableWQ(0, type: .kernel)
        assertErrno(.busy) { try t.dsa.enableWQ(0, type: .kernel) }
        XCTAssertEqual(t.dsa.commandStatus, .wqEnabled)
        assertErrno(.notPermitted) { try t.dsa.configureWQ(0, mode: .dedicated) }
        XCTAssertEqual(t.dsa.workQueues[0].mode, .shared)
        // Submission errnos.
        let d = IDXDDescriptor(opcode: .noop)
        assertErrno(.invalidArgument) { try t.dsa.submitKernel(d, wq: 7) }
        assertErrno(.noSuchDeviceOrAddress) { try t.dsa.submitKernel(d, wq: 1) }
        assertErrno(.invalidArgument) { try t.dsa.enqcmds(d, wq: 1) }
        try t.dsa.configureWQ(2, mode: .shared, size: 4)
        assertErrno(.noSuchDeviceOrAddress) { try t.dsa.enqcmds(d, wq: 2) }
        XCTAssertEqual(t.dsa.completions.count, 0)
        // Opening a WQ that is not an enabled user WQ, and a WQ with open files.
        let (p, _) = try t.process(64)
        assertErrno(.noDevice) { try t.dsa.open(wq: 0, process: p) }
        assertErrno(.invalidArgument) { try t.dsa.open(wq: 11, process: p) }
        XCTAssertNil(p.enqcmdPasid, "no bind happened")
        try t.dsa.enableWQ(2, type: .user)
        let ctx = try t.dsa.open(wq: 2, process: p)
        assertErrno(.busy) { try t.dsa.disableWQ(2) }
        XCTAssertTrue(t.dsa.workQueues[2].isEnabled)
        ctx.close()
        ctx.close()
        assertErrno(.badFileDescriptor) { try ctx.mmap(from: p) }
        assertErrno(.badFileDescriptor) { try ctx.write([d], from: p) }
        try t.dsa.disableWQ(2)
        XCTAssertEqual(t.dsa.workQueues[2].type, .none)
        // Probe errnos.
        let stray = IDXDDevice.makeFunction(rid: RID(bus: 9, device: 0, function: 0))
        assertErrno(.noDevice) { try IDXDDevice.probe(stray) }
        let second = try t.machine.addDevice(IDXDDevice.makeFunction(rid: RID(bus: 0, device: 5, function: 0)), behind: t.unit)
        assertErrno(.invalidArgument) { try IDXDDevice.probe(second, options: IDXDOptions(workQueues: 0)) }
        XCTAssertEqual(second.group?.ownerCount, 0)
        p.exit()
        XCTAssertEqual(t.machine.warnings, [])
    }

    func testAfterMMExitNoDMAReachesTheOldMMAndRemoveReleasesOpenFiles() throws {
        let t = try IDXDTestbed()
        try t.dsa.configureWQ(0, mode: .shared, size: 8)
        try t.dsa.enableWQ(0, type: .user)
        let (p, va) = try t.process(65)
        let ctx = try t.dsa.open(wq: 0, process: p)
        let pasid = try XCTUnwrap(ctx.userPasid)
        let portal = try ctx.mmap(from: p)
        // The mm exits: its PASID entry turns fault-suppressing until unbind, so a
        // descriptor still carrying the PASID reaches nothing.
        p.exit()
        XCTAssertEqual(portal.enqcmd(.fill(IOVA(sva: va), pattern: 1, count: 8, completion: IOVA(sva: va + 4096))), .accepted)
        XCTAssertEqual(t.dsa.completions.last?.record.status.code, .pageFault)
        XCTAssertEqual(t.dsa.completions.last?.recordWritten, false)
        // Removal closes the file in the kernel's order and leaves nothing attached.
        t.dsa.clearTrace()
        t.dsa.remove()
        let calls = t.dsa.trace.map(\.description)
        let drain = try XCTUnwrap(calls.firstIndex(of: "IDXD_CMD_DRAIN_PASID pasid \(pasid)"))
        let unbind = try XCTUnwrap(calls.firstIndex(of: "iommu_sva_unbind_device pasid \(pasid)"))
        let unuse = try XCTUnwrap(calls.firstIndex(of: "iommu_device_unuse_default_domain"))
        XCTAssertLessThan(drain, unbind)
        XCTAssertLessThan(unbind, unuse)
        XCTAssertFalse(ctx.open)
        XCTAssertEqual(t.pci.group?.pasidArray.isEmpty, true)
        XCTAssertEqual(t.machine.warnings, [])
    }
}
