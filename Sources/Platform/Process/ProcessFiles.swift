/// The descriptor table, shared file mappings and `fork` of a ``Process``: just enough
/// of `fs/file.c`, `mm/mmap.c` and `kernel/fork.c` for memfds to be created, mapped,
/// handed to iommufd by descriptor and inherited by a child.
extension Process {
    /// Lowest descriptor handed out: 0–2 are the standard streams (`alloc_fd` starts at 0,
    /// but every real process already has them open).
    static let firstFileDescriptor: Int32 = 3

    /// `memfd_create(name, 0)` + `ftruncate(fd, size)`: a new shmem file of `size` bytes
    /// (a hole; pages are allocated on first use), installed at the lowest free
    /// descriptor.
    /// - Returns: the descriptor.
    /// - Throws: `EINVAL` for a name longer than 249 bytes or a size above
    ///   `MAX_LFS_FILESIZE`; nothing is installed.
    public func memfdCreate(name: String, size: UInt64) throws(Errno) -> Int32 {
        let file = try Memfd(memory: memory, name: name, size: size)
        return lock.withLock { installLocked(file) }
    }

    /// Installs `file` at the lowest free descriptor (`fd_install`). Lock held.
    func installLocked(_ file: Memfd) -> Int32 {
        var fd = Self.firstFileDescriptor
        while files[fd] != nil { fd += 1 }
        files[fd] = file
        return fd
    }

    /// `replace_fd(fd, file)` (what `dup2` onto `fd` does): installs `file` at descriptor
    /// `fd`, closing whatever was open there. The model as a service uses it to put a
    /// client's real memfd, received with `pidfd_getfd`, under the client's own number.
    /// - Throws: `EBADF` for a negative `fd`; nothing changes then.
    public func install(_ file: Memfd, at fd: Int32) throws(Errno) {
        guard fd >= 0 else { throw .badFileDescriptor.from("fd_install", "negative fd \(fd)") }
        lock.withLock { files[fd] = file }
    }

    /// `fget(fd)`: the memfd open at `fd`.
    /// - Throws: `EBADF` if `fd` is not open.
    public func memfd(_ fd: Int32) throws(Errno) -> Memfd {
        try lock.withLock { () throws(Errno) -> Memfd in
            guard let f = files[fd] else { throw .badFileDescriptor.from("fdget", "fd \(fd) is not open in pid \(pid)") }
            return f
        }
    }

    /// Descriptors open right now, ascending.
    public var openFileDescriptors: [Int32] { lock.withLock { files.keys.sorted() } }

    /// `close(fd)`. The file lives on while mapped, open elsewhere or pinned.
    /// - Throws: `EBADF` if `fd` is not open.
    public func close(fd: Int32) throws(Errno) {
        let file: Memfd? = lock.withLock { files.removeValue(forKey: fd) }
        guard file != nil else { throw .badFileDescriptor.from("close", "fd \(fd) is not open in pid \(pid)") }
    }

    /// `dup(fd)`: the same open file at the lowest free descriptor.
    /// - Throws: `EBADF` if `fd` is not open.
    public func dup(_ fd: Int32) throws(Errno) -> Int32 {
        try lock.withLock { () throws(Errno) -> Int32 in
            guard let f = files[fd] else { throw .badFileDescriptor.from("dup", "fd \(fd) is not open in pid \(pid)") }
            return installLocked(f)
        }
    }

    /// `ftruncate(fd, length)`: see ``Memfd/truncate(to:)``.
    /// - Throws: `EBADF` if `fd` is not open; `EINVAL` for a length above
    ///   `MAX_LFS_FILESIZE`.
    public func ftruncate(fd: Int32, length: UInt64) throws(Errno) {
        try memfd(fd).truncate(to: length)
    }

    /// `mmap(addr, length, prot, MAP_SHARED [| MAP_FIXED_NOREPLACE] [| MAP_POPULATE], fd,
    /// offset)`: maps the memfd open at `fd`, from byte `offset`, shared with every other
    /// mapping of the file. Pages past the end of the file may be mapped; touching them
    /// faults (`SIGBUS`, reported as `EFAULT`). As Linux, a failure to populate is not an
    /// error of the mmap: the pages are faulted in later instead.
    /// - Returns: the start address.
    /// - Throws: `EBADF` if `fd` is not open; `EINVAL` for a zero length, an `offset` not
    ///   page aligned, a misaligned or out-of-range `address` or an exiting mm;
    ///   `EOVERFLOW` when `offset + length` overflows the file offset; `EEXIST` if
    ///   `address` overlaps a mapping; `ENOMEM` if no free range is large enough.
    @discardableResult
    public func mmap(fd: Int32, offset: UInt64 = 0, length: Int, prot: ProcessProt, at address: UInt64? = nil,
                     populate: Bool = false) throws(Errno) -> UInt64 {
        let file = try memfd(fd)
        guard length > 0 else { throw .invalidArgument.from("mmap", "length \(length) is not positive") }
        guard offset % Self.pageSize == 0 else { throw .invalidArgument.from("mmap", "offset 0x\(String(offset, radix: 16)) is not page aligned") }
        let (end, o) = offset.addingReportingOverflow(UInt64(length))
        guard !o, end <= Memfd.maxSize else { throw .overflow.from("mmap", "offset 0x\(String(offset, radix: 16)) + length \(length) is past the largest file") }
        file.addMapper(self)
        let start = try insertVMA(length: length, prot: prot, at: address, file: file, pgoff: offset / Self.pageSize)
        if populate && !prot.isEmpty {
            var va = start
            while va < start + UInt64(length) {
                // mm_populate's result is ignored by mmap: stop at the first failure.
                do { try handleFault(address: va, write: prot.contains(.write)) } catch { break }
                va += Self.pageSize
            }
        }
        return start
    }

    /// Removes this mm's PTEs and page references for the pages of `file` at index
    /// `fromIndex` and beyond (`unmap_mapping_range` on truncation), firing the notifiers.
    func zapFilePages(_ file: Memfd, fromIndex: UInt64) {
        var gather = IOTLBGather()
        let (ranges, freed): ([(UInt64, UInt64)], [PhysicalAddress]) = lock.withLock {
            var ranges: [(UInt64, UInt64)] = []
            var freed: [PhysicalAddress] = []
            for v in vmas where v.file === file {
                let firstVA = fromIndex <= v.pgoff ? v.start : v.start &+ (fromIndex - v.pgoff) * Self.pageSize
                guard firstVA >= v.start, firstVA < v.end else { continue }
                for (va, pa) in populatedPages(firstVA, v.end) {
                    _ = pageTable.unmapPages(iova: IOVA(rawValue: va), pgsize: Self.pageSize, pgcount: 1, gather: &gather)
                    pages[va] = nil
                    freed.append(pa)
                }
                ranges.append((firstVA, v.end))
            }
            return (ranges, freed)
        }
        notifyInvalidate(ranges)
        for pa in freed { memory.putFrame(pa) }
        gather.releaseFreelist(to: memory)
    }

    /// `fork()`: a child process `pid` with a copy of this address space and of the
    /// descriptor table. Private anonymous pages are copied at once (the model has no
    /// copy-on-write; the parent keeps its frames, so its pins are undisturbed, as with
    /// `FOLL_LONGTERM` pins that force the copy into the child). Shared file mappings
    /// and descriptors refer to the same files, so parent and child see each other's
    /// writes there. MMU notifiers, the SVA PASID and pinned-page accounting are not
    /// inherited.
    /// - Throws: `EINVAL` if this mm is exiting; `ENOMEM` if the child's page table or a
    ///   page copy cannot be allocated (the partial child is torn down).
    public func fork(pid: Int32) throws(Errno) -> Process {
        let child = try Process(memory: memory, pid: pid, architecture: architecture, levels: pageTable.format.levels)
        let inherited: [Memfd]
        do throws(Errno) {
            inherited = try lock.withLock { () throws(Errno) -> [Memfd] in
                guard !exiting else { throw .invalidArgument.from("fork", "pid \(pid) is exiting") }
                try child.lock.withLock { () throws(Errno) in
                    child.vmas = vmas
                    child.files = files
                    for v in vmas where v.file == nil && v.ops == nil {
                        for (va, pa) in populatedPages(v.start, v.end) {
                            let copy = try memory.allocFrame()
                            memory.pointer(copy).copyMemory(from: memory.pointer(pa), byteCount: Int(Self.pageSize))
                            child.pages[va] = copy
                            guard let prot = Self.pteProt(v.prot) else { continue }
                            var mapped: UInt64 = 0
                            try child.pageTable.mapPages(iova: IOVA(rawValue: va), paddr: copy, pgsize: Self.pageSize, pgcount: 1,
                                                         prot: prot, mapped: &mapped)
                        }
                    }
                }
                return vmas.compactMap(\.file)
            }
            // A driver's frames are shared with the child (the PTEs are copied), and the
            // driver hears of each copied mapping (`dup_mmap` calls `open`).
            let driverMappings = try lock.withLock { () throws(Errno) -> [any VMAOperations] in
                var opened: [any VMAOperations] = []
                for v in vmas {
                    guard let ops = v.ops else { continue }
                    for (va, pa) in populatedPages(v.start, v.end) { try child.insertPage(address: va, frame: pa) }
                    opened.append(ops)
                }
                return opened
            }
            for ops in driverMappings { ops.open() }
        } catch {
            // No driver heard of the child's copies yet: it must not hear them go.
            child.lock.withLock { for i in child.vmas.indices { child.vmas[i].ops = nil } }
            child.exit()
            throw error
        }
        for f in inherited { f.addMapper(child) }
        return child
    }
}
