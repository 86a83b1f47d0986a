import IOMMUCore

/// IOTLB permission markers the model keeps beside `IOMMUProt` in a cached entry.
enum VTdIOTLBMarker {
    /// The walk that filled the entry set the dirty bit (a write may hit it).
    static let dirtyKnown: UInt32 = 1 << 16
    /// A cached not-present result (caching mode, second stage only).
    static let negative: UInt32 = 1 << 17
}

extension VTdHardware {
    static let firstStage4 = PageTableFormat.x86_64(levels: 4)
    static let firstStage5 = PageTableFormat.x86_64(levels: 5)
    static let secondStage3 = PageTableFormat.vtdSecondStage(levels: 3)
    static let secondStage4 = PageTableFormat.vtdSecondStage(levels: 4)
    static let secondStage5 = PageTableFormat.vtdSecondStage(levels: 5)

    /// DMA remapping of one request: context cache (context entry on a miss), PASID
    /// cache (directory and PASID table on a miss; requests without PASID use the
    /// context's RID_PASID), then by PGTT: pass-through, first stage (x86-64 table at
    /// FLPTPTR) or second stage (VT-d table at SLPTPTR) through the IOTLB, walking on a
    /// miss. Nested entries fault (no nesting model). Faults carry the VT-d fault reason;
    /// FPD suppresses their recording. Allocation-free except on the fault path. The
    /// caller holds the unit's hardware lock.
    public func translate(_ r: TranslationRequest) -> TranslationResult {
        regs[0] &+= 1
        guard regs[6] != 0 else {
            return .translated(address: PhysicalAddress(identity: r.address), length: 4096 - r.address.offset(within: 4096),
                               cached: false)
        }
        let rid = r.rid.raw
        // Context.
        let cs = contextCache + ContextSlot.index(rid)
        if cs.pointee.key != ContextSlot.validKey | UInt32(rid) {
            if let f = fillContext(cs, r) { return f }
        }
        let ctxFlags = cs.pointee.flags
        if ctxFlags & ContextSlot.present == 0 {
            return fault(r, VTdFault.contextNotPresent, recorded: ctxFlags & ContextSlot.fpd == 0)
        }
        let pasid: UInt32
        if let p = r.pasid {
            guard ctxFlags & ContextSlot.paside != 0 else {
                return fault(r, VTdFault.pasidDisabled, recorded: ctxFlags & ContextSlot.fpd == 0)
            }
            pasid = p.rawValue
        } else {
            pasid = cs.pointee.ridPasid
        }
        // PASID entry.
        let ps = pasidCache + PASIDSlot.index(rid: rid, pasid: pasid)
        if ps.pointee.key != PASIDSlot.key(rid: rid, pasid: pasid) {
            if let f = fillPASID(ps, cs, r, pasid) { return f }
        }
        let pflags = ps.pointee.flags
        guard pflags & PASIDSlot.presentFlag != 0 else {
            return fault(r, VTdFault.pasidEntryNotPresent, recorded: pflags & PASIDSlot.fpdFlag == 0)
        }
        let did = ps.pointee.did
        guard did != 0, Int(did) < caps.ndoms else {
            return fault(r, VTdFault.didInvalid, recorded: pflags & PASIDSlot.fpdFlag == 0)
        }
        switch ps.pointee.pgtt {
        case VTdPGTT.passThrough.rawValue:
            return .translated(address: PhysicalAddress(identity: r.address), length: 4096 - r.address.offset(within: 4096),
                               cached: false)
        case VTdPGTT.firstStage.rawValue:
            return firstStage(r, pasid: pasid, slot: ps, contextFlags: ctxFlags)
        case VTdPGTT.secondStage.rawValue:
            return secondStage(r, pasid: pasid, slot: ps, contextFlags: ctxFlags)
        default:
            return fault(r, VTdFault.invalidPASIDEntry, recorded: pflags & PASIDSlot.fpdFlag == 0)
        }
    }

    @inline(__always)
    private func firstStage(_ r: TranslationRequest, pasid: UInt32, slot ps: UnsafeMutablePointer<PASIDSlot>,
                            contextFlags: UInt32) -> TranslationResult {
        let flags = ps.pointee.flags
        let privileged = r.privileged && r.pasid != nil
        if privileged && flags & PASIDSlot.sreFlag == 0 {
            return fault(r, VTdFault.supervisorDisabled, recorded: flags & PASIDSlot.fpdFlag == 0)
        }
        // Supervisor writes ignore read-only pages unless WPE is set.
        let checksWrite = r.access.contains(.write) && !(privileged && flags & PASIDSlot.wpeFlag == 0)
        let tag = Self.iotlbTag(did: ps.pointee.did, pasid: pasid)
        if let e = iotlb.lookup(tag: tag, iova: r.address) {
            let raw = e.perms.rawValue
            if !(checksWrite && raw & VTdIOTLBMarker.dirtyKnown == 0) {
                if checksWrite && !e.perms.contains(.write) { return fault(r, VTdFault.noWrite, recorded: true) }
                if !privileged && e.perms.contains(.priv) { return fault(r, VTdFault.userToSupervisor, recorded: true) }
                if r.access.contains(.execute) && e.perms.contains(.noexec) { return fault(r, VTdFault.noExecute, recorded: true) }
                return .translated(address: e.translate(r.address), length: e.pageSize - r.address.offset(within: e.pageSize),
                                   cached: true)
            }
        }
        regs[1] &+= 1
        var access: WalkAccess = []
        if checksWrite { access.insert(.write) }
        if r.access.contains(.execute) { access.insert(.execute) }
        if !privileged { access.insert(.user) }
        let format = ps.pointee.levels == 5 ? Self.firstStage5 : Self.firstStage4
        switch IOPageTable.walk(memory: memory, format: format, root: PhysicalAddress(rawValue: ps.pointee.root), iova: r.address,
                                access: access, setAccessedDirty: true) {
        case .translated(let pa, let size, let perms):
            var raw = perms.rawValue
            if checksWrite { raw |= VTdIOTLBMarker.dirtyKnown }
            iotlb.insert(tag: tag, iova: r.address, pageSize: size, pa: pa, perms: IOMMUProt(rawValue: raw))
            return .translated(address: pa, length: size - r.address.offset(within: size), cached: false)
        case .notPresent, .accessFlag:  // x86 and VT-d walkers never report an access flag fault
            if r.address.rawValue >> UInt64(format.vaBits) != 0 { return fault(r, VTdFault.addressBeyondMax, recorded: true) }
            if contextFlags & ContextSlot.pre != 0 && queuePageRequest(r) {
                return .fault(VTdFault.firstStagePageRequest)
            }
            return fault(r, VTdFault.firstStageNotPresent, recorded: true)
        case .permission:
            // Walk again without each right to name the one that failed.
            if checksWrite { return fault(r, VTdFault.noWrite, recorded: true) }
            if !privileged && r.access.contains(.execute) == false { return fault(r, VTdFault.userToSupervisor, recorded: true) }
            let userOnly = IOPageTable.walk(memory: memory, format: format, root: PhysicalAddress(rawValue: ps.pointee.root), iova: r.address,
                                            access: privileged ? [] : [.user], setAccessedDirty: false)
            if case .permission = userOnly { return fault(r, VTdFault.userToSupervisor, recorded: true) }
            return fault(r, VTdFault.noExecute, recorded: true)
        }
    }

    @inline(__always)
    private func secondStage(_ r: TranslationRequest, pasid: UInt32, slot ps: UnsafeMutablePointer<PASIDSlot>,
                             contextFlags: UInt32) -> TranslationResult {
        let flags = ps.pointee.flags
        let ssade = flags & PASIDSlot.ssadeFlag != 0
        let write = r.access.contains(.write)
        let tag = Self.secondStageTag(did: ps.pointee.did)
        if let e = iotlb.lookup(tag: tag, iova: r.address) {
            let raw = e.perms.rawValue
            if raw & VTdIOTLBMarker.negative != 0 {
                return notPresentSecondStage(r, contextFlags)
            }
            if !(write && ssade && raw & VTdIOTLBMarker.dirtyKnown == 0) {
                if write && !e.perms.contains(.write) { return fault(r, VTdFault.noWrite, recorded: true) }
                if r.access.contains(.read) && !e.perms.contains(.read) { return fault(r, VTdFault.noRead, recorded: true) }
                if r.access.contains(.execute) && e.perms.contains(.noexec) { return fault(r, VTdFault.noExecute, recorded: true) }
                return .translated(address: e.translate(r.address), length: e.pageSize - r.address.offset(within: e.pageSize),
                                   cached: true)
            }
        }
        regs[1] &+= 1
        var access: WalkAccess = []
        if r.access.contains(.read) { access.insert(.read) }
        if write { access.insert(.write) }
        if r.access.contains(.execute) { access.insert(.execute) }
        let format = ps.pointee.levels == 5 ? Self.secondStage5 : ps.pointee.levels == 3 ? Self.secondStage3 : Self.secondStage4
        switch IOPageTable.walk(memory: memory, format: format, root: PhysicalAddress(rawValue: ps.pointee.root), iova: r.address,
                                access: access, setAccessedDirty: ssade) {
        case .translated(let pa, let size, let perms):
            var raw = perms.rawValue
            if write { raw |= VTdIOTLBMarker.dirtyKnown }
            iotlb.insert(tag: tag, iova: r.address, pageSize: size, pa: pa, perms: IOMMUProt(rawValue: raw))
            return .translated(address: pa, length: size - r.address.offset(within: size), cached: false)
        case .notPresent, .accessFlag:  // x86 and VT-d walkers never report an access flag fault
            if r.address.rawValue >> UInt64(format.vaBits) != 0 { return fault(r, VTdFault.addressBeyondMax, recorded: true) }
            if caps.cachingMode {
                iotlb.insert(tag: tag, iova: r.address, pageSize: 4096, pa: 0,
                             perms: IOMMUProt(rawValue: VTdIOTLBMarker.negative))
            }
            return notPresentSecondStage(r, contextFlags)
        case .permission:
            if write { return fault(r, VTdFault.noWrite, recorded: true) }
            if r.access.contains(.read) {
                let readOnly = IOPageTable.walk(memory: memory, format: format, root: PhysicalAddress(rawValue: ps.pointee.root), iova: r.address,
                                                access: .read, setAccessedDirty: false)
                if case .permission = readOnly { return fault(r, VTdFault.noRead, recorded: true) }
            }
            return fault(r, VTdFault.noExecute, recorded: true)
        }
    }

    private func notPresentSecondStage(_ r: TranslationRequest, _ contextFlags: UInt32) -> TranslationResult {
        if contextFlags & ContextSlot.pre != 0 && queuePageRequest(r) {
            return .fault(VTdFault.secondStagePageRequest)
        }
        return fault(r, VTdFault.secondStageNotPresent, recorded: true)
    }

    /// Records (or, with FPD, suppresses) a fault and returns it.
    private func fault(_ r: TranslationRequest, _ reason: FaultReason, recorded: Bool) -> TranslationResult {
        if recorded {
            regs[2] &+= 1
            faultRecords.append(VTdFaultRecord(rid: r.rid, pasid: r.pasid, address: r.address,
                                               write: r.access.contains(.write), reason: reason))
        } else {
            regs[3] &+= 1
        }
        return .fault(reason)
    }

    /// Loads the context entry of the request's RID into `slot`. Returns a fault when the
    /// root entry is missing (the context slot is then left invalid).
    private func fillContext(_ slot: UnsafeMutablePointer<ContextSlot>, _ r: TranslationRequest) -> TranslationResult? {
        let rid = r.rid
        let re = memory.load64(VTdRootEntry.address(root: PhysicalAddress(rawValue: regs[5]), bus: rid.bus) + (rid.devfn >= 0x80 ? 8 : 0))
        guard re & 1 != 0 else { return fault(r, VTdFault.rootNotPresent, recorded: true) }
        let pa = VTdContextEntry.address(table: PhysicalAddress(rawValue: re & ~0xFFF), devfn: rid.devfn)
        let lo = memory.load64(pa)
        let hi = memory.load64(pa + 8)
        var s = ContextSlot()
        s.key = ContextSlot.validKey | UInt32(rid.raw)
        s.flags = UInt32(lo & 0x1F)
        s.directory = lo & ~0xFFF
        s.directoryEntries = UInt64(1) << ((lo >> 9) & 7 + 7)
        s.ridPasid = UInt32(hi & 0xF_FFFF)
        // Only caching-mode hardware keeps not-present context entries.
        if lo & 1 != 0 || caps.cachingMode {
            slot.pointee = s
            return nil
        }
        return fault(r, VTdFault.contextNotPresent, recorded: lo & 2 == 0)
    }

    /// Loads the PASID-table entry for (`rid`, `pasid`) into `slot`. Returns a fault
    /// when the directory index or the directory entry is bad.
    private func fillPASID(_ slot: UnsafeMutablePointer<PASIDSlot>, _ ctx: UnsafeMutablePointer<ContextSlot>,
                           _ r: TranslationRequest, _ pasid: UInt32) -> TranslationResult? {
        let fpdContext = ctx.pointee.flags & ContextSlot.fpd != 0
        let dirIndex = VTdPASIDDirectory.index(pasid)
        guard dirIndex < ctx.pointee.directoryEntries else { return fault(r, VTdFault.pasidTooLarge, recorded: !fpdContext) }
        let de = memory.load64(PhysicalAddress(rawValue: ctx.pointee.directory + dirIndex * 8))
        guard de & VTdPASIDDirectory.present != 0 else {
            return fault(r, VTdFault.directoryNotPresent, recorded: !fpdContext)
        }
        let pa = PhysicalAddress(rawValue: (de & VTdPASIDDirectory.pointerMask) + VTdPASIDDirectory.tableIndex(pasid) * VTdPASIDEntry.size)
        let w0 = memory.load64(pa)
        let w1 = memory.load64(pa + 8)
        let w2 = memory.load64(pa + 16)
        var s = PASIDSlot()
        s.key = PASIDSlot.key(rid: r.rid.raw, pasid: pasid)
        s.did = UInt16(truncatingIfNeeded: w1)
        s.pgtt = UInt8((w0 >> 6) & 7)
        var f: UInt8 = 0
        if w0 & 1 != 0 { f |= PASIDSlot.presentFlag }
        if w0 & 2 != 0 { f |= PASIDSlot.fpdFlag }
        if w0 & (1 << 9) != 0 { f |= PASIDSlot.ssadeFlag }
        if w2 & 1 != 0 { f |= PASIDSlot.sreFlag }
        if w2 & (1 << 4) != 0 { f |= PASIDSlot.wpeFlag }
        s.flags = f
        if s.pgtt == VTdPGTT.firstStage.rawValue {
            s.root = w2 & ~0xFFF
            s.levels = (w2 >> 2) & 3 == 1 ? 5 : 4
        } else {
            s.root = w0 & ~0xFFF
            s.levels = UInt8(((w0 >> 2) & 7) + 2)
        }
        // Only caching-mode hardware keeps not-present PASID entries.
        if w0 & 1 != 0 || caps.cachingMode { slot.pointee = s } else { slot.pointee.key = 0 }
        if w0 & 1 == 0 {
            return fault(r, VTdFault.pasidEntryNotPresent, recorded: w0 & 2 == 0 && !fpdContext)
        }
        return nil
    }

    /// Queues a page request for a request that found a not-present page. Returns false
    /// (the request then faults normally) when the queue is full, setting PRO.
    private func queuePageRequest(_ r: TranslationRequest) -> Bool {
        prqLock.withLock {
            guard prq.count < Self.prqCapacity else {
                regs[7] = 1
                return false
            }
            let index = UInt16(truncatingIfNeeded: regs[9] & 0x1FF)
            regs[9] &+= 1
            prq.append(VTdPageRequest(rid: r.rid, pasid: r.pasid,
                                      read: r.access.contains(.read), write: r.access.contains(.write),
                                      execute: r.access.contains(.execute), privileged: r.privileged && r.pasid != nil,
                                      lastPage: true, groupIndex: index, address: r.address.alignedDown(to: 4096)))
            regs[4] &+= 1
            return true
        }
    }
}
