// iommukit: the command-line face of IOMMUKit.
//   iommukit demo [--vendor V] [--json]         a small kernel scenario on Intel VT-d or ARM SMMUv3
//   iommukit trace <target> [filters]           its events as `trace-cmd report` lines
//   iommukit graph <target> [--at STEP] [--svg] its objects as a Graphviz graph
#if canImport(Glibc)
import Glibc
#endif
import Foundation

let usage = """
    usage: iommukit <command> [options]

    commands:
      demo [--json]            one IOMMU unit, two PCI devices: a DMA domain on a RID and on a
                               kernel PASID, DMA both ways, an unmap and the fault that follows
          --vendor V           the IOMMU: vtd (Intel VT-d, the default) or smmuv3 (ARM SMMUv3)
      trace <target>           run <target> and print every IOMMU event it caused, one
                               `trace-cmd report` line each (kernel tracepoint names and formats)
          --event NAME         only this event (`iommu:map`, `map`) or system (`intel_iommu:`)
          --device BDF         only events about this PCI device (`00:03.0`)
          --pasid N            only events about this PASID
      graph <target>           run <target> and print its objects as Graphviz DOT: IOMMU units,
                               groups, devices, domains, attachments, iommufd objects
          --at STEP            the state at this step (number or part of its name); default: last
          --svg                render with Graphviz `dot` and print SVG instead
      help                     this text

    <target> is `demo`, an example built beside iommukit (IDXDMixedPASID, PASIDFlavours,
    VMMGuestMemory: `swift build` builds them), or the path of any program that uses
    IOMMUKit; arguments after `--` go to the program. The program runs with
    IOMMUKIT_TRACE / IOMMUKIT_GRAPH set, which every IOMMUKit machine honours.
    """

let commands = ["demo", "trace", "graph", "help"]
var arguments = Array(CommandLine.arguments.dropFirst())
guard let command = arguments.first else { fail(usage, code: 2) }
arguments.removeFirst()

switch command {
case "demo":
    let options = parseOptions(arguments, command: "demo", flags: ["--json"], valued: ["--vendor"])
    guard options.positional.isEmpty else { fail("iommukit demo: unexpected argument '\(options.positional[0])'", code: 2) }
    let vendorName = options.values["--vendor"] ?? DemoVendor.vtd.rawValue
    guard let vendor = DemoVendor(rawValue: vendorName) else {
        let names = DemoVendor.allCases.map(\.rawValue)
        let hint = closest(to: vendorName, in: names).map { " Did you mean '\($0)'?" } ?? ""
        fail("iommukit demo: unknown vendor '\(vendorName)'.\(hint) The vendors: \(names.joined(separator: ", ")).", code: 2)
    }
    do {
        let report = try runDemo(vendor: vendor)
        print(options.flags.contains("--json") ? report.json() : report.text())
    } catch {
        fail("iommukit demo: \(error)")
    }
case "trace":
    runTraceCommand(arguments)
case "graph":
    runGraphCommand(arguments)
case "help", "--help", "-h":
    print(usage)
default:
    let hint = closest(to: command, in: commands).map { " Did you mean '\($0)'?" } ?? ""
    fail("iommukit: unknown command '\(command)'.\(hint) Run 'iommukit help' for the commands.", code: 2)
}
