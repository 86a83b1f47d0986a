import IOMMUConformance
import IOMMUCore
import VendorFixtures
import XCTest
import IOMMUDrivers
import IOMMUFD
import IOMMUFDSelftest
@testable import DriverShims

let PAGE: UInt64 = 4096

/// `-errno` for an `Errno`.
func neg(_ e: Errno) -> Int32 { -e.rawValue }

/// A machine with one IOMMU (Mock or Intel VT-d), a user process with an iommufd open
/// in its file table, a scratch page for ioctl arguments and a 64 KiB buffer to map.
/// iommufd is driven through its raw dispatcher, as a VMM would.
final class VFIORig {
    let machine: Machine
    let unit: IOMMUDevice
    let process: IOMMUCore.Process
    let files = FileDescriptorTable()
    let iommufd: IOMMUFD
    let fd: Int32
    let arg: UInt64
    let buffer: UInt64
    static let bufferSize: UInt64 = 16 * PAGE

    private init(_ rig: Rig) throws {
        machine = rig.machine
        unit = rig.unit
        process = try IOMMUCore.Process(memory: machine.memory, pid: 77)
        iommufd = IOMMUFD(machine: machine, process: process)
        fd = files.install(iommufd)
        arg = try process.mmap(length: 1 << 16, prot: [.read, .write], at: 0x7000_0000)
        buffer = try process.mmap(length: Int(Self.bufferSize), prot: [.read, .write], at: 0x4000_0000)
        try process.writeMemory(address: buffer, bytes: [UInt8](repeating: 0, count: Int(Self.bufferSize)))
    }

    /// Close the iommufd while it is alive: letting the last reference go with objects
    /// still in it crashes in `IOMMUFD.deinit` (reported to the iommufd owner).
    deinit { iommufd.close() }

    /// A rig on the selftest Mock IOMMU (user-owned PASID tables: all-PASIDs works).
    static func mock() throws -> VFIORig { try VFIORig(MockVendor().makeRig()) }

    /// A rig on an Intel VT-d unit in scalable mode (per-PASID attach only).
    static func vtd() throws -> VFIORig { try VFIORig(VTdVendor().makeRig()) }

    /// A rig on an ARM SMMUv3 (a nested vSTE gives the guest the RID and every PASID),
    /// built as `configuration` says.
    static func smmuv3(_ configuration: SMMUv3Configuration = SMMUv3Configuration()) throws -> VFIORig {
        try VFIORig(SMMUv3Vendor(configuration: configuration).makeRig())
    }

    var iommu: IOMMUSubsystem { machine.iommu }
    var user: ProcessUserMemory { ProcessUserMemory(process) }

    /// A PCI function with (or without) a 20-bit PASID capability, alone in its group.
    func device(slot: UInt8 = 2, pasid: Bool = true) throws -> PCIDevice {
        let caps = PCICapabilities(pasid: pasid ? PASIDCapability(width: 20) : nil)
        return try machine.addDevice(PCIDevice(rid: RID(bus: 0x10, device: slot, function: 0), caps: caps), behind: unit)
    }

    /// Two functions of one multifunction device without ACS: one IOMMU group.
    func groupOfTwo() throws -> (PCIDevice, PCIDevice) {
        let a = try machine.addDevice(PCIDevice(rid: RID(bus: 0x11, device: 0, function: 0), caps: PCICapabilities(acs: false),
                                                multifunction: true), behind: unit)
        let b = try machine.addDevice(PCIDevice(rid: RID(bus: 0x11, device: 0, function: 1), caps: PCICapabilities(acs: false),
                                                multifunction: true), behind: unit)
        return (a, b)
    }

    /// vfio-pci over `dev`, opened as a cdev.
    func open(_ dev: PCIDevice) -> (VFIOPCIDevice, VFIODeviceFile) {
        let v = VFIOPCIDevice(dev)
        return (v, v.openCdev(user: user, files: files))
    }

    /// vfio-pci over `dev`, opened and bound.
    func bound(_ dev: PCIDevice) throws -> (VFIOPCIDevice, VFIODeviceFile, DeviceObjectID) {
        let (v, f) = open(dev)
        let id = try f.bindIOMMUFD(fd)
        return (v, f, try XCTUnwrap(iommufd.objectID(id, as: IOMMUFDKind.Device.self)))
    }

    // MARK: raw ioctls

    /// A raw ioctl on `call` with `bytes` at the scratch page; rc and the bytes after.
    func raw(_ call: (UInt32, UInt64) -> Int32, _ cmd: UInt32, _ bytes: [UInt8]) -> (Int32, [UInt8]) {
        try! process.writeMemory(address: arg, bytes: bytes)
        let rc = call(cmd, arg)
        return (rc, try! process.readMemory(address: arg, count: bytes.count))
    }

    @discardableResult
    func iommuCall<T: UAPIStruct>(_ cmd: UInt32, _ s: inout T) -> Int32 {
        let (rc, out) = raw(iommufd.ioctl, cmd, s.bytes)
        s = T(bytes: out)
        return rc
    }

    func ioasAlloc() -> IOASObjectID {
        var c = IOMMUIOASAlloc()
        precondition(iommuCall(IOMMUFDCommand.ioasAlloc, &c) == 0)
        return IOASObjectID(rawValue: c.outIoasId)
    }

    /// IOAS_MAP of `[va, va+length)` at a fixed `iova`.
    func map(_ ioas: IOASObjectID, va: UInt64, length: UInt64, iova: UInt64, writable: Bool = true) -> Int32 {
        let prot = IOMMUFDConstant.mapReadable | (writable ? IOMMUFDConstant.mapWriteable : 0)
        var c = IOMMUIOASMap(flags: IOMMUFDConstant.mapFixedIOVA | prot, ioasId: ioas.rawValue, userVa: va, length: length, iova: iova)
        return iommuCall(IOMMUFDCommand.ioasMap, &c)
    }

    func unmap(_ ioas: IOASObjectID, iova: UInt64, length: UInt64) -> (Int32, UInt64) {
        var c = IOMMUIOASUnmap(ioasId: ioas.rawValue, iova: iova, length: length)
        let rc = iommuCall(IOMMUFDCommand.ioasUnmap, &c)
        return (rc, c.length)
    }

    /// IOMMU_HWPT_ALLOC of a paging HWPT on `ioas` for device object `devID`.
    func hwptAlloc(dev devID: DeviceObjectID, ioas: IOASObjectID, flags: UInt32 = 0) -> (Int32, HWPTObjectID) {
        var c = IOMMUHWPTAlloc(flags: flags, devId: devID.rawValue, ptId: ioas.rawValue)
        let rc = iommuCall(IOMMUFDCommand.hwptAlloc, &c)
        return (rc, HWPTObjectID(rawValue: c.outHwptId))
    }

    /// IOMMU_HWPT_ALLOC of a Mock nested HWPT (selftest data) on `parent`.
    func nestedAlloc(dev devID: DeviceObjectID, parent: HWPTObjectID) -> (Int32, HWPTObjectID) {
        let data = IOMMUHWPTSelftest(iotlb: IOMMUTestOp.iotlbDefault).bytes
        let at = arg + 0x8000
        try! process.writeMemory(address: at, bytes: data)
        var c = IOMMUHWPTAlloc(devId: devID.rawValue, ptId: parent.rawValue, dataType: IOMMUTestOp.hwptDataSelftest,
                               dataLen: UInt32(data.count), dataUptr: at)
        let rc = iommuCall(IOMMUFDCommand.hwptAlloc, &c)
        return (rc, HWPTObjectID(rawValue: c.outHwptId))
    }

    /// An IOAS with the whole buffer mapped at IOVA `iova`, and a fill pattern.
    func mappedIOAS(iova: UInt64 = 0x1010_0000) throws -> IOASObjectID {
        let ioas = ioasAlloc()
        XCTAssertEqual(map(ioas, va: buffer, length: Self.bufferSize, iova: iova), 0)
        return ioas
    }

    /// Reads the buffer through the process (what the VMM sees).
    func bufferBytes(at offset: UInt64, count: Int) throws -> [UInt8] {
        try process.readMemory(address: buffer + offset, count: count)
    }

    /// Objects of the iommufd by type.
    func objects(_ type: IOMMUFDObjectType) -> Int {
        iommufd.objectSnapshot.filter { $0.type == type }.count
    }
}
