import Foundation
import IOMMUCore
import IOMMUDrivers
import IOMMUFD

/// iommufd map/unmap cost through the uAPI, the way a VMM pays it: `IOMMU_IOAS_MAP` of
/// 1 GiB of user memory (pinned from a process) into an IOAS with two attached VT-d
/// paging domains, so every call pins and then maps into both; then the matching
/// `IOMMU_IOAS_UNMAP` calls. Every call goes through the typed API, one line over the
/// raw dispatcher.
///
/// Keys: `ioas_map_4k_ns` and `ioas_unmap_4k_ns` (4 KiB calls, ns per call),
/// `ioas_map_2m_ns` (2 MiB calls, ns per call). `IOAS_BENCH_MB` shrinks the 1 GiB for
/// quick runs.
/// Each run builds fresh rigs (a run maps and unmaps everything).
func iommufdBenchmark() throws -> () throws -> [String: Double] {
    let megabytes = ProcessInfo.processInfo.environment["IOAS_BENCH_MB"].flatMap { Int($0) } ?? 1024
    let total = UInt64(megabytes) << 20
    return {
        var out: [String: Double] = [:]
        // One rig at a time: each holds `total` bytes of populated process memory.
        do {
            let small = try IOASBenchRig(bytes: total)
            (out["ioas_map_4k_ns"], out["ioas_unmap_4k_ns"]) = try small.run(chunk: 4096)
        }
        do {
            let large = try IOASBenchRig(bytes: total)
            (out["ioas_map_2m_ns"], _) = try large.run(chunk: 2 << 20)
        }
        return out
    }
}

/// A VT-d machine, a process with `bytes` of populated anonymous memory, an iommufd
/// with two bound devices each attached to its own paging HWPT of one IOAS.
private final class IOASBenchRig {
    let machine: Machine
    let process: IOMMUCore.Process
    let fd: IOMMUFD
    let ioas: IOASObjectID
    let va: UInt64
    let bytes: UInt64
    private var devices: [DeviceObject] = []

    init(bytes: UInt64) throws {
        self.bytes = bytes
        machine = Machine(memory: bytes * 2 + (1 << 30))
        let unit = try IntelIOMMU(name: "dmar0", driver: IntelIOMMUDriver(),
                                  hardware: VTdHardware(memory: machine.memory, caps: VTdCapabilities()))
        machine.addIOMMU(unit)
        process = try IOMMUCore.Process(memory: machine.memory, pid: 900)
        va = try process.mmap(length: Int(bytes), prot: [.read, .write], at: 0x1_0000_0000, populate: true)
        fd = IOMMUFD(machine: machine, process: process)
        ioas = try fd.allocIOAS()
        for slot in UInt8(1)...2 {
            let dev = try machine.addDevice(PCIDevice(rid: RID(bus: 0, device: slot, function: 0)), behind: unit)
            let idev = try fd.deviceBind(dev)
            devices.append(idev)
            let hwpt = try fd.allocHWPT(device: idev.id, pt: ioas)
            _ = try fd.deviceAttach(idev, ptID: hwpt)
        }
    }

    deinit {
        for d in devices { fd.deviceUnbind(d) }
        fd.close()
    }

    /// Maps the whole buffer in `chunk`-sized calls at IOVA = offset + 1 GiB, then unmaps
    /// it with the matching calls. Returns ns per map call and ns per unmap call.
    func run(chunk: UInt64) throws -> (Double, Double) {
        let calls = bytes / chunk
        let base: IOVA = 0x4000_0000
        let t0 = DispatchTime.now().uptimeNanoseconds
        for i in 0..<calls {
            _ = try fd.map(ioas: ioas, userVA: va + i * chunk, length: chunk, iova: base + i * chunk)
        }
        let t1 = DispatchTime.now().uptimeNanoseconds
        for i in 0..<calls {
            _ = try fd.unmap(ioas: ioas, iova: base + i * chunk, length: chunk)
        }
        let t2 = DispatchTime.now().uptimeNanoseconds
        return (Double(t1 - t0) / Double(calls), Double(t2 - t1) / Double(calls))
    }
}
