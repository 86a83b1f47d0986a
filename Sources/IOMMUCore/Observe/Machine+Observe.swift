extension Machine {
    /// `IOMMUKIT_TRACE` and `IOMMUKIT_GRAPH`: a machine created while they are set
    /// records its events into the trace file and can be drawn at its steps; an active
    /// ``MachineWatch`` collects it.
    func observeEnvironment() {
        if let file = TraceFile.shared { events.write(to: file, machineSerial: file.nextMachine()) }
        GraphRequest.shared?.machineCreated(self)
        MachineWatch.machineCreated(self)
    }

    /// Marks a step of the scenario: "the state now is called `name`". Records an
    /// `iommukit:step` event (`step=N name="..."`, N counted per machine from 1) and, when
    /// the program runs under `iommukit graph` (`IOMMUKIT_GRAPH`), writes the object graph
    /// at this step. Examples call it after each thing they do, so that a reviewer can
    /// ask for the picture at any of them (`iommukit graph IDXDMixedPASID --at 3`).
    /// Costs a lock and an array append when nothing observes the machine.
    public func step(_ name: String) {
        let number = events.noteStep(name)
        GraphRequest.shared?.stepReached(self, number: number, name: name)
    }

    /// Registers `contributor` to add its objects to every ``graph(title:)`` of this
    /// machine (held weakly: a contributor that goes away stops contributing).
    public func addGraphContributor(_ contributor: any ObjectGraphContributor) {
        graphContributors.add(contributor)
    }

    /// The machine's objects now, as an ``ObjectGraph``: each IOMMU unit (a cluster) with
    /// its groups and devices; every domain a group uses, with its type, the vendor's
    /// view (DID or ASID/VMID, page-table root) and, for SVA, the process; one edge per
    /// attachment from each device to its domain, labelled `RID`, `RID + all PASIDs` or
    /// `PASID n`; then what registered contributors add (iommufd objects).
    public func graph(title: String? = nil) -> ObjectGraph {
        let units = iommus
        var g = ObjectGraph(title: title, units: units)
        iommu.lock.withLock {
            for unit in units {
                g.add(ObjectGraph.Cluster(id: unit.name, label: "\(unit.name) (\(unit.driver.name))"))
                g.add(ObjectGraph.Node(id: ObjectGraph.id(of: unit), kind: .iommu, title: unit.name,
                                       details: [unit.driver.name] + (unit.maxPasids > 0 ? ["PASIDs: \(unit.maxPasids)"] : []),
                                       cluster: unit.name))
            }
            for dev in allDevices { g.add(deviceNode(dev)) }
            for group in iommu.groups { addGroup(group, to: &g) }
        }
        for contributor in graphContributors.live { contributor.contribute(to: &g) }
        return g
    }

    private func deviceNode(_ dev: PCIDevice) -> ObjectGraph.Node {
        var caps: [String] = []
        if let p = dev.caps.pasid { caps.append("PASID \(p.width) bits" + (p.privileged ? " (priv)" : "")) }
        if dev.caps.ats { caps.append("ATS") }
        if dev.caps.pri { caps.append("PRI") }
        var details = [dev.name]
        if !caps.isEmpty { details.append(caps.joined(separator: ", ")) }
        if !dev.isPresent { details.append("not present") }
        return ObjectGraph.Node(id: ObjectGraph.id(of: dev), kind: .device, title: dev.rid.devName,
                                details: details, cluster: dev.iommu?.name)
    }

    private func addGroup(_ group: IOMMUGroup, to g: inout ObjectGraph) {
        let gid = ObjectGraph.id(of: group)
        var details: [String] = []
        if group.ownerCount > 0 { details.append("owner count \(group.ownerCount)" + (group.owner != nil ? " (user)" : "")) }
        g.add(ObjectGraph.Node(id: gid, kind: .group, title: "group \(group.id)", details: details,
                               cluster: group.devices.first?.iommu?.name))
        for dev in group.devices { g.add(ObjectGraph.Edge(from: gid, to: ObjectGraph.id(of: dev), style: .dotted)) }
        if let domain = group.domain {
            let did = g.addDomain(domain)
            let label = group.ridOwnsAllPasids ? "RID + all PASIDs" : "RID"
            for dev in group.devices { g.add(ObjectGraph.Edge(from: ObjectGraph.id(of: dev), to: did, label: label)) }
        }
        if let def = group.defaultDomain, def !== group.domain {
            g.add(ObjectGraph.Edge(from: gid, to: g.addDomain(def), label: "default", style: .dashed))
        }
        // The RID's own slot (IOMMU_NO_PASID, where iommufd keeps its attach handle) is
        // the RID edge above.
        for pasid in group.pasidArray.keys.sorted() {
            guard let domain = group.pasidArray[pasid]?.domain else { continue }
            let did = g.addDomain(domain)
            for dev in group.pasidCapableDevices {
                g.add(ObjectGraph.Edge(from: ObjectGraph.id(of: dev), to: did, label: "PASID \(pasid)"))
            }
        }
    }
}

/// The contributors of one machine's graph, held weakly.
final class GraphContributors: @unchecked Sendable {
    private struct Entry { weak var contributor: (any ObjectGraphContributor)? }
    private let lock = Lock()
    private var entries: [Entry] = []

    func add(_ c: any ObjectGraphContributor) {
        lock.withLock {
            entries.removeAll { $0.contributor == nil }
            entries.append(Entry(contributor: c))
        }
    }

    var live: [any ObjectGraphContributor] { lock.withLock { entries.compactMap(\.contributor) } }
}
