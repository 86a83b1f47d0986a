import Foundation
import XCTest

/// `iommukit` as a user runs it: the built executable, its stdout, stderr and exit status.
final class CLITests: XCTestCase {
    /// The build products directory (where the test bundle and iommukit are).
    static var products: URL {
        var dir = Bundle.main.bundleURL
        if dir.pathExtension == "xctest" { dir.deleteLastPathComponent() }
        return dir
    }

    struct Run {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// Runs `iommukit args` to completion (bounded by the test's own timeout).
    func iommukit(_ args: String...) throws -> Run {
        let p = Process()
        p.executableURL = Self.products.appendingPathComponent("iommukit")
        p.arguments = args
        // Output goes to files, so neither stream can fill up and block the program.
        let dir = FileManager.default.temporaryDirectory
        let outURL = dir.appendingPathComponent("cli-test-\(UUID().uuidString).out")
        let errURL = dir.appendingPathComponent("cli-test-\(UUID().uuidString).err")
        FileManager.default.createFile(atPath: outURL.path, contents: nil)
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: outURL)
            try? FileManager.default.removeItem(at: errURL)
        }
        let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
        p.standardOutput = out
        p.standardError = err
        try p.run()
        p.waitUntilExit()
        try out.close()
        try err.close()
        return Run(status: p.terminationStatus, stdout: try String(contentsOf: outURL, encoding: .utf8),
                   stderr: try String(contentsOf: errURL, encoding: .utf8))
    }

    // MARK: trace

    /// `task-pid [cpu] flags seconds.micros: system:event: text`.
    static let lineLayout = try! NSRegularExpression(
        pattern: #"^ {0,15}\S{1,16}-\d+ +\[\d{3}\] [.dhHsSnNbBp0-9]{5} +\d+\.\d{6}: ([a-z_]+):([a-z_]+): +\S.*$"#)

    func testTraceDemoPrintsTraceCmdReportLinesWithTheKernelsEventNames() throws {
        let r = try iommukit("trace", "demo")
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "# machine 1")
        var names: [String] = []
        for line in lines.dropFirst() {
            let range = NSRange(line.startIndex..., in: line)
            let m = try XCTUnwrap(Self.lineLayout.firstMatch(in: line, range: range), "not a trace-cmd line: \(line)")
            names.append(String(line[Range(m.range(at: 1), in: line)!]) + ":" + String(line[Range(m.range(at: 2), in: line)!]))
        }
        for upstream in ["iommu:add_device_to_group", "iommu:attach_device_to_domain", "iommu:map", "iommu:unmap",
                         "iommu:io_page_fault", "intel_iommu:qi_submit", "intel_iommu:cache_tag_assign"] {
            XCTAssertTrue(names.contains(upstream), "no \(upstream) in the demo's trace")
        }
        XCTAssertEqual(Set(names.map { String($0.prefix { $0 != ":" }) }), ["iommu", "intel_iommu", "iommukit"])
        // The timestamps are the virtual clock: 1 µs per event, in order.
        let stamps = lines.dropFirst().map { $0.split(separator: " ").first { $0.hasSuffix(":") && $0.contains(".") }! }
        XCTAssertEqual(stamps.first, "0.000001:")
        XCTAssertEqual(stamps.count, lines.count - 1)
        let map = try XCTUnwrap(lines.first { $0.contains("iommu:map:") })
        XCTAssertTrue(map.hasSuffix("IOMMU: iova=0x0000000000100000 - 0x0000000000102000 paddr=0x0000000000127000 size=8192"), map)
    }

    func testTraceFiltersByEventDeviceAndPasid() throws {
        let maps = try iommukit("trace", "demo", "--event", "iommu:map")
        XCTAssertEqual(maps.status, 0, maps.stderr)
        XCTAssertEqual(maps.stdout.split(separator: "\n").filter { !$0.hasPrefix("#") }.count, 1)
        let nic = try iommukit("trace", "demo", "--device", "00:02.0")
        let nicLines = nic.stdout.split(separator: "\n").filter { !$0.hasPrefix("#") }
        XCTAssertFalse(nicLines.isEmpty)
        for line in nicLines { XCTAssertTrue(line.contains("0000:00:02.0"), String(line)) }
        let pasid = try iommukit("trace", "demo", "--pasid=1", "--event", "iommukit:attach_device_pasid")
        XCTAssertEqual(pasid.stdout.split(separator: "\n").filter { !$0.hasPrefix("#") }.map { String($0.split(separator: ": ", maxSplits: 1)[1]) },
                       ["iommukit:attach_device_pasid: device=0000:00:03.0 pasid=1 domain=DMA#4"])
    }

    func testTraceRejectsBadFilterValues() throws {
        let r = try iommukit("trace", "demo", "--device", "3")
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("--device '3' is not a PCI address"), r.stderr)
        let p = try iommukit("trace", "demo", "--pasid", "one")
        XCTAssertEqual(p.status, 2)
        XCTAssertTrue(p.stderr.contains("--pasid 'one' is not a number"), p.stderr)
    }

    func testTraceOfAnExampleProgram() throws {
        let r = try iommukit("trace", "VMMGuestMemory", "--event", "iommu:attach_device_to_domain")
        XCTAssertEqual(r.status, 0, r.stderr)
        let devices = r.stdout.split(separator: "\n").filter { !$0.hasPrefix("#") }.map { $0.split(separator: " ").last! }
        XCTAssertEqual(Set(devices), ["device=0000:3a:00.0"])
        XCTAssertGreaterThanOrEqual(devices.count, 3, "probe, bind (blocking), attach, unbind")
    }

    // MARK: graph

    func testGraphDemoIsDOTWithTheDevicesTheDomainAndThePASIDAttachment() throws {
        let r = try iommukit("graph", "demo", "--at", "2")
        XCTAssertEqual(r.status, 0, r.stderr)
        let g = try DOTGraph(parsing: r.stdout)
        XCTAssertEqual(g.attributes["label"], "step 2: kernel PASID 1 allocated and DMA#4 attached to it (iommu_attach_device_pasid)")
        let dsa = try XCTUnwrap(g.nodes.first { $0.value["label"]?.hasPrefix("0000:00:03.0\ndsa0") == true }?.key)
        let nic = try XCTUnwrap(g.nodes.first { $0.value["label"]?.hasPrefix("0000:00:02.0\nnic0") == true }?.key)
        XCTAssertEqual(g.clusters["cluster_dmar0"]?.sorted(), ["dev_00_02_0", "dev_00_03_0", "group0", "group1", "iommu_dmar0"])
        // The DMA domain serves dsa0's RID and its kernel PASID: two edges to one node.
        let dsaEdges = g.edges.filter { $0.from == dsa }
        XCTAssertEqual(dsaEdges.compactMap(\.label).sorted(), ["PASID 1", "RID"])
        let domain = try XCTUnwrap(dsaEdges.first?.to)
        XCTAssertEqual(Set(dsaEdges.map(\.to)), [domain])
        XCTAssertEqual(g.nodes[domain]?["label"]?.split(separator: "\n").first, "DMA#4")
        XCTAssertTrue(g.nodes[domain]?["label"]?.contains("\nDID 3\n") == true, g.nodes[domain]?["label"] ?? "")
        // nic0 has its own group and domain.
        let nicEdges = g.edges.filter { $0.from == nic }
        XCTAssertEqual(nicEdges.compactMap(\.label), ["RID"])
        XCTAssertNotEqual(nicEdges.first?.to, domain)
    }

    func testGraphAtAStepByNameAndAtTheEnd() throws {
        let byName = try iommukit("graph", "demo", "--at", "iommu_unmap")
        XCTAssertEqual(byName.status, 0, byName.stderr)
        XCTAssertEqual(try DOTGraph(parsing: byName.stdout).attributes["label"], "step 9: iommu_unmap iova 0x100000, 8 KiB")
        let last = try iommukit("graph", "demo")
        XCTAssertEqual(try DOTGraph(parsing: last.stdout).attributes["label"], "step 11: PASID 1 detached and freed, drivers unbound")
    }

    func testGraphOfAnIOMMUFDProgramShowsItsObjects() throws {
        let r = try iommukit("graph", "VMMGuestMemory", "--at", "ATTACH")
        XCTAssertEqual(r.status, 0, r.stderr)
        let g = try DOTGraph(parsing: r.stdout)
        let titles = g.clusters["cluster_iommufd"]?.compactMap { g.nodes[$0]?["label"]?.split(separator: "\n").first }.sorted()
        XCTAssertEqual(titles, ["DEVICE 2", "HWPT_PAGING 3", "IOAS 1"])
        XCTAssertTrue(g.edges.contains { $0.from == "iommufd_obj2" && $0.to == "iommufd_obj3" && $0.label == "RID" })
        XCTAssertTrue(g.edges.contains { $0.from == "iommufd_obj3" && $0.to == "iommufd_obj1" && $0.label == "ioas" })
    }

    func testGraphAtAnUnknownStepListsTheSteps() throws {
        let r = try iommukit("graph", "demo", "--at", "no such step")
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("no step of demo matches 'no such step'"), r.stderr)
        XCTAssertTrue(r.stderr.contains("machine 1, step 2: kernel PASID 1 allocated"), r.stderr)
        XCTAssertEqual(r.stdout, "")
    }

    // MARK: demo --json

    func testDemoJSONCarriesEveryFigureAsAField() throws {
        let r = try iommukit("demo", "--json")
        XCTAssertEqual(r.status, 0, r.stderr)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let steps = try XCTUnwrap(json["steps"] as? [[String: Any]])
        XCTAssertEqual(steps.count, 11)
        for step in steps {
            XCTAssertNil(step["action"], "prose in the JSON")
            XCTAssertNil(step["result"], "prose in the JSON")
        }
        let attach = try XCTUnwrap(steps.first { $0["step"] as? String == "attach_device_pasid" })
        XCTAssertEqual(attach["pasid"] as? Int, 1)
        XCTAssertEqual(attach["did"] as? Int, 3)
        XCTAssertEqual(attach["did_refcount"] as? Int, 2)
        let map = try XCTUnwrap(steps.first { $0["step"] as? String == "map" })
        XCTAssertEqual(map["iova"] as? Int, 0x10_0000)
        XCTAssertEqual(map["size"] as? Int, 8192)
        let reads = try XCTUnwrap(steps.first { $0["step"] as? String == "dma_read" })
        XCTAssertEqual(reads["iotlb_hits"] as? Int, 1)
        XCTAssertEqual(reads["atc_hits"] as? Int, 1)
        let fault = try XCTUnwrap(steps.first { $0["fault"] != nil }?["fault"] as? [String: Any])
        XCTAssertEqual(fault["code"] as? Int, 0x71)
        XCTAssertEqual((json["counters"] as? [String: Any])?["maps"] as? Int, 1)
        XCTAssertEqual((json["violations"] as? [Any])?.count, 0)
        let devices = try XCTUnwrap(json["devices"] as? [[String: Any]])
        XCTAssertEqual(devices.map { $0["group"] as? Int }, [0, 1])
        XCTAssertEqual(devices.map { $0["pasid_bits"] as? Int }, [nil, 20])
    }

    /// `--vendor smmuv3`: the same scenario on an ARM SMMUv3; the tag is the ASID, and the
    /// nic's DMA faults with F_TRANSLATION. An unknown vendor is refused, naming the close one.
    func testDemoOnSMMUv3() throws {
        let r = try iommukit("demo", "--vendor", "smmuv3", "--json")
        XCTAssertEqual(r.status, 0, r.stderr)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual((json["iommu"] as? [String: Any])?["vendor"] as? String, "smmuv3")
        let steps = try XCTUnwrap(json["steps"] as? [[String: Any]])
        XCTAssertEqual(steps.count, 11)
        let attach = try XCTUnwrap(steps.first { $0["step"] as? String == "attach_device_pasid" })
        XCTAssertNotNil(attach["asid"] as? Int)
        XCTAssertNil(attach["did"])
        let fault = try XCTUnwrap(steps.first { $0["fault"] != nil }?["fault"] as? [String: Any])
        XCTAssertEqual(fault["code"] as? Int, 0x10, "F_TRANSLATION")
        XCTAssertEqual((json["violations"] as? [Any])?.count, 0)
        let text = try iommukit("demo", "--vendor=smmuv3")
        XCTAssertTrue(text.stdout.hasPrefix("IOMMUKit demo: ARM SMMUv3 smmu0"), text.stdout)
        let wrong = try iommukit("demo", "--vendor", "smmv3")
        XCTAssertEqual(wrong.status, 2)
        XCTAssertEqual(wrong.stderr, "iommukit demo: unknown vendor 'smmv3'. Did you mean 'smmuv3'? The vendors: vtd, smmuv3.\n")
    }

    // MARK: error paths

    func testUnknownCommandIsNamedWithTheClosestOne() throws {
        let r = try iommukit("dmeo")
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(r.stderr, "iommukit: unknown command 'dmeo'. Did you mean 'demo'? Run 'iommukit help' for the commands.\n")
        XCTAssertEqual(r.stdout, "")
        let far = try iommukit("frobnicate")
        XCTAssertEqual(far.status, 2)
        XCTAssertFalse(far.stderr.contains("Did you mean"), far.stderr)
    }

    func testUnknownOptionIsNamedWithTheClosestOne() throws {
        let demo = try iommukit("demo", "--jsno")
        XCTAssertEqual(demo.status, 2)
        XCTAssertEqual(demo.stderr, "iommukit demo: unknown option '--jsno'. Did you mean '--json'?\n")
        let trace = try iommukit("trace", "demo", "--evnt", "map")
        XCTAssertEqual(trace.status, 2)
        XCTAssertEqual(trace.stderr, "iommukit trace: unknown option '--evnt'. Did you mean '--event'?\n")
        let graph = try iommukit("graph", "demo", "--svgg")
        XCTAssertEqual(graph.status, 2)
        XCTAssertTrue(graph.stderr.contains("'--svgg'. Did you mean '--svg'?"), graph.stderr)
        let missing = try iommukit("trace", "demo", "--event")
        XCTAssertEqual(missing.status, 2)
        XCTAssertEqual(missing.stderr, "iommukit trace: option --event needs a value\n")
    }

    func testUnknownTargetAndMissingTarget() throws {
        let typo = try iommukit("trace", "dmeo")
        XCTAssertEqual(typo.status, 2)
        XCTAssertTrue(typo.stderr.contains("unknown target 'dmeo'. Did you mean 'demo'?"), typo.stderr)
        let none = try iommukit("graph")
        XCTAssertEqual(none.status, 2)
        XCTAssertTrue(none.stderr.contains("which program?"), none.stderr)
        let path = try iommukit("trace", "/nonexistent/prog")
        XCTAssertEqual(path.status, 1)
        XCTAssertTrue(path.stderr.contains("is not an executable file"), path.stderr)
    }

    func testNoCommandPrintsUsageAndFails() throws {
        let r = try iommukit()
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.hasPrefix("usage: iommukit <command>"), r.stderr)
        let help = try iommukit("help")
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(help.stdout.hasPrefix("usage: iommukit <command>"))
    }
}
