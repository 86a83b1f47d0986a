/// An anonymous shared-memory file: the model of a `memfd_create(2)` file on shmem
/// (`mm/memfd.c`, `mm/shmem.c`).
///
/// The file's pages live in a page cache of 4 KiB frames from ``PhysicalMemory``. A page
/// is allocated, zeroed, on its first use (a CPU fault through a shared mapping, a
/// ``pinPages(firstIndex:count:)``, a ``write(offset:bytes:)``); the cache holds the
/// allocation's reference, and every user of the page (each mapping process, each pin)
/// takes one more with ``PhysicalMemory/getFrame(_:)``. So a page that a device may still
/// DMA into survives ``truncate(to:)`` and the last close, until its pin is dropped.
///
/// Every process that maps the file `MAP_SHARED` sees the same frames, so a CPU store
/// through one mapping, a device write through an IOMMU mapping of a pinned page, and a
/// ``read(offset:count:)`` all see each other.
///
/// The object's lifetime is the `struct file` reference count: descriptor tables, shared
/// mappings and iommufd's file-backed pages hold strong references (`fget`/`get_file`),
/// and the last one dropped releases the page cache (`shmem_evict_inode`).
///
/// Limits of the model: only shmem memfds (no `MFD_HUGETLB`, no seals, no swap, no
/// `fallocate` holes); the selftest's `_file_hugepage` variant uses a plain shmem memfd
/// too, since its `memfd_mmap` asks for `MFD_HUGETLB` only with `MAP_HUGETLB`.
///
/// Thread-safe: one lock guards the size and the page cache. It nests inside a
/// ``Process`` lock (a fault looks the page up with the process locked); truncation takes
/// process locks only after releasing it.
public final class Memfd: @unchecked Sendable {
    /// The page size of shmem: the 4 KiB base page.
    public static let pageSize: UInt64 = 4096
    /// `MAX_LFS_FILESIZE` on 64-bit: the largest `off_t`.
    public static let maxSize = UInt64(Int64.max)
    /// `MFD_NAME_MAX_LEN`: longest name `memfd_create` accepts, in bytes.
    public static let maxNameLength = 249

    /// The machine's memory, where the page cache lives.
    public let memory: PhysicalMemory
    /// The name given to `memfd_create` (shown as `/memfd:<name>` by the kernel).
    public let name: String
    /// False for a stand-in of a file that is neither shmem nor hugetlbfs (a pipe, a
    /// regular file on disk), which `IOMMU_IOAS_MAP_FILE` refuses with `EINVAL`
    /// (`iopt_map_file_pages` accepts only what `memfd_pin_folios` can pin). The model as
    /// a service installs one when a client passes such a descriptor.
    public let isShmem: Bool

    private let lock = Lock()
    /// `i_size`.
    private var _size: UInt64
    /// Page index → frame: the page cache (`mapping->i_pages`). Holds one reference each.
    private var cache: [UInt64: PhysicalAddress] = [:]
    /// Processes that mapped the file, so truncation can zap their PTEs
    /// (`mapping->i_mmap`). Weak: a mapping does not keep its process alive.
    private var mappers: [ObjectIdentifier: WeakProcess] = [:]

    private struct WeakProcess { weak var process: Process? }

    /// `memfd_create(name, 0)` followed by `ftruncate(size)`; with `isShmem` false, a
    /// stand-in for a descriptor open on a file of another kind (see ``isShmem``).
    /// - Throws: `EINVAL` for a name longer than ``maxNameLength`` bytes or a size above
    ///   ``maxSize`` (a negative `off_t`).
    public init(memory: PhysicalMemory, name: String, size: UInt64 = 0, isShmem: Bool = true) throws(Errno) {
        guard name.utf8.count <= Self.maxNameLength else {
            throw .invalidArgument.from("memfd_create", "name of \(name.utf8.count) bytes is longer than \(Self.maxNameLength)")
        }
        guard size <= Self.maxSize else { throw .invalidArgument.from("memfd_create", "size 0x\(String(size, radix: 16)) is above the largest file") }
        self.memory = memory
        self.name = name
        self.isShmem = isShmem
        _size = size
    }

    deinit {
        // The last fput: the inode goes and so do the cache's references. Pinned frames
        // stay allocated until their pins are dropped.
        for pa in cache.values { memory.putFrame(pa) }
    }

    /// The file size in bytes (`i_size_read`, what `fstat` reports).
    public var size: UInt64 { lock.withLock { _size } }

    /// Pages in the page cache right now (`mapping->nrpages`).
    public var residentPages: Int { lock.withLock { cache.count } }

    /// `ftruncate(fd, length)` (`shmem_setattr`): sets the size. Growing adds a hole that
    /// reads as zeros. Shrinking zeroes the tail of the new last page, unmaps the pages
    /// past the end from every process mapping them (`unmap_mapping_range`; their later
    /// accesses fault, the model of `SIGBUS`) and drops the cache's reference on them
    /// (`truncate_inode_pages`); pinned pages stay allocated for their pinners.
    /// - Throws: `EINVAL` when `length` exceeds ``maxSize``; nothing changes.
    public func truncate(to length: UInt64) throws(Errno) {
        guard length <= Self.maxSize else { throw .invalidArgument.from("ftruncate", "length 0x\(String(length, radix: 16)) is above the largest file") }
        let firstGone = (length + Self.pageSize - 1) / Self.pageSize
        let (dropped, targets): ([PhysicalAddress], [Process]) = lock.withLock {
            let shrinking = length < _size
            _size = length
            guard shrinking else { return ([], []) }
            if length % Self.pageSize != 0, let pa = cache[length / Self.pageSize] {
                let keep = Int(length % Self.pageSize)
                memory.pointer(pa + UInt64(keep)).initializeMemory(as: UInt8.self, repeating: 0,
                                                                  count: Int(Self.pageSize) - keep)
            }
            var dropped: [PhysicalAddress] = []
            for (i, pa) in cache where i >= firstGone {
                cache[i] = nil
                dropped.append(pa)
            }
            return (dropped, mappers.values.compactMap(\.process))
        }
        for p in targets { p.zapFilePages(self, fromIndex: firstGone) }
        for pa in dropped { memory.putFrame(pa) }
    }

    /// The frame of page `index` with one reference taken for the caller, allocating a
    /// zeroed page on first use (`shmem_get_folio(SGP_CACHE)` + `folio_get`).
    /// - Throws: `EINVAL` if the page starts at or past the end of the file; `ENOMEM` if
    ///   no frame can be allocated. No reference is taken on error.
    public func getPage(_ index: UInt64) throws(Errno) -> PhysicalAddress {
        try lock.withLock { () throws(Errno) -> PhysicalAddress in
            guard index < _size / Self.pageSize + (_size % Self.pageSize == 0 ? 0 : 1) else {
                throw .invalidArgument.from("shmem_get_folio", "page \(index) is past the end of \(name) (\(_size) bytes)")
            }
            return try referenceLocked(index)
        }
    }

    /// `memfd_pin_folios`: pins the whole pages `[firstIndex, firstIndex + count)` for
    /// long-term DMA, allocating holes, and returns their frames, each holding one
    /// reference for the caller (drop it with ``PhysicalMemory/putFrame(_:)``).
    /// As the kernel, the check is on the byte range of whole pages: a range whose last
    /// page reaches past `i_size` fails, even when only its tail lies past the end.
    /// - Throws: `EINVAL` for an empty range or one reaching past the end of the file;
    ///   `ENOMEM` if a page cannot be allocated. Nothing stays pinned on error.
    public func pinPages(firstIndex: UInt64, count: Int) throws(Errno) -> [PhysicalAddress] {
        try lock.withLock { () throws(Errno) -> [PhysicalAddress] in
            guard count > 0 else { throw .invalidArgument.from("memfd_pin_folios", "count \(count) is not positive") }
            let (end, o) = (firstIndex &+ UInt64(count)).multipliedReportingOverflow(by: Self.pageSize)
            guard !o, firstIndex < firstIndex &+ UInt64(count), end - 1 < _size else {
                throw .invalidArgument.from("memfd_pin_folios", "pages [\(firstIndex), +\(count)) reach past the end of \(name) (\(_size) bytes)")
            }
            var out: [PhysicalAddress] = []
            out.reserveCapacity(count)
            do throws(Errno) {
                for i in firstIndex..<firstIndex + UInt64(count) { out.append(try referenceLocked(i)) }
            } catch {
                for pa in out { memory.putFrame(pa) }
                throw error
            }
            return out
        }
    }

    /// Looks up or allocates page `index` and takes a reference on it. Lock held.
    private func referenceLocked(_ index: UInt64) throws(Errno) -> PhysicalAddress {
        if let pa = cache[index] {
            try memory.getFrame(pa)
            return pa
        }
        let pa = try memory.allocFrame()
        do { try memory.getFrame(pa) } catch {
            memory.putFrame(pa)
            throw error
        }
        cache[index] = pa
        return pa
    }

    /// `pread(fd, count, offset)`: up to `count` bytes from `offset`, stopping at the end
    /// of the file; holes read as zeros and are not allocated.
    /// - Throws: `EINVAL` for a negative count or an offset above ``maxSize``.
    public func read(offset: UInt64, count: Int) throws(Errno) -> [UInt8] {
        guard count >= 0, offset <= Self.maxSize else { throw .invalidArgument.from("pread", "negative count or offset above the largest file") }
        return lock.withLock {
            guard offset < _size else { return [] }
            let n = Int(min(UInt64(count), _size - offset))
            var out = [UInt8](repeating: 0, count: n)
            var done = 0
            while done < n {
                let at = offset + UInt64(done)
                let chunk = min(n - done, Int(Self.pageSize - at % Self.pageSize))
                if let pa = cache[at / Self.pageSize] {
                    out.withUnsafeMutableBytes {
                        memory.uncheckedRead(pa + at % Self.pageSize, into: UnsafeMutableRawBufferPointer(rebasing: $0[done..<done + chunk]))
                    }
                }
                done += chunk
            }
            return out
        }
    }

    /// `pwrite(fd, bytes, offset)`: writes `bytes` at `offset`, allocating pages and
    /// extending the file when the write ends past it.
    /// - Throws: `EINVAL` when the write would end past ``maxSize``; `ENOMEM` if a page
    ///   cannot be allocated (bytes before it are written, as a short write).
    public func write(offset: UInt64, bytes: [UInt8]) throws(Errno) {
        let (end, o) = offset.addingReportingOverflow(UInt64(bytes.count))
        guard !o, end <= Self.maxSize else { throw .invalidArgument.from("pwrite", "the write would end past the largest file") }
        try lock.withLock { () throws(Errno) in
            var done = 0
            while done < bytes.count {
                let at = offset + UInt64(done)
                let chunk = min(bytes.count - done, Int(Self.pageSize - at % Self.pageSize))
                let pa: PhysicalAddress
                if let p = cache[at / Self.pageSize] { pa = p } else {
                    pa = try memory.allocFrame()
                    cache[at / Self.pageSize] = pa
                }
                bytes.withUnsafeBytes {
                    memory.uncheckedWrite(pa + at % Self.pageSize, from: UnsafeRawBufferPointer(rebasing: $0[done..<done + chunk]))
                }
                done += chunk
                if at + UInt64(chunk) > _size { _size = at + UInt64(chunk) }
            }
        }
    }

    /// Records that `process` maps the file, so truncation reaches its page table.
    func addMapper(_ process: Process) {
        lock.withLock {
            mappers = mappers.filter { $0.value.process != nil }
            mappers[ObjectIdentifier(process)] = WeakProcess(process: process)
        }
    }
}
