import IOMMUConformance
import VendorFixtures
import XCTest
import DriverShims
import IOMMUCore
import IOMMUDrivers

/// A VT-d machine with one idxd-like function at 00:04.0, probed.
final class IDXDTestbed {
    let machine: Machine
    let unit: IOMMUDevice
    let pci: PCIDevice
    let dsa: IDXDDevice

    init(options: IDXDOptions = IDXDOptions(), privilegedMode: Bool = true, mock: MockIOMMUDriver? = nil) throws {
        let rig = try mock.map { MockVendor().makeRig(driver: $0) } ?? VTdVendor().makeRig()
        machine = rig.machine
        machine.checker.isEnabled = true
        unit = rig.unit
        pci = try machine.addDevice(IDXDDevice.makeFunction(rid: RID(bus: 0, device: 4, function: 0),
                                                            privilegedMode: privilegedMode), behind: unit)
        dsa = try IDXDDevice.probe(pci, options: options)
    }

    var iommu: IOMMUSubsystem { machine.iommu }

    /// A kernel DMA buffer: a frame mapped through the DMA API.
    func kernelBuffer(_ bytes: [UInt8] = []) throws -> (pa: PhysicalAddress, iova: IOVA) {
        let pa = try machine.memory.allocContiguous(bytes: 4096)
        if !bytes.isEmpty { try machine.memory.write(pa, bytes) }
        return (pa, try iommu.dmaMapPage(pci, paddr: pa, size: 4096))
    }

    /// A process with `pages` populated pages, the first holding `bytes`.
    func process(_ pid: Int32, pages: Int = 3, bytes: [UInt8] = [], skip: Int = 0) throws -> (IOMMUCore.Process, UInt64) {
        let p = try IOMMUCore.Process(memory: machine.memory, pid: pid)
        if skip > 0 { try p.mmap(length: skip * 4096, prot: [.read, .write]) }
        let va = try p.mmap(length: pages * 4096, prot: [.read, .write], populate: true)
        if !bytes.isEmpty { try p.writeMemory(address: va, bytes: bytes) }
        return (p, va)
    }

    var violations: [Violation] { machine.checker.violations }
}

func vtdRig() throws -> FlavourRig {
    let rig = try VTdVendor().makeRig()
    return FlavourRig(machine: rig.machine, unit: rig.unit)
}
