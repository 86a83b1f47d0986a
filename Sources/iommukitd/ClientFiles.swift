import Glibc
import IOMMUCore

/// A client's real memfd as the model sees it: a model ``Memfd`` whose pages mirror the
/// real file's pages at the same offsets. The service holds its own reference to the
/// real file (received with `pidfd_getfd`, as the kernel's `fget` takes one), and each
/// mirrored model frame is registered in ``Machine/foreignFrames`` with this object as
/// backing and the file offset as address: a device or `access_rw` read refreshes the
/// frame with `pread`, a write lands in the real file with `pwrite`, so every process
/// that maps the memfd `MAP_SHARED` sees a DMA as soon as it completes.
///
/// `pread`/`pwrite` rather than a mapping of the file: a client that truncates its memfd
/// must never make the service fault (`SIGBUS`). A page past the real end of file is not
/// written back; as for a pinned page of a truncated file in the kernel, the device's
/// bytes then stay in the pinned frame only.
final class MirroredFile: ForeignFrameBacking, @unchecked Sendable {
    /// The service's reference to the real file.
    let fd: Int32
    /// Page indexes whose model frame is registered as mirroring the real page.
    var mirrored: Set<UInt64> = []

    init(fd: Int32) { self.fd = fd }

    deinit { close(fd) }

    func refresh(_ address: UInt64, into buffer: UnsafeMutableRawPointer, count: Int) -> Bool {
        pread(fd, buffer, count, off_t(Int64(bitPattern: address))) == count
    }

    func writeBack(_ address: UInt64, from buffer: UnsafeRawPointer, count: Int) -> Bool {
        var st = stat()
        guard fstat(fd, &st) == 0, UInt64(st.st_size) >= address + UInt64(count) else { return false }
        return pwrite(fd, buffer, count, off_t(Int64(bitPattern: address))) == count
    }
}

/// The memfds clients passed to `IOMMU_IOAS_MAP_FILE`, one model file per real file
/// (`st_dev`, `st_ino`), so two maps of the same memfd, by one process or by a parent and
/// its child, share one page cache and pin each page once, as in the kernel.
final class ClientFiles {
    private struct Entry {
        var memfd: Memfd
        let mirror: MirroredFile
    }
    private var files: [String: Entry] = [:]
    let machine: Machine

    init(machine: Machine) { self.machine = machine }

    /// glibc's `pidfd_open` and `pidfd_getfd` (2.36+; Swift cannot call `syscall`).
    private typealias PidfdOpen = @convention(c) (pid_t, UInt32) -> Int32
    private typealias PidfdGetfd = @convention(c) (Int32, Int32, UInt32) -> Int32
    private static let pidfdOpen = dlsym(nil, "pidfd_open").map { unsafeBitCast($0, to: PidfdOpen.self) }
    private static let pidfdGetfd = dlsym(nil, "pidfd_getfd").map { unsafeBitCast($0, to: PidfdGetfd.self) }

    /// The service's own reference to the client's descriptor `fd` (`pidfd_open` +
    /// `pidfd_getfd`), or nil when the client has no such descriptor.
    static func takeFile(pid: Int32, fd: Int32) -> Int32? {
        guard fd >= 0, let pidfdOpen, let pidfdGetfd else { return nil }
        let pidfd = pidfdOpen(pid, 0)
        guard pidfd >= 0 else { return nil }
        defer { close(pidfd) }
        let real = pidfdGetfd(pidfd, fd, 0)
        return real >= 0 ? real : nil
    }

    /// Number of real files mirrored right now.
    var count: Int { files.count }

    /// `fget(fd)` in the client `pid`, as `IOMMU_IOAS_MAP_FILE` is about to do it: the
    /// client's descriptor `fd` (`pidfd_open` + `pidfd_getfd`) is installed under the same
    /// number in the client's shadow mm, so the model finds what the kernel would: no
    /// file (`EBADF`), a file of an unsupported kind (stand-in: `EINVAL`), or a memfd
    /// mirrored over `[start, start+length)` (capped to ``Client/maxSync``). Returns the
    /// number to close in the shadow once the ioctl is done, nil when nothing was installed.
    func prepare(_ c: Client, fd: Int32, start: UInt64, length: UInt64) -> Int32? {
        try? c.mm.close(fd: fd)
        guard let real = Self.takeFile(pid: c.pid, fd: fd) else { return nil }   // not open: EBADF
        var st = stat()
        // F_GET_SEALS works on shmem and hugetlbfs files only: memfds and tmpfs files.
        guard fstat(real, &st) == 0, fcntl(real, 1034 /* F_GET_SEALS */) >= 0, st.st_size >= 0 else {
            close(real)
            guard let other = try? Memfd(memory: machine.memory, name: "not-shmem", isShmem: false) else { return nil }
            return (try? c.mm.install(other, at: fd)) != nil ? fd : nil
        }
        let key = "\(st.st_dev):\(st.st_ino)"
        let size = UInt64(st.st_size)
        if files[key] == nil {
            guard let m = try? Memfd(memory: machine.memory, name: "client-\(c.pid)-\(fd)", size: size) else {
                close(real)
                return nil
            }
            files[key] = Entry(memfd: m, mirror: MirroredFile(fd: real))
        } else {
            close(real)
        }
        guard let e = files[key] else { return nil }
        if e.memfd.size != size { try? e.memfd.truncate(to: size) }
        // Mirror the pages the map may pin, the ones inside the file.
        let page = Memfd.pageSize
        let end = min(size, start &+ min(length, Client.maxSync))
        if start < end, !start.addingReportingOverflow(length).overflow {
            for index in (start / page)...((end - 1) / page) where !e.mirror.mirrored.contains(index) {
                guard let pa = try? e.memfd.getPage(index) else { break }
                machine.memory.putFrame(pa)                            // the cache keeps its reference
                _ = e.mirror.refresh(index * page, into: machine.memory.pointer(pa), count: Int(page))
                machine.foreignFrames.register(pa.rawValue, backing: e.mirror, address: index * page)
                e.mirror.mirrored.insert(index)
            }
        }
        return (try? c.mm.install(e.memfd, at: fd)) != nil ? fd : nil
    }

    /// Forgets the files no mapping uses any more (nothing but this table holds their
    /// model file: every area and every pin of it is gone): their frames stop mirroring
    /// and the service's reference to the real file is dropped (`fput`).
    func sweep() {
        for key in Array(files.keys) {
            guard isKnownUniquelyReferenced(&files[key]!.memfd) else { continue }
            if let e = files.removeValue(forKey: key) { machine.foreignFrames.unregisterAll(e.mirror) }
        }
    }
}
