import Foundation
import IOMMUFDSelftest

/// Runs one fuzz input on a fresh sandbox: decode, run every step, close, check.
func runFuzzInput(_ input: UnsafeRawBufferPointer) {
    guard let sandbox = try? FuzzSandbox() else { preconditionFailure("the fuzz sandbox cannot be built") }
    for step in FuzzProgram.decode(input) { sandbox.run(step) }
    sandbox.finish()
}

/// The libFuzzer entry (`LLVMFuzzerTestOneInput`): any byte string is a program of
/// iommufd calls on a fresh context (see ``FuzzProgram``). A trap is a finding.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    runFuzzInput(UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size))
    return 0
}

/// Writes the seed corpus to `directory`, one file per seed.
func writeSeeds(to directory: String) throws {
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    for (name, steps) in FuzzSeeds.all {
        try Data(FuzzProgram.encode(steps)).write(to: URL(fileURLWithPath: directory).appendingPathComponent(name))
    }
}

#if IOMMUKIT_LIBFUZZER
// Built with `-sanitize=fuzzer -DIOMMUKIT_LIBFUZZER`: libFuzzer's driver runs the
// program (SwiftPM names the entry point itself, so the driver is called from `main`),
// except for `--write-seeds DIR`.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

@main
struct FuzzDriver {
    static func main() throws {
        let args = CommandLine.arguments
        if args.count == 3 && args[1] == "--write-seeds" { return try writeSeeds(to: args[2]) }
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzTestOneInput))
    }
}
#else
/// Built normally: replays inputs without libFuzzer.
///
///     iommufd-fuzz --write-seeds DIR     write the seed corpus
///     iommufd-fuzz --seeds [-v]          run every seed (-v: print each ioctl's result)
///     iommufd-fuzz FILE|DIR...           run each file (a crash or corpus to reproduce)
@main
struct FuzzReplay {
    static func main() throws {
        let args = Array(CommandLine.arguments.dropFirst())
        if args.count == 2 && args[0] == "--write-seeds" { return try writeSeeds(to: args[1]) }
        if args.first == "--seeds" {
            for (name, steps) in FuzzSeeds.all {
                let sandbox = try FuzzSandbox()
                sandbox.results = []
                for step in steps { sandbox.run(step) }
                sandbox.finish()
                let results = args.contains("-v")
                    ? " ioctl results \(sandbox.results ?? []), \(sandbox.mappings.count) mappings of the iommufd" : ""
                print("seed \(name): \(steps.count) steps ran, nothing left behind\(results)")
            }
            return
        }
        guard !args.isEmpty else {
            print("usage: iommufd-fuzz --write-seeds DIR | --seeds [-v] | FILE|DIR...")
            exit(2)
        }
        var files: [String] = []
        for a in args {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: a, isDirectory: &isDirectory) else {
                print("iommufd-fuzz: no such file: \(a)")
                exit(2)
            }
            if isDirectory.boolValue {
                let names = try FileManager.default.contentsOfDirectory(atPath: a).sorted()
                files += names.map { (a as NSString).appendingPathComponent($0) }
            } else {
                files.append(a)
            }
        }
        for f in files {
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: f)))
            bytes.withUnsafeBytes(runFuzzInput)
        }
        print("iommufd-fuzz: \(files.count) inputs ran, nothing left behind")
    }
}
#endif
