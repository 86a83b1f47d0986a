import IOMMUCore

/// The ARM SMMU architecture version 2 hardware of one unit: its register file (global
/// configuration, stream matching, context banks with their fault syndrome), the TLB
/// tagged by (context bank, ASID) whose maintenance completes at TLBSYNC, and the
/// stage-1 walker that reads the VMSAv8-64
/// (LPAE) tables the driver writes into ``/Platform/PhysicalMemory``.
///
/// The kernel has no such object; it is what `drivers/iommu/arm/arm-smmu/` programs
/// through MMIO. Software reaches it only through ``read32(_:_:)``, ``read64(_:_:)``,
/// ``write32(_:_:_:by:)`` and ``write64(_:_:_:by:)``, register by register, so a driver
/// that forgets a TLB invalidation keeps translating with the stale entry, as real
/// hardware does.
///
/// A stream ID (for a PCI function, its RID) is matched against the SMRs; the matching
/// S2CR bypasses, faults, or routes to a context bank. A context bank splits the input
/// space in two (AArch64 `TCR`): addresses below 2^(64-T0SZ) walk the table at TTBR0,
/// addresses at or above 2^64 - 2^(64-T1SZ) the table at TTBR1 (EPD0/EPD1 disable
/// either), and every translation is tagged with one ASID (TTBR0's, or TTBR1's with
/// TCR.A1). A fault is recorded in the bank's FSR, FAR, FSYNR0/1 and the global
/// CBFRSYNRA, raises the bank's interrupt (SCTLR.CFIE) and, with SCTLR.CFCFG, stalls the
/// transaction until software writes RESUME (retry or terminate).
///
/// Concurrency: every call runs with the owning unit's `hardwareLock` held (the DMA
/// engine holds it around ``translate(_:)``; drivers and clients take it around register
/// accesses).
public final class SMMUv2Hardware: IOMMUHardware, @unchecked Sendable {
    /// The memory the tables live in.
    public let memory: PhysicalMemory
    /// The implementation's configuration (its ID registers).
    public let config: SMMUv2Configuration
    /// The TLB. Tags are ``tlbTag(contextBank:asid:)``.
    public let tlb: IOTLB

    /// Global registers: [0] sCR0, [1] sGFSR, [2] sGFSYNR0, [3] sGFSYNR1, [4] sGFSYNR2.
    let global: UnsafeMutablePointer<UInt32>
    /// SMR and S2CR values, one per stream match group.
    let smrs: UnsafeMutablePointer<UInt32>
    let s2crs: UnsafeMutablePointer<UInt32>
    /// The stream match of every stream ID, derived from the valid SMRs (the hardware's
    /// parallel compare): 0 no match, ``conflict`` several, else the group index + 1.
    let streamMatch: UnsafeMutablePointer<UInt16>
    static let conflict: UInt16 = .max
    /// The context banks.
    let banks: UnsafeMutablePointer<SMMUv2ContextBank>
    /// [0] translations, [1] walks, [2] faults recorded, [3] bypassed transactions.
    let stats: UnsafeMutablePointer<Int>
    /// TLB maintenance executed, by kind (indexed like ``SMMUv2TLBOperation/Kind``).
    var maintenanceCounts: [SMMUv2TLBOperation.Kind: Int] = [:]
    /// The newest TLB maintenance operations, oldest first.
    var maintenanceLog = BoundedLog<SMMUv2TLBOperation>(limit: SMMUv2Hardware.maintenanceLogLimit)
    /// How many maintenance operations ``tlbOperations`` keeps.
    public static let maintenanceLogLimit = 4096
    /// TLB maintenance written and not yet completed by a sync, oldest first.
    var pendingMaintenance: [SMMUv2TLBOperation] = []
    /// Context banks whose fault interrupt is raised and not yet taken, ascending.
    var pendingContextInterrupts: Set<Int> = []
    /// Whether the global fault interrupt is raised.
    var pendingGlobalInterrupt = false
    let streamIDMask: Int

    /// An SMMU as it comes out of reset: client ports disabled (every transaction
    /// bypasses), every SMR invalid, every S2CR fault, every context bank disabled.
    /// - Throws: `EINVAL` for a configuration the architecture does not allow.
    public init(memory: PhysicalMemory, config: SMMUv2Configuration = SMMUv2Configuration()) throws(Errno) {
        guard config.isValid else { throw .invalidArgument }
        self.memory = memory
        self.config = config
        tlb = IOTLB(entries: config.tlbEntries)
        streamIDMask = (1 << config.streamIDBits) - 1
        global = .allocate(capacity: 5)
        global.initialize(repeating: 0, count: 5)
        global[0] = SMMUv2Field.sCR0ClientPD
        smrs = .allocate(capacity: config.streamMatchGroups)
        smrs.initialize(repeating: 0, count: config.streamMatchGroups)
        s2crs = .allocate(capacity: config.streamMatchGroups)
        s2crs.initialize(repeating: SMMUv2Field.s2crTypeFault << 16, count: config.streamMatchGroups)
        streamMatch = .allocate(capacity: 1 << 16)
        streamMatch.initialize(repeating: 0, count: 1 << 16)
        banks = .allocate(capacity: config.contextBanks)
        banks.initialize(repeating: SMMUv2ContextBank(), count: config.contextBanks)
        stats = .allocate(capacity: 4)
        stats.initialize(repeating: 0, count: 4)
    }

    deinit {
        global.deallocate()
        smrs.deallocate()
        s2crs.deallocate()
        streamMatch.deallocate()
        banks.deinitialize(count: config.contextBanks)
        banks.deallocate()
        stats.deallocate()
    }

    // MARK: IOMMUHardware

    /// Translations, walks, TLB hits and misses, recorded faults and TLB maintenance by
    /// kind (`"TLBIASID"`, `"TLBIVA"`, …).
    public var counters: HardwareCounters {
        var c = HardwareCounters()
        c.translations = stats[0]
        c.walks = stats[1]
        c.faults = stats[2]
        c.iotlbHits = tlb.hits
        c.iotlbMisses = tlb.misses
        for (k, n) in maintenanceCounts { c.invalidations[k.rawValue] = n }
        return c
    }

    /// Whether requests of `rid` are routed somewhere other than a fault: a matching SMR
    /// whose S2CR bypasses or names an enabled stage-1 context bank. SMMUv2 has no
    /// PASIDs: only requests without one (`pasid` nil) can be live.
    public func hasLiveEntry(rid: RID, pasid: PASID?) -> Bool {
        guard pasid == nil, global[0] & SMMUv2Field.sCR0ClientPD == 0 else { return pasid == nil }
        let m = streamMatch[Int(rid.raw) & streamIDMask]
        guard m != 0, m != Self.conflict else { return global[0] & SMMUv2Field.sCR0USFCFG == 0 }
        let s2cr = s2crs[Int(m) - 1]
        switch (s2cr >> 16) & 3 {
        case SMMUv2Field.s2crTypeBypass: return true
        case SMMUv2Field.s2crTypeTranslate:
            let cb = Int(s2cr & 0xFF)
            return cb < config.contextBanks && banks[cb].translating
        default: return false
        }
    }

    /// SMMUv2 has no page-request interface.
    public func hasPendingPageRequests(pasid: PASID?) -> Bool { false }

    // MARK: inspection (clear-box, for tests and the model's tools)

    /// The TLB maintenance operations executed, oldest first (the newest
    /// ``maintenanceLogLimit``).
    public var tlbOperations: [SMMUv2TLBOperation] { maintenanceLog.elements }
    /// Forgets the maintenance log (not the counters).
    public func clearTLBOperations() { maintenanceLog.removeAll() }

    /// The TLB tag of translations of `contextBank` under `asid`: the bank in bits 13:7,
    /// the ASID from bit 14, and in bits 6:0 the two mixed, because the TLB picks a slot
    /// from the tag's low bits (so that banks and ASIDs spread over the slots).
    @inline(__always)
    public static func tlbTag(contextBank: Int, asid: UInt16) -> UInt64 {
        (UInt64(contextBank) ^ UInt64(asid)) & 0x7F | UInt64(contextBank & 0x7F) << 7 | UInt64(asid) << 14
    }

    /// The context bank of a TLB tag.
    @inline(__always)
    static func contextBank(ofTag tag: UInt64) -> Int { Int(truncatingIfNeeded: tag >> 7 & 0x7F) }

    /// Whether the TLB holds a translation of `address` for `contextBank` under `asid`
    /// (a probe that does not count as a hit or a miss).
    public func tlbHolds(contextBank: Int, asid: UInt16, address: IOVA) -> Bool {
        let tag = Self.tlbTag(contextBank: contextBank, asid: asid)
        var found = false
        tlb.invalidate { t, iova, size in
            if t == tag && iova <= address && iova.distance(to: address) < size { found = true }
            return false
        }
        return found
    }

    /// TLB entries held for `contextBank` (any ASID).
    public func tlbEntries(contextBank: Int) -> Int {
        var n = 0
        tlb.invalidate { t, _, _ in
            if Self.contextBank(ofTag: t) == contextBank { n += 1 }
            return false
        }
        return n
    }

    /// The transaction `contextBank` holds stalled, if any.
    public func stalledTransaction(contextBank: Int) -> SMMUv2StalledTransaction? {
        guard contextBank >= 0, contextBank < config.contextBanks else { return nil }
        return banks[contextBank].stalled
    }

    /// Takes how the last stalled transaction of stream `streamID` ended, once: nil while
    /// it still waits for RESUME (or if none stalled). A client model calls this to learn
    /// whether to reissue the access (retried) or give up (terminated).
    public func takeResumeOutcome(streamID: UInt16) -> (SMMUv2StalledTransaction, SMMUv2ResumeOutcome)? {
        for i in 0..<config.contextBanks {
            if let r = banks[i].resumed, r.0.streamID == streamID {
                banks[i].resumed = nil
                return r
            }
        }
        return nil
    }

    /// Takes the raised interrupts, once: the context banks with a pending fault
    /// interrupt (ascending) and whether the global fault interrupt is pending. The
    /// unit's interrupt dispatch calls this and runs the handlers.
    public func takeInterrupts() -> (contextBanks: [Int], global: Bool) {
        let banks = pendingContextInterrupts.sorted()
        let g = pendingGlobalInterrupt
        pendingContextInterrupts.removeAll()
        pendingGlobalInterrupt = false
        return (banks, g)
    }

    /// The stream match group that stream `streamID` selects, nil for none or a conflict.
    public func matchingGroup(streamID: UInt16) -> Int? {
        let m = streamMatch[Int(streamID) & streamIDMask]
        return m == 0 || m == Self.conflict ? nil : Int(m) - 1
    }
}

/// One context bank: its registers and what the hardware derives from them on every
/// write (the walk formats, the TLB tag), plus a stalled transaction.
struct SMMUv2ContextBank {
    var cbar: UInt32 = 0
    var cba2r: UInt32 = 0
    var cbfrsynra: UInt32 = 0
    var sctlr: UInt32 = 0
    var actlr: UInt32 = 0
    var tcr: UInt32 = 0
    var tcr2: UInt32 = 0
    var ttbr0: UInt64 = 0
    var ttbr1: UInt64 = 0
    var contextIDR: UInt32 = 0
    var mair0: UInt32 = 0
    var mair1: UInt32 = 0
    var par: UInt64 = 0
    var fsr: UInt32 = 0
    var far: UInt64 = 0
    var fsynr0: UInt32 = 0
    var fsynr1: UInt32 = 0

    /// SCTLR.M set on a stage-1 AArch64 context: translate (else bypass or fault).
    var translating = false
    /// SCTLR.M set on a context this model does not translate (stage 2, AArch32).
    var unsupportedContext = false
    /// ``SMMUv2Hardware/tlbTag(contextBank:asid:)`` of the current ASID.
    var tag: UInt64 = 0
    /// The lower (TTBR0) and upper (TTBR1) input ranges.
    var lower = SMMUv2InputRange()
    var upper = SMMUv2InputRange()
    /// A transaction waiting for RESUME (FSR.SS).
    var stalled: SMMUv2StalledTransaction?
    /// How the last stalled transaction ended, until its client takes it.
    var resumed: (SMMUv2StalledTransaction, SMMUv2ResumeOutcome)?
}

/// One half of a context bank's input space as the TCR and a TTBR describe it.
struct SMMUv2InputRange {
    /// Input bits of the range (64 - TnSZ); 0 = the range is empty.
    var bits: UInt64 = 0
    /// EPDn clear: the walker may use the table.
    var enabled = false
    /// The table's format; nil when the TCR fields describe no valid table.
    var format: PageTableFormat?
    /// The table's base address (TTBRn.BADDR).
    var root: PhysicalAddress = 0
}
