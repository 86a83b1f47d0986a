import IOMMUCore

extension SMMUv3Hardware {
    /// `CMDQ_CONS_ERR` value for an illegal command (`CMDQ_ERR_CERROR_ILL_IDX`).
    public static let commandErrorIllegal: UInt32 = 1

    /// The command queue's PROD register.
    public var commandQueueProducer: UInt32 { UInt32(truncatingIfNeeded: reg(.cmdqProd)) }
    /// The command queue's CONS register: the index (with its wrap bit) of the next
    /// command the SMMU reads, and in bits 30:24 the error of a command it refused.
    public var commandQueueConsumer: UInt32 { UInt32(truncatingIfNeeded: reg(.cmdqCons)) }
    /// log2 of the command queue's entries.
    public var commandQueueShift: Int { Int(reg(.cmdqShift)) }
    /// `SMMU_GERROR`: CMDQ_ERR (bit 0) toggles when the SMMU stops on a bad command.
    public var globalError: UInt32 { UInt32(truncatingIfNeeded: reg(.gerror)) }

    /// The address of entry `index` (a PROD/CONS value, wrap bit ignored) of the queue at
    /// `base` with 2^`shift` entries of `size` bytes.
    static func queueSlot(base: UInt64, shift: UInt64, index: UInt32, size: UInt64) -> UInt64 {
        base + (UInt64(index) & ((1 << shift) - 1)) * size
    }

    /// The next PROD/CONS value after `value` in a queue of 2^`shift` entries: index and
    /// wrap bit, flags above them kept.
    static func queueIncrement(_ value: UInt32, shift: UInt64) -> UInt32 {
        let mask = UInt32((1 << (shift + 1)) - 1)
        return (value & ~mask) | ((value &+ 1) & mask)
    }

    /// Writes `SMMU_CMDQ_PROD`: the SMMU consumes the commands from CONS up to `value`, in
    /// order, each taking effect before the next (the model executes them at once, so a
    /// CMD_SYNC completes as soon as it is read). A command the SMMU cannot execute stops
    /// the queue: CONS stays on it with CERROR_ILL in its error field and GERROR.CMDQ_ERR
    /// toggles, until the driver skips it and acknowledges the error.
    /// Caller holds the hardware lock.
    public func writeCommandQueueProducer(_ value: UInt32) {
        setReg(.cmdqProd, UInt64(value))
        resumeCommandQueue()
    }

    /// Acknowledges a command error (`arm_smmu_cmdq_skip_err` writing GERRORN): clears the
    /// error field of CONS and resumes consumption. The driver replaces the bad command
    /// (with a CMD_SYNC) before calling this. Caller holds the hardware lock.
    public func acknowledgeCommandError() {
        setReg(.cmdqCons, reg(.cmdqCons) & ~(0x7F << 24))
        resumeCommandQueue()
    }

    private func resumeCommandQueue() {
        guard reg(.cmdqBase) != 0, control.contains(.commandQueueEnable) else { return }
        let shift = reg(.cmdqShift)
        let indexMask = UInt32((1 << (shift + 1)) - 1)
        var cons = UInt32(truncatingIfNeeded: reg(.cmdqCons))
        guard cons & (0x7F << 24) == 0 else { return }
        let prod = UInt32(truncatingIfNeeded: reg(.cmdqProd)) & indexMask
        while cons & indexMask != prod {
            let slot = Self.queueSlot(base: reg(.cmdqBase), shift: shift, index: cons, size: SMMUv3Command.size)
            let command = SMMUv3Command(w0: load64(slot), w1: load64(slot + 8))
            guard execute(command) else {
                setReg(.cmdqCons, UInt64(cons | Self.commandErrorIllegal << 24))
                setReg(.gerror, reg(.gerror) ^ 1)
                return
            }
            cons = Self.queueIncrement(cons, shift: shift)
            setReg(.cmdqCons, UInt64(cons))
        }
    }

    /// Executes one command; false for one the SMMU refuses (CERROR_ILL).
    func execute(_ c: SMMUv3Command) -> Bool {
        guard let op = c.opcode else { return false }
        switch op {
        case .prefetchConfig, .sync:
            break
        case .cfgiSTE:
            invalidateSTE(sid: c.streamID)
        case .cfgiAll:
            invalidateConfigurationCache()
        case .cfgiCD:
            guard configuration.features.contains(.stage1) else { return false }
            invalidateCD(sid: c.streamID, ssid: c.substreamID)
        case .cfgiCDAll:
            guard configuration.features.contains(.stage1) else { return false }
            invalidateCDs(sid: c.streamID)
        case .tlbiNHAll:
            let vmid = c.vmid
            tlb.invalidate { tag, _, _ in SMMUv3TLBTag.isStage1(tag) && SMMUv3TLBTag.vmid(tag) == vmid }
        case .tlbiNHASID:
            tlb.invalidate(tag: SMMUv3TLBTag.stage1(vmid: c.vmid, asid: c.asid))
            tlb.invalidate(tag: SMMUv3TLBTag.nested(vmid: c.vmid, asid: c.asid))
        case .tlbiNHVA:
            let (start, size) = Self.tlbiRange(c)
            tlb.invalidate(tag: SMMUv3TLBTag.stage1(vmid: c.vmid, asid: c.asid), iova: start, size: size)
            tlb.invalidate(tag: SMMUv3TLBTag.nested(vmid: c.vmid, asid: c.asid), iova: start, size: size)
        case .tlbiNHVAA:
            let (start, size) = Self.tlbiRange(c)
            let vmid = c.vmid
            let last = start &+ (size - 1)
            tlb.invalidate { tag, iova, pageSize in
                SMMUv3TLBTag.isStage1(tag) && SMMUv3TLBTag.vmid(tag) == vmid && iova <= last && iova &+ (pageSize - 1) >= start
            }
        case .tlbiS2IPA:
            guard configuration.features.contains(.stage2) else { return false }
            let (start, size) = Self.tlbiRange(c)
            tlb.invalidate(tag: SMMUv3TLBTag.stage2(vmid: c.vmid), iova: start, size: size)
        case .tlbiS12VMAll:
            guard configuration.features.contains(.stage2) else { return false }
            let vmid = c.vmid
            tlb.invalidate { tag, _, _ in SMMUv3TLBTag.vmid(tag) == vmid }
        case .tlbiNSNHAll:
            tlb.invalidateAll()
        case .tlbiEL2All, .tlbiEL2ASID, .tlbiEL2VA:
            // The model has no EL2 (E2H) stream world.
            return false
        case .atcInvalidate:
            invalidateATC(c)
        case .priResponse:
            guard let response = c.priResponse else { return false }
            priResponses.append(SMMUv3PRIResponseRecord(streamID: c.streamID, substreamID: c.substreamValid ? c.substreamID : nil,
                                                        groupIndex: c.priGroupIndex, response: response))
        case .resume:
            guard let action = c.resumeAction else { return false }
            resume(sid: c.streamID, stallTag: c.stallTag, action: action)
        }
        opcodeCounts[Int(op.rawValue)] += 1
        executedLog.append(c)
        return true
    }

    /// The range a TLBI_NH_VA, TLBI_NH_VAA or TLBI_S2_IPA covers: with TG set (range
    /// invalidation), (NUM + 1) << SCALE granules from the address; otherwise the one leaf
    /// holding the address (any entry containing it is dropped).
    static func tlbiRange(_ c: SMMUv3Command) -> (IOVA, UInt64) {
        let address = c.opcode == .tlbiS2IPA ? c.address & 0x000F_FFFF_FFFF_F000 : c.address
        guard c.rangeGranule != 0 else { return (IOVA(rawValue: address), 1) }
        let granuleShift = 10 + 2 * c.rangeGranule
        let count = (c.rangeNum + 1) << c.rangeScale
        let size = count << granuleShift
        return (IOVA(rawValue: address), size == 0 || size >> granuleShift != count ? UInt64.max - address : size)
    }

    /// ATC_INV: the device with the StreamID drops the ATC entries of the range (2^Size
    /// pages, aligned). With SSV the entries of that SubstreamID; without it every entry
    /// of the range, with or without PASID (an ATS invalidation without a PASID prefix).
    private func invalidateATC(_ c: SMMUv3Command) {
        guard let dev = endpoint(c.streamID), dev.isPresent else {
            unreachableATCInvalidations.append(c)
            return
        }
        let size: UInt64 = c.atcSize >= 52 ? .max : (4096 << c.atcSize)
        let start = IOVA(rawValue: size == .max ? 0 : c.address & ~(size - 1))
        if c.substreamValid {
            dev.invalidateATC(pasid: PASID(rawValue: c.substreamID), address: start, size: size)
        } else if size == .max {
            dev.invalidateATCAll()
        } else {
            let last = start + (size - 1)
            dev.atc?.invalidate { _, iova, pageSize in iova <= last && iova &+ (pageSize - 1) >= start }
        }
    }
}
