import Foundation

/// A small parser for the DOT that `iommukit graph` prints: enough of the language
/// (quoted and bare ids, attribute lists, `->` edges, nested `subgraph { }`, comments
/// not needed) to check that the text is well formed and to read its nodes, edges and
/// clusters. Anything it does not understand is an error, so malformed output fails.
struct DOTGraph {
    struct Edge: Equatable {
        let from: String
        let to: String
        let label: String?
    }

    struct ParseError: Error, CustomStringConvertible {
        let description: String
    }

    /// Graph attributes set with `name=value;` at the top level.
    var attributes: [String: String] = [:]
    /// Node id → its attributes.
    var nodes: [String: [String: String]] = [:]
    var edges: [Edge] = []
    /// Cluster (subgraph) name → the ids of the nodes declared in it.
    var clusters: [String: [String]] = [:]

    private enum Token: Equatable {
        case id(String)
        case symbol(Character)
        case arrow
    }

    init(parsing text: String) throws {
        var tokens = try Self.tokenize(text)[...]
        func next() throws -> Token {
            guard let t = tokens.popFirst() else { throw ParseError(description: "unexpected end") }
            return t
        }
        func expect(_ t: Token) throws {
            let got = try next()
            guard got == t else { throw ParseError(description: "expected \(t), got \(got)") }
        }
        func id() throws -> String {
            guard case .id(let s) = try next() else { throw ParseError(description: "expected an id") }
            return s
        }
        func attributeList() throws -> [String: String] {
            var out: [String: String] = [:]
            try expect(.symbol("["))
            while tokens.first != .symbol("]") {
                let key = try id()
                try expect(.symbol("="))
                out[key] = try id()
                if tokens.first == .symbol(",") { _ = try next() }
            }
            try expect(.symbol("]"))
            return out
        }
        guard try id() == "digraph" else { throw ParseError(description: "not a digraph") }
        if case .id = tokens.first { _ = try id() }
        try expect(.symbol("{"))
        var stack: [String?] = [nil]
        while let t = tokens.first {
            if t == .symbol("}") {
                _ = try next()
                stack.removeLast()
                if stack.isEmpty { break }
                continue
            }
            let name = try id()
            if name == "subgraph" {
                let cluster = try id()
                try expect(.symbol("{"))
                clusters[cluster] = []
                stack.append(cluster)
                continue
            }
            if ["graph", "node", "edge"].contains(name), tokens.first == .symbol("[") {
                _ = try attributeList()
            } else if tokens.first == .symbol("=") {
                _ = try next()
                let value = try id()
                if stack.count == 1 { attributes[name] = value }
            } else if tokens.first == .arrow {
                _ = try next()
                let to = try id()
                let attrs = tokens.first == .symbol("[") ? try attributeList() : [:]
                edges.append(Edge(from: name, to: to, label: attrs["label"]))
            } else {
                nodes[name] = tokens.first == .symbol("[") ? try attributeList() : [:]
                if let cluster = stack.last ?? nil { clusters[cluster, default: []].append(name) }
            }
            if tokens.first == .symbol(";") { _ = try next() }
        }
        guard stack.isEmpty, tokens.isEmpty else { throw ParseError(description: "unbalanced braces or trailing text") }
        for e in edges where nodes[e.from] == nil || nodes[e.to] == nil {
            throw ParseError(description: "edge \(e.from) -> \(e.to) to an undeclared node")
        }
    }

    private static func tokenize(_ text: String) throws -> [Token] {
        var out: [Token] = []
        var chars = Array(text)[...]
        while let c = chars.first {
            if c.isWhitespace {
                chars.removeFirst()
            } else if c == "\"" {
                chars.removeFirst()
                var s = ""
                while true {
                    guard let d = chars.popFirst() else { throw ParseError(description: "unterminated string") }
                    if d == "\"" { break }
                    if d == "\\" {
                        guard let e = chars.popFirst() else { throw ParseError(description: "dangling escape") }
                        s.append(e == "n" ? "\n" : e)
                    } else {
                        s.append(d)
                    }
                }
                out.append(.id(s))
            } else if c == "-" && chars.dropFirst().first == ">" {
                chars.removeFirst(2)
                out.append(.arrow)
            } else if "{}[];=,".contains(c) {
                chars.removeFirst()
                out.append(.symbol(c))
            } else if c.isLetter || c.isNumber || c == "_" || c == "#" || c == "." {
                var s = ""
                while let d = chars.first, d.isLetter || d.isNumber || d == "_" || d == "#" || d == "." {
                    s.append(d)
                    chars.removeFirst()
                }
                out.append(.id(s))
            } else {
                throw ParseError(description: "unexpected character \(c)")
            }
        }
        return out
    }
}
