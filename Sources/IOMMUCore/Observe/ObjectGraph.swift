/// A picture of a machine's objects at one moment: IOMMU units, groups, devices,
/// domains and their attachments, and whatever other layers add (iommufd's IOAS, HWPT,
/// device, access and fault objects), as nodes and labelled edges. ``dot()`` renders it
/// as Graphviz DOT; `iommukit graph` prints that, and `dot -Tsvg` draws it.
///
/// Built by ``Machine/graph(title:)``. Other modules add their objects through an
/// ``ObjectGraphContributor``, linking to the core's nodes by their ids
/// (``id(of:)-(IOMMUDomain)``, ``id(of:)-(PCIDevice)``), without the core knowing them.
public struct ObjectGraph: Sendable {
    /// What a node stands for, and how it is drawn. New kinds (a vIOMMU, a vDEVICE) are
    /// one constant each in the module that has the object.
    public struct NodeKind: Hashable, Sendable {
        /// The kind's name (`"domain"`, `"ioas"`).
        public let name: String
        /// Graphviz `shape`.
        public let shape: String
        /// Graphviz `fillcolor`.
        public let color: String

        /// A kind drawn as `shape` filled with `color`.
        public init(name: String, shape: String = "box", color: String = "white") {
            self.name = name
            self.shape = shape
            self.color = color
        }

        /// An IOMMU unit (`struct iommu_device`).
        public static let iommu = NodeKind(name: "iommu", shape: "component", color: "#dddddd")
        /// An IOMMU group.
        public static let group = NodeKind(name: "group", shape: "folder", color: "#f5f0d0")
        /// A PCI device.
        public static let device = NodeKind(name: "device", shape: "box", color: "#d6e8f5")
        /// An IOMMU domain.
        public static let domain = NodeKind(name: "domain", shape: "box3d", color: "#d8f0d8")
    }

    /// One object.
    public struct Node: Hashable, Sendable {
        /// Unique within the graph; also the DOT node id.
        public let id: String
        /// What the object is.
        public let kind: NodeKind
        /// The first line of the label (`"DMA#3"`, `"0000:00:03.0 dsa0"`).
        public let title: String
        /// Further lines (`"DID 3"`, `"users 2"`).
        public var details: [String]
        /// The cluster the node is drawn in, if any.
        public var cluster: String?

        /// A node.
        public init(id: String, kind: NodeKind, title: String, details: [String] = [], cluster: String? = nil) {
            self.id = id
            self.kind = kind
            self.title = title
            self.details = details
            self.cluster = cluster
        }
    }

    /// A relation between two objects.
    public struct Edge: Hashable, Sendable {
        /// Graphviz line styles.
        public enum Style: String, Hashable, Sendable {
            /// A reference that makes something happen (an attachment).
            case solid
            /// A weaker relation (a default domain, membership).
            case dashed
            /// Ownership or containment.
            case dotted
        }
        /// The node the edge leaves.
        public let from: String
        /// The node it reaches.
        public let to: String
        /// What the relation is (`"RID"`, `"PASID 1"`, `"ioas"`).
        public let label: String?
        /// How it is drawn.
        public let style: Style

        /// An edge.
        public init(from: String, to: String, label: String? = nil, style: Style = .solid) {
            self.from = from
            self.to = to
            self.label = label
            self.style = style
        }
    }

    /// A box drawn around nodes (an IOMMU unit, an iommufd context).
    public struct Cluster: Hashable, Sendable {
        /// Unique within the graph.
        public let id: String
        /// The caption.
        public let label: String

        /// A cluster.
        public init(id: String, label: String) {
            self.id = id
            self.label = label
        }
    }

    /// The graph's title (the step it shows).
    public var title: String?
    /// Every node, in the order added.
    public private(set) var nodes: [Node] = []
    /// Every edge, in the order added.
    public private(set) var edges: [Edge] = []
    /// Every cluster, in the order added.
    public private(set) var clusters: [Cluster] = []
    /// The machine's units, which describe the vendor side of domains.
    let units: [IOMMUDevice]

    /// An empty graph; `units` are asked for their view of each domain added with
    /// ``addDomain(_:)``.
    public init(title: String? = nil, units: [IOMMUDevice] = []) {
        self.title = title
        self.units = units
    }

    /// Adds `node` unless a node with its id exists.
    public mutating func add(_ node: Node) {
        if !contains(node.id) { nodes.append(node) }
    }

    /// Adds `edge`.
    public mutating func add(_ edge: Edge) { edges.append(edge) }

    /// Adds `cluster`.
    public mutating func add(_ cluster: Cluster) { clusters.append(cluster) }

    /// Whether a node with `id` exists.
    public func contains(_ id: String) -> Bool { nodes.contains { $0.id == id } }

    /// The node with `id`.
    public func node(_ id: String) -> Node? { nodes.first { $0.id == id } }

    /// Edges leaving `id`.
    public func edges(from id: String) -> [Edge] { edges.filter { $0.from == id } }

    /// `base`, or `base_2`, `base_3`, ... whichever no node or cluster uses yet.
    public func uniqueID(_ base: String) -> String {
        var candidate = base
        var n = 1
        while contains(candidate) || clusters.contains(where: { $0.id == candidate }) {
            n += 1
            candidate = "\(base)_\(n)"
        }
        return candidate
    }

    /// The node id of `domain`.
    public static func id(of domain: IOMMUDomain) -> String { "domain\(domain.serial)" }
    /// The node id of `device`.
    public static func id(of device: PCIDevice) -> String {
        "dev_" + "\(device.rid)".map { $0.isHexDigit ? $0 : "_" }
    }
    /// The node id of `group`.
    public static func id(of group: IOMMUGroup) -> String { "group\(group.id)" }
    /// The node id of `unit`.
    public static func id(of unit: IOMMUDevice) -> String { "iommu_" + unit.name }

    /// Adds the node of `domain` (if not there yet) and returns its id: its type and
    /// serial, what each unit says about it (its DID, ASID or VMID, its page-table root:
    /// ``IOMMUDevice/graphDetails(of:)``), the process of an SVA domain and its users.
    @discardableResult
    public mutating func addDomain(_ domain: IOMMUDomain) -> String {
        let id = Self.id(of: domain)
        guard !contains(id) else { return id }
        var details: [String] = []
        for unit in units {
            let lines = unit.graphDetails(of: domain)
            details += units.count > 1 ? lines.map { "\($0) (\(unit.name))" } : lines
        }
        if let mm = domain.mm { details.append("mm of pid \(mm.pid), pgd \(mm.pgdPhysical)") }
        if domain.type == .sva { details.append("users \(domain.users)") }
        if domain.isFreed { details.append("FREED") }
        add(Node(id: id, kind: .domain, title: "\(domain)", details: details))
        return id
    }
}

/// Something outside the core with objects to show in a machine's graph (an iommufd
/// context). Register it with ``Machine/addGraphContributor(_:)``; the machine holds it
/// weakly and asks it at every ``Machine/graph(title:)``.
public protocol ObjectGraphContributor: AnyObject, Sendable {
    /// Adds this contributor's nodes and edges to `graph`, which already holds the
    /// machine's units, groups, devices and attached domains.
    func contribute(to graph: inout ObjectGraph)
}
