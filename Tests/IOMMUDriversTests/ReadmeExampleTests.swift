import XCTest
import IOMMUCore
import IOMMUDrivers

/// The README's "A driver in a few lines", statement for statement, so that it keeps
/// compiling and doing what it says.
final class ReadmeExampleTests: XCTestCase {
    func testTheDriverExampleRuns() throws {
        let machine = Machine(memory: 1 << 30)
        let unit = try IntelIOMMU(name: "dmar0", driver: IntelIOMMUDriver(),
                                  hardware: VTdHardware(memory: machine.memory, caps: VTdCapabilities()))
        machine.addIOMMU(unit)
        let dsa = try machine.addDevice(
            PCIDevice(rid: RID(bus: 0, device: 3, function: 0), name: "dsa0",
                      caps: PCICapabilities(pasid: PASIDCapability(width: 20), ats: true)),
            behind: unit)

        // The kernel PASID pattern: the default DMA domain also translates a global PASID.
        let iommu = machine.iommu
        let domain = dsa.group!.defaultDomain!
        let pasid: PASID = try iommu.allocGlobalPasid(for: dsa)     // iommu_alloc_global_pasid (ENOSPC: none free)
        try iommu.attachDevicePasid(domain, to: dsa, pasid: pasid)   // iommu_attach_device_pasid

        let buffer: PhysicalAddress = try machine.memory.allocContiguous(bytes: 4096)
        let iova: IOVA = 0x10_0000
        try iommu.map(domain, iova: iova, paddr: buffer, size: 4096, prot: [.read, .write])
        try dsa.dmaWrite(at: iova, bytes: Array("hello".utf8), pasid: pasid)
        XCTAssertEqual(try machine.memory.bytes(at: buffer, count: 5), Array("hello".utf8))  // the bytes that arrived

        _ = iommu.unmap(domain, iova: iova, size: 4096)             // iommu_unmap: invalidates
        XCTAssertThrowsError(try dsa.dmaRead(at: iova, count: 5))    // faults: no PASID is nil
    }
}
