import Foundation

/// What `iommukit trace` and `iommukit graph` run: the demo (this executable, `demo`),
/// an example built in the same directory as `iommukit`, or any program by path. It runs
/// as a child process with the observation variables set (`IOMMUKIT_TRACE`,
/// `IOMMUKIT_GRAPH`, ...), which every IOMMUKit machine reads when it is created, so a
/// user's own program needs nothing special to be traced or drawn.
struct Target {
    /// The examples of this package, for the help text and typo suggestions.
    static let examples = ["IDXDMixedPASID", "PASIDFlavours", "VMMGuestMemory"]

    let name: String
    let executable: URL
    let arguments: [String]

    /// Resolves `name` for `command`, or ends the program with a message saying why not.
    static func resolve(_ name: String, command: String, passthrough: [String]) -> Target {
        guard let me = Bundle.main.executableURL?.resolvingSymlinksInPath() else {
            fail("iommukit \(command): cannot find my own executable")
        }
        if name == "demo" { return Target(name: name, executable: me, arguments: ["demo"] + passthrough) }
        let fm = FileManager.default
        if name.contains("/") {
            let url = URL(fileURLWithPath: name)
            guard fm.isExecutableFile(atPath: url.path) else {
                fail("iommukit \(command): '\(name)' is not an executable file")
            }
            return Target(name: name, executable: url, arguments: passthrough)
        }
        let dir = me.deletingLastPathComponent()
        let beside = dir.appendingPathComponent(name)
        if fm.isExecutableFile(atPath: beside.path) {
            return Target(name: name, executable: beside, arguments: passthrough)
        }
        if examples.contains(name) {
            fail("iommukit \(command): example '\(name)' is not built in \(dir.path); run `swift build` "
                 + "(or `swift build --product \(name)`) first")
        }
        let hint = closest(to: name, in: ["demo"] + examples).map { " Did you mean '\($0)'?" } ?? ""
        fail("iommukit \(command): unknown target '\(name)'.\(hint) A target is `demo`, an example "
             + "(\(examples.joined(separator: ", "))) or the path of a program.", code: 2)
    }

    /// Runs the target with `environment` added (its stdout discarded, its stderr
    /// shown); ends the program if it cannot start or fails.
    func run(command: String, environment: [String: String]) {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("IOMMUKIT_TRACE") && !$0.key.hasPrefix("IOMMUKIT_GRAPH") }
        env.merge(environment) { $1 }
        process.environment = env
        process.standardOutput = FileHandle.nullDevice
        do { try process.run() } catch {
            fail("iommukit \(command): cannot run \(executable.path): \(error.localizedDescription)")
        }
        process.waitUntilExit()
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            let how = process.terminationReason == .exit ? "exit status \(process.terminationStatus)"
                : "signal \(process.terminationStatus)"
            fail("iommukit \(command): \(name) failed (\(how))")
        }
    }
}

/// A file in the temporary directory, removed when the value is released.
final class ScratchFile {
    let url: URL
    init(_ suffix: String) {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("iommukit-\(ProcessInfo.processInfo.processIdentifier)-\(suffix)")
        try? FileManager.default.removeItem(at: url)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
    var contents: String? { try? String(contentsOf: url, encoding: .utf8) }
}
