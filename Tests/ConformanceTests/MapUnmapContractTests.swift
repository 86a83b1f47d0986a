import Foundation
import IOMMUConformance
import IOMMUCore
import IOMMUDrivers
import VendorFixtures
import XCTest

/// What the invariant checker says about concurrent `iommu_map` / `iommu_unmap` calls on
/// one domain: overlapping ranges at the same time are reported, disjoint ones are not,
/// and an `iommu_iotlb_sync` closes only the unmap windows its gather covered.
final class MapUnmapContractTests: XCTestCase {
    /// A Mock-owned paging domain whose `map_pages` can be held inside the call, so that
    /// another thread's call provably runs at the same time.
    private final class HeldDomain: IOMMUDomain, @unchecked Sendable {
        let entered = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let hold: Bool
        let table: IOPageTable

        init(owner: any IOMMUDriver, memory: PhysicalMemory, hold: Bool) throws {
            self.hold = hold
            table = try IOPageTable(format: .x86_64(levels: 4), memory: memory)
            super.init(type: .unmanaged, owner: owner, ops: [.mapPages, .unmapPages, .iovaToPhys], pgsizeBitmap: 1 << 12)
        }

        override func mapPages(iova: IOVA, paddr: PhysicalAddress, pgsize: UInt64, pgcount: Int, prot: IOMMUProt,
                               mapped: inout UInt64) throws(Errno) {
            if hold {
                entered.signal()
                release.wait()
            }
            try table.mapPages(iova: iova, paddr: paddr, pgsize: pgsize, pgcount: pgcount, prot: prot, mapped: &mapped)
        }

        override func unmapPages(iova: IOVA, pgsize: UInt64, pgcount: Int, gather: inout IOTLBGather) -> UInt64 {
            table.unmapPages(iova: iova, pgsize: pgsize, pgcount: pgcount, gather: &gather)
        }

        override func iovaToPhys(_ iova: IOVA) -> PhysicalAddress { table.iovaToPhys(iova) }
    }

    /// While one thread's `iommu_map` of 16 KiB runs, another thread's `iommu_unmap` of a
    /// page inside it is reported (naming both calls); one of a disjoint page is not.
    func testOverlappingCallsOnTwoThreadsAreReported() throws {
        let rig = try MockVendor().makeRig([.pasid])
        rig.machine.checker.isEnabled = true
        let domain = try HeldDomain(owner: rig.driver, memory: rig.memory, hold: true)
        let buffer = try rig.buffer(bytes: 4 * 4096)
        let iommu = rig.iommu
        let done = DispatchSemaphore(value: 0)
        Thread {
            try? iommu.map(domain, iova: 0x10_0000, paddr: buffer, size: 4 * 4096, prot: [.read])
            done.signal()
        }.start()
        domain.entered.wait()
        XCTAssertEqual(iommu.unmap(domain, iova: 0x20_0000, size: 4096), 0, "nothing mapped there")
        XCTAssertTrue(rig.machine.checker.violations.isEmpty, "a disjoint range is no overlap")
        XCTAssertEqual(iommu.unmap(domain, iova: 0x10_2000, size: 4096), 0, "not mapped yet")
        domain.release.signal()
        done.wait()
        let v = rig.machine.checker.violations(of: .overlappingMapUnmap)
        XCTAssertEqual(v.count, 1)
        XCTAssertEqual(v.first?.address, 0x10_2000)
        XCTAssertEqual(v.first?.event, "iommu_unmap")
        XCTAssertTrue(v.first?.message.contains("iommu_map of [0x100000, 0x103fff]") ?? false, "\(v)")
        XCTAssertEqual(iommu.iovaToPhys(domain, iova: 0x10_3000), buffer + 0x3000)
        XCTAssertEqual(iommu.unmap(domain, iova: 0x10_0000, size: 4 * 4096), 4 * 4096)
        domain.table.destroy()
    }

    /// The unmap `iommu_map` makes of its own partial work when a page fails is part of
    /// the same call, not an overlap.
    func testFailedMapUndoingItselfIsNoOverlap() throws {
        let rig = try MockVendor().makeRig([.pasid])
        rig.machine.checker.isEnabled = true
        let domain = try HeldDomain(owner: rig.driver, memory: rig.memory, hold: false)
        let buffer = try rig.buffer(bytes: 2 * 4096)
        try rig.iommu.map(domain, iova: 0x10_1000, paddr: buffer, size: 4096, prot: [.read])
        assertErrno(.exists) { try rig.iommu.map(domain, iova: 0x10_0000, paddr: buffer, size: 2 * 4096, prot: [.read]) }
        XCTAssertEqual(rig.iommu.iovaToPhys(domain, iova: 0x10_0000), 0, "the failed map undid its first page")
        assertNoViolations(rig.machine)
        XCTAssertEqual(rig.iommu.unmap(domain, iova: 0x10_1000, size: 4096), 4096)
        domain.table.destroy()
    }

    /// Two `iommu_unmap_fast` calls on disjoint ranges with their own gathers: the sync
    /// of one closes its window only. A stale IOTLB hit in the other window, whose sync
    /// has not run, is legal and not reported; after that sync the range faults.
    func testIOTLBSyncClosesOnlyTheWindowsItsGatherCovers() throws {
        let rig = try MockVendor().makeRig([.pasid])
        let dev = rig.devices[0]
        rig.machine.checker.isEnabled = true
        let domain = try rig.pagingDomain()
        let a = rig.iova(domain), b = rig.iova(domain, 0x1000)
        try rig.iommu.map(domain, iova: a, paddr: try rig.buffer(fill: 0xA), size: 4096, prot: [.read])
        try rig.iommu.map(domain, iova: b, paddr: try rig.buffer(fill: 0xB), size: 4096, prot: [.read])
        try rig.iommu.attachDevice(domain, to: dev)
        XCTAssertEqual(try dev.dmaRead(at: a, count: 1), [0xA], "fills the IOTLB")
        XCTAssertEqual(try dev.dmaRead(at: b, count: 1), [0xB])
        var gatherA = IOTLBGather(), gatherB = IOTLBGather()
        XCTAssertEqual(rig.iommu.unmapFast(domain, iova: a, size: 4096, gather: &gatherA), 4096)
        XCTAssertEqual(rig.iommu.unmapFast(domain, iova: b, size: 4096, gather: &gatherB), 4096)
        rig.iommu.iotlbSync(domain, gather: &gatherB)
        XCTAssertThrowsError(try dev.dmaRead(at: b, count: 1), "b is synced")
        XCTAssertEqual(try dev.dmaRead(at: a, count: 1), [0xA], "a's stale entry serves until its own sync")
        assertNoViolations(rig.machine, "a stale hit inside an open unmap window is legal")
        rig.iommu.iotlbSync(domain, gather: &gatherA)
        XCTAssertThrowsError(try dev.dmaRead(at: a, count: 1))
        assertNoViolations(rig.machine)
    }
}
