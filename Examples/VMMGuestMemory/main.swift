// VMMGuestMemory: a tiny VMM that gives a passthrough PCI device DMA access to guest RAM
// through iommufd and the vfio-pci cdev, the way QEMU's iommufd backend does it.
//
//   swift run VMMGuestMemory          human-readable log
//   swift run VMMGuestMemory --json   the same as JSON
import Foundation
import IOMMUCore
import IOMMUDrivers
import IOMMUFD
import DriverShims

/// What happened, step by step: an identifier and the figures of each step (the JSON
/// form), and the text a person reads (not encoded).
struct Report: Encodable {
    struct Step: Encodable {
        let step: String
        var fd: Int32?
        var ioas: UInt32?
        var hwpt: UInt32?
        var devid: UInt32?
        var iova: UInt64?
        var va: UInt64?
        var length: UInt64?
        var bytes: Int?
        var data: String?
        var groupDomain: String?
        var faultReason: UInt16?
        var violations: Int?
        var what = ""
        var result = ""

        enum CodingKeys: String, CodingKey {
            case step, fd, ioas, hwpt, devid, iova, va, length, bytes, data, groupDomain, faultReason, violations
        }
        init(_ step: String) { self.step = step }
    }
    var iommu = ""
    var device = ""
    var guestRAMBytes = 0
    var steps: [Step] = []
    var deviceWrote = ""
    var vmmReadBack = ""
    var guestRequestDeviceRead = ""
    var ok = false
    /// Steps are also the machine's (`Machine.step`), for `iommukit graph VMMGuestMemory`.
    var machine: Machine?

    enum CodingKeys: String, CodingKey {
        case iommu, device, guestRAMBytes = "guest_ram_bytes", steps, deviceWrote, vmmReadBack, guestRequestDeviceRead, ok
    }

    mutating func log(_ step: Step) {
        steps.append(step)
        machine?.step(step.what)
    }
}

enum VMMError: Error, CustomStringConvertible {
    case ioctl(String, Int32)
    case dma(DMAFault)
    case mismatch(String)
    var description: String {
        switch self {
        case .ioctl(let name, let rc): "\(name) failed: \(Errno(rawValue: -rc))"
        case .dma(let f): "device DMA faulted: \(f)"
        case .mismatch(let what): what
        }
    }
}

/// The VMM process: its memory, its file table, and a page where it builds ioctl
/// arguments, as a C program would on its stack.
final class VMM {
    let machine: Machine
    let process: IOMMUCore.Process
    let files = FileDescriptorTable()
    let argPage: UInt64
    var report = Report()

    init(machine: Machine) throws {
        self.machine = machine
        process = try IOMMUCore.Process(memory: machine.memory, pid: 4242)
        argPage = try process.mmap(length: 4096, prot: [.read, .write])
    }

    /// `ioctl(fd, cmd, &arg)`: write the structure into our memory, call, read it back.
    func ioctl<T: UAPIStruct>(_ name: String, _ call: (UInt32, UInt64) -> Int32, _ cmd: UInt32,
                              _ arg: inout T) throws -> Int32 {
        try process.writeMemory(address: argPage, bytes: arg.bytes)
        let rc = call(cmd, argPage)
        guard rc >= 0 else { throw VMMError.ioctl(name, rc) }
        arg = T(bytes: try process.readMemory(address: argPage, count: T.size))
        return rc
    }
}

func run() throws -> Report {
    // The host: one Intel VT-d unit (scalable mode) and an NVMe-like function behind it.
    let machine = Machine(memory: 1 << 30)
    machine.checker.isEnabled = true
    let unit = try IntelIOMMU(name: "dmar0", driver: IntelIOMMUDriver(),
                              hardware: VTdHardware(memory: machine.memory, caps: VTdCapabilities()))
    machine.addIOMMU(unit)
    let nvme = try machine.addDevice(PCIDevice(rid: RID(bus: 0x3a, device: 0, function: 0), name: "nvme0"),
                                     behind: unit)

    let vmm = try VMM(machine: machine)
    vmm.report.iommu = unit.name
    vmm.report.device = "\(nvme.rid)"
    vmm.report.machine = machine
    func log(_ id: String, _ what: String, _ result: String, _ fill: (inout Report.Step) -> Void = { _ in }) {
        var step = Report.Step(id)
        (step.what, step.result) = (what, result)
        fill(&step)
        vmm.report.log(step)
    }

    // open("/dev/iommu")
    let iommufd = IOMMUFD(machine: machine, process: vmm.process)
    let iommuFD = vmm.files.install(iommufd)
    log("open_iommufd", "open /dev/iommu", "fd \(iommuFD)") { $0.fd = iommuFD }

    // Guest RAM: 2 MiB of anonymous memory in the VMM, guest-physical 0 at IOVA 0.
    let ramSize = 2 << 20
    let guestRAM = try vmm.process.mmap(length: ramSize, prot: [.read, .write])
    vmm.report.guestRAMBytes = ramSize
    log("mmap_guest_ram", "mmap guest RAM", String(format: "%d KiB at VA 0x%llx", ramSize >> 10, guestRAM)) {
        ($0.va, $0.length) = (guestRAM, UInt64(ramSize))
    }

    var alloc = IOMMUIOASAlloc()
    _ = try vmm.ioctl("IOMMU_IOAS_ALLOC", iommufd.ioctl, IOMMUFDCommand.ioasAlloc, &alloc)
    let ioas = alloc.outIoasId
    log("ioas_alloc", "IOMMU_IOAS_ALLOC", "ioas \(ioas)") { $0.ioas = ioas }

    var map = IOMMUIOASMap(flags: IOMMUFDConstant.mapFixedIOVA | IOMMUFDConstant.mapReadable | IOMMUFDConstant.mapWriteable,
                           ioasId: ioas, userVa: guestRAM, length: UInt64(ramSize), iova: 0)
    _ = try vmm.ioctl("IOMMU_IOAS_MAP", iommufd.ioctl, IOMMUFDCommand.ioasMap, &map)
    log("ioas_map", "IOMMU_IOAS_MAP", String(format: "GPA 0x0-0x%llx -> VA 0x%llx", UInt64(ramSize - 1), guestRAM)) {
        ($0.ioas, $0.iova, $0.va, $0.length) = (ioas, 0, guestRAM, UInt64(ramSize))
    }

    // open("/dev/vfio/devices/vfio0"), bind it to our iommufd, attach it to the IOAS.
    let vfioDevice = VFIOPCIDevice(nvme)
    let deviceFile = vfioDevice.openCdev(user: ProcessUserMemory(vmm.process), files: vmm.files)
    var bind = VFIODeviceBindIOMMUFD(iommufd: iommuFD)
    _ = try vmm.ioctl("VFIO_DEVICE_BIND_IOMMUFD", deviceFile.ioctl, VFIODeviceCommand.bindIOMMUFD, &bind)
    let groupDomain = nvme.group?.domain.map { "\($0.type)" } ?? "none"
    log("bind_iommufd", "VFIO_DEVICE_BIND_IOMMUFD", "devid \(bind.outDevid); group now on the \(groupDomain) domain") {
        ($0.devid, $0.groupDomain) = (bind.outDevid, groupDomain)
    }

    var attach = VFIODeviceAttachIOMMUFDPT(ptId: ioas)
    _ = try vmm.ioctl("VFIO_DEVICE_ATTACH_IOMMUFD_PT", deviceFile.ioctl, VFIODeviceCommand.attachIOMMUFDPT, &attach)
    log("attach_iommufd_pt", "VFIO_DEVICE_ATTACH_IOMMUFD_PT", "ioas \(ioas) -> auto hwpt \(attach.ptId)") {
        ($0.ioas, $0.hwpt) = (ioas, attach.ptId)
    }

    // The guest puts a request at GPA 0x1000; the device reads it and DMA-writes a
    // "disk sector" to GPA 0x10000. The device only ever sees guest-physical addresses.
    let request = Array("READ lba=7 len=512 -> gpa 0x10000".utf8)
    try vmm.process.writeMemory(address: guestRAM + 0x1000, bytes: request)
    let fetched: [UInt8]
    do { fetched = try nvme.dmaRead(at: 0x1000, count: request.count) } catch { throw VMMError.dma(error) }
    vmm.report.guestRequestDeviceRead = String(decoding: fetched, as: UTF8.self)
    log("dma_read", "device DMA read GPA 0x1000", "\(fetched.count) bytes: \"\(vmm.report.guestRequestDeviceRead)\"") {
        ($0.iova, $0.bytes, $0.data) = (0x1000, fetched.count, vmm.report.guestRequestDeviceRead)
    }

    let sector = Array("sector 7: hello from nvme0 through VT-d".utf8)
    do { try nvme.dmaWrite(at: 0x10000, bytes: sector) } catch { throw VMMError.dma(error) }
    vmm.report.deviceWrote = String(decoding: sector, as: UTF8.self)
    log("dma_write", "device DMA write GPA 0x10000", "\(sector.count) bytes") {
        ($0.iova, $0.bytes, $0.data) = (0x10000, sector.count, vmm.report.deviceWrote)
    }

    // The VMM (standing in for the guest) reads guest RAM through its own mapping.
    let back = try vmm.process.readMemory(address: guestRAM + 0x10000, count: sector.count)
    vmm.report.vmmReadBack = String(decoding: back, as: UTF8.self)
    log("vmm_read", "VMM reads VA 0x\(String(guestRAM + 0x10000, radix: 16))", "\"\(vmm.report.vmmReadBack)\"") {
        ($0.va, $0.bytes, $0.data) = (guestRAM + 0x10000, back.count, vmm.report.vmmReadBack)
    }
    guard back == sector, fetched == request else { throw VMMError.mismatch("guest RAM does not hold what the device wrote") }

    // Outside guest RAM the device is stopped by the IOMMU.
    do {
        try nvme.dmaWrite(at: IOVA(rawValue: UInt64(ramSize)) + 0x1000, bytes: [0xde, 0xad])
        log("dma_write_outside", "device DMA write beyond guest RAM", "went through (unexpected)") {
            ($0.iova, $0.bytes) = (UInt64(ramSize) + 0x1000, 2)
        }
    } catch {
        log("dma_write_outside", "device DMA write beyond guest RAM", "blocked by the IOMMU: \(error.reason)") {
            ($0.iova, $0.bytes, $0.faultReason) = (UInt64(ramSize) + 0x1000, 2, error.reason.code)
        }
    }

    // Teardown as QEMU does it: close the device (unbind), unmap, close the iommufd.
    deviceFile.close()
    let after = nvme.group?.domain.map { "\($0.type)" } ?? "none"
    log("close_device", "close device fd", "unbound; group back on its \(after) domain") { $0.groupDomain = after }
    var unmap = IOMMUIOASUnmap(ioasId: ioas, iova: 0, length: UInt64(ramSize))
    _ = try vmm.ioctl("IOMMU_IOAS_UNMAP", iommufd.ioctl, IOMMUFDCommand.ioasUnmap, &unmap)
    log("ioas_unmap", "IOMMU_IOAS_UNMAP", "\(unmap.length) bytes") { ($0.ioas, $0.length) = (ioas, unmap.length) }
    iommufd.close()
    try vmm.files.close(iommuFD)
    log("close_iommufd", "close /dev/iommu", "violations reported by the checker: \(machine.checker.violations.count)") {
        $0.violations = machine.checker.violations.count
    }
    vmm.report.ok = machine.checker.violations.isEmpty
    return vmm.report
}

let json = CommandLine.arguments.contains("--json")
do {
    let report = try run()
    if json {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        print(String(decoding: try encoder.encode(report), as: UTF8.self))
    } else {
        print("VMMGuestMemory: Intel VT-d \(report.iommu), device \(report.device), \(report.guestRAMBytes >> 10) KiB guest RAM")
        for (i, s) in report.steps.enumerated() {
            print(String(format: "%2d. %@", i + 1, s.what.padding(toLength: 36, withPad: " ", startingAt: 0)) + s.result)
        }
        print(report.ok ? "OK: the device's bytes arrived in guest RAM" : "FAILED")
    }
    exit(report.ok ? 0 : 1)
} catch {
    print("VMMGuestMemory: \(error)")
    exit(1)
}
