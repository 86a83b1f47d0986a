import CIOMMUKitd
import Glibc
import IOMMUCore

/// The file or shared memory behind a mapping: its device and inode, the same for every
/// process that maps it and for an fd of it (`fstat`).
struct ObjectKey: Hashable, CustomStringConvertible {
    let dev: UInt64
    let ino: UInt64

    /// `makedev(major, minor)` as glibc encodes `st_dev`.
    init(major: UInt32, minor: UInt32, ino: UInt64) {
        let ma = UInt64(major), mi = UInt64(minor)
        dev = (ma & 0xFFFF_F000) << 32 | (ma & 0xFFF) << 8 | (mi & 0xFFFF_FF00) << 12 | (mi & 0xFF)
        self.ino = ino
    }

    init(dev: UInt64, ino: UInt64) { self.dev = dev; self.ino = ino }

    var description: String { "dev \(dev) ino \(ino)" }
}

/// One mapping of a client, as `/proc/<pid>/maps` shows it, clipped to a queried range.
struct ClientMapping: Equatable {
    var start: UInt64
    var end: UInt64
    /// The whole mapping `start..<end` was clipped from (its `/proc/<pid>/map_files` name).
    var vmaStart: UInt64
    var vmaEnd: UInt64
    var prot: ProcessProt
    /// The shared object behind a `MAP_SHARED` mapping (nil for private memory, whose
    /// pages are the process's own).
    var object: ObjectKey?
    /// File offset of `start` in `object`.
    var offset: UInt64
    /// The huge page size the mapping stands for (see ``Client``, "Huge pages"), 0 for none.
    var hugePage: UInt64
}

/// A client's mappings, read from its `/proc/<pid>/maps`, opened once (the open file
/// stays bound to that process's mm, so pid reuse cannot redirect it). Each query asks
/// the kernel for the mappings of one range only (`PROCMAP_QUERY`, Linux 6.11+), or
/// parses the text on older kernels.
final class ClientMaps: @unchecked Sendable {
    private let fd: Int32
    private var textOnly = false

    init?(pid: Int32) {
        fd = open("/proc/\(pid)/maps", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
    }

    deinit { close(fd) }

    /// The mappings overlapping `[start, end)`, in address order, clipped to it; nil when
    /// the process's maps cannot be read (it exited).
    func mappings(_ start: UInt64, _ end: UInt64) -> [ClientMapping]? {
        if !textOnly {
            var out: [ClientMapping] = []
            var at = start
            var v = ikd_vma()
            while at < end {
                let r = ikd_vma_query(fd, at, &v)
                if r < 0 {
                    if errno == ENOTTY || errno == EINVAL { textOnly = true; break }
                    return nil
                }
                if r == 0 || v.start >= end { return out }
                let name = withUnsafeBytes(of: v.name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                out.append(Self.mapping(start: v.start, end: v.end, flags: v.flags, offset: v.offset,
                                        object: v.inode == 0 ? nil : ObjectKey(major: v.dev_major, minor: v.dev_minor, ino: v.inode),
                                        name: Substring(name), clip: (start, end)))
                at = v.end
            }
            if !textOnly { return out }
        }
        return textMappings(start, end)
    }

    /// `PROCMAP_QUERY_VMA_*`-style flags to a mapping.
    private static func mapping(start: UInt64, end: UInt64, flags: UInt32, offset: UInt64, object: ObjectKey?,
                                name: Substring, clip: (UInt64, UInt64)) -> ClientMapping {
        var prot: ProcessProt = []
        if flags & UInt32(IKD_VMA_READ) != 0 { prot.insert(.read) }
        if flags & UInt32(IKD_VMA_WRITE) != 0 { prot.insert(.write) }
        if flags & UInt32(IKD_VMA_EXEC) != 0 { prot.insert(.exec) }
        // An iommufd mapping (``ContextMappings``): the shadow holds the driver's frames
        // there, never a mirror of the client's pages.
        if name.contains("/memfd:iommukit-iommufd-mmap") { prot = [] }
        let shared = flags & UInt32(IKD_VMA_SHARED) != 0
        let s = max(start, clip.0), e = min(end, clip.1)
        return ClientMapping(start: s, end: e, vmaStart: start, vmaEnd: end, prot: prot, object: shared ? object : nil,
                             offset: offset &+ (s - start), hugePage: Client.hugePageSize(path: name))
    }

    /// The text of `/proc/<pid>/maps`, for kernels without `PROCMAP_QUERY`.
    private func textMappings(_ start: UInt64, _ end: UInt64) -> [ClientMapping]? {
        var text: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        var off: off_t = 0
        while true {
            let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return nil }
            if n == 0 { break }
            text += buf[0..<n]
            off += off_t(n)
        }
        var out: [ClientMapping] = []
        for line in String(decoding: text, as: UTF8.self).split(separator: "\n") {
            // start-end perms offset major:minor inode [path]
            let f = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard f.count >= 5 else { continue }
            let r = f[0].split(separator: "-")
            let d = f[3].split(separator: ":")
            guard r.count == 2, d.count == 2, let s = UInt64(r[0], radix: 16), let e = UInt64(r[1], radix: 16),
                  s < end, start < e, let offset = UInt64(f[2], radix: 16), let major = UInt32(d[0], radix: 16),
                  let minor = UInt32(d[1], radix: 16), let ino = UInt64(f[4]) else { continue }
            let p = Array(f[1].utf8)
            var flags: UInt32 = 0
            if p.count >= 4 {
                if p[0] == UInt8(ascii: "r") { flags |= UInt32(IKD_VMA_READ) }
                if p[1] == UInt8(ascii: "w") { flags |= UInt32(IKD_VMA_WRITE) }
                if p[2] == UInt8(ascii: "x") { flags |= UInt32(IKD_VMA_EXEC) }
                if p[3] == UInt8(ascii: "s") { flags |= UInt32(IKD_VMA_SHARED) }
            }
            out.append(Self.mapping(start: s, end: e, flags: flags, offset: offset,
                                    object: ino == 0 ? nil : ObjectKey(major: major, minor: minor, ino: ino),
                                    name: f.count > 5 ? f[5] : "", clip: (start, end)))
        }
        return out
    }
}

/// A client's memory as a ``FrameBacking``: its `/proc/<pid>/mem`, opened once (bound
/// to that process's mm: pid reuse cannot redirect it, and it reads nothing once the
/// process is gone). A device write reaches the page whatever its CPU protection, as a
/// DMA into a pinned page does.
final class ClientMemory: FrameBacking, @unchecked Sendable {
    let fd: Int32
    private let process: ProcessHandle

    init?(process: ProcessHandle) {
        self.process = process
        fd = open("/proc/\(process.pid)/mem", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return nil }
    }

    deinit { close(fd) }

    func refresh(_ address: UInt64, into buffer: UnsafeMutableRawPointer, count: Int) -> Bool {
        address <= UInt64(Int64.max) && pread(fd, buffer, count, off_t(Int64(bitPattern: address))) == count
    }

    func writeBack(_ address: UInt64, from buffer: UnsafeRawPointer, count: Int) -> Bool {
        address <= UInt64(Int64.max) && pwrite(fd, buffer, count, off_t(Int64(bitPattern: address))) == count
    }

    var isGone: Bool { !process.isRunning }

    /// Reads the pages at `address...` into the frames `into`, one `preadv` per batch of
    /// up to 1024 pages; returns how many pages were read in full from the start.
    func readPages(_ address: UInt64, into frames: [UnsafeMutableRawPointer]) -> Int {
        let page = PhysicalMemory.frameSize
        var done = 0
        while done < frames.count {
            let n = min(1024, frames.count - done)
            var iov = (0..<n).map { iovec(iov_base: frames[done + $0], iov_len: page) }
            let at = address + UInt64(done * page)
            let got = iov.withUnsafeMutableBufferPointer { preadv(fd, $0.baseAddress, Int32(n), off_t(Int64(bitPattern: at))) }
            if got <= 0 { return done }
            done += got / page
            if got < n * page { return done }
        }
        return done
    }
}
