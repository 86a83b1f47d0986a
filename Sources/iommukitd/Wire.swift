/// The wire protocol between the LD_PRELOAD shim (`Sources/CIOMMUFD`) and `iommukitd`.
/// The C side is `Sources/CIOMMUFD/include/iommukit_wire.h`; both must agree byte for
/// byte (little-endian, natural alignment).
///
/// One `AF_UNIX` `SOCK_SEQPACKET` connection is one open file: `/dev/iommu` (an iommufd
/// context), a file the context handed out (fault queue, selftest access), or an
/// emulated fault-injection knob. Every message is one packet.
///
/// * The shim's first packet on a connection it made is `OPEN` (`cmd` = what was
///   opened). Files the service hands out arrive already open.
/// * Then each request (`IOCTL`, `READ`, `WRITE`, `POLL`, `MMAP`, `MUNMAP`) gets exactly
///   one `REPLY`.
///   Arguments never travel in the packet: `arg` is the caller's pointer and the
///   service reads and writes the caller's memory itself (`process_vm_readv`/`writev`),
///   as the kernel's `copy_from_user`/`copy_to_user` do.
/// * While serving a request the service may send `INSTALL` upcalls carrying one fd
///   (`SCM_RIGHTS`): `get_unused_fd_flags` + `fd_install` in the caller. The shim
///   answers each with `FD_INSTALLED` (`arg` = the new fd number, or `-errno`).
/// * A `REPLY` may list fds the shim must close: files installed during a request
///   that failed afterwards (the kernel would never have installed them).
enum Wire {
    /// Request ops (`IKD_OP_*`).
    enum Op: UInt32 {
        case open = 1, ioctl = 2, read = 3, write = 4, poll = 5, fdInstalled = 6
        /// `mmap` of an iommufd: `arg` = the caller's `struct ikd_mmap`, `len` = its size.
        case mmap = 7
        /// `munmap` of (part of) an iommufd mapping: `arg`/`len` = the range; `ret` = 1
        /// once nothing of that mapping is left.
        case munmap = 8
    }
    /// What an `OPEN` opens (`IKD_OPEN_*`, in `cmd`).
    enum OpenKind: UInt32 {
        /// `/dev/iommu`.
        case iommu = 1
        /// `/dev/vfio/vfio` served by iommufd (`CONFIG_IOMMUFD_VFIO_CONTAINER`).
        case vfioContainer = 2
        /// `/proc/<pid>/task/<tid>/fail-nth`; `len` = the tid.
        case failNth = 3
        /// A debugfs fault-injection attribute; `arg`/`len` = its path in the caller.
        case debugfsKnob = 4
        /// A query, not an open: the model's `VmPin`/`VmLck` of the process `len`, for
        /// the shim's `/proc/<pid>/status` (reply `ret` = pages pinned | locked << 32).
        case vmStatus = 5
    }
    /// Service-to-shim packet kinds (`IKD_MSG_*`).
    enum Message: UInt32 { case reply = 1, install = 2 }

    /// `struct ikd_request` (32 bytes).
    struct Request {
        var op: UInt32
        var pid: Int32
        var tid: Int32
        var cmd: UInt32
        var arg: UInt64
        var len: UInt64
        static let size = 32

        init?(_ b: [UInt8]) {
            guard b.count == Self.size else { return nil }
            func u32(_ o: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[o + $1]) << (8 * $1) } }
            func u64(_ o: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[o + $1]) << (8 * $1) } }
            op = u32(0); pid = Int32(bitPattern: u32(4)); tid = Int32(bitPattern: u32(8)); cmd = u32(12)
            arg = u64(16); len = u64(24)
        }
    }

    /// `struct ikd_reply` (40 bytes): `kind`, `err` (errno, 0 on success), `ret`,
    /// then up to four fds to close.
    static func reply(kind: Message = .reply, err: Int32, ret: Int64, close: [Int32] = []) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 40)
        func put(_ v: UInt64, _ o: Int, _ n: Int) { for i in 0..<n { b[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) } }
        put(UInt64(kind.rawValue), 0, 4)
        put(UInt64(UInt32(bitPattern: err)), 4, 4)
        put(UInt64(bitPattern: ret), 8, 8)
        put(UInt64(min(close.count, 4)), 16, 4)
        for (i, fd) in close.prefix(4).enumerated() { put(UInt64(UInt32(bitPattern: fd)), 20 + 4 * i, 4) }
        return b
    }
}
