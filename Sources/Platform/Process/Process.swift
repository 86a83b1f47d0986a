/// A CPU address space: the model of a `struct mm_struct` with its CPU page table.
///
/// The page table is an ``IOPageTable`` in the format of the machine's architecture
/// (``CPUArchitecture``: ``PageTableFormat/x86_64(levels:)`` or
/// ``PageTableFormat/arm64CPU``) in the machine's physical memory; SVA points an IOMMU at
/// this very table
/// (``pgdPhysical``), so what the CPU sees and what a device sees through the PASID are
/// one set of entries. Anonymous memory is populated lazily, on the first touch or by
/// ``handleFault(address:write:exec:)``, as `handle_mm_fault` does. Changes that take
/// translations away (``munmap(address:length:)``, ``mprotect(address:length:prot:)``)
/// fire the registered ``MMUNotifier``s before the old pages are released, and
/// ``exit()`` fires `release` before tearing the address space down. The mm holds one
/// reference on each of its frames and drops it (``PhysicalMemory/putFrame(_:)``) when
/// the page goes; a frame pinned with ``pinUserPage(address:write:)`` stays allocated,
/// with its contents, until the pin is dropped too.
///
/// Thread-safe: one lock guards the VMAs, the pages and the table (the model of
/// `mmap_lock` plus the page-table lock); notifiers are called with it released.
public final class Process: @unchecked Sendable {
    /// The machine's memory, where the page table and the process's pages live.
    public let memory: PhysicalMemory
    /// Process ID (`task->pid`), for traces and the SVA bookkeeping.
    public let pid: Int32
    /// The CPU architecture, which gave the page table its format.
    public let architecture: CPUArchitecture
    /// The CPU page table (`mm->pgd`).
    public let pageTable: IOPageTable

    package let lock = Lock()
    /// Sorted, non-overlapping mappings (`mm->mmap` / the maple tree).
    var vmas: [VMA] = []
    /// Page-aligned VA → frame of every populated page, mapped or not (a `PROT_NONE`
    /// page keeps its frame while its PTE is gone): the model's rmap.
    var pages: [UInt64: PhysicalAddress] = [:]
    var notifiers: [any MMUNotifier] = []
    var exiting = false
    var exited = false
    /// The mm's IOMMU data (`mm->iommu_mm`): its SVA PASID and SVA domains, nil until
    /// the first `iommu_sva_bind_device`. Written under ``lock`` by the SVA core; the
    /// platform sees it only as ``ProcessIOMMUData``.
    package var iommuMM: (any ProcessIOMMUData)?
    /// The descriptor table (`current->files`): open memfds by descriptor number.
    var files: [Int32: Memfd] = [:]
    /// The owner of this mm's contents when they live outside the model (see
    /// ``ProcessPager``); under ``lock``.
    weak var pagerStorage: (any ProcessPager)?

    /// Creates an empty address space with its own `levels`-level page table in the
    /// format of `architecture` (`mm_alloc` + `pgd_alloc`).
    /// - Throws: `EINVAL` for a level count the architecture has no paging mode for
    ///   (x86-64: 4 or 5; arm64: 4); `ENOMEM` if the top-level table cannot be allocated.
    public init(memory: PhysicalMemory, pid: Int32, architecture: CPUArchitecture = .x86_64,
                levels: Int = 4) throws(Errno) {
        guard let format = architecture.pageTableFormat(levels: levels) else {
            throw .invalidArgument.from("mm_alloc", "\(architecture) paging has no \(levels)-level mode")
        }
        self.memory = memory
        self.pid = pid
        self.architecture = architecture
        pageTable = try IOPageTable(format: format, memory: memory)
    }

    deinit {
        // The last reference is the last mmdrop: the PASID goes back (mm_pasid_drop).
        iommuMM?.mmDropped()
        // An address space dropped without exit() still drops its page references.
        for (_, pa) in pages { memory.putFrame(pa) }
        pageTable.destroy()
    }

    /// Physical address of the top-level table: `__pa(mm->pgd)`, what CR3 (TTBR0 on
    /// arm64) and an SVA PASID entry's first-stage pointer (an SMMU CD's TTB0) hold.
    public var pgdPhysical: PhysicalAddress { pageTable.root }

    /// End of user space (`TASK_SIZE`): on x86-64 the lower half of the canonical range,
    /// 2^47 with 4 levels and 2^56 with 5; on arm64 all of TTBR0's 2^48.
    public var userLimit: UInt64 {
        let vaBits = UInt64(pageTable.format.vaBits)
        return architecture == .arm64 ? 1 << vaBits : 1 << (vaBits - 1)
    }

    /// Whether ``exit()`` has started (`mm->mm_users` reached zero).
    public var isExiting: Bool { lock.withLock { exiting } }
    /// Whether ``exit()`` has finished tearing the address space down.
    public var hasExited: Bool { lock.withLock { exited } }

    /// Adds `notifier` to the mm: `mmu_notifier_register`. Returns false, registering
    /// nothing, once the mm is exiting (the kernel refuses a dead mm).
    @discardableResult
    public func registerNotifier(_ notifier: any MMUNotifier) -> Bool {
        lock.withLock {
            guard !exiting else { return false }
            if !notifiers.contains(where: { $0 === notifier }) { notifiers.append(notifier) }
            return true
        }
    }

    /// Removes `notifier`: `mmu_notifier_unregister`. Unknown notifiers are ignored.
    public func unregisterNotifier(_ notifier: any MMUNotifier) {
        lock.withLock { notifiers.removeAll { $0 === notifier } }
    }

    /// Tears the address space down, as the last `mmput` does (`exit_mmap`): first every
    /// notifier's `release` (`mmu_notifier_release`: SVA users stop DMA into the mm while
    /// its table is intact), then the mm drops its reference on every page (pinned pages
    /// stay allocated until unpinned) and frees every page-table page.
    /// Finally the mm's SVA PASID is released (`mm_pasid_drop`), or, while SVA domains
    /// still hold the mm (`mmgrab`), when the last of them is freed. Idempotent.
    public func exit() {
        let toRelease: [any MMUNotifier]? = lock.withLock {
            guard !exiting else { return nil }
            exiting = true
            return notifiers
        }
        guard let toRelease else { return }
        for n in toRelease { n.release(self) }
        // exit_files: the descriptors close after the mm is gone; a file still mapped
        // elsewhere or pinned by iommufd lives on through those references.
        let (closing, driverMappings): ([Int32: Memfd], [any VMAOperations]) = lock.withLock {
            for (_, pa) in pages { memory.putFrame(pa) }
            pages = [:]
            let driverMappings = vmas.compactMap(\.ops)
            vmas = []
            notifiers = []
            pageTable.destroy()
            exited = true
            defer { files = [:] }
            return (files, driverMappings)
        }
        for ops in driverMappings { ops.close() }
        // The table's references are dropped here, outside the lock: a last reference
        // releases the file's page cache.
        _ = closing
        let mmData = lock.withLock { iommuMM }
        mmData?.mmExited()
    }

    /// Calls `invalidateRange` on every notifier for each `[start, end)`; lock not held.
    func notifyInvalidate(_ ranges: [(UInt64, UInt64)]) {
        guard !ranges.isEmpty else { return }
        let targets = lock.withLock { notifiers }
        for (start, end) in ranges {
            for n in targets { n.invalidateRange(self, start: start, end: end) }
        }
    }
}

/// A secondary MMU that mirrors a process's page table and must hear of every change:
/// `struct mmu_notifier_ops` (the SVA user is `iommu_mmuwrap`'s
/// `arch_invalidate_secondary_tlbs` + `release`).
public protocol MMUNotifier: AnyObject {
    /// Translations of `[start, end)` (end exclusive) changed or went away: flush them
    /// (`arch_invalidate_secondary_tlbs`). Called after the CPU page table is updated
    /// and before the old pages are freed.
    func invalidateRange(_ process: Process, start: UInt64, end: UInt64)
    /// The mm is exiting (`mmu_notifier_ops.release`): stop using it. Called before the
    /// page table is torn down.
    func release(_ process: Process)
}

/// The IOMMU layer's data on an mm (`mm->iommu_mm`: the SVA PASID and SVA domains), as the
/// mm itself sees it: a slot the IOMMU core fills, told when the address space exits and
/// when its last reference goes. Declared here so that the platform needs nothing of the
/// IOMMU above it.
package protocol ProcessIOMMUData: AnyObject {
    /// The mm exited (`mmput` → `exit_mmap`).
    func mmExited()
    /// The last reference to the mm went away (`__mmdrop`).
    func mmDropped()
}
