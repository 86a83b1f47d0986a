// iommukit: the command-line face of IOMMUKit. `iommukit demo` replays a small kernel
// scenario on the Intel VT-d model; `--json` prints the same as one JSON object.
#if canImport(Glibc)
import Glibc
#endif
import Foundation

let usage = """
    usage: iommukit <command> [--json]

    commands:
      demo     one VT-d unit, two PCI devices: a DMA domain on a RID and on a kernel PASID,
               DMA in both directions, an unmap and the fault that follows, the counters
      help     this text

    --json     print the result as one JSON object instead of text
    """

var arguments = Array(CommandLine.arguments.dropFirst())
let json = arguments.contains("--json")
arguments.removeAll { $0 == "--json" }

switch arguments.first {
case "demo" where arguments.count == 1:
    do {
        let report = try runDemo()
        print(json ? report.json() : report.text())
    } catch {
        FileHandle.standardError.write(Data("iommukit demo: \(error)\n".utf8))
        exit(1)
    }
case "help", "--help", "-h":
    print(usage)
default:
    FileHandle.standardError.write(Data((usage + "\n").utf8))
    exit(2)
}
