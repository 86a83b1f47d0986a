import IOMMUCore
import IOMMUDrivers

extension MSMGPU {
    // MARK: contexts

    /// Opens a process's GPU context (`msm_context_init` and its VM):
    /// - per-process tables: `msm_iommu_pagetable_create` (get the TTBR1 configuration,
    ///   clone it, allocate an `ARM_64_LPAE_S1` table; the first table enables TTBR0 walks
    ///   with `set_ttbr0_cfg`, a count of live tables is kept under `init_lock`);
    /// - private PASIDs: `iommu_sva_alloc_pasid`, which installs the PASID through the
    ///   backdoor;
    /// - one global table: nothing (the context uses the GPU domain).
    /// - Parameters:
    ///   - name: the process's name, as faults report it.
    ///   - vmBind: the process manages its VM (VM_BIND): page-size leaves only,
    ///     page-table pages preallocated before each map.
    /// - Throws: `ENODEV` (with a WARN, "No per-process page tables") when the SMMU did
    ///   not give the GPU a TTBR1 split; the table's or the SMMU's errno. Nothing stays
    ///   allocated on error.
    public func openContext(_ name: String, vmBind: Bool = true) throws(Errno) -> MSMContext {
        let seqno = lock.withLock { () -> Int in
            defer { nextContextSeqno += 1 }
            return nextContextSeqno
        }
        let space: MSMContext.Space
        switch variant {
        case .perProcess: space = .pagetable(try createPagetable(kernelManaged: !vmBind))
        case .privatePASID:
            guard let privatePASIDs else { throw .noDevice }
            calls.record("iommu_sva_alloc_pasid")
            space = .pasid(try privatePASIDs.allocPasid(domain, dev: gpu.device))
        case .globalTable: space = .global
        }
        let ctx = MSMContext(name: name, seqno: seqno, vmBind: vmBind, space: space)
        lock.withLock { contexts.append(ctx) }
        return ctx
    }

    /// `msm_iommu_pagetable_create(parent, kernel_managed)`.
    private func createPagetable(kernelManaged: Bool) throws(Errno) -> MSMPagetable {
        calls.record("adreno_smmu_priv.get_ttbr1_cfg")
        guard let priv = adrenoSMMU, let cookie = priv.cookie, let ttbr1 = priv.getTTBR1Cfg(cookie),
              ttbr1.quirks.contains(.armTTBR1) else {
            machine.recordWarning(Warning(function: "msm_iommu_pagetable_create", message: "No per-process page tables"))
            throw .noDevice
        }
        calls.record("alloc_io_pgtable_ops")
        let m = machine
        let pt = try MSMPagetable(ttbr1: ttbr1, kernelManaged: kernelManaged, memory: memory) { w in m.recordWarning(w) }
        try lock.withLock { () throws(Errno) in
            if pagetables == 0 {
                calls.record("adreno_smmu_priv.set_ttbr0_cfg(cfg)")
                do throws(Errno) { try priv.setTTBR0Cfg(cookie, pt.cfg) } catch {
                    calls.record("free_io_pgtable_ops")
                    pt.destroy()
                    throw error
                }
            }
            pagetables += 1
        }
        return pt
    }

    /// `msm_iommu_pagetable_destroy`: the last live table disables TTBR0 walks
    /// (`set_ttbr0_cfg(NULL)`), then the table is freed.
    private func destroyPagetable(_ pt: MSMPagetable) {
        lock.withLock {
            pagetables -= 1
            if pagetables == 0, let priv = adrenoSMMU, let cookie = priv.cookie {
                calls.record("adreno_smmu_priv.set_ttbr0_cfg(NULL)")
                try? priv.setTTBR0Cfg(cookie, nil)
            }
        }
        calls.record("free_io_pgtable_ops")
        pt.destroy()
    }

    /// Closes a process's GPU context. Its buffers and address space go once no queued
    /// submission uses them any more (a submission holds references to its buffers and
    /// its VM, as `msm_gem_submit` does): at once if none is queued, else when the last
    /// one retires. The buggy driver (``MSMDriverBugs/freeTableWhileCurrent``) frees the
    /// page table at once anyway, while the ring still has it current for the queued
    /// work (the buffers, held by the submission, stay mapped in the freed table).
    public func closeContext(_ ctx: MSMContext) {
        let (idle, early): (Bool, Bool) = lock.withLock {
            guard !ctx.closed else { return (false, false) }
            ctx.closed = true
            return (ctx.inFlight == 0, ctx.inFlight > 0 && bugs.contains(.freeTableWhileCurrent))
        }
        if idle {
            releaseBuffers(ctx)
            destroySpace(ctx)
        } else if early {
            destroySpace(ctx)
        }
    }

    /// Unmaps and frees a closed context's buffers (`msm_gem_vm_close`).
    func releaseBuffers(_ ctx: MSMContext) {
        let (space, buffers): (MSMContext.Space, [MSMBuffer]) = lock.withLock {
            let b = ctx.buffers
            ctx.buffers = []
            return (ctx.space, b)
        }
        for b in buffers { unmapBuffer(b, space: space) }
        for b in buffers { memory.free(b.physical, bytes: Int(b.size)) }
    }

    /// Destroys a closed context's address space: its table (`msm_iommu_pagetable_destroy`)
    /// or private PASID (`iommu_sva_free_pasid`). The ring forgets it as current.
    func destroySpace(_ ctx: MSMContext) {
        let space: MSMContext.Space = lock.withLock {
            let s = ctx.space
            ctx.space = .gone
            if currentContextSeqno == ctx.seqno { currentContextSeqno = 0 }
            return s
        }
        switch space {
        case .pagetable(let pt): destroyPagetable(pt)
        case .pasid(let pasid):
            calls.record("iommu_sva_free_pasid")
            try? privatePASIDs?.freePasid(domain, pasid: pasid)
        case .global, .gone: break
        }
    }

    /// The contexts opened and not yet destroyed.
    public var openContexts: [MSMContext] {
        lock.withLock { contexts.filter { if case .gone = $0.space { return false } else { return true } } }
    }

    // MARK: buffers

    /// A buffer of `bytes` (rounded up to 4 KiB) for `ctx`, mapped at `address` (VM_BIND
    /// lets the process choose) or where the driver puts it:
    /// - per-process tables: `msm_iommu_pagetable_map` into the process's table (a
    ///   VM_BIND VM first preallocates the table pages the range may need and gives back
    ///   what was not used);
    /// - private PASIDs: `iommu_sva_map` into the PASID's table;
    /// - one global table: `iommu_map_sgtable` into the GPU domain, at an address the
    ///   driver allocates there (a process cannot choose).
    /// - Throws: `EINVAL` for a closed context, a misaligned address, or a map that
    ///   failed (what was mapped is unmapped again); `ENOMEM`.
    @discardableResult
    public func allocBuffer(_ ctx: MSMContext, bytes: Int, at address: IOVA? = nil) throws(Errno) -> MSMBuffer {
        guard bytes > 0 else { throw .invalidArgument }
        let size = (UInt64(bytes) + 4095) & ~4095
        let space: MSMContext.Space = try lock.withLock { () throws(Errno) -> MSMContext.Space in
            guard !ctx.closed else { throw .invalidArgument }
            return ctx.space
        }
        let va: IOVA
        if case .global = space {
            va = lock.withLock { () -> IOVA in
                defer { nextKernelAddress += size }
                return nextKernelAddress
            }
        } else if let address {
            guard address.isAligned(to: 4096) else { throw .invalidArgument }
            va = address
        } else {
            va = lock.withLock { () -> IOVA in
                defer { ctx.nextAddress += size }
                return ctx.nextAddress
            }
        }
        // Large buffers are 2 MiB aligned (as huge folios would back them), so a table
        // that allows blocks can use them.
        let pa = try memory.allocContiguous(bytes: Int(size), alignment: size >= 2 << 20 ? 2 << 20 : 4096)
        do throws(Errno) {
            switch space {
            case .pagetable(let pt): try mapPagetable(pt, vmBind: ctx.vmBind, iova: va, paddr: pa, size: size)
            case .pasid(let pasid):
                calls.record("iommu_sva_map")
                try privatePASIDs?.map(pasid: pasid, iova: va, paddr: pa, size: size, prot: [.read, .write])
            case .global:
                calls.record("iommu_map_sgtable")
                try iommu.mapSG(domain, iova: va, segments: [(pa, size)], prot: [.read, .write])
            case .gone: throw .invalidArgument
            }
        } catch {
            memory.free(pa, bytes: Int(size))
            throw error
        }
        let b = MSMBuffer(gpuAddress: va, size: size, physical: pa, context: ctx)
        lock.withLock { ctx.buffers.append(b) }
        return b
    }

    /// `msm_iommu_pagetable_map` for one physically contiguous segment: page sizes as
    /// `iommu_pgsize` picks them from the table's bitmap, `map_pages` of the io-pgtable;
    /// on an error what was mapped is unmapped (with the flush) and the call is `EINVAL`.
    /// A VM_BIND map runs between `prealloc_allocate` and `prealloc_cleanup`.
    private func mapPagetable(_ pt: MSMPagetable, vmBind: Bool, iova: IOVA, paddr: PhysicalAddress,
                              size: UInt64) throws(Errno) {
        guard let table = pt.pgtable else { throw .invalidArgument }
        if vmBind {
            calls.record("msm_iommu_pagetable_prealloc_allocate")
            pt.prealloc = try MSMPrealloc(count: MSMPrealloc.count(iova: iova, length: size), memory: memory)
        }
        defer {
            if let p = pt.prealloc {
                p.cleanup(memory)
                pt.prealloc = nil
            }
        }
        var mapped: UInt64 = 0
        while mapped < size {
            let (pgsize, count) = iommuPageSize(iova: iova + mapped, paddr: paddr + mapped, size: size - mapped,
                                                pageSizes: pt.pgsizeBitmap)
            calls.record("io_pgtable_ops.map_pages")
            var done: UInt64 = 0
            do throws(Errno) {
                try table.mapPages(iova: iova + mapped, paddr: paddr + mapped, pgsize: pgsize, pgcount: count,
                                   prot: [.read, .write], mapped: &done)
            } catch {
                mapped += done
                if mapped > 0 { _ = unmapPagetable(pt, iova: iova, size: mapped, current: true) }
                throw .invalidArgument
            }
            mapped += done
        }
    }

    /// `msm_iommu_pagetable_unmap`: `unmap_pages` of the io-pgtable with no gather, page
    /// sizes as `iommu_pgsize` picks them; a chunk that unmaps nothing makes the call
    /// `EINVAL` but the loop goes on a page further, so nothing is left dangling; then
    /// `iommu_flush_iotlb_all` of the GPU domain: every table shares ASID 0, so that
    /// flush is what removes the table's entries from the TLB, current or not. (The
    /// buggy driver skips the flush when `current` is false.)
    func unmapPagetable(_ pt: MSMPagetable, iova: IOVA, size: UInt64, current: Bool) -> Errno? {
        guard let table = pt.pgtable else { return .invalidArgument }
        var result: Errno?
        var at = iova
        var left = size
        while left > 0 {
            let (pgsize, count) = iommuPageSize(iova: at, paddr: PhysicalAddress(identity: at), size: left,
                                                pageSizes: pt.pgsizeBitmap)
            calls.record("io_pgtable_ops.unmap_pages")
            var gather: IOTLBGather? = nil
            var n = table.unmapPages(iova: at, pgsize: pgsize, pgcount: count, gather: &gather)
            if n == 0 {
                result = .invalidArgument
                n = 4096
            }
            at = at &+ n
            left -= min(n, left)
        }
        if current || !bugs.contains(.skipFlushForNonCurrentTable) {
            calls.record("iommu_flush_iotlb_all")
            iommu.flushIOTLBAll(domain)
        }
        return result
    }

    /// Unmaps `size` bytes at `iova` from `ctx`'s address space (a VM_BIND unmap; a range
    /// inside a buffer is allowed, since VM_BIND tables have page-size leaves only).
    /// - Returns: nil on success; `EINVAL` if part of the range was not mapped (the rest
    ///   was unmapped) or the context has no table of its own; `ENOENT` for an unknown
    ///   private PASID.
    @discardableResult
    public func unmap(_ ctx: MSMContext, iova: IOVA, size: UInt64) -> Errno? {
        let (space, current) = lock.withLock { (ctx.space, ctx.seqno == currentContextSeqno) }
        switch space {
        case .pagetable(let pt): return unmapPagetable(pt, iova: iova, size: size, current: current)
        case .pasid(let pasid):
            calls.record("iommu_sva_unmap")
            do throws(Errno) {
                let n = try privatePASIDs?.unmap(pasid: pasid, iova: iova, size: size) ?? 0
                return n == size ? nil : .invalidArgument
            } catch { return error }
        case .global:
            calls.record("iommu_unmap")
            return iommu.unmap(domain, iova: iova, size: size) == size ? nil : .invalidArgument
        case .gone: return .invalidArgument
        }
    }

    /// Unmaps a buffer from its context and frees its memory (`msm_gem_free_object`).
    public func freeBuffer(_ buffer: MSMBuffer) {
        guard let ctx = buffer.context else { return }
        let space: MSMContext.Space? = lock.withLock {
            guard let i = ctx.buffers.firstIndex(where: { $0 === buffer }) else { return nil }
            ctx.buffers.remove(at: i)
            return ctx.space
        }
        guard let space else { return }
        unmapBuffer(buffer, space: space)
        memory.free(buffer.physical, bytes: Int(buffer.size))
    }

    private func unmapBuffer(_ b: MSMBuffer, space: MSMContext.Space) {
        guard b.mapped else { return }
        b.mapped = false
        switch space {
        case .pagetable(let pt):
            let current = lock.withLock { b.context.map { $0.seqno == currentContextSeqno } ?? false }
            _ = unmapPagetable(pt, iova: b.gpuAddress, size: b.size, current: current)
        case .pasid(let pasid):
            calls.record("iommu_sva_unmap")
            _ = try? privatePASIDs?.unmap(pasid: pasid, iova: b.gpuAddress, size: b.size)
        case .global:
            calls.record("iommu_unmap")
            _ = iommu.unmap(domain, iova: b.gpuAddress, size: b.size)
        case .gone: break
        }
    }

    /// What the CPU reads in `buffer` (its first `count` bytes; all by default).
    public func read(_ buffer: MSMBuffer, count: Int? = nil) -> [UInt8] {
        // The buffer's frames are its own and inside memory: the unchecked copy is safe.
        memory.uncheckedBytes(at: buffer.physical, count: max(0, min(count ?? Int(buffer.size), Int(buffer.size))))
    }

    /// The CPU writes `bytes` at the start of `buffer`.
    public func write(_ buffer: MSMBuffer, _ bytes: [UInt8]) {
        Array(bytes.prefix(Int(buffer.size))).withUnsafeBytes { memory.uncheckedWrite(buffer.physical, from: $0) }
    }
}
