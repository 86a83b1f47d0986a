extension ObjectGraph {
    /// The graph in Graphviz DOT: one `digraph`, clusters as `subgraph cluster_*`, nodes
    /// labelled with their title and details one per line, edges with their label. Every
    /// id and label is a quoted DOT string, so any text is safe.
    public func dot() -> String {
        var out = ["digraph iommukit {"]
        if let title { out.append("  label=\(quoted(title)); labelloc=t;") }
        out.append("  graph [rankdir=LR, fontname=\"Helvetica\", fontsize=11];")
        out.append("  node [style=\"filled\", fontname=\"Helvetica\", fontsize=10];")
        out.append("  edge [fontname=\"Helvetica\", fontsize=9];")
        for cluster in clusters {
            out.append("  subgraph \(quoted("cluster_" + cluster.id)) {")
            out.append("    label=\(quoted(cluster.label));")
            for node in nodes where node.cluster == cluster.id { out.append("    " + statement(node)) }
            out.append("  }")
        }
        for node in nodes where node.cluster.map({ c in !clusters.contains { $0.id == c } }) ?? true {
            out.append("  " + statement(node))
        }
        for edge in edges {
            var attributes: [String] = []
            if let label = edge.label { attributes.append("label=\(quoted(label))") }
            if edge.style != .solid { attributes.append("style=\(edge.style.rawValue)") }
            let suffix = attributes.isEmpty ? "" : " [" + attributes.joined(separator: ", ") + "]"
            out.append("  \(quoted(edge.from)) -> \(quoted(edge.to))\(suffix);")
        }
        out.append("}")
        return out.joined(separator: "\n") + "\n"
    }

    private func statement(_ node: Node) -> String {
        let label = ([node.title] + node.details).joined(separator: "\n")
        return "\(quoted(node.id)) [label=\(quoted(label)), shape=\(node.kind.shape), fillcolor=\(quoted(node.kind.color))];"
    }

    /// A DOT double-quoted string: backslash and quote escaped, newlines as `\n`.
    private func quoted(_ s: String) -> String {
        var out = "\""
        for c in s {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out + "\""
    }
}
