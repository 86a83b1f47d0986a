/// The wire protocol between the LD_PRELOAD shim (`Sources/CIOMMUFD`) and `iommukitd`.
/// The C side, with the protocol and its trust rules explained in full, is
/// `Sources/CIOMMUFD/include/iommukit_wire.h`; both must agree byte for byte
/// (little-endian, natural alignment).
///
/// * A *file connection* is one open file: `/dev/iommu` (an iommufd context), a file a
///   context handed out (fault queue, selftest access), or an emulated fault-injection
///   knob. Nothing travels on it: it stands for the file, and its hang-up is the file's
///   release.
/// * A *reply channel* is one thread's own connection (first packet `CHANNEL`). The
///   thread's requests travel on it: `OPEN` (a new file's first), `IOCTL`, `READ`,
///   `WRITE`, `POLL`, `MMAP` and `MUNMAP` with the file attached (`SCM_RIGHTS`), `RELEASE` and `VM_STATUS`
///   without; so do the replies, `INSTALL` upcalls and the shim's `FD_INSTALLED` answers.
/// * Each request gets exactly one `REPLY`. Arguments never travel in the packet: `arg`
///   is the caller's pointer and the service reads and writes the caller's memory
///   itself (`process_vm_readv`/`writev`), as the kernel's `copy_from_user` /
///   `copy_to_user` do.
/// * A `REPLY` may list fds the shim must close: files installed during a request that
///   failed afterwards (the kernel would never have installed them).
enum Wire {
    /// Request ops (`IKD_OP_*`).
    enum Op: UInt32 {
        case open = 1, ioctl = 2, read = 3, write = 4, poll = 5, fdInstalled = 6
        case channel = 7, release = 8, vmStatus = 9
        /// `mmap` of an iommufd: `arg` = the caller's `struct ikd_mmap`, `len` = its size.
        case mmap = 10
        /// `munmap` of (part of) an iommufd mapping: `arg`/`len` = the range; `ret` = 1
        /// once nothing of that mapping is left.
        case munmap = 11
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
    }
    /// Service-to-shim packet kinds (`IKD_MSG_*`).
    enum Message: UInt32 { case reply = 1, install = 2 }

    /// `struct ikd_request` (32 bytes). `pid` and `tid` are the sender's claims; the
    /// kernel's credentials decide (see ``Identity``).
    struct Request {
        var op: UInt32
        var pid: Int32
        var tid: Int32
        var cmd: UInt32
        var arg: UInt64
        var len: UInt64
        static let size = 32

        init?(_ b: UnsafeRawBufferPointer) {
            guard b.count == Self.size else { return nil }
            op = UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
            pid = Int32(littleEndian: b.loadUnaligned(fromByteOffset: 4, as: Int32.self))
            tid = Int32(littleEndian: b.loadUnaligned(fromByteOffset: 8, as: Int32.self))
            cmd = UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
            arg = UInt64(littleEndian: b.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
            len = UInt64(littleEndian: b.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
        }
    }

    /// `struct ikd_reply` (40 bytes): `kind`, `err` (errno, 0 on success), `ret`,
    /// then up to four fds to close.
    static func reply(kind: Message = .reply, err: Int32, ret: Int64, close: [Int32] = []) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 40)
        b.withUnsafeMutableBytes { p in
            p.storeBytes(of: kind.rawValue.littleEndian, toByteOffset: 0, as: UInt32.self)
            p.storeBytes(of: err.littleEndian, toByteOffset: 4, as: Int32.self)
            p.storeBytes(of: ret.littleEndian, toByteOffset: 8, as: Int64.self)
            p.storeBytes(of: UInt32(min(close.count, 4)).littleEndian, toByteOffset: 16, as: UInt32.self)
            for (i, fd) in close.prefix(4).enumerated() {
                p.storeBytes(of: fd.littleEndian, toByteOffset: 20 + 4 * i, as: Int32.self)
            }
        }
        return b
    }
}
