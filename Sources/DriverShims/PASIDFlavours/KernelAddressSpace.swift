import IOMMUCore

/// The kernel's address space (`init_mm`) as the supervisor-SVA variant sees it: an
/// x86-64 CPU page table in physical memory whose pages are supervisor-only (U/S = 0),
/// with a direct map and a vmalloc area.
///
/// Addresses are written without the canonical sign extension (the model's x86-64
/// format has 48 input bits): the direct map starts at `0x8880_0000_0000`
/// (`page_offset_base` 0xffff888000000000), vmalloc at `0xc900_0000_0000`
/// (`VMALLOC_START` 0xffffc90000000000) — both in PML4 slots 256–511, the kernel half.
///
/// Changing a mapping flushes only the CPU TLBs (`flush_tlb_kernel_range`): there is no
/// notifier, because the kernel never hooked kernel-range flushes into the IOMMU. That is
/// the hazard the supervisor SVA proposal carried.
///
/// Kernel virtual addresses are plain `UInt64`s, as user virtual addresses are; a device
/// under supervisor SVA uses one as its IOVA (`IOVA(rawValue: va)`).
public final class KernelAddressSpace: @unchecked Sendable {
    /// Start of the direct map (`page_offset_base`, sign extension dropped).
    public static let directMapBase: UInt64 = 0x8880_0000_0000
    /// Start of the vmalloc area (`VMALLOC_START`, sign extension dropped).
    public static let vmallocBase: UInt64 = 0xc900_0000_0000
    /// The protection of kernel data pages: read/write, supervisor only, not executable.
    public static let pageProt: IOMMUProt = [.read, .write, .priv, .noexec]

    /// The machine's memory.
    public let memory: PhysicalMemory
    /// The CPU page table (`init_mm.pgd`, `swapper_pg_dir`).
    public let pageTable: IOPageTable

    private let lock = Lock()
    private var nextVmalloc = KernelAddressSpace.vmallocBase
    private var vmaps: [UInt64: [PhysicalAddress]] = [:]
    private var cpuFlushes = 0

    /// An empty kernel page table (4 levels).
    /// - Throws: `ENOMEM`.
    public init(memory: PhysicalMemory) throws(Errno) {
        self.memory = memory
        pageTable = try IOPageTable(format: .x86_64(levels: 4), memory: memory)
    }

    deinit {
        for frames in vmaps.values { for f in frames { memory.freeFrame(f) } }
        pageTable.destroy()
    }

    /// `flush_tlb_kernel_range` calls so far: CPU TLB flushes, none of which reach an
    /// IOMMU.
    public var cpuTLBFlushes: Int { lock.withLock { cpuFlushes } }

    /// The direct-map address of physical `pa` (`__va(pa)`).
    public static func directMapAddress(of pa: PhysicalAddress) -> UInt64 { directMapBase + pa.rawValue }

    /// Maps `[pa, pa + bytes)` into the direct map (page aligned), as the boot-time
    /// linear map does; returns its kernel VA.
    /// - Throws: `EINVAL` misaligned or empty; `EEXIST` already mapped; `ENOMEM`.
    public func mapDirect(_ pa: PhysicalAddress, bytes: Int) throws(Errno) -> UInt64 {
        try lock.withLock { () throws(Errno) -> UInt64 in
            guard bytes > 0, pa.isAligned(to: 4096), bytes & 0xFFF == 0 else { throw .invalidArgument }
            let va = Self.directMapAddress(of: pa)
            try pageTable.map(iova: IOVA(rawValue: va), paddr: pa, size: UInt64(bytes), prot: Self.pageProt, pageSizes: 4096)
            return va
        }
    }

    /// `vmalloc(pages * PAGE_SIZE)`: fresh zeroed frames mapped at the next free range of
    /// the vmalloc area.
    /// - Throws: `EINVAL` for `pages` < 1; `ENOMEM` (nothing stays allocated).
    public func vmalloc(pages: Int) throws(Errno) -> UInt64 {
        try lock.withLock { () throws(Errno) -> UInt64 in
            guard pages >= 1 else { throw .invalidArgument }
            var frames: [PhysicalAddress] = []
            let va = nextVmalloc
            do throws(Errno) {
                for i in 0..<pages {
                    let f = try memory.allocFrame()
                    frames.append(f)
                    try pageTable.map(iova: IOVA(rawValue: va + UInt64(i) * 4096), paddr: f, size: 4096, prot: Self.pageProt)
                }
            } catch {
                var gather = IOTLBGather()
                _ = pageTable.unmap(iova: IOVA(rawValue: va), size: UInt64(frames.count) * 4096, gather: &gather)
                gather.releaseFreelist(to: memory)
                for f in frames { memory.freeFrame(f) }
                throw error
            }
            // One guard page between areas, as vmalloc leaves.
            nextVmalloc = va + UInt64(pages + 1) * 4096
            vmaps[va] = frames
            return va
        }
    }

    /// Moves one page of a vmalloc area to a fresh frame and frees the old one — what a
    /// `vfree` followed by a `vmalloc` that lands at the same address does, or a
    /// `vmap` of new pages — then flushes the CPU TLB for the page. No IOMMU hears of it.
    /// - Returns: (old frame, new frame).
    /// - Throws: `EINVAL` if `va` is not a page of a live vmalloc area; `ENOMEM` (nothing
    ///   changes).
    @discardableResult
    public func remapVmallocPage(_ va: UInt64) throws(Errno) -> (old: PhysicalAddress, new: PhysicalAddress) {
        try lock.withLock { () throws(Errno) -> (old: PhysicalAddress, new: PhysicalAddress) in
            let page = va & ~0xFFF
            guard let (base, frames) = vmaps.first(where: { page >= $0.key && page < $0.key + UInt64($0.value.count) * 4096 })
            else { throw .invalidArgument }
            let index = Int((page - base) / 4096)
            let iova = IOVA(rawValue: page)
            let new = try memory.allocFrame()
            let old = frames[index]
            var gather = IOTLBGather()
            _ = pageTable.unmap(iova: iova, size: 4096, gather: &gather)
            do throws(Errno) {
                try pageTable.map(iova: iova, paddr: new, size: 4096, prot: Self.pageProt)
            } catch {
                _ = try? pageTable.map(iova: iova, paddr: old, size: 4096, prot: Self.pageProt)
                memory.freeFrame(new)
                throw error
            }
            gather.releaseFreelist(to: memory)
            vmaps[base]![index] = new
            memory.freeFrame(old)
            cpuFlushes += 1
            return (old, new)
        }
    }

    /// `vfree(va)`: unmaps the area, flushes the CPU TLB and frees its frames.
    /// - Throws: `EINVAL` if `va` does not start a live vmalloc area.
    public func vfree(_ va: UInt64) throws(Errno) {
        try lock.withLock { () throws(Errno) in
            guard let frames = vmaps.removeValue(forKey: va) else { throw .invalidArgument }
            var gather = IOTLBGather()
            _ = pageTable.unmap(iova: IOVA(rawValue: va), size: UInt64(frames.count) * 4096, gather: &gather)
            gather.releaseFreelist(to: memory)
            cpuFlushes += 1
            for f in frames { memory.freeFrame(f) }
        }
    }

    /// The frame `va` maps to now, nil if unmapped.
    public func physicalAddress(of va: UInt64) -> PhysicalAddress? {
        let pa = pageTable.iovaToPhys(IOVA(rawValue: va))
        return pa == 0 ? nil : pa
    }

    /// Kernel store through the CPU (a supervisor walk of the table).
    /// - Throws: `EFAULT` if any page is unmapped.
    public func write(_ va: UInt64, _ bytes: [UInt8]) throws(Errno) {
        var done = 0
        while done < bytes.count {
            let a = va + UInt64(done)
            let n = min(bytes.count - done, Int(4096 - (a & 0xFFF)))
            guard let pa = physicalAddress(of: a) else { throw .badAddress }
            try memory.write(pa, Array(bytes[done..<done + n]))
            done += n
        }
    }

    /// Kernel load through the CPU.
    /// - Throws: `EFAULT` if any page is unmapped.
    public func read(_ va: UInt64, count: Int) throws(Errno) -> [UInt8] {
        var out: [UInt8] = []
        var done = 0
        while done < count {
            let a = va + UInt64(done)
            let n = min(count - done, Int(4096 - (a & 0xFFF)))
            guard let pa = physicalAddress(of: a) else { throw .badAddress }
            out += try memory.bytes(at: pa, count: n)
            done += n
        }
        return out
    }
}
