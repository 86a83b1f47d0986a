import IOMMUCore

extension SMMUv3Hardware {
    /// The fault a transaction gets from an ABORT STE or with the SMMU disabled (no event).
    public static let abortReason = FaultReason(code: 0x100, text: "aborted by configuration (no event)")
    /// The fault a stalled transaction reports to the DMA engine: it is held in the
    /// SMMU until a RESUME (the model's DMA is synchronous, so the access returns; a
    /// RESUME with retry translates it again, and the device re-issues it).
    public static let stalledReason = FaultReason(code: 0x101, text: "stalled, held until RESUME")

    /// The SMMU's handling of one transaction (Arm SMMUv3 architecture (IHI 0070), section 3.3): the STE of its
    /// StreamID (the RID) from the configuration cache, or fetched from the stream table;
    /// by Config: abort, bypass, stage 2, or stage 1 with the CD of its SubstreamID (or,
    /// without one, the CD or behaviour S1DSS selects), nested stage 1 + stage 2 for
    /// NESTED. Translations come from the TLB, tagged (VMID, ASID), or a table walk on a
    /// miss. A fault records an event (C_BAD_STE, C_BAD_CD, F_TRANSLATION, ...) unless
    /// the configuration says not to, or stalls the transaction when it says so.
    /// Allocation-free on the hit path. The caller holds the unit's hardware lock.
    public func translate(_ r: TranslationRequest) -> TranslationResult {
        regs[SMMUv3Register.translations.rawValue] &+= 1
        guard regs[SMMUv3Register.cr0.rawValue] & UInt64(SMMUv3Control.smmuEnable.rawValue) != 0 else {
            return .fault(Self.abortReason)
        }
        let sid = UInt32(truncatingIfNeeded: r.rid.raw)
        let s = steCache + STESlot.index(sid)
        if s.pointee.key != STESlot.key(sid) {
            if let f = fillSTE(s, sid: sid, r) { return f }
        }
        let w0 = s.pointee.w0
        let w1 = s.pointee.w1
        let config = (w0 >> 1) & 7
        if r.ats && config != SMMUv3STE.Config.abort.rawValue
            && (config == SMMUv3STE.Config.bypass.rawValue || (w1 >> 28) & 3 != SMMUv3STE.EATS.translate.rawValue) {
            // A bypass STE refuses ATS whatever its EATS, and so does any STE without
            // EATS=TRANS (Arm SMMUv3 architecture (IHI 0070), section 5.2, STE.EATS).
            return configFault(r, sid: sid, .badATSTranslationRequest)
        }
        switch config {
        case SMMUv3STE.Config.bypass.rawValue:
            if r.pasid != nil { return configFault(r, sid: sid, .badSubstreamID) }
            return .translated(address: PhysicalAddress(identity: r.address), length: 4096 - r.address.offset(within: 4096), cached: false)
        case SMMUv3STE.Config.stage2.rawValue:
            if r.pasid != nil { return configFault(r, sid: sid, .badSubstreamID) }
            return stage2(r, sid: sid, slot: s)
        case SMMUv3STE.Config.stage1.rawValue, SMMUv3STE.Config.nested.rawValue:
            return stage1(r, sid: sid, slot: s, nested: config == SMMUv3STE.Config.nested.rawValue)
        default:
            // ABORT: terminated, no event.
            return .fault(Self.abortReason)
        }
    }

    /// The stage-1 part: which CD serves the transaction, then the TLB or a walk.
    @inline(__always)
    private func stage1(_ r: TranslationRequest, sid: UInt32, slot s: UnsafeMutablePointer<STESlot>,
                        nested: Bool) -> TranslationResult {
        let w0 = s.pointee.w0
        let cdMax = w0 >> 59
        let ssid: UInt32
        if let p = r.pasid?.rawValue {
            // SubstreamID 0 is terminated when S1DSS gives CD 0 to substream-less traffic.
            guard cdMax != 0, UInt64(p) >> cdMax == 0,
                  p != 0 || s.pointee.w1 & 3 != SMMUv3STE.S1DSS.ssid0.rawValue else {
                return configFault(r, sid: sid, .badSubstreamID)
            }
            ssid = p
        } else if cdMax != 0 {
            switch s.pointee.w1 & 3 {
            case SMMUv3STE.S1DSS.ssid0.rawValue:
                ssid = 0
            case SMMUv3STE.S1DSS.bypass.rawValue:
                if nested { return stage2(r, sid: sid, slot: s) }
                return .translated(address: PhysicalAddress(identity: r.address), length: 4096 - r.address.offset(within: 4096), cached: false)
            default:
                // TERMINATE, and the reserved 0b11 that behaves as TERMINATE.
                return configFault(r, sid: sid, .streamDisabled)
            }
        } else {
            ssid = 0
        }
        let c = cdCache + CDSlot.index(sid: sid, ssid: ssid)
        if c.pointee.key != CDSlot.key(sid: sid, ssid: ssid) {
            if let f = fillCD(c, sid: sid, ssid: ssid, ste: s, r) { return f }
        }
        let cdw0 = c.pointee.w0
        let stallAllowed = s.pointee.w1 & SMMUv3STE.s1stalld == 0
        guard c.pointee.format >= 0 else {
            // EPD0: every TTB0 access faults (the mm-release "fault everything" CD).
            return stage1Fault(r, sid: sid, .translation, cdw0: cdw0, stallAllowed: stallAllowed)
        }
        let vmid = UInt16(truncatingIfNeeded: s.pointee.w2)
        let asid = UInt16(truncatingIfNeeded: cdw0 >> 48)
        let tag = nested ? SMMUv3TLBTag.nested(vmid: vmid, asid: asid) : SMMUv3TLBTag.stage1(vmid: vmid, asid: asid)
        let write = r.access.contains(.write)
        let unprivileged = !r.privileged
        let hardwareDirty = cdw0 & SMMUv3CD.hd != 0
        if let e = tlb.lookup(tag: tag, iova: r.address) {
            if !(write || e.perms.contains(.read)) || write && !e.perms.contains(.write)
                || unprivileged && e.perms.contains(.priv) || r.access.contains(.execute) && e.perms.contains(.noexec) {
                // A nested entry combines both stages: walk again to tell which refuses.
                // With HD, a write to a page cached writable-clean walks to mark it dirty.
                if !nested && !(write && hardwareDirty) {
                    return stage1Fault(r, sid: sid, .permission, cdw0: cdw0, stallAllowed: stallAllowed)
                }
            } else {
                return .translated(address: e.translate(r.address),
                                   length: e.pageSize - r.address.offset(within: e.pageSize), cached: true)
            }
        }
        regs[SMMUv3Register.walks.rawValue] &+= 1
        var access: WalkAccess = [.read]
        if write { access.insert(.write) }
        if r.access.contains(.execute) { access.insert(.execute) }
        if unprivileged { access.insert(.user) }
        let format = formats[Int(c.pointee.format)]
        if nested { return nestedWalk(r, sid: sid, slot: s, format: format, root: c.pointee.ttb0, access: access, tag: tag,
                                      cdw0: cdw0, stallAllowed: stallAllowed) }
        guard walkable(root: c.pointee.ttb0, format) else {
            return stage1Fault(r, sid: sid, .walkAbort, cdw0: cdw0, stallAllowed: stallAllowed)
        }
        switch IOPageTable.walk(memory: memory, format: format, root: c.pointee.ttb0, iova: r.address, access: access,
                                setAccessedDirty: cdw0 & SMMUv3CD.ha != 0) {
        case .translated(let pa, let size, let perms):
            if pa.rawValue >> UInt64(format.outputBits) != 0 {
                return stage1Fault(r, sid: sid, .addressSize, cdw0: cdw0, stallAllowed: stallAllowed)
            }
            // With HD, a read leaves a DBM leaf clean: the TLB keeps it without write, so
            // the first write walks again and the walk marks the leaf dirty.
            tlb.insert(tag: tag, iova: r.address, pageSize: size, pa: pa,
                       perms: hardwareDirty && !write ? perms.subtracting(.write) : perms)
            return .translated(address: pa, length: size - r.address.offset(within: size), cached: false)
        case .notPresent:
            return stage1Fault(r, sid: sid, .translation, cdw0: cdw0, stallAllowed: stallAllowed)
        case .accessFlag:
            return stage1Fault(r, sid: sid, .accessFlag, cdw0: cdw0, stallAllowed: stallAllowed)
        case .permission:
            return stage1Fault(r, sid: sid, .permission, cdw0: cdw0, stallAllowed: stallAllowed)
        }
    }

    /// Nested translation (a NESTED STE with a CD): the stage-1 walk reads each of its
    /// tables at an IPA the stage 2 translates, then the stage-1 output (an IPA) goes
    /// through the stage 2. A stage-2 fault on a table is reported as a stage-2 fault at
    /// that IPA; the TLB keeps the combined translation (the smaller of the two leaves,
    /// the permissions both allow) under the (VMID, ASID) tag.
    private func nestedWalk(_ r: TranslationRequest, sid: UInt32, slot s: UnsafeMutablePointer<STESlot>,
                            format: PageTableFormat, root: PhysicalAddress, access: WalkAccess, tag: UInt64,
                            cdw0: UInt64, stallAllowed: Bool) -> TranslationResult {
        let w2 = s.pointee.w2
        guard s.pointee.s2Format >= 0 else { return stage2Fault(r, sid: sid, .translation, w2: w2, ipa: r.address) }
        let s2Format = formats[Int(s.pointee.s2Format)]
        let s2ttb = PhysicalAddress(rawValue: s.pointee.w3 & SMMUv3STE.s2ttbMask)
        guard walkable(root: s2ttb, s2Format) else { return stage2Fault(r, sid: sid, .walkAbort, w2: w2, ipa: r.address) }
        // Stage 2 of a table read: the fault it met, if any, and at which IPA.
        var tableFault: (PageWalkResult, IOVA)?
        let walk = IOPageTable.walk(memory: memory, format: format, root: root, iova: r.address, access: access,
                                    setAccessedDirty: cdw0 & SMMUv3CD.ha != 0) { tableIPA in
            let ipa = IOVA(rawValue: tableIPA.rawValue)
            let result = IOPageTable.walk(memory: memory, format: s2Format, root: s2ttb, iova: ipa, access: .read,
                                          setAccessedDirty: false)
            if case .translated(let pa, _, _) = result { return pa }
            tableFault = (result, ipa)
            return nil
        }
        if let (fault, ipa) = tableFault { return stage2Fault(r, sid: sid, Self.eventID(fault), w2: w2, ipa: ipa) }
        let ipa: PhysicalAddress, s1Size: UInt64, s1Perms: IOMMUProt
        switch walk {
        case .translated(let out, let size, let perms): (ipa, s1Size, s1Perms) = (out, size, perms)
        case .notPresent: return stage1Fault(r, sid: sid, .translation, cdw0: cdw0, stallAllowed: stallAllowed)
        case .accessFlag: return stage1Fault(r, sid: sid, .accessFlag, cdw0: cdw0, stallAllowed: stallAllowed)
        case .permission: return stage1Fault(r, sid: sid, .permission, cdw0: cdw0, stallAllowed: stallAllowed)
        }
        if ipa.rawValue >> UInt64(format.outputBits) != 0 {
            return stage1Fault(r, sid: sid, .addressSize, cdw0: cdw0, stallAllowed: stallAllowed)
        }
        var s2Access: WalkAccess = access.contains(.write) ? [.write] : [.read]
        if access.contains(.execute) { s2Access.insert(.execute) }
        let outputIPA = IOVA(rawValue: ipa.rawValue)
        switch IOPageTable.walk(memory: memory, format: s2Format, root: s2ttb, iova: outputIPA, access: s2Access,
                                setAccessedDirty: false) {
        case .translated(let pa, let s2Size, let s2Perms):
            let size = min(s1Size, s2Size)
            var perms = s1Perms
            if !s2Perms.contains(.write) { perms.remove(.write) }
            if !s2Perms.contains(.read) { perms.remove(.read) }
            if s2Perms.contains(.noexec) { perms.insert(.noexec) }
            let base = PhysicalAddress(rawValue: pa.rawValue & ~(size &- 1))
            tlb.insert(tag: tag, iova: r.address, pageSize: size, pa: base, perms: perms)
            return .translated(address: pa, length: size - r.address.offset(within: size), cached: false)
        case let fault:
            return stage2Fault(r, sid: sid, Self.eventID(fault), w2: w2, ipa: outputIPA)
        }
    }

    /// The event of a walk's fault.
    private static func eventID(_ fault: PageWalkResult) -> SMMUv3Event.ID {
        switch fault {
        case .accessFlag: .accessFlag
        case .permission: .permission
        default: .translation
        }
    }

    /// Stage 2 only (an S2_TRANS STE, or a NESTED STE whose S1DSS bypasses stage 1).
    @inline(__always)
    private func stage2(_ r: TranslationRequest, sid: UInt32, slot s: UnsafeMutablePointer<STESlot>) -> TranslationResult {
        let vmid = UInt16(truncatingIfNeeded: s.pointee.w2)
        let tag = SMMUv3TLBTag.stage2(vmid: vmid)
        let write = r.access.contains(.write)
        if let e = tlb.lookup(tag: tag, iova: r.address) {
            if write && !e.perms.contains(.write) || !write && !e.perms.contains(.read)
                || r.access.contains(.execute) && e.perms.contains(.noexec) {
                return stage2Fault(r, sid: sid, .permission, w2: s.pointee.w2)
            }
            return .translated(address: e.translate(r.address), length: e.pageSize - r.address.offset(within: e.pageSize),
                               cached: true)
        }
        regs[SMMUv3Register.walks.rawValue] &+= 1
        guard s.pointee.s2Format >= 0 else { return stage2Fault(r, sid: sid, .translation, w2: s.pointee.w2) }
        let format = formats[Int(s.pointee.s2Format)]
        let s2ttb = PhysicalAddress(rawValue: s.pointee.w3 & SMMUv3STE.s2ttbMask)
        guard walkable(root: s2ttb, format) else {
            return stage2Fault(r, sid: sid, .walkAbort, w2: s.pointee.w2)
        }
        var access: WalkAccess = write ? [.write] : [.read]
        if r.access.contains(.execute) { access.insert(.execute) }
        switch IOPageTable.walk(memory: memory, format: format, root: s2ttb, iova: r.address,
                                access: access, setAccessedDirty: false) {
        case .translated(let pa, let size, let perms):
            tlb.insert(tag: tag, iova: r.address, pageSize: size, pa: pa, perms: perms)
            return .translated(address: pa, length: size - r.address.offset(within: size), cached: false)
        case .notPresent:
            return stage2Fault(r, sid: sid, .translation, w2: s.pointee.w2)
        case .accessFlag:
            return stage2Fault(r, sid: sid, .accessFlag, w2: s.pointee.w2)
        case .permission:
            return stage2Fault(r, sid: sid, .permission, w2: s.pointee.w2)
        }
    }

    /// Whether a walk from `root` reads memory only: the root table lies inside memory
    /// (tables below it come from descriptors the table's owner wrote).
    @inline(__always)
    func walkable(root: PhysicalAddress, _ format: PageTableFormat) -> Bool {
        root.rawValue < memory.size && UInt64(format.rootTableBytes) <= memory.size - root.rawValue
    }

    // MARK: faults

    /// A configuration error: always recorded, never stalled.
    func configFault(_ r: TranslationRequest, sid: UInt32, _ id: SMMUv3Event.ID) -> TranslationResult {
        recordEvent(SMMUv3Event(id: id, sid: sid, ssid: r.pasid?.rawValue, address: r.address, read: !r.access.contains(.write),
                                instruction: r.access.contains(.execute), privileged: r.privileged))
        return .fault(id.reason)
    }

    /// A stage-1 fault: stalls when the CD says S (and the STE does not disable stalls),
    /// recorded when it says R, otherwise a silent abort.
    private func stage1Fault(_ r: TranslationRequest, sid: UInt32, _ id: SMMUv3Event.ID, cdw0: UInt64,
                             stallAllowed: Bool) -> TranslationResult {
        if cdw0 & SMMUv3CD.stall != 0 && stallAllowed && !r.ats,
           stall(r, sid: sid, event: id, stage2: false) != nil {
            return .fault(Self.stalledReason)
        }
        if cdw0 & SMMUv3CD.record != 0 || cdw0 & SMMUv3CD.stall != 0 {
            recordEvent(SMMUv3Event(id: id, sid: sid, ssid: r.pasid?.rawValue, address: r.address, read: !r.access.contains(.write),
                                    instruction: r.access.contains(.execute), privileged: r.privileged))
        }
        return .fault(id.reason)
    }

    /// A stage-2 fault at `ipa` (the input address for stage 2 alone): stalls with S2S,
    /// recorded with S2R.
    private func stage2Fault(_ r: TranslationRequest, sid: UInt32, _ id: SMMUv3Event.ID, w2: UInt64,
                             ipa: IOVA? = nil) -> TranslationResult {
        if w2 & SMMUv3STE.s2s != 0 && !r.ats, stall(r, sid: sid, event: id, stage2: true) != nil {
            return .fault(Self.stalledReason)
        }
        if w2 & (SMMUv3STE.s2r | SMMUv3STE.s2s) != 0 {
            recordEvent(SMMUv3Event(id: id, sid: sid, ssid: r.pasid?.rawValue, address: r.address, read: !r.access.contains(.write),
                                    instruction: r.access.contains(.execute), privileged: r.privileged, stage2: true,
                                    ipa: ipa ?? r.address))
        }
        return .fault(id.reason)
    }

    // MARK: cache fills

    /// Fetches and checks the STE of `sid` into `slot`. Returns the fault for a bad
    /// StreamID or an invalid or illegal STE (which is not cached).
    private func fillSTE(_ slot: UnsafeMutablePointer<STESlot>, sid: UInt32, _ r: TranslationRequest) -> TranslationResult? {
        let ste: SMMUv3STE
        switch fetchSTE(sid: sid) {
        case .success(let e): ste = e
        case .failure(let id): return configFault(r, sid: sid, id)
        }
        guard ste.isValid, let config = ste.config, steIsLegal(ste, config) else {
            return configFault(r, sid: sid, .badSTE)
        }
        var s = STESlot()
        s.key = STESlot.key(sid)
        s.w0 = ste.words[0]
        s.w1 = ste.words[1]
        s.w2 = ste.words[2]
        s.w3 = ste.words[3]
        if config == .stage2 || config == .nested {
            guard let f = stage2Format(ste.vtcr), let i = formatIndex(f) else { return configFault(r, sid: sid, .badSTE) }
            s.s2Format = i
        }
        slot.pointee = s
        return nil
    }

    /// The ILLEGAL STE checks the model makes (Arm SMMUv3 architecture (IHI 0070), section 5.2): a stage the SMMU lacks,
    /// S1CDMax beyond the SubstreamID size, EATS=1 with S2S=1, a reserved S1Fmt.
    private func steIsLegal(_ ste: SMMUv3STE, _ config: SMMUv3STE.Config) -> Bool {
        let f = configuration.features
        if config.rawValue & 1 != 0 && config != .bypass {
            guard f.contains(.stage1), ste.s1CDMax <= UInt64(configuration.ssidBits) else { return false }
            if ste.s1CDMax != 0 && ste.s1Fmt != SMMUv3CDTableConfig.linear && ste.s1Fmt != SMMUv3CDTableConfig.twoLevel {
                return false
            }
        }
        if config == .stage2 || config == .nested {
            guard f.contains(.stage2) else { return false }
            if ste.stage2Stalls && ste.rawEATS == SMMUv3STE.EATS.translate.rawValue { return false }
        }
        return true
    }

    /// Fetches and checks CD `ssid` of the STE in `ste` into `slot`. Returns the fault for
    /// an invalid level-1 descriptor or an invalid or illegal CD (not cached).
    private func fillCD(_ slot: UnsafeMutablePointer<CDSlot>, sid: UInt32, ssid: UInt32,
                        ste: UnsafeMutablePointer<STESlot>, _ r: TranslationRequest) -> TranslationResult? {
        var words = SMMUv3Words()
        words[0] = ste.pointee.w0
        words[1] = ste.pointee.w1
        words[2] = ste.pointee.w2
        words[3] = ste.pointee.w3
        let cd: SMMUv3CD
        switch fetchCD(ste: SMMUv3STE(words: words), ssid: ssid) {
        case .success(let e): cd = e
        case .failure(let id): return configFault(r, sid: sid, id)
        }
        guard cd.isValid, cd.isAArch64 else { return configFault(r, sid: sid, .badCD) }
        var c = CDSlot()
        c.key = CDSlot.key(sid: sid, ssid: ssid)
        c.w0 = cd.words[0]
        c.ttb0 = cd.ttb0
        if !cd.ttb0Disabled {
            guard let f = stage1Format(cd), let i = formatIndex(f) else { return configFault(r, sid: sid, .badCD) }
            c.format = i
        }
        slot.pointee = c
        return nil
    }
}
