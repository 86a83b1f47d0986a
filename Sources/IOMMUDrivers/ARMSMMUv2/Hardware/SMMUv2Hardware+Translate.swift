import IOMMUCore

extension SMMUv2Hardware {
    /// Translates one request: stream matching (SMR), the S2CR's routing, then the
    /// context bank: the input range (TTBR0 below, TTBR1 above), the TLB under the
    /// bank's ASID, a stage-1 walk on a miss. A fault is recorded in the bank's syndrome
    /// registers and raises its interrupt; in stall mode the transaction then waits for
    /// RESUME (``takeResumeOutcome(streamID:)`` tells its client how it ended).
    ///
    /// The stream ID of a PCI function is its RID (the firmware's identity `iommu-map`).
    /// Allocation-free on the hit path: plain loads of unsafe state, no reference
    /// counting. The caller holds the unit's hardware lock.
    public func translate(_ r: TranslationRequest) -> TranslationResult {
        stats[0] &+= 1
        guard global[0] & SMMUv2Field.sCR0ClientPD == 0 else { return bypass(r) }
        let sid = Int(truncatingIfNeeded: r.rid.raw) & streamIDMask
        let match = streamMatch[sid]
        guard match != 0, match != Self.conflict else { return unmatched(r, sid: sid, conflict: match != 0) }
        let s2cr = s2crs[Int(truncatingIfNeeded: match) &- 1]
        let type = (s2cr >> 16) & 3
        guard type == SMMUv2Field.s2crTypeTranslate else {
            if type == SMMUv2Field.s2crTypeBypass { return bypass(r) }
            return globalFault(r, sid: sid, SMMUv2Field.gfsrICF, SMMUv2Fault.invalidContext)
        }
        let n = Int(truncatingIfNeeded: s2cr & 0xFF)
        guard n < config.contextBanks else {
            return globalFault(r, sid: sid, SMMUv2Field.gfsrICF, SMMUv2Fault.invalidContext)
        }
        let cb = banks + n
        guard cb.pointee.translating else {
            if cb.pointee.unsupportedContext { return globalFault(r, sid: sid, SMMUv2Field.gfsrICF, SMMUv2Fault.invalidContext) }
            return bypass(r)
        }
        if cb.pointee.stalled != nil && cb.pointee.sctlr & SMMUv2Field.sctlrHUPCF == 0 {
            return .fault(SMMUv2Fault.blockedBehindStall)
        }
        // Privileged unless the request says otherwise (S2CR.PRIVCFG "use the incoming").
        let privileged: Bool
        switch (s2cr >> 24) & 3 {
        case 2: privileged = false
        case 3: privileged = true
        default: privileged = r.privileged
        }
        let write = r.access.contains(.write)
        let va = r.address
        if let e = tlb.lookup(tag: cb.pointee.tag, iova: va) {
            let p = e.perms
            if (write && !p.contains(.write)) || (!privileged && p.contains(.priv))
                || (r.access.contains(.execute) && p.contains(.noexec)) {
                return contextFault(r, n, sid: sid, SMMUv2Field.fsrPF, level: 3, privileged: privileged)
            }
            return .translated(address: e.translate(va), length: e.pageSize &- va.offset(within: e.pageSize), cached: true)
        }
        return walk(r, n, sid: sid, privileged: privileged)
    }

    /// The TLB miss: the range, then the table walk, then a TLB fill or a fault.
    private func walk(_ r: TranslationRequest, _ n: Int, sid: Int, privileged: Bool) -> TranslationResult {
        let cb = banks[n]
        let va = r.address
        let range: SMMUv2InputRange
        if cb.lower.bits > 0, va.rawValue >> cb.lower.bits == 0 {
            range = cb.lower
        } else if cb.upper.bits > 0, ~va.rawValue >> cb.upper.bits == 0 {
            range = cb.upper
        } else {
            return contextFault(r, n, sid: sid, SMMUv2Field.fsrTF, level: 0, privileged: privileged)
        }
        guard range.enabled, let format = range.format else {
            return contextFault(r, n, sid: sid, SMMUv2Field.fsrTF, level: 0, privileged: privileged)
        }
        stats[1] &+= 1
        var access: WalkAccess = []
        if r.access.contains(.read) { access.insert(.read) }
        if r.access.contains(.write) { access.insert(.write) }
        if r.access.contains(.execute) { access.insert(.execute) }
        if !privileged { access.insert(.user) }
        switch IOPageTable.walk(memory: memory, format: format, root: range.root, iova: va, access: access,
                                setAccessedDirty: false) {
        case .translated(let pa, let size, let perms):
            tlb.insert(tag: cb.tag, iova: va, pageSize: size, pa: pa, perms: perms)
            return .translated(address: pa, length: size &- va.offset(within: size), cached: false)
        case .notPresent(let level):
            return contextFault(r, n, sid: sid, SMMUv2Field.fsrTF, level: 4 - level, privileged: privileged)
        case .accessFlag(let level):
            return contextFault(r, n, sid: sid, SMMUv2Field.fsrAFF, level: 4 - level, privileged: privileged)
        case .permission(let level):
            return contextFault(r, n, sid: sid, SMMUv2Field.fsrPF, level: 4 - level, privileged: privileged)
        }
    }

    /// An untranslated transaction: the output address is the input address.
    @inline(__always)
    private func bypass(_ r: TranslationRequest) -> TranslationResult {
        stats[3] &+= 1
        return .translated(address: PhysicalAddress(identity: r.address), length: 4096 &- r.address.offset(within: 4096),
                           cached: false)
    }

    /// No SMR (or several) matched: a conflict always faults; an unmatched stream faults
    /// when sCR0.USFCFG is set and bypasses otherwise.
    private func unmatched(_ r: TranslationRequest, sid: Int, conflict: Bool) -> TranslationResult {
        if conflict { return globalFault(r, sid: sid, SMMUv2Field.gfsrSMCF, SMMUv2Fault.streamMatchConflict) }
        if global[0] & SMMUv2Field.sCR0USFCFG != 0 {
            return globalFault(r, sid: sid, SMMUv2Field.gfsrUSF, SMMUv2Fault.unidentifiedStream)
        }
        return bypass(r)
    }

    /// Records a global fault (sGFSR, sGFSYNR0/1; MULTI when one is already held) and
    /// raises the global interrupt if sCR0.GFIE is set.
    private func globalFault(_ r: TranslationRequest, sid: Int, _ bit: UInt32, _ reason: FaultReason) -> TranslationResult {
        stats[2] &+= 1
        if global[1] & ~SMMUv2Field.gfsrMULTI != 0 {
            global[1] |= SMMUv2Field.gfsrMULTI
        } else {
            global[1] |= bit
            var syn: UInt32 = 0
            if r.access.contains(.write) { syn |= 1 << 1 }
            if r.privileged { syn |= 1 << 2 }
            if r.access.contains(.execute) { syn |= 1 << 3 }
            global[2] = syn
            global[3] = UInt32(sid)
        }
        if global[0] & SMMUv2Field.sCR0GFIE != 0 { pendingGlobalInterrupt = true }
        return .fault(reason)
    }

    /// Records a context fault of bank `n`: FSR bit, FAR, FSYNR0 (level, write,
    /// privilege, instruction, bank), FSYNR1 and CBFRSYNRA (the stream ID); a fault while
    /// one is held only sets MULTI. Raises the bank's interrupt (SCTLR.CFIE) and, with
    /// SCTLR.CFCFG and no transaction stalled yet, stalls this one (FSR.SS).
    private func contextFault(_ r: TranslationRequest, _ n: Int, sid: Int, _ bit: UInt32, level: Int,
                              privileged: Bool) -> TranslationResult {
        stats[2] &+= 1
        let cb = banks + n
        let reason: FaultReason = switch bit {
        case SMMUv2Field.fsrAFF: SMMUv2Fault.accessFlag
        case SMMUv2Field.fsrPF: SMMUv2Fault.permission
        default: SMMUv2Fault.translation
        }
        let held = cb.pointee.fsr & SMMUv2Field.fsrFault != 0
        if held {
            cb.pointee.fsr |= SMMUv2Field.fsrMULTI
        } else {
            cb.pointee.fsr |= bit
            cb.pointee.far = r.address.rawValue
            var syn = UInt32(level) & SMMUv2Field.fsynr0PLVLMask | UInt32(n) << SMMUv2Field.fsynr0S1CBNDXShift
            if r.access.contains(.write) { syn |= SMMUv2Field.fsynr0WNR }
            if privileged { syn |= SMMUv2Field.fsynr0PNU }
            if r.access.contains(.execute) { syn |= SMMUv2Field.fsynr0IND }
            cb.pointee.fsynr0 = syn
            cb.pointee.fsynr1 = UInt32(sid)
            cb.pointee.cbfrsynra = UInt32(sid)
        }
        if cb.pointee.sctlr & SMMUv2Field.sctlrCFIE != 0 { pendingContextInterrupts.insert(n) }
        guard cb.pointee.sctlr & SMMUv2Field.sctlrCFCFG != 0, cb.pointee.stalled == nil else { return .fault(reason) }
        cb.pointee.fsr |= SMMUv2Field.fsrSS
        cb.pointee.stalled = SMMUv2StalledTransaction(contextBank: n, streamID: UInt16(sid), address: r.address,
                                                      write: r.access.contains(.write))
        return .fault(SMMUv2Fault.stalled(reason))
    }

    /// A write to `CB_RESUME`: with a transaction stalled (FSR.SS), retry it or terminate
    /// it and clear SS; otherwise nothing happens.
    func resume(_ n: Int, terminate: Bool) {
        guard let t = banks[n].stalled else { return }
        banks[n].stalled = nil
        banks[n].fsr &= ~SMMUv2Field.fsrSS
        banks[n].resumed = (t, terminate ? .terminated : .retried)
    }

    /// A write to `CB_ATS1PR`: the address translation operation. Walks the tables in
    /// memory as a privileged read (the model's operation neither reads nor fills the
    /// TLB) and writes the result to PAR: the output address with F clear, or F set with
    /// the fault's FSR bit in PAR[6:1]. A walk that would read a page-table page which is
    /// not allocated (freed while the context still points at it) fails with EF.
    func translationOperation(_ n: Int, address: UInt64) {
        let cb = banks[n]
        let va = IOVA(rawValue: address)
        let range: SMMUv2InputRange
        if cb.lower.bits > 0, address >> cb.lower.bits == 0 {
            range = cb.lower
        } else if cb.upper.bits > 0, ~address >> cb.upper.bits == 0 {
            range = cb.upper
        } else {
            banks[n].par = SMMUv2Field.parF | UInt64(SMMUv2Field.fsrTF)
            return
        }
        guard cb.translating, range.enabled, let format = range.format else {
            banks[n].par = SMMUv2Field.parF | UInt64(SMMUv2Field.fsrTF)
            return
        }
        guard tablesAllocated(format: format, root: range.root, va: va) else {
            banks[n].par = SMMUv2Field.parF | UInt64(SMMUv2Field.fsrEF)
            return
        }
        switch IOPageTable.walk(memory: memory, format: format, root: range.root, iova: va, access: .read,
                                setAccessedDirty: false) {
        case .translated(let pa, _, _): banks[n].par = pa.rawValue & 0x000F_FFFF_FFFF_F000
        case .accessFlag: banks[n].par = SMMUv2Field.parF | UInt64(SMMUv2Field.fsrAFF)
        case .permission: banks[n].par = SMMUv2Field.parF | UInt64(SMMUv2Field.fsrPF)
        case .notPresent: banks[n].par = SMMUv2Field.parF | UInt64(SMMUv2Field.fsrTF)
        }
    }

    /// Whether every table page a walk of `va` reads is an allocated frame: the model's
    /// audit of the operation (real memory would return whatever the freed page holds).
    /// Follows the VMSAv8-64 geometry of `format` (granule, start level, input bits).
    private func tablesAllocated(format: PageTableFormat, root: PhysicalAddress, va: IOVA) -> Bool {
        guard let lpae = format.lpae else { return true }
        let pageShift = UInt64(lpae.granule.shift)
        let bitsPerLevel = pageShift - 3
        let addressMask: UInt64 = 0x0000_FFFF_FFFF_F000 & ~((1 << pageShift) - 1)
        var table = root
        var level = UInt64(lpae.startLevel)
        while true {
            guard memory.isAllocated(table) else { return false }
            guard level < 3 else { return true }
            let shift = pageShift + (3 - level) * bitsPerLevel
            let indexBits = level == UInt64(lpae.startLevel) ? UInt64(lpae.ias) - shift : bitsPerLevel
            let index = (va.rawValue >> shift) & ((1 << indexBits) - 1)
            let pte = memory.load64(table + index * 8)
            guard pte & 3 == 3 else { return true }    // invalid, or a block: the walk ends here
            table = PhysicalAddress(rawValue: pte & addressMask)
            level += 1
        }
    }
}
