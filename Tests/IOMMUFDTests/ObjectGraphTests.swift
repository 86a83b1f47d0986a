import XCTest
import IOMMUCore
import IOMMUDrivers
@testable import IOMMUFD

/// The object graph of a machine: the core's units, groups, devices and attachments,
/// and what an iommufd context adds, with its reference counts and edges.
final class ObjectGraphTests: XCTestCase {
    private func edges(_ g: ObjectGraph, from: String) -> [String] {
        g.edges(from: from).map { "\($0.label ?? "") -> \($0.to)" }.sorted()
    }

    func testIOMMUFDObjectsAndTheirEdgesDownToTheCore() throws {
        let machine = Machine(memory: 1 << 30)
        let unit = try IntelIOMMU(name: "dmar0", driver: IntelIOMMUDriver(),
                                  hardware: VTdHardware(memory: machine.memory, caps: VTdCapabilities()))
        machine.addIOMMU(unit)
        let pci = try machine.addDevice(PCIDevice(rid: RID(bus: 0, device: 5, function: 0), name: "nvme0",
                                                  caps: PCICapabilities(pasid: PASIDCapability(width: 20))), behind: unit)
        let process = try IOMMUCore.Process(memory: machine.memory, pid: 77)
        let va = try process.mmap(length: 8192, prot: [.read, .write], populate: true)
        let fd = IOMMUFD(machine: machine, process: process)
        let ioas = try fd.allocIOAS()
        _ = try fd.map(ioas: ioas, userVA: va, length: 8192, iova: 0x10_0000)
        let idev = try fd.deviceBind(pci)
        let hwpt = try fd.allocHWPT(device: idev.id, pt: ioas, flags: IOMMUFDConstant.hwptAllocPasid)
        _ = try fd.deviceAttach(idev, ptID: hwpt)
        _ = try fd.deviceAttach(idev, pasid: 3, ptID: hwpt)
        let access = try fd.accessCreate(ops: IOMMUFDAccessOps(needsPinPages: false, unmap: nil))
        try fd.accessAttach(access, ioasID: ioas)

        let g = machine.graph()
        func node<K>(_ id: IOMMUFDObjectID<K>) -> String { "iommufd_obj\(id.rawValue)" }
        XCTAssertEqual(g.clusters.map(\.label), ["dmar0 (intel-iommu)", "iommufd (pid 77)"])
        XCTAssertEqual(g.node(node(ioas))?.title, "IOAS \(ioas.rawValue)")
        XCTAssertEqual(g.node(node(ioas))?.details, ["1 area(s)", "users 3"], "the table, the HWPT and the access")
        XCTAssertEqual(g.node(node(hwpt))?.title, "HWPT_PAGING \(hwpt.rawValue)")
        XCTAssertEqual(g.node(node(idev.id))?.details, ["0000:00:05.0", "users \(idev.users)"])
        let domain = try XCTUnwrap(pci.group?.domain)
        let domainNode = ObjectGraph.id(of: domain)
        XCTAssertEqual(edges(g, from: node(hwpt)), ["domain -> \(domainNode)", "ioas -> \(node(ioas))"])
        XCTAssertEqual(edges(g, from: node(idev.id)),
                       ["PASID 3 -> \(node(hwpt))", "RID -> \(node(hwpt))", "dev -> \(ObjectGraph.id(of: pci))"])
        XCTAssertEqual(edges(g, from: node(access.id)), ["ioas -> \(node(ioas))"])
        // The core's side of the same attachments: the device reaches the HWPT's domain
        // through its RID and PASID 3.
        XCTAssertEqual(edges(g, from: ObjectGraph.id(of: pci)), ["PASID 3 -> \(domainNode)", "RID -> \(domainNode)"])
        XCTAssertTrue(g.node(domainNode)?.details.contains { $0.hasPrefix("DID ") } ?? false)

        fd.close()
        XCTAssertEqual(machine.graph().clusters.map(\.label), ["dmar0 (intel-iommu)"], "a closed context has no objects")
    }

    func testRIDPlusAllPASIDsShapeIsOneEdge() throws {
        let machine = Machine(memory: 1 << 28)
        let driver = MockIOMMUDriver()
        let unit = MockIOMMU(driver: driver)
        machine.addIOMMU(unit)
        let dev = try machine.addDevice(PCIDevice(rid: RID(bus: 0, device: 1, function: 0),
                                                  caps: PCICapabilities(pasid: PASIDCapability(width: 8))), behind: unit)
        let parent = try machine.iommu.allocPagingDomain(for: dev, flags: [.nestParent])
        let domain = try driver.domainAllocNested(dev, parent: parent, flags: [], userData: [0xef, 0xbe, 0xad, 0x0b])
        try machine.iommu.attachDeviceAllPasids(domain, to: dev)
        let g = machine.graph(title: "all PASIDs")
        XCTAssertEqual(g.title, "all PASIDs")
        XCTAssertEqual(edges(g, from: ObjectGraph.id(of: dev)), ["RID + all PASIDs -> \(ObjectGraph.id(of: domain))"])
        let group = try XCTUnwrap(dev.group)
        XCTAssertEqual(edges(g, from: ObjectGraph.id(of: group)),
                       [" -> \(ObjectGraph.id(of: dev))", "default -> \(ObjectGraph.id(of: try XCTUnwrap(group.defaultDomain)))"])
    }

    func testDOTQuotesEveryLabel() {
        var g = ObjectGraph(title: "a \"quoted\" title")
        g.add(ObjectGraph.Node(id: "n\"1", kind: .device, title: "back\\slash", details: ["two\nlines"]))
        g.add(ObjectGraph.Edge(from: "n\"1", to: "n\"1", label: "self", style: .dashed))
        XCTAssertEqual(g.dot(), """
            digraph iommukit {
              label="a \\"quoted\\" title"; labelloc=t;
              graph [rankdir=LR, fontname="Helvetica", fontsize=11];
              node [style="filled", fontname="Helvetica", fontsize=10];
              edge [fontname="Helvetica", fontsize=9];
              "n\\"1" [label="back\\\\slash\\ntwo\\nlines", shape=box, fillcolor="#d6e8f5"];
              "n\\"1" -> "n\\"1" [label="self", style=dashed];
            }

            """)
    }
}
