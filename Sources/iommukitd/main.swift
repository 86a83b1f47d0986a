// iommukitd: the model as a service. Plays the kernel's /dev/iommu for unmodified C
// programs that run with LD_PRELOAD=libIOMMUFDPreload.so (see README, "Run an existing C
// program against IOMMUKit", and Sources/CIOMMUFD/include/iommukit_wire.h for the
// protocol and its trust rules).
import CIOMMUKitd
import Glibc

let usage = """
usage: iommukitd [--socket PATH] [--log FILE] [--verbose] [--idle-exit SECONDS]
                 [--cap-sys-resource caller|on|off] [--cap-ipc-lock caller|on|off]

  --socket PATH        AF_UNIX SOCK_SEQPACKET socket to listen on (default: iommukitd.sock
                       in the per-user directory, $XDG_RUNTIME_DIR/iommukit or
                       /tmp/iommukit-<uid>, mode 0700)
  --log FILE           append the log to FILE, opened with O_NOFOLLOW (default: stderr)
  --verbose            also log successful ioctls
  --idle-exit SECONDS  exit after SECONDS with no connection (default 0: never; the
                       shim starts the service with IOMMUKIT_IDLE_EXIT, default 30)
  --cap-sys-resource   CAP_SYS_RESOURCE for IOMMU_OPTION_RLIMIT_MODE: as the calling task
                       has it (caller, the kernel's rule), always, or never
  --cap-ipc-lock       CAP_IPC_LOCK (pinned pages not charged to RLIMIT_MEMLOCK), same choices

Serves processes of its own user only. Stop it with SIGTERM or SIGINT; it removes its
socket on the way out.
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
    if options.socketPath.isEmpty { options.socketPath = SocketDirectory.defaultSocket }
    return options
}

let options = parseOptions(Array(CommandLine.arguments.dropFirst()))

// SIGTERM and SIGINT are read from a signalfd by the I/O thread (blocked here, before any
// other thread exists, so that every thread inherits the mask); SIGPIPE is ignored: a
// client that hangs up mid-reply must not kill the service.
let signals = ikd_block_signals()
guard signals >= 0 else { die("iommukitd: signalfd: \(errnoName(errno))", 1) }

let service = Service(options: options)
guard service.listen() else { exit(0) }
service.run(signals: signals)
