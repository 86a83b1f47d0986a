import Glibc
import IOMMUCore
import IOMMUFD

/// One host process that talks to the service: its memory (``HostProcessMemory``) and
/// its shadow mm, a model ``IOMMUCore/Process`` with the same pid whose pages mirror the
/// client's real pages at the same virtual addresses.
///
/// The model pins pages from a model mm (`current->mm`), so before an ioctl that names
/// user memory to be pinned (`IOMMU_IOAS_MAP`, `VFIO_IOMMU_MAP_DMA`) ``sync(_:_:)``
/// makes the shadow match the client over that range: same protection (from
/// `/proc/<pid>/maps`), same contents (`process_vm_readv`), and each shadow frame
/// registered in ``Machine/foreignFrames`` as backed by `(pid, va)`. From then on the
/// coherence rule of ``ForeignFrames`` applies: every device or `access_rw` read refreshes
/// from the client, every write lands in the client's real memory.
///
/// A page the client cannot read is left out of the shadow, so pinning it fails with
/// `EFAULT`; a read-only client page is read-only in the shadow, so a writable map of it
/// fails with `EFAULT`, as `pin_user_pages(FOLL_WRITE)` does. Pinned shadow pages are
/// never changed by a later sync: like the kernel's pinned pages they stay what they
/// were until unpinned, even if the client remaps the range (the write-back then goes to
/// whatever the client has at that address now; see the README).
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
/// taken as 2 MiB pages). Touching any page of such a chunk mirrors the whole chunk,
/// as a hugetlb fault populates the whole huge page. A chunk with a pinned page keeps
/// the frames it has; a part not fully covered (after a partial `munmap` or
/// `mprotect`) is mirrored in 4 KiB frames, as every other mapping is. The client
/// holds one reference to every frame of its runs (its huge page pool) and frees a
/// run whole once nothing else references any frame of it.
final class Client {
    let pid: Int32
    /// `/proc/<pid>/stat` start time: tells a reused pid from the process we know.
    let startTime: UInt64
    let memory: HostProcessMemory
    let mm: IOMMUCore.Process
    let machine: Machine
    /// `user->locked_vm` / `mm->pinned_vm` of this process, shared by its contexts.
    let accounting = PinAccounting()
    /// Protection of each page mirrored in the shadow.
    private var shadowProt: [UInt64: ProcessProt] = [:]
    /// Huge chunks of the shadow by VA, and the run that was mirrored into each.
    private var runs: [UInt64: PhysicalAddress] = [:]
    /// The client's huge page pool: runs it allocated (PA → bytes), each holding the
    /// allocation's reference on every frame until ``reclaimRuns()`` frees it whole.
    private var pool: [PhysicalAddress: Int] = [:]

    /// The largest range one sync mirrors (a larger map pins zero pages: see README).
    static let maxSync: UInt64 = 1 << 30
    static let page: UInt64 = 4096

    init(pid: Int32, machine: Machine) throws(Errno) {
        self.pid = pid
        self.machine = machine
        startTime = Self.startTime(pid) ?? 0
        memory = HostProcessMemory(pid: pid)
        mm = try IOMMUCore.Process(memory: machine.memory, pid: pid)
    }

    /// Field 22 of `/proc/<pid>/stat`.
    static func startTime(_ pid: Int32) -> UInt64? {
        guard let text = readSmallFile("/proc/\(pid)/stat"), let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        return fields.count > 19 ? UInt64(fields[19]) : nil
    }

    /// Whether this is still the process we started serving.
    var isAlive: Bool { memory.isAlive && Self.startTime(pid) == startTime }

    /// Pages of the shadow pinned right now (`VmPin` of this client in the model).
    var pinnedPages: Int {
        shadowProt.keys.reduce(0) { n, va in
            n + (mm.physicalAddress(of: va).map { PagePinRegistry.shared.pinCount(machine.memory, $0) > 0 ? 1 : 0 } ?? 0)
        }
    }

    /// The client's mappings overlapping `[start, end)`: `/proc/<pid>/maps`.
    /// `huge` is the huge page size of a mapping that stands for hugetlb memory (see the
    /// type's documentation), 0 for any other.
    func clientVMAs(_ start: UInt64, _ end: UInt64) -> [(start: UInt64, end: UInt64, prot: ProcessProt, huge: UInt64)] {
        guard let text = readSmallFile("/proc/\(pid)/maps", limit: 8 << 20) else { return [] }
        var out: [(UInt64, UInt64, ProcessProt, UInt64)] = []
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ", maxSplits: 2)
            guard f.count >= 2 else { continue }
            let r = f[0].split(separator: "-")
            guard r.count == 2, let s = UInt64(r[0], radix: 16), let e = UInt64(r[1], radix: 16),
                  s < end, start < e else { continue }
            let p = Array(f[1].utf8)
            var prot: ProcessProt = []
            if p.count >= 3 {
                if p[0] == UInt8(ascii: "r") { prot.insert(.read) }
                if p[1] == UInt8(ascii: "w") { prot.insert(.write) }
                if p[2] == UInt8(ascii: "x") { prot.insert(.exec) }
            }
            // An iommufd mapping (ContextMappings): the shadow holds the driver's frames
            // there, never a mirror of the client's pages.
            if f.count > 2, f[2].contains("/memfd:iommukit-iommufd-mmap") { prot = [] }
            out.append((s, e, prot, f.count > 2 ? Self.hugePageSize(path: f[2]) : 0))
        }
        return out
    }

    /// The huge page size a `/proc/<pid>/maps` line's tail names: the shim's fallback
    /// memfd `iommukit-hugetlb-<shift>` (shift 21 to 30), or 2 MiB for `/anon_hugepage`.
    static func hugePageSize(path: Substring) -> UInt64 {
        if path.contains("/anon_hugepage") { return 2 << 20 }
        guard let r = path.firstRange(of: "/memfd:iommukit-hugetlb-") else { return 0 }
        let digits = path[r.upperBound...].prefix { $0.isNumber }
        guard let shift = UInt64(digits), (21...30).contains(shift) else { return 0 }
        return 1 << shift
    }

    /// Mirrors the huge chunk `[chunk, chunk+size)` of a hugetlb-standing mapping into one
    /// contiguous run (see the type's documentation), unless it already is or a page of
    /// it is pinned. On any failure the chunk is left to the 4 KiB path.
    private func mirrorRun(_ chunk: UInt64, _ size: UInt64, _ prot: ProcessProt) {
        let pages = size / Self.page
        if let pa = runs[chunk], (0..<pages).allSatisfy({ i in
            shadowProt[chunk + i * Self.page] == prot && mm.physicalAddress(of: chunk + i * Self.page) == pa + i * Self.page
        }) { return }
        runs[chunk] = nil
        if (0..<pages).contains(where: { isPinned(chunk + $0 * Self.page) }) { return }
        for i in 0..<pages where shadowProt[chunk + i * Self.page] != nil { dropShadowPage(chunk + i * Self.page) }
        try? mm.munmap(address: chunk, length: Int(size))          // stale model VMAs
        guard let pa = try? machine.memory.allocContiguous(bytes: Int(size), alignment: Int(size)) else { return }
        pool[pa] = Int(size)
        guard (try? mm.mmap(length: Int(size), prot: prot, at: chunk)) != nil else { return }
        for i in 0..<pages {
            // A page that cannot take its frame is left unpopulated: the 4 KiB path fills it.
            guard (try? mm.insertPage(address: chunk + i * Self.page, frame: pa + i * Self.page)) != nil else { continue }
            shadowProt[chunk + i * Self.page] = prot
        }
        runs[chunk] = pa
    }

    /// Frees, whole, every run of the pool no one else references any more (no shadow
    /// page maps a frame of it, no pin holds one): the huge page goes back as one.
    private func reclaimRuns() {
        for (pa, bytes) in pool {
            let frames = UInt64(bytes) / Self.page
            guard (0..<frames).allSatisfy({ machine.memory.frameRefCount(pa + $0 * Self.page) == 1 }) else { continue }
            for i in 0..<frames { machine.foreignFrames.unregister((pa + i * Self.page).rawValue) }
            machine.memory.free(pa, bytes: bytes)
            pool[pa] = nil
            runs = runs.filter { $0.value != pa }
        }
    }

    private func isPinned(_ va: UInt64) -> Bool {
        guard let pa = mm.physicalAddress(of: va) else { return false }
        return PagePinRegistry.shared.pinCount(machine.memory, pa) > 0
    }

    private func dropShadowPage(_ va: UInt64) {
        if let pa = mm.physicalAddress(of: va) { machine.foreignFrames.unregister(pa.rawValue) }
        try? mm.munmap(address: va, length: Int(Self.page))
        shadowProt[va] = nil
    }

    /// Mirrors the client's `[address, address+length)` into the shadow mm (see the type's
    /// documentation). Never fails: what cannot be mirrored is left out, and the pin that
    /// needs it fails with the kernel's errno.
    func sync(_ address: UInt64, _ length: UInt64) {
        guard length > 0, length <= Self.maxSync,
              !address.addingReportingOverflow(length).overflow else { return }
        var start = address & ~(Self.page - 1)
        var end = (address + length + Self.page - 1) & ~(Self.page - 1)
        guard end <= mm.userLimit else { return }
        let vmas = clientVMAs(start, end)
        defer { reclaimRuns() }
        // Huge chunks first, whole (the range grows to cover them); their pages then go
        // through the loop below like any other, to be refreshed and registered.
        for v in vmas where v.huge != 0 && v.prot.contains(.read) {
            var chunk = max(v.start, start) & ~(v.huge - 1)
            while chunk < min(v.end, end) {
                if chunk >= v.start && chunk + v.huge <= v.end {
                    mirrorRun(chunk, v.huge, v.prot)
                    start = min(start, chunk)
                    end = max(end, chunk + v.huge)
                }
                chunk += v.huge
            }
        }
        var va = start
        var i = 0
        while va < end {
            while i < vmas.count && vmas[i].end <= va { i += 1 }
            let prot: ProcessProt? = i < vmas.count && vmas[i].start <= va && vmas[i].prot.contains(.read)
                ? vmas[i].prot : nil
            defer { va += Self.page }
            if isPinned(va) { continue }
            guard let prot else {
                if shadowProt[va] != nil { dropShadowPage(va) }
                continue
            }
            if let old = shadowProt[va], old != prot { dropShadowPage(va) }
            if shadowProt[va] == nil {
                // A page the shadow never had; a stale model VMA there is replaced.
                if (try? mm.mmap(length: Int(Self.page), prot: prot, at: va)) == nil {
                    try? mm.munmap(address: va, length: Int(Self.page))
                    guard (try? mm.mmap(length: Int(Self.page), prot: prot, at: va)) != nil else { continue }
                }
                shadowProt[va] = prot
            }
            guard (try? mm.handleFault(address: va, write: false)) != nil,
                  let pa = mm.physicalAddress(of: va) else { dropShadowPage(va); continue }
            if !memory.refresh(va, into: machine.memory.pointer(pa), count: Int(Self.page)) {
                dropShadowPage(va)
                continue
            }
            machine.foreignFrames.register(pa.rawValue, backing: memory, address: va)
        }
    }

    /// The client exited: its frames stop mirroring anything (pinned pages stay pinned
    /// and usable by DMA, as the kernel's do). Returns true when nothing is pinned any
    /// more and the shadow mm was torn down.
    func retire() -> Bool {
        machine.foreignFrames.unregisterAll(memory)
        guard pinnedPages == 0 else { return false }
        mm.exit()
        shadowProt = [:]
        reclaimRuns()
        return true
    }
}

/// Reads a small text file (procfs) whole; nil if it cannot be opened.
func readSmallFile(_ path: String, limit: Int = 1 << 20) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var data: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while data.count < limit {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        data += buf[0..<n]
    }
    return String(decoding: data, as: UTF8.self)
}
