// iommukitd: the model as a service. Plays the kernel's /dev/iommu for unmodified C
// programs that run with LD_PRELOAD=libIOMMUFDPreload.so (see README, "Run an existing C
// program against IOMMUKit", and Wire.swift for the protocol).
import Glibc

let usage = """
usage: iommukitd --socket PATH [--log FILE] [--verbose] [--idle-exit SECONDS]
                 [--cap-sys-resource caller|on|off] [--cap-ipc-lock caller|on|off]

  --socket PATH        AF_UNIX SOCK_SEQPACKET socket to listen on (required)
  --log FILE           append the log to FILE (default: stderr)
  --verbose            also log successful ioctls
  --idle-exit SECONDS  exit after SECONDS with no connection (default 0: never; the
                       shim starts the service with IOMMUKIT_IDLE_EXIT, default 30)
  --cap-sys-resource   CAP_SYS_RESOURCE for IOMMU_OPTION_RLIMIT_MODE: as the opening
                       process has it (caller, the kernel's rule), always, or never
  --cap-ipc-lock       CAP_IPC_LOCK (pinned pages not charged to RLIMIT_MEMLOCK), same choices

Stop it with SIGTERM or SIGINT; it removes its socket on the way out.
"""

/// Writes `text` to stderr and exits with `status`.
func die(_ text: String, _ status: Int32 = 2) -> Never {
    let line = text + "\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    exit(status)
}

/// Parses the command line (see `usage`).
func parseOptions(_ arguments: [String]) -> ServiceOptions {
    var options = ServiceOptions()
    var args = arguments[...]
    func value() -> String {
        guard let v = args.popFirst() else { die(usage) }
        return v
    }
    while let a = args.popFirst() {
        switch a {
        case "--socket": options.socketPath = value()
        case "--log": options.logPath = value()
        case "--verbose": options.verbose = true
        case "--idle-exit":
            guard let s = Double(value()), s >= 0 else { die(usage) }
            options.idleExit = s
        case "--cap-sys-resource", "--cap-ipc-lock":
            guard let p = CapabilityPolicy(rawValue: value()) else { die(usage) }
            if a == "--cap-sys-resource" { options.capSysResource = p } else { options.capIPCLock = p }
        case "-h", "--help":
            print(usage)
            exit(0)
        default:
            die("iommukitd: unknown argument \(a)\n\(usage)")
        }
    }
    guard !options.socketPath.isEmpty else { die(usage) }
    return options
}

let options = parseOptions(Array(CommandLine.arguments.dropFirst()))

// SIGTERM/SIGINT ask the loop to stop; a client that hangs up mid-reply must not kill us.
let stopFlag = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
stopFlag.initialize(to: 0)
nonisolated(unsafe) var stopPointer: UnsafeMutablePointer<Int32>? = stopFlag
signal(SIGPIPE, SIG_IGN)
signal(SIGTERM) { _ in stopPointer?.pointee = 1 }
signal(SIGINT) { _ in stopPointer?.pointee = 1 }

let service = Service(options: options)
guard service.listen() else { exit(0) }
service.run(stop: stopFlag)
exit(0)
