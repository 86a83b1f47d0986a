import IOMMUCore

extension SMMUv3Hardware {
    /// `Q_OVERFLOW_FLAG`: bit 31 of an output queue's PROD toggles when the SMMU dropped a
    /// record because the queue was full.
    public static let queueOverflowFlag: UInt32 = 1 << 31

    // MARK: event queue

    /// The event queue's PROD register (index, wrap bit and overflow flag).
    public var eventQueueProducer: UInt32 { queueLock.withLock { UInt32(truncatingIfNeeded: reg(.evtqProd)) } }
    /// The event queue's CONS register.
    public var eventQueueConsumer: UInt32 { queueLock.withLock { UInt32(truncatingIfNeeded: reg(.evtqCons)) } }

    /// Writes an event record at PROD (Arm SMMUv3 architecture (IHI 0070), section 7.2). A full queue drops it and
    /// toggles the overflow flag; a queue that is not enabled drops it silently.
    func recordEvent(_ e: SMMUv3Event) {
        regs[SMMUv3Register.faults.rawValue] &+= 1
        queueLock.withLock {
            guard control.contains(.eventQueueEnable), reg(.evtqBase) != 0 else { return }
            let shift = reg(.evtqShift)
            var prod = UInt32(truncatingIfNeeded: reg(.evtqProd))
            let cons = UInt32(truncatingIfNeeded: reg(.evtqCons))
            if Self.queueFull(prod: prod, cons: cons, shift: shift) {
                setReg(.evtqProd, UInt64(Self.overflowed(prod: prod, cons: cons)))
                return
            }
            let slot = Self.queueSlot(base: reg(.evtqBase), shift: shift, index: prod, size: SMMUv3Event.size)
            store64(slot, e.words.0)
            store64(slot + 8, e.words.1)
            store64(slot + 16, e.words.2)
            store64(slot + 24, e.words.3)
            prod = Self.queueIncrement(prod, shift: shift)
            setReg(.evtqProd, UInt64(prod))
        }
    }

    /// Reads the event records between CONS and PROD and advances CONS past them
    /// (`queue_remove_raw` in a loop, then `queue_sync_cons_ovf`): what the driver's
    /// event-queue thread does. Returns the records and whether the queue had overflowed
    /// (the overflow flag is acknowledged by copying it into CONS).
    public func drainEventQueue() -> (events: [SMMUv3Event], overflowed: Bool) {
        queueLock.withLock {
            let shift = reg(.evtqShift)
            let prod = UInt32(truncatingIfNeeded: reg(.evtqProd))
            var cons = UInt32(truncatingIfNeeded: reg(.evtqCons))
            var out: [SMMUv3Event] = []
            let mask = UInt32((1 << (shift + 1)) - 1)
            while cons & mask != prod & mask {
                let slot = Self.queueSlot(base: reg(.evtqBase), shift: shift, index: cons, size: SMMUv3Event.size)
                out.append(SMMUv3Event(words: (load64(slot), load64(slot + 8), load64(slot + 16),
                                               load64(slot + 24))))
                cons = Self.queueIncrement(cons, shift: shift)
            }
            let overflowed = (prod ^ cons) & Self.queueOverflowFlag != 0
            cons = (cons & ~Self.queueOverflowFlag) | (prod & Self.queueOverflowFlag)
            setReg(.evtqCons, UInt64(cons))
            return (out, overflowed)
        }
    }

    /// PROD after a record was lost: the overflow flag made different from CONS's
    /// acknowledged one (it toggles once per overflow condition, not per lost record).
    static func overflowed(prod: UInt32, cons: UInt32) -> UInt32 {
        (prod & ~queueOverflowFlag) | (~cons & queueOverflowFlag)
    }

    static func queueFull(prod: UInt32, cons: UInt32, shift: UInt64) -> Bool {
        let indexMask = UInt32((1 << shift) - 1)
        let wrap = UInt32(1 << shift)
        return prod & indexMask == cons & indexMask && prod & wrap != cons & wrap
    }

    // MARK: PRI queue

    /// A PCIe page request from the device with StreamID `sid` arrives: the SMMU writes it
    /// into the PRI queue. It is dropped when the SMMU has no PRI, the queue is not
    /// enabled, or the queue is full (the overflow flag toggles; the device gets no
    /// response, as on hardware).
    /// - Returns: whether the request was queued.
    public func receivePageRequest(sid: UInt32, _ request: PageRequest) -> Bool {
        guard configuration.features.contains(.pri) else { return false }
        return queueLock.withLock {
            guard control.contains(.priQueueEnable), reg(.priqBase) != 0 else { return false }
            let shift = reg(.priqShift)
            var prod = UInt32(truncatingIfNeeded: reg(.priqProd))
            let cons = UInt32(truncatingIfNeeded: reg(.priqCons))
            if Self.queueFull(prod: prod, cons: cons, shift: shift) {
                setReg(.priqProd, UInt64(Self.overflowed(prod: prod, cons: cons)))
                return false
            }
            let entry = SMMUv3PRIEntry(sid: sid, request: request)
            let slot = Self.queueSlot(base: reg(.priqBase), shift: shift, index: prod, size: SMMUv3PRIEntry.size)
            store64(slot, entry.w0)
            store64(slot + 8, entry.w1)
            prod = Self.queueIncrement(prod, shift: shift)
            setReg(.priqProd, UInt64(prod))
            return true
        }
    }

    /// The PRI entries between CONS and PROD, without consuming them.
    public var pendingPRIEntries: [SMMUv3PRIEntry] {
        queueLock.withLock { priEntries(consume: false).entries }
    }

    /// Reads the PRI entries between CONS and PROD and advances CONS past them (the
    /// driver's PRI-queue thread), acknowledging an overflow.
    public func drainPRIQueue() -> (entries: [SMMUv3PRIEntry], overflowed: Bool) {
        queueLock.withLock { priEntries(consume: true) }
    }

    private func priEntries(consume: Bool) -> (entries: [SMMUv3PRIEntry], overflowed: Bool) {
        let base = reg(.priqBase)
        guard base != 0 else { return ([], false) }
        let shift = reg(.priqShift)
        let prod = UInt32(truncatingIfNeeded: reg(.priqProd))
        var cons = UInt32(truncatingIfNeeded: reg(.priqCons))
        let mask = UInt32((1 << (shift + 1)) - 1)
        var out: [SMMUv3PRIEntry] = []
        while cons & mask != prod & mask {
            let slot = Self.queueSlot(base: base, shift: shift, index: cons, size: SMMUv3PRIEntry.size)
            out.append(SMMUv3PRIEntry(w0: load64(slot), w1: load64(slot + 8)))
            cons = Self.queueIncrement(cons, shift: shift)
        }
        let overflowed = (prod ^ cons) & Self.queueOverflowFlag != 0
        if consume {
            cons = (cons & ~Self.queueOverflowFlag) | (prod & Self.queueOverflowFlag)
            setReg(.priqCons, UInt64(cons))
        }
        return (out, overflowed)
    }

    // MARK: stalls

    /// Holds `request` as a stalled transaction and reports it (an event with Stall set
    /// and a fresh STAG). Returns nil when the stall limit (IDR5.STALL_MAX) is reached:
    /// the transaction then aborts instead.
    func stall(_ request: TranslationRequest, sid: UInt32, event: SMMUv3Event.ID, stage2: Bool) -> UInt16? {
        guard stalled.count < configuration.stallMax else { return nil }
        let tag = UInt16(truncatingIfNeeded: reg(.nextStallTag))
        setReg(.nextStallTag, reg(.nextStallTag) &+ 1)
        stalled.append(SMMUv3StalledTransaction(stallTag: tag, streamID: sid, request: request, event: event))
        recordEvent(SMMUv3Event(id: event, sid: sid, ssid: request.pasid?.rawValue, address: request.address,
                                read: !request.access.contains(.write), instruction: request.access.contains(.execute),
                                privileged: request.privileged, stage2: stage2, stallTag: tag))
        return tag
    }

    /// RESUME: ends the stalled transaction (`sid`, `stallTag`). A retry translates it
    /// again (which may fault and stall again); an abort or terminate ends it. A RESUME
    /// naming no stalled transaction is ignored, as the spec allows.
    func resume(sid: UInt32, stallTag: UInt16, action: SMMUv3Command.ResumeAction) {
        guard let i = stalled.firstIndex(where: { $0.streamID == sid && $0.stallTag == stallTag }) else { return }
        let t = stalled.remove(at: i)
        let result = action == .retry ? translate(t.request) : nil
        let outcome: TranslationResult? = if case .translated = result { result } else { nil }
        resumed.append(SMMUv3ResumeOutcome(transaction: t, action: action, result: outcome))
    }
}
