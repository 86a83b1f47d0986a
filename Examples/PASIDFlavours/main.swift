import DriverShims
import Foundation
import IOMMUCore
import IOMMUDrivers

// The four PASID flavours on one workload, side by side, on an Intel VT-d unit or (with
// `--vendor smmuv3`) an ARM SMMUv3. `swift run PASIDFlavours` prints a table; `--json`
// prints the results as JSON.

/// The IOMMU the workload runs on.
enum Vendor: String {
    case vtd, smmuv3

    var title: String { self == .vtd ? "Intel VT-d" : "ARM SMMUv3" }

    func rig() throws -> FlavourRig {
        // SVA on an SMMUv3 shares the process's page table: the CPUs are arm64 there.
        let machine = Machine(memory: 1 << 30, architecture: self == .vtd ? .x86_64 : .arm64)
        let unit: IOMMUDevice
        switch self {
        case .vtd:
            unit = try IntelIOMMU(name: "dmar0", driver: IntelIOMMUDriver(),
                                  hardware: VTdHardware(memory: machine.memory, caps: VTdCapabilities()))
        case .smmuv3:
            unit = try ArmSMMUv3(name: "smmu0", driver: ArmSMMUv3Driver(), hardware: SMMUv3Hardware(memory: machine.memory))
        }
        machine.addIOMMU(unit)
        return FlavourRig(machine: machine, unit: unit)
    }
}

func pad(_ s: String, _ n: Int) -> String {
    s.count >= n ? s : s + String(repeating: " ", count: n - s.count)
}

func table(_ results: [PASIDFlavourResult], _ vendor: Vendor) -> String {
    var out = ["PASID flavours on \(vendor.title), same workload: 3 MEMMOVEs + 1 COMPARE of 4 KiB by an idxd-like",
               "device, with the destination moved to a new frame before the third copy.", ""]
    let header = pad("flavour", 16) + pad("calls", 7) + pad("invalidations", 15) + pad("walks", 7)
        + pad("violations", 12) + "copy after remap"
    out.append(header)
    out.append(String(repeating: "-", count: header.count + 4))
    for r in results {
        if let why = r.unsupported {
            out.append(pad(r.flavour.rawValue, 16) + "not offered by this IOMMU (\(why))")
            continue
        }
        out.append(pad(r.flavour.rawValue, 16) + pad("\(r.callCount)", 7) + pad("\(r.invalidations)", 15)
                   + pad("\(r.walks)", 7) + pad("\(r.violations.count)", 12)
                   + (r.copyAfterRemapVisible ? "reached the new frame" : "LOST: went to the old frame"))
    }
    out.append("")
    for r in results where r.unsupported == nil {
        out.append("\(r.flavour.rawValue) — \(r.flavour.origin)")
        out.append("  calls: " + r.calls.map(\.description).joined(separator: ", "))
        let kinds = r.invalidationsByKind.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
        out.append("  invalidations: " + (kinds.isEmpty ? "none" : kinds.joined(separator: ", ")))
        for v in r.violations { out.append("  violation: \(v)") }
    }
    return out.joined(separator: "\n")
}

var vendor = Vendor.vtd
if let i = CommandLine.arguments.firstIndex(of: "--vendor") {
    guard i + 1 < CommandLine.arguments.count, let v = Vendor(rawValue: CommandLine.arguments[i + 1]) else {
        FileHandle.standardError.write(Data("PASIDFlavours: --vendor takes vtd or smmuv3\n".utf8))
        exit(2)
    }
    vendor = v
}

do {
    let results = try PASIDFlavourComparison.runAll(makeRig: vendor.rig)
    if CommandLine.arguments.contains("--json") {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        print(String(decoding: try encoder.encode(results), as: UTF8.self))
    } else {
        print(table(results, vendor))
    }
} catch {
    FileHandle.standardError.write(Data("PASIDFlavours: \(error)\n".utf8))
    exit(1)
}
