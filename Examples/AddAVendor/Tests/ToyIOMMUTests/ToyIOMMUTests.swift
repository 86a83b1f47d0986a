import CopyEngine
import IOMMUConformance
import IOMMUCore
import ToyIOMMU
import XCTest

/// The toy's own behaviour and its device driver, with the product's helpers.
final class ToyIOMMUTests: XCTestCase {
    /// The copy engine moves bytes through the toy IOMMU; once its driver has unmapped
    /// the buffers, the same job faults; nothing leaks.
    func testCopyEngineMovesBytesOnlyWhileMapped() throws {
        let rig = try ToyVendor().makeRig()
        rig.machine.checker.isEnabled = true
        let engine = CopyEngineDevice(rid: RID(bus: 0, device: 3, function: 0))
        try rig.machine.addDevice(engine.pci, behind: rig.unit)
        let source = try rig.buffer(fill: 0x5c), destination = try rig.buffer()
        let leaks = rig.leakCheck()
        let driver = try CopyEngineDriver(engine: engine, machine: rig.machine)
        let job = try driver.copy(from: source, to: destination, length: 64)
        XCTAssertEqual(try rig.memory.bytes(at: destination, count: 65), [UInt8](repeating: 0x5c, count: 64) + [0])
        XCTAssertEqual(engine.execute(job)?.address, job.source, "the buffers are unmapped after the job")
        driver.unbind()
        leaks.assertNoLeaks()
        assertNoViolations(rig.machine)
    }

    /// A DMA-API driver cannot bind while a user owns the group.
    func testCopyEngineDriverRefusesAUserOwnedDevice() throws {
        let rig = try ToyVendor().makeRig()
        let engine = CopyEngineDevice(rid: RID(bus: 0, device: 3, function: 0))
        try rig.machine.addDevice(engine.pci, behind: rig.unit)
        final class Owner {}
        try rig.iommu.deviceClaimDMAOwner(engine.pci, owner: Owner())
        assertErrno(.busy) { try CopyEngineDriver(engine: engine, machine: rig.machine) }
    }

    /// The driver WARNs when a device is released with a PASID still attached.
    func testReleaseWithAPasidAttachedWarns() throws {
        let rig = try ToyVendor().makeRig([.pasid])
        let dev = rig.devices[0]
        ToyDriver().releaseDevice(dev)
        assertNoWarnings(rig.machine, "another driver's release does nothing")
        let unit = try XCTUnwrap(rig.unit as? ToyIOMMU)
        try rig.iommu.attachDevicePasid(try rig.pagingDomain(), to: dev, pasid: 7)
        unit.toyDriver.releaseDevice(dev)
        XCTAssertEqual(rig.machine.warnings.map(\.function), ["toy_release_device"])
    }

    /// The toy hardware caches translations until invalidated: a PTE cleared without an
    /// invalidation command still translates from the IOTLB; after the command it faults.
    func testClearedPTEStaysCachedUntilTheInvalidationCommand() throws {
        let rig = try ToyVendor().makeRig([.pasid])
        let dev = rig.devices[0]
        let domain = try XCTUnwrap(try rig.pagingDomain() as? ToyPagingDomain)
        let iova: IOVA = 0x100_0000
        try rig.iommu.map(domain, iova: iova, paddr: try rig.buffer(fill: 0x42), size: 4096, prot: [.read])
        try rig.iommu.attachDevice(domain, to: dev)
        XCTAssertEqual(try dev.dmaRead(at: iova, count: 1), [0x42], "walks and caches")
        try rig.memory.write(domain.table + iova.rawValue / 4096 * 8, [UInt8](repeating: 0, count: 8))
        XCTAssertEqual(try dev.dmaRead(at: iova, count: 1), [0x42], "served from the IOTLB")
        let toy = try XCTUnwrap(rig.unit as? ToyIOMMU)
        toy.hardwareLock.withLock {
            toy.toy.execute(.invalidateRange(domainID: domain.domainID, first: iova, last: iova + 4095))
        }
        XCTAssertThrowsError(try dev.dmaRead(at: iova, count: 1)) {
            XCTAssertEqual(($0 as? DMAFault)?.reason, .toyNotMapped)
        }
    }
}
