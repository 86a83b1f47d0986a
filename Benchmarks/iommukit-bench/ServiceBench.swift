import Foundation

/// The cost of one ioctl as an unmodified C program pays it through the model as a
/// service: `ioctl()` in `libIOMMUFDPreload.so`, one SOCK_SEQPACKET round trip to
/// `iommukitd`, the service's `process_vm_readv` of the argument, the dispatcher, its
/// `process_vm_writev` of the answer, and the reply.
///
/// Key: `ioctl_roundtrip_us`, the median of 20 000 `IOMMU_IOAS_IOVA_RANGES` calls (one
/// range array entry, so each call reads 32 bytes, writes 32 + 16 back). The benchmark
/// starts its own service on a temporary socket and loads the shim with `dlopen`,
/// calling its `open` and `ioctl` directly (what LD_PRELOAD would bind). Both come from
/// the build products: run `swift build -c release` first so they exist beside the
/// benchmark; when they are missing the key is left out and stderr says why.
func serviceBenchmarks() -> [String: Double] {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let exeDir = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        ?? CommandLine.arguments[0]).deletingLastPathComponent()
    let dirs = [exeDir, root.appendingPathComponent(".build/release"), root.appendingPathComponent(".build/debug")]
    guard let dir = dirs.first(where: {
        FileManager.default.isExecutableFile(atPath: $0.appendingPathComponent("iommukitd").path)
            && FileManager.default.fileExists(atPath: $0.appendingPathComponent("libIOMMUFDPreload.so").path)
    }) else {
        FileHandle.standardError.write(Data("ioctl_roundtrip_us: iommukitd and libIOMMUFDPreload.so not built (swift build -c release)\n".utf8))
        return [:]
    }
    let socket = FileManager.default.temporaryDirectory.appendingPathComponent("iommukit-bench-\(getpid()).sock").path
    let daemon = Foundation.Process()
    daemon.executableURL = dir.appendingPathComponent("iommukitd")
    daemon.arguments = ["--socket", socket, "--log", "/dev/null"]
    guard (try? daemon.run()) != nil else { return [:] }
    defer {
        daemon.terminate()
        daemon.waitUntilExit()
    }
    for _ in 0..<500 where !FileManager.default.fileExists(atPath: socket) { usleep(10000) }
    setenv("IOMMUKIT_SOCKET", socket, 1)

    typealias OpenFn = @convention(c) (UnsafePointer<CChar>, Int32) -> Int32
    typealias IoctlFn = @convention(c) (Int32, UInt, UnsafeMutableRawPointer?) -> Int32
    typealias CloseFn = @convention(c) (Int32) -> Int32
    guard let lib = dlopen(dir.appendingPathComponent("libIOMMUFDPreload.so").path, RTLD_NOW | RTLD_LOCAL),
          let o = dlsym(lib, "open"), let i = dlsym(lib, "ioctl"), let c = dlsym(lib, "close") else { return [:] }
    let shimOpen = unsafeBitCast(o, to: OpenFn.self)
    let shimIoctl = unsafeBitCast(i, to: IoctlFn.self)
    let shimClose = unsafeBitCast(c, to: CloseFn.self)

    let fd = shimOpen("/dev/iommu", O_RDWR)
    guard fd >= 0 else { return [:] }
    defer { _ = shimClose(fd) }
    // struct iommu_ioas_alloc { size, flags, out_ioas_id }
    var alloc: [UInt32] = [12, 0, 0]
    guard alloc.withUnsafeMutableBytes({ shimIoctl(fd, 0x3B81, $0.baseAddress) }) == 0 else { return [:] }
    // struct iommu_ioas_iova_ranges { size, ioas_id, num_iovas, __reserved, allowed_iovas, out_iova_alignment }
    let ranges = UnsafeMutableRawPointer.allocate(byteCount: 16, alignment: 8)
    defer { ranges.deallocate() }
    let arg = UnsafeMutableRawPointer.allocate(byteCount: 32, alignment: 8)
    defer { arg.deallocate() }
    let count = 20_000
    var samples = [UInt64](repeating: 0, count: count)
    for k in 0..<(count + 1000) {
        arg.storeBytes(of: 32, toByteOffset: 0, as: UInt32.self)
        arg.storeBytes(of: alloc[2], toByteOffset: 4, as: UInt32.self)
        arg.storeBytes(of: 1, toByteOffset: 8, as: UInt32.self)
        arg.storeBytes(of: 0, toByteOffset: 12, as: UInt32.self)
        arg.storeBytes(of: UInt64(UInt(bitPattern: ranges)), toByteOffset: 16, as: UInt64.self)
        let t0 = now()
        let rc = shimIoctl(fd, 0x3B84, arg)
        let t1 = now()
        guard rc == 0 else { return [:] }
        if k >= 1000 { samples[k - 1000] = t1 - t0 }    // the first 1000 warm up
    }
    samples.sort()
    return ["ioctl_roundtrip_us": Double(samples[count / 2]) / 1000]
}
