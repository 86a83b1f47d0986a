import IOMMUCore

extension SMMUv2Hardware {
    /// Reads a 32-bit register (`arm_smmu_readl`). Unknown offsets and context banks
    /// beyond ``SMMUv2Configuration/contextBanks`` read as zero.
    public func read32(_ page: SMMUv2Page, _ offset: Int) -> UInt32 {
        switch page {
        case .global0:
            switch offset {
            case SMMUv2Reg.sCR0: return global[0]
            case SMMUv2Reg.id0: return config.id0
            case SMMUv2Reg.id1: return config.id1
            case SMMUv2Reg.id2: return config.id2
            case SMMUv2Reg.id7: return 0x21   // r2p1
            case SMMUv2Reg.sGFSR: return global[1]
            case SMMUv2Reg.sGFSYNR0: return global[2]
            case SMMUv2Reg.sGFSYNR1: return global[3]
            case SMMUv2Reg.sGFSYNR2: return global[4]
            case SMMUv2Reg.sTLBGStatus: return pendingMaintenance.contains { $0.contextBank == nil } ? 1 : 0
            default:
                if let n = Self.index(offset, base: SMMUv2Reg.smr(0), count: config.streamMatchGroups) { return smrs[n] }
                if let n = Self.index(offset, base: SMMUv2Reg.s2cr(0), count: config.streamMatchGroups) { return s2crs[n] }
                return 0
            }
        case .global1:
            if let n = Self.index(offset, base: SMMUv2Reg.cbar(0), count: config.contextBanks) { return banks[n].cbar }
            if let n = Self.index(offset, base: SMMUv2Reg.cbfrsynra(0), count: config.contextBanks) { return banks[n].cbfrsynra }
            if let n = Self.index(offset, base: SMMUv2Reg.cba2r(0), count: config.contextBanks) { return banks[n].cba2r }
            return 0
        case .contextBank(let n):
            guard n >= 0, n < config.contextBanks else { return 0 }
            let cb = banks[n]
            switch offset {
            case SMMUv2Reg.sctlr: return cb.sctlr
            case SMMUv2Reg.actlr: return cb.actlr
            case SMMUv2Reg.tcr2: return cb.tcr2
            case SMMUv2Reg.tcr: return cb.tcr
            case SMMUv2Reg.contextIDR: return cb.contextIDR
            case SMMUv2Reg.mair0: return cb.mair0
            case SMMUv2Reg.mair1: return cb.mair1
            case SMMUv2Reg.fsr: return cb.fsr
            case SMMUv2Reg.fsynr0: return cb.fsynr0
            case SMMUv2Reg.fsynr1: return cb.fsynr1
            case SMMUv2Reg.tlbStatus: return pendingMaintenance.contains { $0.contextBank == n } ? 1 : 0
            case SMMUv2Reg.atsr: return 0
            default: return UInt32(truncatingIfNeeded: read64(page, offset))
            }
        }
    }

    /// Reads a 64-bit register (`arm_smmu_readq`): TTBR0/1, PAR, FAR; zero elsewhere.
    public func read64(_ page: SMMUv2Page, _ offset: Int) -> UInt64 {
        guard case .contextBank(let n) = page, n >= 0, n < config.contextBanks else { return 0 }
        switch offset {
        case SMMUv2Reg.ttbr0: return banks[n].ttbr0
        case SMMUv2Reg.ttbr1: return banks[n].ttbr1
        case SMMUv2Reg.par: return banks[n].par
        case SMMUv2Reg.far: return banks[n].far
        default: return 0
        }
    }

    /// Writes a 32-bit register (`arm_smmu_writel`). Writes to unknown offsets, to
    /// read-only registers and to context banks that do not exist are ignored.
    /// Side effects are the hardware's: SMR/S2CR writes change stream routing at once,
    /// TCR/TTBR/SCTLR writes the context's walk, TLBI writes drop TLB entries at the next
    /// TLBSYNC, FSR is write-1-to-clear (FSR.SS clears only through RESUME), RESUME ends
    /// a stall.
    /// - Parameters:
    ///   - page: the register page (global 0, global 1, a context bank).
    ///   - offset: the register's byte offset in the page.
    ///   - value: what is written.
    ///   - accessor: who writes (the CPU, or a client through its own register path);
    ///     recorded with TLB maintenance.
    public func write32(_ page: SMMUv2Page, _ offset: Int, _ value: UInt32, by accessor: SMMUv2Accessor = .cpu) {
        switch page {
        case .global0: writeGlobal0(offset, value)
        case .global1:
            if let n = Self.index(offset, base: SMMUv2Reg.cbar(0), count: config.contextBanks) {
                banks[n].cbar = value
                decode(n)
            } else if let n = Self.index(offset, base: SMMUv2Reg.cba2r(0), count: config.contextBanks) {
                banks[n].cba2r = value
                decode(n)
            }
        case .contextBank(let n):
            guard n >= 0, n < config.contextBanks else { return }
            writeContextBank(n, offset, UInt64(value), by: accessor)
        }
    }

    /// Writes a 64-bit register (`arm_smmu_writeq`): TTBR0/1, TLBIVA(L), TLBIVAA,
    /// ATS1PR. A 64-bit write to a 32-bit register writes its low half.
    public func write64(_ page: SMMUv2Page, _ offset: Int, _ value: UInt64, by accessor: SMMUv2Accessor = .cpu) {
        guard case .contextBank(let n) = page else {
            write32(page, offset, UInt32(truncatingIfNeeded: value), by: accessor)
            return
        }
        guard n >= 0, n < config.contextBanks else { return }
        writeContextBank(n, offset, value, by: accessor)
    }

    /// The index of a register in an array of 32-bit registers at `base`, if `offset` is one.
    static func index(_ offset: Int, base: Int, count: Int) -> Int? {
        guard offset >= base, offset < base + count * 4, offset & 3 == 0 else { return nil }
        return (offset - base) >> 2
    }

    private func writeGlobal0(_ offset: Int, _ value: UInt32) {
        switch offset {
        case SMMUv2Reg.sCR0: global[0] = value
        case SMMUv2Reg.sGFSR: global[1] &= ~value
        case SMMUv2Reg.tlbiAllNSNH:
            post(SMMUv2TLBOperation(kind: .tlbiAllNSNH, contextBank: nil))
        case SMMUv2Reg.tlbiVMID:
            post(SMMUv2TLBOperation(kind: .tlbiVMID, contextBank: nil, asid: UInt16(truncatingIfNeeded: value)))
        case SMMUv2Reg.sTLBGSync:
            sync(contextBank: nil, SMMUv2TLBOperation(kind: .sync, contextBank: nil))
        default:
            if let n = Self.index(offset, base: SMMUv2Reg.smr(0), count: config.streamMatchGroups) {
                let old = smrs[n]
                smrs[n] = value
                rematch(old, value)
            } else if let n = Self.index(offset, base: SMMUv2Reg.s2cr(0), count: config.streamMatchGroups) {
                s2crs[n] = value
            }
        }
    }

    private func writeContextBank(_ n: Int, _ offset: Int, _ value: UInt64, by accessor: SMMUv2Accessor) {
        let v32 = UInt32(truncatingIfNeeded: value)
        switch offset {
        case SMMUv2Reg.sctlr: banks[n].sctlr = v32; decode(n)
        case SMMUv2Reg.actlr: banks[n].actlr = v32
        case SMMUv2Reg.tcr2: banks[n].tcr2 = v32; decode(n)
        case SMMUv2Reg.tcr: banks[n].tcr = v32; decode(n)
        case SMMUv2Reg.ttbr0: banks[n].ttbr0 = value; decode(n)
        case SMMUv2Reg.ttbr1: banks[n].ttbr1 = value; decode(n)
        case SMMUv2Reg.contextIDR: banks[n].contextIDR = v32
        case SMMUv2Reg.mair0: banks[n].mair0 = v32
        case SMMUv2Reg.mair1: banks[n].mair1 = v32
        case SMMUv2Reg.fsr: banks[n].fsr &= ~(v32 & ~SMMUv2Field.fsrSS)
        case SMMUv2Reg.resume: resume(n, terminate: v32 & SMMUv2Field.resumeTerminate != 0)
        case SMMUv2Reg.tlbiASID:
            post(SMMUv2TLBOperation(kind: .tlbiASID, contextBank: n, asid: UInt16(truncatingIfNeeded: value),
                                    accessor: accessor))
        case SMMUv2Reg.tlbiAll:
            post(SMMUv2TLBOperation(kind: .tlbiAll, contextBank: n, accessor: accessor))
        case SMMUv2Reg.tlbiVA, SMMUv2Reg.tlbiVAL:
            // VA[55:12] in bits 43:0, ASID in bits 63:48.
            post(SMMUv2TLBOperation(kind: offset == SMMUv2Reg.tlbiVA ? .tlbiVA : .tlbiVAL, contextBank: n,
                                    asid: UInt16(truncatingIfNeeded: value >> 48),
                                    address: IOVA(rawValue: Self.signExtend56((value & 0xFFF_FFFF_FFFF) << 12)),
                                    accessor: accessor))
        case SMMUv2Reg.tlbiVAA:
            post(SMMUv2TLBOperation(kind: .tlbiVAA, contextBank: n,
                                    address: IOVA(rawValue: Self.signExtend56((value & 0xFFF_FFFF_FFFF) << 12)),
                                    accessor: accessor))
        case SMMUv2Reg.tlbSync:
            sync(contextBank: n, SMMUv2TLBOperation(kind: .sync, contextBank: n, accessor: accessor))
        case SMMUv2Reg.ats1PR: translationOperation(n, address: value)
        default: break
        }
    }

    /// A TLBI operand's VA is bits 55:12; bit 55 selects the upper range.
    static func signExtend56(_ va: UInt64) -> UInt64 {
        va & (1 << 55) != 0 ? va | 0xFF00_0000_0000_0000 : va
    }

    /// A TLB maintenance write: the operation is accepted (logged, counted) but only
    /// guaranteed complete at the next TLBSYNC of its context bank (sTLBGSYNC for a
    /// global one), which is when the model performs it: the latest moment the
    /// architecture allows, so a driver that forgets the sync keeps its stale entries.
    private func post(_ op: SMMUv2TLBOperation) {
        maintenanceCounts[op.kind, default: 0] += 1
        maintenanceLog.append(op)
        pendingMaintenance.append(op)
    }

    /// TLBSYNC (`contextBank`) or sTLBGSYNC (nil): performs the posted operations it
    /// waits for.
    private func sync(contextBank: Int?, _ op: SMMUv2TLBOperation) {
        maintenanceCounts[op.kind, default: 0] += 1
        maintenanceLog.append(op)
        guard !pendingMaintenance.isEmpty else { return }
        var kept: [SMMUv2TLBOperation] = []
        for p in pendingMaintenance {
            if p.contextBank == contextBank { perform(p) } else { kept.append(p) }
        }
        pendingMaintenance = kept
    }

    /// Drops the TLB entries an operation names.
    private func perform(_ op: SMMUv2TLBOperation) {
        switch op.kind {
        case .tlbiAllNSNH: tlb.invalidateAll()
        case .tlbiVMID:
            let vmid = UInt32(op.asid ?? 0) & 0xFF
            for i in 0..<config.contextBanks where banks[i].cbar & 0xFF == vmid {
                tlb.invalidate { t, _, _ in Self.contextBank(ofTag: t) == i }
            }
        case .tlbiASID:
            tlb.invalidate(tag: Self.tlbTag(contextBank: op.contextBank ?? 0, asid: op.asid ?? 0))
        case .tlbiAll:
            let cb = op.contextBank ?? 0
            tlb.invalidate { t, _, _ in Self.contextBank(ofTag: t) == cb }
        case .tlbiVA, .tlbiVAL:
            // The model's TLB caches leaves only, so the last-level form drops the same.
            tlb.invalidate(tag: Self.tlbTag(contextBank: op.contextBank ?? 0, asid: op.asid ?? 0),
                           iova: op.address ?? 0, size: 4096)
        case .tlbiVAA:
            let (cb, va) = (op.contextBank ?? 0, op.address ?? 0)
            tlb.invalidate { t, iova, size in Self.contextBank(ofTag: t) == cb && iova <= va && iova.distance(to: va) < size }
        case .sync: break
        }
    }

    // MARK: context decode

    /// Recomputes what bank `n` translates with from its registers: whether it is an
    /// enabled stage-1 AArch64 context, its ASID (TTBR0's, or TTBR1's with TCR.A1), and
    /// each input range's size, walk enable and table format (granule from TG0/TG1,
    /// input bits from T0SZ/T1SZ, output bits from TCR2.PASIZE).
    func decode(_ n: Int) {
        var cb = banks[n]
        let enabled = cb.sctlr & SMMUv2Field.sctlrM != 0
        let stage1AArch64 = (cb.cbar >> 16) & 3 == SMMUv2Field.cbarTypeS1BypassS2 && cb.cba2r & SMMUv2Field.cba2rVA64 != 0
        cb.translating = enabled && stage1AArch64
        cb.unsupportedContext = enabled && !stage1AArch64
        let asidTTBR = cb.tcr & SMMUv2Field.tcrA1 != 0 ? cb.ttbr1 : cb.ttbr0
        var asid = UInt16(truncatingIfNeeded: asidTTBR >> SMMUv2Field.ttbrASIDShift)
        if cb.tcr2 & SMMUv2Field.tcr2AS == 0 { asid &= 0xFF }
        cb.tag = Self.tlbTag(contextBank: n, asid: asid)
        let oas = LPAEConfig.physicalSize(field: UInt64(cb.tcr2 & SMMUv2Field.tcr2PASizeMask)).map { min($0, config.outputBits) }
        let t0sz = Int(cb.tcr >> SMMUv2Field.tcrT0SZShift & 0x3F)
        let t1sz = Int(cb.tcr >> SMMUv2Field.tcrT1SZShift & 0x3F)
        cb.lower = range(bits: 64 - t0sz, enabled: cb.tcr & SMMUv2Field.tcrEPD0 == 0,
                         granule: LPAEGranule(tg0: UInt64(cb.tcr >> SMMUv2Field.tcrTG0Shift & 3)), oas: oas,
                         quirks: [], ttbr: cb.ttbr0)
        cb.upper = range(bits: 64 - t1sz, enabled: cb.tcr & SMMUv2Field.tcrEPD1 == 0,
                         granule: LPAEGranule(tg1: UInt64(cb.tcr >> SMMUv2Field.tcrTG1Shift & 3)), oas: oas,
                         quirks: .armTTBR1, ttbr: cb.ttbr1)
        banks[n] = cb
    }

    private func range(bits: Int, enabled: Bool, granule: LPAEGranule?, oas: Int?, quirks: IOPageTableQuirks,
                       ttbr: UInt64) -> SMMUv2InputRange {
        var r = SMMUv2InputRange()
        // An input size above the upstream bus width cannot be reached.
        let ias = min(bits, config.inputBits)
        r.bits = UInt64(ias)
        r.enabled = enabled
        r.root = PhysicalAddress(rawValue: ttbr & SMMUv2Field.ttbrAddressMask)
        if enabled, let granule, config.granules.contains(granule), let oas {
            r.format = try? PageTableFormat.armLPAE(.stage1, granule: granule, ias: ias, oas: oas, quirks: quirks)
        }
        return r
    }
}
