import IOMMUCore

/// The iommufd layer of a machine's object graph: every live object of a context (a
/// cluster per context) with its ID and `users` count, and the references between them,
/// down to the core's devices and domains.
extension IOMMUFD: ObjectGraphContributor {
    /// Node kinds of the iommufd objects.
    public static let graphKinds: [IOMMUFDObjectType: ObjectGraph.NodeKind] = [
        .ioas: .init(name: "ioas", shape: "cylinder", color: "#fde5c8"),
        .hwptPaging: .init(name: "hwpt", shape: "box", color: "#e8dcf5"),
        .hwptNested: .init(name: "hwpt", shape: "box", color: "#e8dcf5"),
        .device: .init(name: "idev", shape: "box", color: "#cfe3f0"),
        .access: .init(name: "access", shape: "box", color: "#f0d8d8"),
        .fault: .init(name: "fault", shape: "note", color: "#f8f3c4"),
    ]

    /// Adds the context's objects to `graph`.
    public func contribute(to graph: inout ObjectGraph) {
        lock.withLock {
            guard !isClosed else { return }
            let cluster = graph.uniqueID("iommufd")
            graph.add(ObjectGraph.Cluster(id: cluster, label: "iommufd (pid \(process.pid))"))
            func node(_ o: IOMMUFDObject) -> String { "\(cluster)_obj\(o.rawID)" }
            for o in table.liveObjects {
                let kind = Self.graphKinds[o.type] ?? ObjectGraph.NodeKind(name: "\(o.type)")
                graph.add(ObjectGraph.Node(id: node(o), kind: kind, title: "\(Self.graphName(o.type)) \(o.rawID)",
                                           details: graphDetails(o) + ["users \(o.users)"], cluster: cluster))
                for (target, label, style) in graphEdges(o, graph: &graph, node: node) {
                    graph.add(ObjectGraph.Edge(from: node(o), to: target, label: label, style: style))
                }
            }
        }
    }

    /// The uAPI name of an object type without its `IOMMUFD_OBJ_` prefix.
    static func graphName(_ type: IOMMUFDObjectType) -> String {
        String("\(type)".dropFirst("IOMMUFD_OBJ_".count))
    }

    /// Extra label lines of one object.
    private func graphDetails(_ o: IOMMUFDObject) -> [String] {
        switch o {
        case let h as HWPTPagingObject:
            return (h.autoDomain ? ["auto domain"] : []) + (h.nestParent ? ["nest parent"] : [])
        case let d as DeviceObject:
            return [d.dev.rid.devName]
        case let io as IOASObject:
            return ["\(io.iopt.areas.count) area(s)"]
        case let f as FaultObject:
            return ["\(f.pendingCount) pending, \(f.awaitingResponse) awaiting response"]
        default:
            return []
        }
    }

    /// What one object refers to: (target node, label, style).
    private func graphEdges(_ o: IOMMUFDObject, graph: inout ObjectGraph,
                            node: (IOMMUFDObject) -> String) -> [(String, String?, ObjectGraph.Edge.Style)] {
        var out: [(String, String?, ObjectGraph.Edge.Style)] = []
        switch o {
        case let h as HWPTObject:
            if let p = h as? HWPTPagingObject { out.append((node(p.ioas), "ioas", .solid)) }
            if let n = h as? HWPTNestedObject { out.append((node(n.parent), "parent", .solid)) }
            if let domain = h.domain { out.append((graph.addDomain(domain), "domain", .dashed)) }
            if let f = h.fault { out.append((node(f), "fault", .solid)) }
        case let d as DeviceObject:
            out.append((ObjectGraph.id(of: d.dev), "dev", .dotted))
            let shape = d.igroup.group.ridOwnsAllPasids ? "RID + all PASIDs" : "RID"
            for (pasid, attach) in d.igroup.pasidAttach.sorted(by: { ($0.key.map { Int($0.rawValue) } ?? -1) < ($1.key.map { Int($0.rawValue) } ?? -1) })
            where attach.devices.contains(where: { $0 === d }) {
                out.append((node(attach.hwpt), pasid.map { "PASID \($0)" } ?? shape, .solid))
            }
        case let a as AccessObject:
            if let ioas = a.ioas { out.append((node(ioas), "ioas", .solid)) }
        default:
            break
        }
        return out
    }
}
