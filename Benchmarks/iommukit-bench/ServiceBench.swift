#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The model as a service, as an unmodified C program pays for it through
/// `libIOMMUFDPreload.so` and `iommukitd`. The benchmark starts its own service on a
/// temporary socket and loads the shim with `dlopen`, calling its `open`, `ioctl` and
/// `close` directly (what LD_PRELOAD would bind).
///
/// Keys, per run:
/// - `ioctl_roundtrip_us`: the median of 20 000 `IOMMU_IOAS_IOVA_RANGES` calls (one range
///   array entry, so each call reads 32 bytes, writes 32 + 16 back): one round trip on
///   the calling thread's channel, the service's `process_vm_readv` of the argument, the
///   dispatcher, its `process_vm_writev` of the answer, and the reply.
/// - `pin_1g_s`: one `IOMMU_IOAS_MAP` of a 1 GiB buffer of 4 KiB pages (touched, THP off)
///   into an IOAS with a mock domain, which pins and maps every page: the service
///   mirrors the whole range and the model pins 262 144 pages.
/// - `maps_100k_s`: 100 000 one-page `IOMMU_IOAS_MAP` calls, each of another page of one
///   400 MB buffer at an IOVA of its own (`IOMMU_IOAS_MAP_FIXED_IOVA`, as a VMM maps), into
///   an IOAS with a mock domain (each pins its page), in all. With IOVAs left to the
///   model, the cost of `iopt_alloc_iova`'s search for a hole among ever more areas
///   would be measured instead.
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
    return {
        ["ioctl_roundtrip_us": try rig.measure(), "pin_1g_s": try rig.pinOneGiB(),
         "maps_100k_s": try rig.oneHundredThousandMaps()]
    }
}

/// A running `iommukitd` on a temporary socket, and an iommufd opened through the shim.
private final class ServiceRig {
    typealias OpenFn = @convention(c) (UnsafePointer<CChar>, Int32) -> Int32
    typealias IoctlFn = @convention(c) (Int32, UInt, UnsafeMutableRawPointer?) -> Int32
    typealias CloseFn = @convention(c) (Int32) -> Int32

    private let daemon: Foundation.Process
    private let shimOpen: OpenFn
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
        self.shimOpen = shimOpen
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

    static let page = 4096

    /// An iommufd with one IOAS and a mock domain on it: (fd, ioas).
    private func contextWithDomain() throws -> (Int32, UInt32) {
        let fd = shimOpen("/dev/iommu", O_RDWR)
        guard fd >= 0 else { throw Skip("open(/dev/iommu) through the shim failed") }
        // struct iommu_ioas_alloc { size, flags, out_ioas_id }
        var alloc: [UInt32] = [12, 0, 0]
        // struct iommu_test_cmd (72 bytes): size, op = IOMMU_TEST_OP_MOCK_DOMAIN (2), id = the IOAS.
        var cmd = [UInt32](repeating: 0, count: 18)
        guard alloc.withUnsafeMutableBytes({ shimIoctl(fd, 0x3B81, $0.baseAddress) }) == 0 else {
            _ = shimClose(fd)
            throw Skip("IOMMU_IOAS_ALLOC through the service failed")
        }
        cmd[0] = 72; cmd[1] = 2; cmd[2] = alloc[2]
        guard cmd.withUnsafeMutableBytes({ shimIoctl(fd, 0x3BA0, $0.baseAddress) }) == 0 else {
            _ = shimClose(fd)
            throw Skip("IOMMU_TEST_OP_MOCK_DOMAIN through the service failed")
        }
        return (fd, alloc[2])
    }

    /// `IOMMU_IOAS_MAP` of `[va, va + length)`, at `iova` when given; false on failure.
    private func map(_ fd: Int32, _ ioas: UInt32, _ va: UnsafeMutableRawPointer, _ length: Int,
                     at iova: UInt64? = nil) -> Bool {
        // struct iommu_ioas_map { size, flags = [FIXED_IOVA |] READABLE | WRITEABLE, ioas_id, __reserved,
        // user_va, length, iova }
        var m = [UInt64](repeating: 0, count: 5)
        m.withUnsafeMutableBytes { b in
            b.storeBytes(of: 40, toByteOffset: 0, as: UInt32.self)
            b.storeBytes(of: iova == nil ? 0x6 : 0x7, toByteOffset: 4, as: UInt32.self)
            b.storeBytes(of: ioas, toByteOffset: 8, as: UInt32.self)
            b.storeBytes(of: UInt64(UInt(bitPattern: va)), toByteOffset: 16, as: UInt64.self)
            b.storeBytes(of: UInt64(length), toByteOffset: 24, as: UInt64.self)
            b.storeBytes(of: iova ?? 0, toByteOffset: 32, as: UInt64.self)
        }
        return m.withUnsafeMutableBytes({ shimIoctl(fd, 0x3B85, $0.baseAddress) }) == 0
    }

    /// A touched anonymous buffer of 4 KiB pages (no THP).
    private static func buffer(_ bytes: Int) throws -> UnsafeMutableRawPointer {
        guard let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED else {
            throw Skip("cannot map \(bytes) bytes")
        }
        _ = madvise(p, bytes, 15 /* MADV_NOHUGEPAGE */)
        memset(p, 0x5A, bytes)
        return p
    }

    /// `pin_1g_s`: seconds for one 1 GiB map into a mock domain (every page pinned).
    func pinOneGiB() throws -> Double {
        let bytes = 1 << 30
        let buf = try Self.buffer(bytes)
        defer { munmap(buf, bytes) }
        let (fd, ioas) = try contextWithDomain()
        defer { _ = shimClose(fd) }
        let t0 = now()
        guard map(fd, ioas, buf, bytes) else { throw Skip("pin_1g_s: IOMMU_IOAS_MAP of 1 GiB failed") }
        return Double(now() - t0) / 1e9
    }

    /// `maps_100k_s`: seconds for 100 000 one-page maps at fixed IOVAs, in all.
    func oneHundredThousandMaps() throws -> Double {
        let maps = 100_000
        let bytes = maps * Self.page
        let buf = try Self.buffer(bytes)
        defer { munmap(buf, bytes) }
        let (fd, ioas) = try contextWithDomain()
        defer { _ = shimClose(fd) }
        let t0 = now()
        // MOCK_APERTURE_START (16 MiB) onwards: the mock domain's aperture.
        for i in 0..<maps where !map(fd, ioas, buf + i * Self.page, Self.page, at: (1 << 24) + UInt64(i * Self.page)) {
            throw Skip("maps_100k_s: map \(i) failed")
        }
        return Double(now() - t0) / 1e9
    }
}
