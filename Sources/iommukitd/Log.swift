import Glibc
import IOMMUCore

/// The service log: one line per connection event, per refused or failing request, to a
/// file (`--log PATH`, appended) or to stderr. Lines are written with one `write` each,
/// so lines of concurrent threads never interleave.
///
/// The file is opened with `O_NOFOLLOW` and must be a regular file of the service's own
/// user: a symlink planted at the path is refused (the log then goes to stderr and says
/// so), never followed. Once open, stderr is pointed at it too, so a message the Swift
/// runtime prints before a trap lands in the log beside the line that reports the trap.
final class Log: @unchecked Sendable {
    private let fd: Int32
    private let lock = Lock()
    /// Per key of ``limited(_:_:)``: when it last wrote, and how many lines it held back.
    private var recent: [String: (at: Double, held: Int)] = [:]
    /// Whether successful requests are logged too (`--verbose`).
    let verbose: Bool

    init(path: String?, verbose: Bool) {
        self.verbose = verbose
        var refusal: String?
        var f: Int32 = 2
        if let path {
            let o = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0o600)
            var st = stat()
            if o < 0 {
                refusal = "cannot open log \(path): \(errnoName(errno))\(errno == ELOOP ? " (a symlink: refused)" : "")"
            } else if fstat(o, &st) != 0 || st.st_mode & S_IFMT != S_IFREG || st.st_uid != geteuid() {
                close(o)
                refusal = "log \(path) is not a regular file of uid \(geteuid()): refused"
            } else {
                f = o
                dup2(o, 2)
            }
        }
        fd = f
        if let refusal { line(refusal + "; logging to stderr") }
    }

    /// A line a hostile client could repeat at will (refusals, disconnections): at most
    /// one per `key` per second; the next one written says how many were held back.
    func limited(_ key: String, _ s: String) {
        let t = monotonicNow()
        let held: Int? = lock.withLock {
            if recent.count > 4096 { recent = recent.filter { t - $0.value.at < 1 } }
            if let r = recent[key], t - r.at < 1 {
                recent[key] = (r.at, r.held + 1)
                return nil
            }
            let held = recent[key]?.held ?? 0
            recent[key] = (t, 0)
            return held
        }
        guard let held else { return }
        line(held > 0 ? "\(s) (\(held) more like it in the last second)" : s)
    }

    func line(_ s: String) {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let text = "iommukitd[\(getpid())] \(ts.tv_sec).\(String(ts.tv_nsec / 1_000_000).leftPad(3)): \(s)\n"
        _ = text.withCString { write(fd, $0, strlen($0)) }
    }
}

extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}

/// The C name of an errno value, as the kernel headers spell it.
func errnoName(_ e: Int32) -> String {
    let names: [Int32: String] = [
        1: "EPERM", 2: "ENOENT", 3: "ESRCH", 4: "EINTR", 5: "EIO", 6: "ENXIO", 7: "E2BIG", 9: "EBADF",
        11: "EAGAIN", 12: "ENOMEM", 13: "EACCES", 14: "EFAULT", 16: "EBUSY", 17: "EEXIST", 19: "ENODEV",
        22: "EINVAL", 24: "EMFILE", 25: "ENOTTY", 28: "ENOSPC", 29: "ESPIPE", 34: "ERANGE", 35: "EDEADLK",
        40: "ELOOP", 52: "EBADE", 75: "EOVERFLOW", 77: "EBADFD", 90: "EMSGSIZE", 95: "EOPNOTSUPP",
        98: "EADDRINUSE", 111: "ECONNREFUSED", 517: "EPROBE_DEFER",
    ]
    return names[e] ?? "errno \(e)"
}

/// The uAPI name of an iommufd or VFIO-compat ioctl number.
func ioctlName(_ cmd: UInt32) -> String {
    let nr = cmd & 0xff
    let names: [UInt32: String] = [
        0x80: "IOMMU_DESTROY", 0x81: "IOMMU_IOAS_ALLOC", 0x82: "IOMMU_IOAS_ALLOW_IOVAS", 0x83: "IOMMU_IOAS_COPY",
        0x84: "IOMMU_IOAS_IOVA_RANGES", 0x85: "IOMMU_IOAS_MAP", 0x86: "IOMMU_IOAS_UNMAP", 0x87: "IOMMU_OPTION",
        0x88: "IOMMU_VFIO_IOAS", 0x89: "IOMMU_HWPT_ALLOC", 0x8A: "IOMMU_GET_HW_INFO",
        0x8B: "IOMMU_HWPT_SET_DIRTY_TRACKING", 0x8C: "IOMMU_HWPT_GET_DIRTY_BITMAP", 0x8D: "IOMMU_HWPT_INVALIDATE",
        0x8E: "IOMMU_FAULT_QUEUE_ALLOC", 0x8F: "IOMMU_IOAS_MAP_FILE", 0x90: "IOMMU_VIOMMU_ALLOC",
        0x91: "IOMMU_VDEVICE_ALLOC", 0x92: "IOMMU_IOAS_CHANGE_PROCESS", 0x93: "IOMMU_VEVENTQ_ALLOC",
        0x94: "IOMMU_HW_QUEUE_ALLOC", 0xA0: "IOMMU_TEST_CMD",
        100: "VFIO_GET_API_VERSION", 101: "VFIO_CHECK_EXTENSION", 102: "VFIO_SET_IOMMU",
        112: "VFIO_IOMMU_GET_INFO", 113: "VFIO_IOMMU_MAP_DMA", 114: "VFIO_IOMMU_UNMAP_DMA",
    ]
    let hex = "0x" + String(cmd, radix: 16)
    guard (cmd >> 8) & 0xff == 0x3B, let n = names[nr] else { return hex }
    return "\(n) (\(hex))"
}
