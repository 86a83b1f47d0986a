// Writes the "Kernel names" article of one module's documentation: every kernel name
// (function, structure, field, ioctl, constant) that the first paragraph of a public
// symbol's doc comment names in code voice, with the symbol that models it. The house
// rule is that each entry point's doc comment names its kernel counterpart first, so
// this index is generated from the comments and never edited by hand.
//
//   swift scripts/docs-kernel-names.swift <symbol-graph-dir> <catalog-dir> <Module>...
//
// writes <catalog-dir>/<Module>.docc/KernelNames.md from <symbol-graph-dir>/<Module>.symbols.json
// for each module. Run by scripts/docs; Foundation only.
import Foundation

let args = Array(CommandLine.arguments.dropFirst())
guard args.count >= 3 else {
    FileHandle.standardError.write(Data("usage: docs-kernel-names.swift <symbol-graph-dir> <catalog-dir> <Module>...\n".utf8))
    exit(2)
}

struct Symbol {
    let path: [String]
    let kind: String
    let summary: String
}

/// Public symbols with a doc comment, and the first paragraph of each.
func loadSymbols(_ graphPath: String) throws -> [Symbol] {
    let data = try Data(contentsOf: URL(fileURLWithPath: graphPath))
    guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any],
          let symbols = root["symbols"] as? [[String: Any]] else { return [] }
    // A protocol's default implementations repeat its requirements' paths and docs:
    // the requirement is the symbol to show.
    let defaults = Set(((root["relationships"] as? [[String: Any]]) ?? [])
        .filter { $0["kind"] as? String == "defaultImplementationOf" }.compactMap { $0["source"] as? String })
    return symbols.compactMap { s in
        guard let usr = (s["identifier"] as? [String: Any])?["precise"] as? String, !defaults.contains(usr),
              let access = s["accessLevel"] as? String, access == "public" || access == "open",
              let path = s["pathComponents"] as? [String],
              let kind = (s["kind"] as? [String: Any])?["identifier"] as? String,
              let doc = s["docComment"] as? [String: Any], let lines = doc["lines"] as? [[String: Any]] else { return nil }
        var paragraph: [String] = []
        for line in lines.compactMap({ $0["text"] as? String }) {
            let t = line.trimmingCharacters(in: .whitespaces)
            if t.isEmpty || t.hasPrefix("- ") { break }
            paragraph.append(t)
        }
        return Symbol(path: path, kind: kind, summary: paragraph.joined(separator: " "))
    }
}

/// The code spans of `text` that look like kernel names: snake_case identifiers (with
/// an optional `struct`/`enum` keyword and `.field` or `->field` parts) or
/// SCREAMING_SNAKE constants, each without its argument list.
func kernelNames(in text: String) -> [String] {
    // Every underscore-separated part holds a letter, so `base_2` is not a name; a bare
    // `a.b` (a Swift property) is not one either, `a->b` and `ops_struct.op` are.
    let part = "[a-z0-9]*[a-z][a-z0-9]*"
    let identifier = "^((struct|enum|union) )?[a-z]\(part)?(_\(part))+((\\.|->)[a-z_][a-z0-9_]*)*$|^[a-z][a-z0-9]*->[a-z_][a-z0-9_]*$"
    let constant = #"^[A-Z][A-Z0-9]*(_[A-Z0-9]*[A-Z][A-Z0-9]*)+$"#
    var out: [String] = []
    let parts = text.components(separatedBy: "`")
    for (i, span) in parts.enumerated() where i % 2 == 1 {
        var name = span
        if let paren = name.firstIndex(of: "(") { name = String(name[..<paren]) }
        name = name.trimmingCharacters(in: .whitespaces)
        if name.range(of: identifier, options: .regularExpression) != nil
            || name.range(of: constant, options: .regularExpression) != nil {
            if !out.contains(name) { out.append(name) }
        }
    }
    return out
}

/// Writes the article of `module`.
func writeIndex(module: String, graphPath: String, outputPath: String) throws {
    let symbols = try loadSymbols(graphPath)
    var pathCount: [[String]: Int] = [:]
    var pathKindCount: [String: Int] = [:]
    for s in symbols {
        pathCount[s.path, default: 0] += 1
        pathKindCount[s.path.joined(separator: "/") + "|" + s.kind, default: 0] += 1
    }

    /// A symbol link DocC resolves without ambiguity, or the symbol in code voice when
    /// overloads of one kind share its path.
    func reference(_ s: Symbol) -> String {
        let path = s.path.joined(separator: "/")
        if pathCount[s.path] == 1 { return "``\(path)``" }
        if pathKindCount[path + "|" + s.kind] == 1 { return "``\(path)-\(s.kind)``" }
        return "`" + s.path.joined(separator: ".") + "`"
    }

    var rows: [(name: String, symbol: String)] = []
    for s in symbols {
        for name in kernelNames(in: s.summary) { rows.append((name, reference(s))) }
    }
    rows.sort { ($0.name.lowercased(), $0.symbol) < ($1.name.lowercased(), $1.symbol) }

    var text = """
        # Kernel names in \(module)

        Find the Swift symbol that models a kernel function, structure, field, ioctl or constant.

        ## Overview

        The first paragraph of each public symbol's documentation names what it models in the
        kernel. This table lists those names with their symbols. It is generated from the doc
        comments when the documentation is built (`scripts/docs`), so it always matches the code.


        """
    if rows.isEmpty {
        text += "No symbol of this module names a kernel counterpart.\n"
    } else {
        text += "| Kernel name | Swift symbol |\n|---|---|\n"
        for r in rows {
            let name = r.name.replacingOccurrences(of: "|", with: "\\|")
            text += "| `\(name)` | \(r.symbol) |\n"
        }
    }
    try text.write(toFile: outputPath, atomically: true, encoding: .utf8)
    print("\(module): \(rows.count) kernel names")
}

for module in args.dropFirst(2) {
    try writeIndex(module: module, graphPath: "\(args[0])/\(module).symbols.json",
                   outputPath: "\(args[1])/\(module).docc/KernelNames.md")
}
