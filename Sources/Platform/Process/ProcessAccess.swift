extension Process {
    /// Resolves a CPU fault: `handle_mm_fault`. Finds the VMA, checks it allows the
    /// access and, if the page has no PTE, maps a page (a fresh zeroed frame on first
    /// touch) with user permission and the VMA's protection. A fault on a page that is
    /// already mapped with enough permission is spurious and succeeds.
    /// - Throws: `EFAULT` if no VMA covers `address`, the VMA forbids the access or the
    ///   mm is exiting (the kernel's `VM_FAULT_SIGSEGV`); `ENOMEM` if memory runs out.
    public func handleFault(address: UInt64, write: Bool, exec: Bool = false) throws(Errno) {
        try lock.withLock { () throws(Errno) in try faultLocked(address: address, write: write, exec: exec) }
    }

    /// The index of the VMA holding `address`: a binary search of the sorted,
    /// non-overlapping ``vmas`` (every pin and fault starts here). Lock held.
    @inline(__always)
    func vmaIndexLocked(containing address: UInt64) -> Int? {
        var lo = 0, hi = vmas.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if vmas[mid].end <= address { lo = mid + 1 } else { hi = mid }
        }
        return lo < vmas.count && vmas[lo].start <= address ? lo : nil
    }

    func faultLocked(address: UInt64, write: Bool, exec: Bool) throws(Errno) {
        let f = "handle_mm_fault"
        guard !exiting else { throw .badAddress.from(f, "pid \(pid) is exiting") }
        guard let index = vmaIndexLocked(containing: address) else {
            throw .badAddress.from(f, "0x\(String(address, radix: 16)) is in no mapping of pid \(pid)")
        }
        let vma = vmas[index]
        guard let prot = Self.pteProt(vma.prot) else { throw .badAddress.from(f, "0x\(String(address, radix: 16)) is PROT_NONE") }
        // A driver's frames are all mapped when the mapping is made; nothing to fault in.
        if vma.ops != nil && pages[address & ~(Self.pageSize - 1)] == nil {
            throw .badAddress.from(f, "0x\(String(address, radix: 16)) is not mapped by its driver")
        }
        if write && !vma.prot.contains(.write) { throw .badAddress.from(f, "a write to read-only 0x\(String(address, radix: 16))") }
        if exec && !vma.prot.contains(.exec) { throw .badAddress.from(f, "an instruction fetch at non-executable 0x\(String(address, radix: 16))") }
        let va = address & ~(Self.pageSize - 1)
        if pageTable.iovaToPhys(IOVA(rawValue: va)) != 0 { return }
        let existing = pages[va]
        let pa: PhysicalAddress
        if let existing {
            pa = existing
        } else if let file = vma.file {
            // A shared file page comes from the page cache, with a reference for this mm;
            // a page at or past the end of the file is SIGBUS, reported as EFAULT.
            do { pa = try file.getPage(vma.pgoff + (va - vma.start) / Self.pageSize) } catch {
                throw error == .noMemory ? .noMemory : .badAddress
            }
        } else {
            pa = try memory.allocFrame()
        }
        var mapped: UInt64 = 0
        do {
            try pageTable.mapPages(iova: IOVA(rawValue: va), paddr: pa, pgsize: Self.pageSize, pgcount: 1, prot: prot,
                                   mapped: &mapped)
        } catch {
            if existing == nil { memory.freeFrame(pa) }
            throw error
        }
        pages[va] = pa
    }

    /// Maps the caller's frame `pa` at `address`: `vm_insert_page`. The mm takes its own
    /// reference to the frame (`get_page`) and drops it when the page goes, as for any
    /// other page of the mm; the caller keeps whatever reference it held. The PTE gets
    /// the VMA's protection. Used where a page must be a given frame (a frame of a
    /// physically contiguous run standing for a huge page).
    /// - Throws: `EFAULT` if no VMA covers `address` or the mm is exiting; `EINVAL` for a
    ///   misaligned address or a `PROT_NONE` VMA; `EBUSY` if the page is already
    ///   populated; `EFAULT` if `pa` is not an allocated frame; `ENOMEM` if a page-table
    ///   page cannot be allocated. Nothing changes on error.
    public func insertPage(address: UInt64, frame pa: PhysicalAddress) throws(Errno) {
        let f = "vm_insert_page"
        guard address & (Self.pageSize - 1) == 0, pa.isAligned(to: Self.pageSize) else {
            throw .invalidArgument.from(f, "address 0x\(String(address, radix: 16)) or frame \(pa) is not page aligned")
        }
        try lock.withLock { () throws(Errno) in
            guard !exiting, let vma = vmas.first(where: { $0.start <= address && address < $0.end }) else {
                throw .badAddress.from(f, "0x\(String(address, radix: 16)) is in no mapping of pid \(pid)")
            }
            guard let prot = Self.pteProt(vma.prot) else { throw .invalidArgument.from(f, "0x\(String(address, radix: 16)) is PROT_NONE") }
            guard pages[address] == nil else { throw .busy.from(f, "0x\(String(address, radix: 16)) is already populated") }
            try memory.getFrame(pa)
            var mapped: UInt64 = 0
            do throws(Errno) {
                try pageTable.mapPages(iova: IOVA(rawValue: address), paddr: pa, pgsize: Self.pageSize, pgcount: 1, prot: prot,
                                       mapped: &mapped)
            } catch {
                memory.putFrame(pa)
                throw error
            }
            pages[address] = pa
        }
    }

    /// `pin_user_pages(address, 1, FOLL_PIN | FOLL_LONGTERM [| FOLL_WRITE])` on one page:
    /// faults the page in as ``handleFault(address:write:exec:)`` does and, under the same
    /// lock (so no munmap can slip in between), takes a frame reference. The frame then
    /// outlives `munmap` and ``exit()`` until the caller drops the pin with
    /// ``PhysicalMemory/putFrame(_:)`` (`unpin_user_page`).
    /// - Returns: the physical address of the page's frame.
    /// - Throws: `EFAULT` if no VMA covers `address`, the VMA forbids the access
    ///   (`PROT_NONE`, or a write to a read-only VMA) or the mm is exiting; `ENOMEM` if
    ///   the page cannot be allocated. Nothing is pinned on error.
    public func pinUserPage(address: UInt64, write: Bool) throws(Errno) -> PhysicalAddress {
        try lock.withLock { () throws(Errno) -> PhysicalAddress in
            let va = address & ~(Self.pageSize - 1)
            // Fast path, a page already present: the same VMA checks as faultLocked, then
            // the frame straight from the PTE. Every PTE of this table is installed
            // together with its ``pages`` entry (fault, mprotect, fork), so a present PTE
            // holds exactly the frame the rmap would give, without a hash lookup.
            if !exiting, let i = vmaIndexLocked(containing: address), !vmas[i].prot.isEmpty,
               !write || vmas[i].prot.contains(.write) {
                let present = pageTable.iovaToPhys(IOVA(rawValue: va))
                if present != 0 {
                    try memory.getFrame(present)
                    return present
                }
            }
            try faultLocked(address: address, write: write, exec: false)
            guard let pa = pages[va] else { throw .badAddress.from("pin_user_pages", "0x\(String(va, radix: 16)) has no page") }
            try memory.getFrame(pa)
            return pa
        }
    }

    /// Translates a user access as the CPU would (a user-mode walk that sets A/D),
    /// faulting the page in when the walk fails. Lock held.
    func translateLocked(_ va: UInt64, write: Bool) throws(Errno) -> PhysicalAddress {
        // Once torn down the root frame is free memory: never walk it.
        guard !exiting else { throw .badAddress.from("copy_user", "pid \(pid) is exiting") }
        let access: WalkAccess = write ? [.write, .user] : [.read, .user]
        for attempt in 0..<2 {
            let r = IOPageTable.walk(memory: memory, format: pageTable.format, root: pageTable.root, iova: IOVA(rawValue: va),
                                     access: access, setAccessedDirty: true)
            if case .translated(let pa, _, _) = r { return pa }
            if attempt == 0 { try faultLocked(address: va, write: write, exec: false) }
        }
        throw .badAddress.from("copy_user", "0x\(String(va, radix: 16)) does not translate after a fault")
    }

    /// Reads `count` bytes at user address `address` the way a CPU load would
    /// (`copy_from_user` on this mm), faulting pages in on first touch.
    /// - Throws: `EFAULT` if any byte is outside a readable VMA; `EINVAL` for a negative
    ///   count; `ENOMEM` if a page cannot be allocated.
    public func readMemory(address: UInt64, count: Int) throws(Errno) -> [UInt8] {
        guard count >= 0 else { throw .invalidArgument.from("copy_from_user", "negative count \(count)") }
        guard address.addingReportingOverflow(UInt64(count)).overflow == false else {
            throw .badAddress.from("copy_from_user", "0x\(String(address, radix: 16)) + \(count) overflows")
        }
        var out: [UInt8] = []
        // Reserve what a short read needs only: a huge count may fail at its first page.
        out.reserveCapacity(min(count, 1 << 16))
        var va = address
        var left = count
        while left > 0 {
            let n = min(left, Int(Self.pageSize - (va & (Self.pageSize - 1))))
            try lock.withLock { () throws(Errno) in
                let pa = try translateLocked(va, write: false)
                out.append(contentsOf: memory.uncheckedBytes(at: pa, count: n))
            }
            va += UInt64(n)
            left -= n
        }
        return out
    }

    /// Writes `bytes` at user address `address` the way CPU stores would
    /// (`copy_to_user` on this mm), faulting pages in and setting their dirty bits.
    /// - Throws: `EFAULT` if any byte is outside a writable VMA (bytes before it are
    ///   written, as with a partial `copy_to_user`); `ENOMEM` if a page cannot be
    ///   allocated.
    public func writeMemory(address: UInt64, bytes: [UInt8]) throws(Errno) {
        guard address.addingReportingOverflow(UInt64(bytes.count)).overflow == false else {
            throw .badAddress.from("copy_to_user", "0x\(String(address, radix: 16)) + \(bytes.count) overflows")
        }
        var va = address
        var done = 0
        while done < bytes.count {
            let n = min(bytes.count - done, Int(Self.pageSize - (va & (Self.pageSize - 1))))
            try lock.withLock { () throws(Errno) in
                let pa = try translateLocked(va, write: true)
                bytes.withUnsafeBytes { memory.uncheckedWrite(pa, from: UnsafeRawBufferPointer(rebasing: $0[done..<done + n])) }
            }
            va += UInt64(n)
            done += n
        }
    }

    /// The physical address `va` maps to right now, or nil if it has no PTE
    /// (for tests and the SVA model; no fault is taken).
    public func physicalAddress(of va: UInt64) -> PhysicalAddress? {
        lock.withLock {
            let pa = pageTable.iovaToPhys(IOVA(rawValue: va))
            return pa == 0 ? nil : pa
        }
    }
}
