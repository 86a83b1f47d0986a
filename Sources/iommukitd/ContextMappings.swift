import Glibc
import IOMMUCore
import IOMMUFD

/// `mmap` of an iommufd by a client (`iommufd_fops_mmap`): the regions a vIOMMU driver
/// offers (the selftest's mock vIOMMU offers a page pair holding its `in_data`).
///
/// The shim reserves the client's address range with a shared memfd of its own
/// (`iommukit-iommufd-mmap`) and sends `MMAP` with a `struct ikd_mmap`. The service maps
/// the region at the same address in the client's shadow mm, so the model decides every
/// errno (`EINVAL`, `EPERM`, `ENXIO`) and the mapping holds the vIOMMU (`IOMMU_DESTROY`
/// of it is `EBUSY`) and the context, as the kernel's VMA does. Then it copies the
/// region's bytes into the client's memfd: the client reads what the driver put in the
/// region when it was mapped. A later write by either side is not carried to the other
/// (the model's driver frames and the client's pages are not one memory).
///
/// The client's `munmap` of any part of it comes back as `MUNMAP`: the service unmaps the
/// same range of the shadow (each piece removed drops its references, as
/// `iommufd_fops_vma_close`) and answers 1 once nothing of that mapping is left, when the
/// shim drops the connection it kept for it (the VMA's reference on the file).
final class ContextMappings: @unchecked Sendable {
    /// One client mapping of a region: the pages of it still mapped.
    private struct Mapping {
        let pid: Int32
        let start: UInt64
        var pages: Set<UInt64>
    }
    /// Taken by the service threads of all clients (one client's threads may map and
    /// unmap at once).
    private let lock = Lock()
    private var mappings: [Mapping] = []
    static let page: UInt64 = 4096

    /// `struct ikd_mmap` (40 bytes): addr, length, offset, memfd, prot, flags.
    struct Request {
        let address: UInt64
        let length: UInt64
        let offset: UInt64
        let memfd: Int32
        let prot: ProcessProt
        let shared: Bool
        static let size = 40

        init(_ b: [UInt8]) {
            func u32(_ o: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[o + $1]) << (8 * $1) } }
            func u64(_ o: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[o + $1]) << (8 * $1) } }
            address = u64(0)
            length = u64(8)
            offset = u64(16)
            memfd = Int32(bitPattern: u32(24))
            let p = u32(28)
            var prot: ProcessProt = []
            if p & UInt32(PROT_READ) != 0 { prot.insert(.read) }
            if p & UInt32(PROT_WRITE) != 0 { prot.insert(.write) }
            if p & UInt32(PROT_EXEC) != 0 { prot.insert(.exec) }
            self.prot = prot
            shared = u32(32) & UInt32(MAP_SHARED) != 0
        }
    }

    /// `MMAP`: maps the region in the shadow at the client's address and fills the
    /// client's memfd with its bytes. Returns (ret, errno).
    func map(_ ctx: IOMMUFD, _ c: Client, _ r: Request, machine: Machine) -> (Int64, Int32) {
        let page = Self.page
        // The client's kernel already refused what no mmap can map (a zero or huge length).
        guard r.address % page == 0, r.length > 0, r.length <= 1 << 40 else { return (0, EINVAL) }
        let size = (r.length + page - 1) & ~(page - 1)
        // The client just got this range from its kernel: whatever the shadow still has
        // there is stale.
        try? c.mm.munmap(address: r.address, length: Int(size))
        let result = ctx.withCaller(c.mm, memory: c.memory) { () -> Result<UInt64, Errno> in
            do throws(Errno) {
                return .success(try ctx.mmap(length: Int(r.length), prot: r.prot, shared: r.shared, offset: r.offset,
                                             at: r.address))
            } catch {
                return .failure(error)
            }
        }
        let va: UInt64
        switch result {
        case .success(let v): va = v
        case .failure(let e): return (0, e.rawValue)
        }
        let file = r.memfd >= 0 ? c.process.duplicate(r.memfd) : -1
        guard file >= 0 else {
            try? c.mm.munmap(address: va, length: Int(size))
            return (0, EFAULT)
        }
        defer { close(file) }
        var pages: Set<UInt64> = []
        for i in 0..<size / page {
            guard let pa = c.mm.physicalAddress(of: va + i * page),
                  pwrite(file, machine.memory.pointer(pa), Int(page), off_t(i * page)) == Int(page) else {
                try? c.mm.munmap(address: va, length: Int(size))
                return (0, EFAULT)
            }
            pages.insert(va + i * page)
        }
        lock.withLock { mappings.append(Mapping(pid: c.pid, start: va, pages: pages)) }
        return (0, 0)
    }

    /// `MUNMAP` of `[address, address+length)`, which the client has just unmapped: the
    /// same range goes from the shadow. Returns 1 when nothing is left of the mapping the
    /// range was in (or the client has no such mapping: a forked child's copy), else 0.
    func unmap(_ c: Client, address: UInt64, length: UInt64) -> (Int64, Int32) {
        let page = Self.page
        guard address % page == 0, length > 0, !address.addingReportingOverflow(length).overflow else {
            return (0, EINVAL)
        }
        let end = (address + length + page - 1) & ~(page - 1)
        return lock.withLock { () -> (Int64, Int32) in
        guard let i = mappings.firstIndex(where: { m in
            m.pid == c.pid && m.pages.contains { $0 >= address && $0 < end }
        }) else { return (1, 0) }
        try? c.mm.munmap(address: address, length: Int(end - address))
        mappings[i].pages = mappings[i].pages.filter { $0 < address || $0 >= end }
        guard mappings[i].pages.isEmpty else { return (0, 0) }
        mappings.remove(at: i)
        return (1, 0)
        }
    }

    /// The client exited: its shadow's exit removes its mappings.
    func forget(pid: Int32) {
        lock.withLock { mappings.removeAll { $0.pid == pid } }
    }

}
