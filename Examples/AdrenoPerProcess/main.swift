import DriverShims
import Foundation
import IOMMUCore

// The 2017 thread's scenario on an Adreno-like GPU behind an ARM SMMUv2, once per way
// of giving processes GPU address spaces, side by side.
// `swift run AdrenoPerProcess` prints a table; `--json` prints the results as JSON.

func pad(_ s: String, _ n: Int) -> String {
    s.count >= n ? s : s + String(repeating: " ", count: n - s.count)
}

func table(_ results: [AdrenoScenarioResult]) -> String {
    var out = ["A banking process renders a 16 KiB surface on the GPU; a malicious process submits a read-back",
               "aimed at the surface's GPU address and a fill that scribbles over it. ARM SMMUv2 (Qualcomm), Adreno GPU.",
               ""]
    let header = pad("address spaces", 20) + pad("surface leaked", 16) + pad("overwritten", 13) + pad("calls", 7)
        + pad("switches", 10) + pad("TLB inv.", 10) + pad("walks", 7) + "violations"
    out.append(header)
    out.append(String(repeating: "-", count: header.count + 2))
    for r in results {
        let tlb = r.tlbInvalidations.values.reduce(0, +)
        out.append(pad(r.variant.rawValue, 20) + pad(r.surfaceLeaked ? "LEAKED" : "no", 16)
                   + pad(r.surfaceOverwritten ? "OVERWRITTEN" : "no", 13) + pad("\(r.callCount)", 7)
                   + pad("\(r.tableSwitches)", 10) + pad("\(tlb)", 10) + pad("\(r.walks)", 7) + "\(r.violations.count)")
    }
    out.append("")
    for r in results {
        out.append("\(r.variant.rawValue) — \(r.variant.origin)")
        out.append("  banking's own render and read-back: " + (r.bankingRendered ? "correct" : "WRONG"))
        out.append(r.faults.isEmpty ? "  faults: none" : "  faults:")
        for f in r.faults { out.append("    \(f)") }
        out.append("  calls: " + r.calls.joined(separator: ", "))
        let tlb = r.tlbInvalidations.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
        out.append("  TLB invalidations: " + (tlb.isEmpty ? "none" : tlb.joined(separator: ", ")))
        for v in r.violations { out.append("  violation: \(v)") }
    }
    return out.joined(separator: "\n")
}

do {
    let results = try AdrenoPerProcessComparison.runAll()
    if CommandLine.arguments.contains("--json") {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        print(String(decoding: try encoder.encode(results), as: UTF8.self))
    } else {
        print(table(results))
    }
} catch {
    FileHandle.standardError.write(Data("AdrenoPerProcess: \(error)\n".utf8))
    exit(1)
}
