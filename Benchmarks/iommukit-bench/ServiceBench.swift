#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The cost of one ioctl as an unmodified C program pays it through the model as a
/// service: `ioctl()` in `libIOMMUFDPreload.so`, one SOCK_SEQPACKET round trip to
/// `iommukitd`, the service's `process_vm_readv` of the argument, the dispatcher, its
/// `process_vm_writev` of the answer, and the reply.
///
/// Key: `ioctl_roundtrip_us`, per run the median of 20 000 `IOMMU_IOAS_IOVA_RANGES`
/// calls (one range array entry, so each call reads 32 bytes, writes 32 + 16 back). The
/// benchmark starts its own service on a temporary socket and loads the shim with
/// `dlopen`, calling its `open` and `ioctl` directly (what LD_PRELOAD would bind).
///
/// Both must come from the benchmark's own build directory, so a release benchmark
/// measures the release service (a debug `iommukitd` is about three times slower):
/// `swift build -c release` builds them beside it. When they are missing the key is left
/// out and stderr says so; the benchmark never falls back to another build.
func serviceBenchmark() throws -> () throws -> [String: Double] {
    let exe = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        ?? CommandLine.arguments[0])
    let dir = exe.deletingLastPathComponent()
    #if DEBUG
    let configuration = "debug"
    #else
    let configuration = "release"
    #endif
    let daemon = dir.appendingPathComponent("iommukitd"), shim = dir.appendingPathComponent("libIOMMUFDPreload.so")
    guard FileManager.default.isExecutableFile(atPath: daemon.path), FileManager.default.fileExists(atPath: shim.path) else {
        throw Skip("no \(configuration) iommukitd and libIOMMUFDPreload.so in \(dir.path); "
                   + "run `swift build -c \(configuration)` first (only the service of the benchmark's own build is used)")
    }
    note("  using \(daemon.path) (\(configuration))")
    let rig = try ServiceRig(daemon: daemon, shim: shim)
    return { ["ioctl_roundtrip_us": try rig.measure()] }
}

/// A running `iommukitd` on a temporary socket, and an iommufd opened through the shim.
private final class ServiceRig {
    typealias OpenFn = @convention(c) (UnsafePointer<CChar>, Int32) -> Int32
    typealias IoctlFn = @convention(c) (Int32, UInt, UnsafeMutableRawPointer?) -> Int32
    typealias CloseFn = @convention(c) (Int32) -> Int32

    private let daemon: Foundation.Process
    private let shimIoctl: IoctlFn
    private let shimClose: CloseFn
    private let fd: Int32
    private let ioas: UInt32

    init(daemon path: URL, shim: URL) throws {
        let socket = FileManager.default.temporaryDirectory.appendingPathComponent("iommukit-bench-\(getpid()).sock").path
        let daemon = Foundation.Process()
        daemon.executableURL = path
        daemon.arguments = ["--socket", socket, "--log", "/dev/null"]
        do { try daemon.run() } catch { throw Skip("cannot start \(path.path): \(error)") }
        func stop() {
            daemon.terminate()
            daemon.waitUntilExit()
        }
        for _ in 0..<500 where !FileManager.default.fileExists(atPath: socket) { usleep(10000) }
        setenv("IOMMUKIT_SOCKET", socket, 1)
        guard let lib = dlopen(shim.path, RTLD_NOW | RTLD_LOCAL),
              let o = dlsym(lib, "open"), let i = dlsym(lib, "ioctl"), let c = dlsym(lib, "close") else {
            stop()
            throw Skip("cannot load \(shim.path)")
        }
        let shimOpen = unsafeBitCast(o, to: OpenFn.self)
        let shimIoctl = unsafeBitCast(i, to: IoctlFn.self)
        let shimClose = unsafeBitCast(c, to: CloseFn.self)
        let fd = shimOpen("/dev/iommu", O_RDWR)
        guard fd >= 0 else {
            stop()
            throw Skip("open(/dev/iommu) through the shim failed")
        }
        // struct iommu_ioas_alloc { size, flags, out_ioas_id }
        var alloc: [UInt32] = [12, 0, 0]
        guard alloc.withUnsafeMutableBytes({ shimIoctl(fd, 0x3B81, $0.baseAddress) }) == 0 else {
            _ = shimClose(fd)
            stop()
            throw Skip("IOMMU_IOAS_ALLOC through the service failed")
        }
        self.daemon = daemon
        self.shimIoctl = shimIoctl
        self.shimClose = shimClose
        self.fd = fd
        ioas = alloc[2]
    }

    deinit {
        _ = shimClose(fd)
        daemon.terminate()
        daemon.waitUntilExit()
    }

    /// The median of 20 000 round trips after 1000 warm-up calls, in microseconds.
    func measure() throws -> Double {
        // struct iommu_ioas_iova_ranges { size, ioas_id, num_iovas, __reserved, allowed_iovas, out_iova_alignment }
        let ranges = UnsafeMutableRawPointer.allocate(byteCount: 16, alignment: 8)
        defer { ranges.deallocate() }
        let arg = UnsafeMutableRawPointer.allocate(byteCount: 32, alignment: 8)
        defer { arg.deallocate() }
        let count = 20_000
        var samples = [UInt64](repeating: 0, count: count)
        for k in 0..<(count + 1000) {
            arg.storeBytes(of: 32, toByteOffset: 0, as: UInt32.self)
            arg.storeBytes(of: ioas, toByteOffset: 4, as: UInt32.self)
            arg.storeBytes(of: 1, toByteOffset: 8, as: UInt32.self)
            arg.storeBytes(of: 0, toByteOffset: 12, as: UInt32.self)
            arg.storeBytes(of: UInt64(UInt(bitPattern: ranges)), toByteOffset: 16, as: UInt64.self)
            let t0 = now()
            let rc = shimIoctl(fd, 0x3B84, arg)
            let t1 = now()
            guard rc == 0 else { throw Skip("IOMMU_IOAS_IOVA_RANGES failed") }
            if k >= 1000 { samples[k - 1000] = t1 - t0 }
        }
        samples.sort()
        return Double(samples[count / 2]) / 1000
    }
}
