import Glibc
import IOMMUCore
import IOMMUFD
import Synchronization

/// A counter bumped at the start of every request: what a pager validated during one
/// request may have changed in the client by the next (see ``Client``).
final class RequestEpoch: Sendable {
    private let value = Atomic<UInt64>(1)
    var current: UInt64 { value.load(ordering: .acquiring) }
    func advance() { value.add(1, ordering: .acquiringAndReleasing) }
}

/// One host process that talks to the service: its memory for ioctl arguments
/// (``HostProcessMemory``, `copy_from_user`/`copy_to_user`), and its *shadow mm*, a
/// model ``IOMMUCore/Process`` with the same pid whose pages stand for the client's own
/// pages at the same virtual addresses: what the model pins from (`current->mm`).
///
/// **The pager.** The client is its shadow's ``ProcessPager``: whenever the model is
/// about to pin or look up user pages of the shadow (`pin_user_pages`,
/// `get_user_pages`), at that moment, ``prepare(_:address:length:)`` makes the shadow
/// match the client over that range, in one step per range: the client's mappings are
/// read from the kernel (``ClientMaps``), each becomes one shadow mapping with the same
/// protection, its pages are populated together, and their contents are read in
/// batches (`preadv` of `/proc/<pid>/mem`). What was checked stays valid for the rest of
/// the request (``RequestEpoch``); the next request checks again, since the client may
/// have remapped meanwhile. A client that exited makes every pin from its mm fail with
/// `EFAULT` (its pidfd is checked at pin time), as the kernel's pin from a dead mm does.
///
/// **Which frame a page is.** Private memory (anonymous, or a private file mapping) is
/// the client's own: its shadow pages are frames of its own, registered in
/// ``FrameMirrors`` as standing for `(client, va)`. Memory the client shares through an
/// object (a memfd, shared anonymous memory, a file mapped `MAP_SHARED`) is that
/// object's: the shadow maps the object's one model file (``SharedObject``), so every
/// process that maps it, and `IOMMU_IOAS_MAP_FILE` of its fd, see one frame per page.
/// Either way the coherence rule of ``FrameMirrors`` applies: every device or
/// `access_rw` read refreshes from the owner, every write lands in the owner's memory.
/// A page the client cannot read is left out of the shadow, so pinning it fails with
/// `EFAULT`; a read-only client page is read-only in the shadow, so a writable pin of
/// it fails with `EFAULT`, as `pin_user_pages(FOLL_WRITE)` does. When the client remaps
/// a range, the shadow follows: pinned frames stay pinned (and stop mirroring the
/// address, which now holds something else), as the kernel's pinned pages do.
///
/// **Huge pages.** The rule for physically contiguous shadow memory, in one place: a
/// client mapping that stands for hugetlb memory is mirrored one huge page at a time,
/// each fully covered, huge-aligned chunk of it into one naturally aligned contiguous
/// run of model frames (``PhysicalMemory/allocContiguous(bytes:alignment:)``), so the
/// pin path finds contiguous pages and an IOMMU domain that offers the huge size maps
/// them with huge leaves, as with the kernel's hugetlb folios. Such a mapping is either
/// the shim's `MAP_HUGETLB` fallback (a private or shared mapping of a memfd named
/// `iommukit-hugetlb-<log2 size>`, `/memfd:iommukit-hugetlb-21 (deleted)` in
/// `/proc/<pid>/maps`; see `preload.c`) or a real hugetlb mapping (`/anon_hugepage`,
/// taken as 2 MiB pages). These runs are the client's own even when the mapping is
/// shared (a shared huge buffer is not one object across processes here). A part not
/// fully covered (after a partial `munmap` or `mprotect`) is mirrored in 4 KiB frames.
/// A run is freed whole once no shadow page maps a frame of it and no pin holds one.
final class Client: ProcessPager, @unchecked Sendable {
    let pid: Int32
    /// The process, held by a pidfd (pid reuse cannot make it name another).
    let process: ProcessHandle
    /// Set (under the service's state lock) when a request of this process trapped:
    /// its state may be half-changed, so every later request gets `EIO`.
    var poisoned = false
    let memory: HostProcessMemory
    let mm: IOMMUCore.Process
    let machine: Machine
    /// `user->locked_vm` / `mm->pinned_vm` of this process, shared by its contexts.
    let accounting = PinAccounting()

    private let maps: ClientMaps
    /// The client's memory as the backing of its own mirrored frames.
    let backing: ClientMemory
    private let slot: UInt32
    private let mirrors: FrameMirrors
    private let objects: SharedObjects
    private let epoch: RequestEpoch
    /// Serialises the pager: the process's threads may issue requests at once.
    private let lock = Lock()

    /// One stretch of the shadow and what it stands for.
    private struct Segment {
        var start: UInt64
        var end: UInt64
        var kind: Kind
        enum Kind: Equatable {
            /// The client's own pages.
            case own(ProcessProt)
            /// A shared object's pages from `offset` (of `start`).
            case object(ObjectKey, offset: UInt64, ProcessProt)
            /// One huge page of the client's, mirrored into the contiguous run at `run`.
            case huge(run: PhysicalAddress, ProcessProt)
        }
    }
    /// The shadow's stretches, sorted and disjoint.
    private var segments: [Segment] = []
    /// Ranges checked during request `validatedEpoch`.
    private var validatedEpoch: UInt64 = 0
    private var validated: [(UInt64, UInt64)] = []
    /// The client's huge page pool: runs it allocated (PA → bytes), each holding the
    /// allocation's reference on every frame until ``reclaimRuns()`` frees it whole.
    private var pool: [PhysicalAddress: Int] = [:]
    /// A number for installing an object's model file in the shadow's fd table while it
    /// is mapped (far above any real descriptor).
    private static let scratchFD: Int32 = 0x4000_0000

    static let page: UInt64 = 4096

    init(process: ProcessHandle, machine: Machine, objects: SharedObjects, mirrors: FrameMirrors,
         epoch: RequestEpoch) throws(Errno) {
        pid = process.pid
        self.process = process
        self.machine = machine
        self.objects = objects
        self.mirrors = mirrors
        self.epoch = epoch
        memory = HostProcessMemory(pid: pid)
        guard let maps = ClientMaps(pid: pid), let backing = ClientMemory(process: process) else { throw Errno(rawValue: ESRCH) }
        self.maps = maps
        self.backing = backing
        slot = mirrors.slot(for: backing)
        mm = try IOMMUCore.Process(memory: machine.memory, pid: pid)
        mm.pager = self
    }

    deinit { mirrors.drop(slot) }

    /// The huge page size a `/proc/<pid>/maps` path names: the shim's fallback memfd
    /// `iommukit-hugetlb-<shift>` (shift 21 to 30), or 2 MiB for `/anon_hugepage`.
    static func hugePageSize(path: Substring) -> UInt64 {
        if path.contains("/anon_hugepage") { return 2 << 20 }
        guard let r = path.firstRange(of: "/memfd:iommukit-hugetlb-") else { return 0 }
        let digits = path[r.upperBound...].prefix { $0.isNumber }
        guard let shift = UInt64(digits), (21...30).contains(shift) else { return 0 }
        return 1 << shift
    }

    // MARK: ProcessPager

    func prepare(_ mm: IOMMUCore.Process, address: UInt64, length: UInt64) throws(Errno) {
        // A pin from the mm of a process that exited: EFAULT, checked now, at pin time.
        guard process.isRunning else { throw .badAddress }
        let (last, o) = address.addingReportingOverflow(length - 1)
        guard length > 0, !o, last < mm.userLimit else { throw .badAddress }
        let start = address & ~(Self.page - 1)
        let end = (last & ~(Self.page - 1)) + Self.page
        // The shadow's frames stand for pages the client already has: no allocation of
        // the modelled call, so no fail-nth injection point.
        try machine.memory.withoutInjectedFailures { () throws(Errno) in
            try lock.withLock { () throws(Errno) in
                let now = epoch.current
                if validatedEpoch != now { validatedEpoch = now; validated = [] }
                if validated.contains(where: { $0.0 <= start && end <= $0.1 }) { return }
                try reconcile(start, end)
                validated.append((start, end))
            }
        }
    }

    /// Makes the shadow over `[start, end)` what the client has there now.
    private func reconcile(_ start: UInt64, _ end: UInt64) throws(Errno) {
        guard let now = maps.mappings(start, end) else { throw .badAddress }
        var at = start
        for m in now {
            if at < m.start { clear(at, m.start) }
            try apply(m)
            at = m.end
        }
        if at < end { clear(at, end) }
        reclaimRuns()
    }

    /// The shadow over one client mapping (clipped to the range asked for): the shadow
    /// keeps one stretch per client mapping, made for the whole mapping at once (one
    /// model VMA, no pages) so that the next pin elsewhere in it finds it; the pages are
    /// populated for the range asked for only.
    private func apply(_ m: ClientMapping) throws(Errno) {
        if m.hugePage != 0, m.prot.contains(.read) {
            // Huge chunks the whole mapping covers as runs (whole, even where they reach
            // past the range asked for), the rest as the client's own 4 KiB pages.
            let huge = m.hugePage
            var at = m.start
            var chunk = m.start & ~(huge - 1)
            while chunk < m.end {
                if chunk >= m.vmaStart && chunk + huge <= m.vmaEnd {
                    if at < max(chunk, m.start) { try applyOwn(at, chunk, m.prot, extent: (at, chunk)) }
                    try applyHuge(chunk, huge, m.prot)
                    at = min(chunk + huge, m.end)
                }
                chunk += huge
            }
            if at < m.end { try applyOwn(at, m.end, m.prot, extent: (at, m.end)) }
            return
        }
        if let key = m.object {
            try applyObject(m, key)
        } else {
            try applyOwn(m.start, m.end, m.prot, extent: (m.vmaStart, m.vmaEnd))
        }
    }

    /// Whether segment `s` stands for `kind` at `address` (object offsets running on).
    private static func stands(_ s: Segment, for kind: Segment.Kind, at address: UInt64, extentStart: UInt64) -> Bool {
        switch (s.kind, kind) {
        case (.object(let k1, let o1, let p1), .object(let k2, let o2, let p2)):
            return k1 == k2 && p1 == p2 && o1 &+ (address - s.start) == o2 &+ (address - extentStart)
        default:
            return s.kind == kind
        }
    }

    /// Makes the shadow over `[extent.0, extent.1)` stand for `kind` (offsets of an
    /// object counted from `extent.0`): parts already standing for it are kept, parts
    /// standing for something else are cleared, and each part left uncovered gets a
    /// model mapping of its own (`map`).
    private func cover(_ extent: (UInt64, UInt64), _ kind: Segment.Kind,
                       map: (UInt64, UInt64) throws(Errno) -> Void) throws(Errno) {
        var at = extent.0
        while at < extent.1 {
            if let s = segments.first(where: { $0.start <= at && at < $0.end }) {
                let upto = min(s.end, extent.1)
                if !Self.stands(s, for: kind, at: at, extentStart: extent.0) {
                    clear(at, upto)
                    continue
                }
                at = upto
                continue
            }
            let next = segments.filter { $0.start > at }.map(\.start).min() ?? extent.1
            let upto = min(next, extent.1)
            try map(at, upto)
            var seg = Segment(start: at, end: upto, kind: kind)
            if case .object(let k, let off, let p) = kind { seg.kind = .object(k, offset: off &+ (at - extent.0), p) }
            insert(seg)
            at = upto
        }
    }

    private func insert(_ s: Segment) {
        let i = segments.firstIndex { $0.start > s.start } ?? segments.count
        segments.insert(s, at: i)
    }

    /// The client's own memory over `[start, end)`, inside its mapping `extent`.
    private func applyOwn(_ start: UInt64, _ end: UInt64, _ prot: ProcessProt,
                          extent: (UInt64, UInt64)) throws(Errno) {
        try cover(extent, .own(prot)) { (a: UInt64, b: UInt64) throws(Errno) in
            try mm.mmap(length: Int(b - a), prot: prot, at: a)
        }
        guard prot.contains(.read) else { return }       // PROT_NONE: pins fail with EFAULT
        // Populate at once, then read what is not mirrored yet in batches.
        let frames = try mm.populate(address: start, count: Int((end - start) / Self.page))
        var run: [UnsafeMutableRawPointer] = []
        var runStart: UInt64 = 0
        var runFrames: [PhysicalAddress] = []
        func flush() {
            guard !run.isEmpty else { return }
            let read = backing.readPages(runStart, into: run)
            for (i, pa) in runFrames.enumerated() where i < read {
                mirrors.register(pa, slot: slot, address: runStart + UInt64(i) * Self.page)
            }
            run = []
            runFrames = []
        }
        for (i, pa) in frames.enumerated() {
            let va = start + UInt64(i) * Self.page
            if mirrors.mirrors(pa, slot: slot, address: va) { flush(); continue }
            if run.isEmpty { runStart = va }
            run.append(machine.memory.pointer(pa))
            runFrames.append(pa)
        }
        flush()
    }

    private func applyObject(_ m: ClientMapping, _ key: ObjectKey) throws(Errno) {
        let o = try objects.object(key)
        if !o.hasFD {
            // The service's own reference to the object, where the host lets it open one.
            let fd = open("/proc/\(pid)/map_files/\(String(m.vmaStart, radix: 16))-\(String(m.vmaEnd, radix: 16))",
                          O_RDWR | O_CLOEXEC)
            if fd >= 0 { o.adopt(fd) }
        }
        let extentOffset = m.offset &- (m.start - m.vmaStart)
        o.addMapper(backing, base: m.vmaStart &- extentOffset)
        if let size = o.realSize, o.memfd.size != size { try? o.memfd.truncate(to: size) }
        // Mirror the object's pages the range shows (those inside the file).
        let first = m.offset / Self.page
        var count = Int((m.end - m.start) / Self.page)
        if let size = o.realSize {
            let inFile = size > m.offset ? Int((size - m.offset + Self.page - 1) / Self.page) : 0
            count = min(count, inFile)
        }
        if m.prot.contains(.read) { try o.ensure(first, count: count) }
        try cover((m.vmaStart, m.vmaEnd), .object(key, offset: extentOffset, m.prot)) { (a: UInt64, b: UInt64) throws(Errno) in
            try mm.install(o.memfd, at: Self.scratchFD)
            defer { try? mm.close(fd: Self.scratchFD) }
            try mm.mmap(fd: Self.scratchFD, offset: extentOffset &+ (a - m.vmaStart), length: Int(b - a), prot: m.prot, at: a)
        }
    }

    private func applyHuge(_ chunk: UInt64, _ size: UInt64, _ prot: ProcessProt) throws(Errno) {
        if let s = segments.first(where: { $0.start == chunk && $0.end == chunk + size }),
           case .huge(_, let p) = s.kind, p == prot {
            return                                      // already this run
        }
        clear(chunk, chunk + size)
        let pages = Int(size / Self.page)
        guard let run = try? machine.memory.allocContiguous(bytes: Int(size), alignment: Int(size)) else {
            return try applyOwn(chunk, chunk + size, prot, extent: (chunk, chunk + size))
        }
        pool[run] = Int(size)
        try mm.mmap(length: Int(size), prot: prot, at: chunk)
        var frames: [UnsafeMutableRawPointer] = []
        for i in 0..<pages {
            let pa = run + UInt64(i) * Self.page
            try mm.insertPage(address: chunk + UInt64(i) * Self.page, frame: pa)
            frames.append(machine.memory.pointer(pa))
        }
        let read = backing.readPages(chunk, into: frames)
        for i in 0..<read { mirrors.register(run + UInt64(i) * Self.page, slot: slot, address: chunk + UInt64(i) * Self.page) }
        insert(Segment(start: chunk, end: chunk + size, kind: .huge(run: run, prot)))
    }

    /// Removes the shadow over `[start, end)` (nothing is mapped there in the client any
    /// more, or something else is). Frames still pinned survive the unmapping, and stop
    /// mirroring the address, which no longer holds them.
    private func clear(_ start: UInt64, _ end: UInt64) {
        var kept: [Segment] = []
        var touched = false
        for s in segments {
            guard s.start < end && start < s.end else { kept.append(s); continue }
            touched = true
            let a = max(s.start, start), b = min(s.end, end)
            if case .object = s.kind {} else {
                var va = a
                while va < b {
                    if let pa = mm.physicalAddress(of: va), mirrors.mirrors(pa, slot: slot, address: va) {
                        mirrors.unregister(pa)
                    }
                    va += Self.page
                }
            }
            if s.start < a {
                var left = s
                left.end = a
                kept.append(left)
            }
            if b < s.end {
                var right = s
                right.start = b
                if case .object(let k, let off, let p) = s.kind { right.kind = .object(k, offset: off + (b - s.start), p) }
                kept.append(right)
            }
        }
        guard touched else { return }
        segments = kept
        try? mm.munmap(address: start, length: Int(end - start))
    }

    /// Frees, whole, every run of the pool no one references any more (no shadow page
    /// maps a frame of it, no pin holds one): the huge page goes back as one.
    private func reclaimRuns() {
        for (pa, bytes) in pool {
            let frames = UInt64(bytes) / Self.page
            guard (0..<frames).allSatisfy({ machine.memory.frameRefCount(pa + $0 * Self.page) == 1 }) else { continue }
            for i in 0..<frames { mirrors.unregister(pa + i * Self.page) }
            machine.memory.free(pa, bytes: bytes)
            pool[pa] = nil
        }
    }

    /// Where the client maps `key` now: each mapping's start and the object offset there.
    func mappings(of key: ObjectKey) -> [(start: UInt64, offset: UInt64)] {
        (maps.mappings(0, mm.userLimit) ?? []).filter { $0.object == key }.map { ($0.start, $0.offset) }
    }

    // MARK: memory

    /// Gives back the shadow pages nothing pins: a stretch with no pinned page is
    /// unmapped (its frames freed; the pager mirrors it again when a pin needs it).
    func trim() {
        lock.withLock {
            for s in segments {
                var pinned = false
                var va = s.start
                while va < s.end && !pinned {
                    if let pa = mm.physicalAddress(of: va) { pinned = PagePinRegistry.shared.pinCount(machine.memory, pa) > 0 }
                    va += Self.page
                }
                if !pinned { clear(s.start, s.end) }
            }
            validated = []
            reclaimRuns()
        }
    }

    /// Pages of the shadow right now (mirrored or mapped from shared objects).
    var shadowPages: Int { lock.withLock { segments.reduce(0) { $0 + Int(($1.end - $1.start) / Self.page) } } }

    /// The client exited: its frames stop mirroring anything (pinned pages stay pinned and
    /// usable by DMA, as the kernel's do), and its shadow is torn down (new pins from it
    /// fail with `EFAULT`).
    func retire() {
        lock.withLock {
            mirrors.drop(slot)
            segments = []
            validated = []
        }
        mm.exit()
        lock.withLock { reclaimRuns() }
    }
}
