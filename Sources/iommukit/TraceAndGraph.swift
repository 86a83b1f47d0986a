import Foundation
import IOMMUCore

/// `iommukit trace <target> [--event NAME] [--device BDF] [--pasid N] [-- args]`.
func runTraceCommand(_ args: [String]) {
    let o = parseOptions(args, command: "trace", flags: [], valued: ["--event", "--device", "--pasid"])
    let target = Target.resolve(singleTarget(o, command: "trace"), command: "trace", passthrough: o.passthrough)
    let trace = ScratchFile("trace")
    var env = ["IOMMUKIT_TRACE": trace.url.path]
    if let e = o.values["--event"] { env["IOMMUKIT_TRACE_EVENT"] = e }
    if let d = o.values["--device"] {
        guard RID(parsing: d) != nil else { fail("iommukit trace: --device '\(d)' is not a PCI address (bb:dd.f)", code: 2) }
        env["IOMMUKIT_TRACE_DEVICE"] = d
    }
    if let p = o.values["--pasid"] {
        guard UInt32(p) != nil else { fail("iommukit trace: --pasid '\(p)' is not a number", code: 2) }
        env["IOMMUKIT_TRACE_PASID"] = p
    }
    target.run(command: "trace", environment: env)
    guard let text = trace.contents else { fail("iommukit trace: \(target.name) created no IOMMUKit machine") }
    print(text, terminator: "")
}

/// `iommukit graph <target> [--at STEP] [--svg] [-- args]`.
func runGraphCommand(_ args: [String]) {
    let o = parseOptions(args, command: "graph", flags: ["--svg"], valued: ["--at"])
    let target = Target.resolve(singleTarget(o, command: "graph"), command: "graph", passthrough: o.passthrough)
    let graph = ScratchFile("graph.dot")
    let steps = ScratchFile("steps")
    var env = ["IOMMUKIT_GRAPH": graph.url.path, "IOMMUKIT_TRACE": steps.url.path,
               "IOMMUKIT_TRACE_EVENT": "iommukit:step"]
    if let at = o.values["--at"] { env["IOMMUKIT_GRAPH_AT"] = at }
    target.run(command: "graph", environment: env)
    guard let dot = graph.contents, !dot.isEmpty else {
        let list = stepList(steps.contents ?? "")
        if let at = o.values["--at"] {
            fail("iommukit graph: no step of \(target.name) matches '\(at)'."
                 + (list.isEmpty ? " It names no steps (Machine.step)." : " Its steps:\n" + list))
        }
        fail("iommukit graph: \(target.name) created no IOMMUKit machine")
    }
    guard o.flags.contains("--svg") else {
        print(dot, terminator: "")
        return
    }
    print(renderSVG(dot), terminator: "")
}

private func singleTarget(_ o: Options, command: String) -> String {
    guard let first = o.positional.first else {
        fail("iommukit \(command): which program? Give `demo`, an example (\(Target.examples.joined(separator: ", "))) "
             + "or a path", code: 2)
    }
    guard o.positional.count == 1 else {
        fail("iommukit \(command): unexpected argument '\(o.positional[1])' (arguments for the program go after `--`)",
             code: 2)
    }
    return first
}

/// The steps recorded in a trace, one per line: `  machine 1, step 2: name`.
private func stepList(_ trace: String) -> String {
    var machine = 0
    var out: [String] = []
    for line in trace.split(separator: "\n") {
        if line.hasPrefix("# machine ") { machine = Int(line.dropFirst("# machine ".count)) ?? machine }
        guard let r = line.range(of: "iommukit:step: ") else { continue }
        let fields = line[r.upperBound...].trimmingCharacters(in: .whitespaces)
        guard let name = fields.range(of: "name=\"") else { continue }
        let number = fields[..<name.lowerBound].replacingOccurrences(of: "step=", with: "").trimmingCharacters(in: .whitespaces)
        out.append("  machine \(machine), step \(number): \(fields[name.upperBound...].dropLast())")
    }
    return out.joined(separator: "\n")
}

/// `dot -Tsvg` of `dot`, or the program ends saying Graphviz is missing.
private func renderSVG(_ dot: String) -> String {
    let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        .map { URL(fileURLWithPath: String($0)).appendingPathComponent("dot") }
        .first { FileManager.default.isExecutableFile(atPath: $0.path) }
    guard let path else {
        fail("iommukit graph: --svg needs Graphviz `dot` on PATH (apt-get install graphviz); without --svg "
             + "the DOT text can be rendered anywhere")
    }
    let process = Process()
    process.executableURL = path
    process.arguments = ["-Tsvg"]
    let input = Pipe(), output = Pipe()
    process.standardInput = input
    process.standardOutput = output
    do { try process.run() } catch { fail("iommukit graph: cannot run dot: \(error.localizedDescription)") }
    input.fileHandleForWriting.write(Data(dot.utf8))
    try? input.fileHandleForWriting.close()
    let svg = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { fail("iommukit graph: dot failed (exit status \(process.terminationStatus))") }
    return String(decoding: svg, as: UTF8.self)
}
