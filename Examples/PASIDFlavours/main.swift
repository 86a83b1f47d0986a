import DriverShims
import Foundation
import IOMMUCore
import IOMMUDrivers

// The four PASID flavours on one workload, on an Intel VT-d unit, side by side.
// `swift run PASIDFlavours` prints a table; `--json` prints the results as JSON.

func vtdRig() throws -> FlavourRig {
    let machine = Machine(memory: 1 << 30)
    let unit = try IntelIOMMU(name: "dmar0", driver: IntelIOMMUDriver(),
                              hardware: VTdHardware(memory: machine.memory, caps: VTdCapabilities()))
    machine.addIOMMU(unit)
    return FlavourRig(machine: machine, unit: unit)
}

func pad(_ s: String, _ n: Int) -> String {
    s.count >= n ? s : s + String(repeating: " ", count: n - s.count)
}

func table(_ results: [PASIDFlavourResult]) -> String {
    var out = ["PASID flavours on Intel VT-d, same workload: 3 MEMMOVEs + 1 COMPARE of 4 KiB by an idxd-like",
               "device, with the destination moved to a new frame before the third copy.", ""]
    let header = pad("flavour", 16) + pad("calls", 7) + pad("invalidations", 15) + pad("walks", 7)
        + pad("violations", 12) + "copy after remap"
    out.append(header)
    out.append(String(repeating: "-", count: header.count + 4))
    for r in results {
        out.append(pad(r.flavour.rawValue, 16) + pad("\(r.callCount)", 7) + pad("\(r.invalidations)", 15)
                   + pad("\(r.walks)", 7) + pad("\(r.violations.count)", 12)
                   + (r.copyAfterRemapVisible ? "reached the new frame" : "LOST: went to the old frame"))
    }
    out.append("")
    for r in results {
        out.append("\(r.flavour.rawValue) — \(r.flavour.origin)")
        out.append("  calls: " + r.calls.map(\.description).joined(separator: ", "))
        let kinds = r.invalidationsByKind.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
        out.append("  invalidations: " + (kinds.isEmpty ? "none" : kinds.joined(separator: ", ")))
        for v in r.violations { out.append("  violation: \(v)") }
    }
    return out.joined(separator: "\n")
}

do {
    let results = try PASIDFlavourComparison.runAll(makeRig: vtdRig)
    if CommandLine.arguments.contains("--json") {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        print(String(decoding: try encoder.encode(results), as: UTF8.self))
    } else {
        print(table(results))
    }
} catch {
    FileHandle.standardError.write(Data("PASIDFlavours: \(error)\n".utf8))
    exit(1)
}
