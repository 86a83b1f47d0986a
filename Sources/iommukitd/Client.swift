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
    func clientVMAs(_ start: UInt64, _ end: UInt64) -> [(start: UInt64, end: UInt64, prot: ProcessProt)] {
        guard let text = readSmallFile("/proc/\(pid)/maps", limit: 8 << 20) else { return [] }
        var out: [(UInt64, UInt64, ProcessProt)] = []
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
            out.append((s, e, prot))
        }
        return out
    }

    private func isPinned(_ va: UInt64) -> Bool {
        guard let pa = mm.physicalAddress(of: va) else { return false }
        return PagePinRegistry.shared.pinCount(machine.memory, pa) > 0
    }

    private func dropShadowPage(_ va: UInt64) {
        if let pa = mm.physicalAddress(of: va) { machine.foreignFrames.unregister(pa) }
        try? mm.munmap(address: va, length: Int(Self.page))
        shadowProt[va] = nil
    }

    /// Mirrors the client's `[address, address+length)` into the shadow mm (see the type's
    /// documentation). Never fails: what cannot be mirrored is left out, and the pin that
    /// needs it fails with the kernel's errno.
    func sync(_ address: UInt64, _ length: UInt64) {
        guard length > 0, length <= Self.maxSync,
              !address.addingReportingOverflow(length).overflow else { return }
        let start = address & ~(Self.page - 1)
        let end = (address + length + Self.page - 1) & ~(Self.page - 1)
        guard end <= mm.userLimit else { return }
        let vmas = clientVMAs(start, end)
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
            machine.foreignFrames.register(pa, backing: memory, address: va)
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
