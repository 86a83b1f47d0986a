import Glibc
import IOMMUCore

/// One object clients share memory through — a memfd, shared anonymous memory
/// (`MAP_SHARED | MAP_ANONYMOUS`, inherited across fork), a file mapped `MAP_SHARED` —
/// as the model sees it: one model file (``Memfd``) whose page cache stands for the real
/// object's pages, however many processes map it and however it was reached (a client's
/// mapping met by the pager, or an fd handed to `IOMMU_IOAS_MAP_FILE`). So the frame a
/// MAP_FILE pin holds, the frame the shadow of each client's `MAP_SHARED` mapping shows
/// and the frame a forked child pinned are one frame, as the kernel's page is one page.
///
/// Its pages are mirrored on demand (``ensure(_:count:)``) and kept coherent through
/// ``FrameMirrors`` with this object as their backing: reads and writes go to the real
/// object through the service's own reference to it when it has one (`pread`/`pwrite`:
/// the fd a client passed to MAP_FILE, or `/proc/<pid>/map_files/…` where the service
/// may open it), else through the memory of a live client that maps it. A page past the
/// real end of file is not written back; as for a pinned page of a truncated file in
/// the kernel, the device's bytes then stay in the pinned frame only.
final class SharedObject: FrameBacking, @unchecked Sendable {
    let key: ObjectKey
    /// The model file (a `var` only so that ``SharedObjects/sweep()`` can ask whether
    /// anyone else holds it).
    var memfd: Memfd
    private(set) var slot: UInt32 = 0
    private unowned let mirrors: FrameMirrors
    /// The table, to find a live client mapping the object when no other way is left.
    private weak var table: SharedObjects?
    private let lock = Lock()
    /// The service's reference to the real object, -1 when it has none.
    private var fd: Int32 = -1
    /// Clients that map it: their memory and the address of the object's offset 0.
    private var mappers: [(memory: ClientMemory, base: UInt64)] = []

    init(key: ObjectKey, memory: PhysicalMemory, mirrors: FrameMirrors, table: SharedObjects) throws(Errno) {
        self.key = key
        self.mirrors = mirrors
        self.table = table
        memfd = try Memfd(memory: memory, name: "client-object-\(key.dev)-\(key.ino)")
        slot = mirrors.slot(for: self)
    }

    deinit {
        mirrors.drop(slot)
        if fd >= 0 { close(fd) }
    }

    /// Takes `fd` as the service's reference to the object (keeps the first one).
    func adopt(_ fd: Int32) {
        let kept = lock.withLock { () -> Bool in
            guard self.fd < 0 else { return false }
            self.fd = fd
            return true
        }
        if !kept { close(fd) }
    }

    var hasFD: Bool { lock.withLock { fd >= 0 } }

    /// Records that `memory`'s process maps offset 0 of the object at `base`.
    func addMapper(_ memory: ClientMemory, base: UInt64) {
        lock.withLock {
            mappers.removeAll { $0.memory.isGone }
            if !mappers.contains(where: { $0.memory === memory && $0.base == base }) { mappers.append((memory, base)) }
        }
    }

    /// The real object's size when the service holds a reference to it (`fstat`).
    var realSize: UInt64? {
        lock.withLock {
            var st = stat()
            guard fd >= 0, fstat(fd, &st) == 0, st.st_size >= 0 else { return nil }
            return UInt64(st.st_size)
        }
    }

    /// Mirrors pages `[first, first + count)` of the object into the model file, each
    /// once for as long as it stays the file's page: allocated, filled from the real
    /// object, registered with ``FrameMirrors``. The model file grows to cover them
    /// (without a reference to the real object its size is not known: a mapping shows
    /// at least that much of it).
    /// - Throws: `ENOMEM`; `EINVAL` for pages past the end of the file.
    func ensure(_ first: UInt64, count: Int) throws(Errno) {
        guard count > 0 else { return }
        let page = Memfd.pageSize
        let end = (first + UInt64(count)) * page
        if !hasFD, memfd.size < end { try memfd.truncate(to: end) }
        var fresh: [(index: UInt64, pa: PhysicalAddress)] = []
        for index in first..<first + UInt64(count) {
            let pa = try memfd.getPage(index)
            memfd.memory.putFrame(pa)                        // the page cache keeps its reference
            if !mirrors.mirrors(pa, slot: slot, address: index * page) { fresh.append((index, pa)) }
        }
        guard !fresh.isEmpty else { return }
        // Read in runs of consecutive pages: one preadv per run (up to 1024 pages).
        var i = 0
        while i < fresh.count {
            var j = i + 1
            while j < fresh.count && j - i < 1024 && fresh[j].index == fresh[j - 1].index + 1 { j += 1 }
            let frames = fresh[i..<j].map { memfd.memory.pointer($0.pa) }
            let read = readPages(fresh[i].index * page, into: frames)
            for k in 0..<read { mirrors.register(fresh[i + k].pa, slot: slot, address: fresh[i + k].index * page) }
            for k in read..<frames.count {
                // Page by page where the run could not be read whole (past the end of file).
                if refresh(fresh[i + k].index * page, into: frames[k], count: Int(page)) {
                    mirrors.register(fresh[i + k].pa, slot: slot, address: fresh[i + k].index * page)
                }
            }
            i = j
        }
    }

    /// Reads the pages from `offset` into `frames` (one `preadv` from the service's
    /// reference, or through a mapper's memory); returns how many were read whole.
    private func readPages(_ offset: UInt64, into frames: [UnsafeMutableRawPointer]) -> Int {
        let (fd, mappers) = lock.withLock { (self.fd, self.mappers) }
        let page = PhysicalMemory.frameSize
        if fd >= 0 {
            var iov = frames.map { iovec(iov_base: $0, iov_len: page) }
            let got = iov.withUnsafeMutableBufferPointer {
                preadv(fd, $0.baseAddress, Int32($0.count), off_t(Int64(bitPattern: offset)))
            }
            return got > 0 ? got / page : 0
        }
        for m in mappers {
            let n = m.memory.readPages(m.base &+ offset, into: frames)
            if n > 0 { return n }
        }
        return 0
    }

    // MARK: FrameBacking (addresses are offsets in the object)

    func refresh(_ address: UInt64, into buffer: UnsafeMutableRawPointer, count: Int) -> Bool {
        let (fd, mappers) = lock.withLock { (self.fd, self.mappers) }
        if fd >= 0 { return pread(fd, buffer, count, off_t(Int64(bitPattern: address))) == count }
        if mappers.contains(where: { $0.memory.refresh($0.base &+ address, into: buffer, count: count) }) { return true }
        // Every known mapper is gone (a child that exited): look for another client.
        guard table?.locate(self) == true else { return false }
        return lock.withLock { self.mappers }.contains { $0.memory.refresh($0.base &+ address, into: buffer, count: count) }
    }

    func writeBack(_ address: UInt64, from buffer: UnsafeRawPointer, count: Int) -> Bool {
        let (fd, mappers) = lock.withLock { (self.fd, self.mappers) }
        if fd >= 0 {
            var st = stat()
            guard fstat(fd, &st) == 0, UInt64(st.st_size) >= address + UInt64(count) else { return false }
            return pwrite(fd, buffer, count, off_t(Int64(bitPattern: address))) == count
        }
        if mappers.contains(where: { $0.memory.writeBack($0.base &+ address, from: buffer, count: count) }) { return true }
        guard table?.locate(self) == true else { return false }
        return lock.withLock { self.mappers }.contains { $0.memory.writeBack($0.base &+ address, from: buffer, count: count) }
    }

    var isGone: Bool { lock.withLock { fd < 0 && mappers.allSatisfy { $0.memory.isGone } } }
}

/// The shared objects of all clients, by device and inode.
final class SharedObjects: @unchecked Sendable {
    private let lock = Lock()
    private var objects: [ObjectKey: SharedObject] = [:]
    let machine: Machine
    let mirrors: FrameMirrors

    init(machine: Machine, mirrors: FrameMirrors) {
        self.machine = machine
        self.mirrors = mirrors
    }

    /// The clients alive now (set by the service).
    var liveClients: @Sendable () -> [Client] = { [] }

    /// Finds live clients that map `o` and records them as its mappers (the slow path
    /// when the service holds no reference to the object and its known mappers are
    /// gone). Returns whether any was found.
    func locate(_ o: SharedObject) -> Bool {
        var found = false
        for c in liveClients() {
            for (start, offset) in c.mappings(of: o.key) {
                o.addMapper(c.backing, base: start &- offset)
                found = true
            }
        }
        return found
    }

    /// Number of objects known right now.
    var count: Int { lock.withLock { objects.count } }

    /// The object for `key`, made on first sight.
    func object(_ key: ObjectKey) throws(Errno) -> SharedObject {
        try lock.withLock { () throws(Errno) -> SharedObject in
            if let o = objects[key] { return o }
            let o = try SharedObject(key: key, memory: machine.memory, mirrors: mirrors, table: self)
            objects[key] = o
            return o
        }
    }

    /// `fget(fd)` in client `c`, as `IOMMU_IOAS_MAP_FILE` is about to do it: the client's
    /// descriptor (`pidfd_getfd`) is installed under the same number in the client's
    /// shadow mm, so the model finds what the kernel would: no file (`EBADF`), a file of
    /// an unsupported kind (stand-in: `EINVAL`), or the shared object of that file with
    /// the pages of `[start, start + length)` inside it mirrored. Returns the number to
    /// close in the shadow once the ioctl is done, nil when nothing was installed.
    func prepareMapFile(_ c: Client, fd: Int32, start: UInt64, length: UInt64) -> Int32? {
        try? c.mm.close(fd: fd)
        guard fd >= 0 else { return nil }
        let real = c.process.duplicate(fd)
        guard real >= 0 else { return nil }                       // not open: EBADF
        var st = stat()
        // F_GET_SEALS works on shmem and hugetlbfs files only: memfds and tmpfs files.
        guard fstat(real, &st) == 0, fcntl(real, 1034 /* F_GET_SEALS */) >= 0, st.st_size >= 0 else {
            close(real)
            guard let other = try? Memfd(memory: machine.memory, name: "not-shmem", isShmem: false) else { return nil }
            return (try? c.mm.install(other, at: fd)) != nil ? fd : nil
        }
        guard let o = try? object(ObjectKey(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino))) else {
            close(real)
            return nil
        }
        o.adopt(real)
        let size = UInt64(st.st_size)
        if o.memfd.size != size { try? o.memfd.truncate(to: size) }
        // Mirror the pages the map may pin: those inside the file.
        let page = Memfd.pageSize
        let end = min(size, start &+ length)
        if start < end, !start.addingReportingOverflow(length).overflow {
            // Pages of the client's object, not allocations of the modelled call.
            try? machine.memory.withoutInjectedFailures { () throws(Errno) in
                try o.ensure(start / page, count: Int((end - 1) / page - start / page + 1))
            }
        }
        return (try? c.mm.install(o.memfd, at: fd)) != nil ? fd : nil
    }

    /// Forgets the objects no mapping and no pin uses any more (nothing but this table
    /// holds their model file): their frames stop mirroring and the service's reference
    /// to the real object is dropped (`fput`).
    func sweep() {
        let gone: [SharedObject] = lock.withLock {
            var gone: [SharedObject] = []
            for key in Array(objects.keys) where isKnownUniquelyReferenced(&objects[key]!.memfd) {
                if let o = objects.removeValue(forKey: key) { gone.append(o) }
            }
            return gone
        }
        _ = gone    // released here, outside the lock
    }
}
