import IOMMUCore

/// The ARM SMMUv3 of one unit: its registers, the stream table and the CD tables it reads
/// from ``/Platform/PhysicalMemory``, its configuration cache (STEs and CDs), its TLB tagged by
/// (VMID, ASID), the command queue it consumes and the event and PRI queues it fills.
///
/// The kernel has no such object; it is what `drivers/iommu/arm/arm-smmu-v3/` programs.
/// The driver writes entries to memory and commands to the command queue; ``translate(_:)``
/// fetches STEs and CDs on a configuration-cache miss and walks the page tables on a TLB
/// miss, and serves later requests from those caches until a CFGI or TLBI command removes
/// them. So a driver that rewrites an STE and forgets CFGI_STE keeps translating with the
/// old configuration, exactly as on hardware.
///
/// Concurrency: everything runs with the unit's `hardwareLock` held (the DMA engine and the
/// driver take it), except the event and PRI queues, which have a lock of their own so
/// that the driver and the IOMMU core can look at them without the hardware lock.
public final class SMMUv3Hardware: IOMMUHardware, @unchecked Sendable {
    /// The memory the tables and queues live in.
    public let memory: PhysicalMemory
    /// How the SMMU is built.
    public let configuration: SMMUv3Configuration
    /// The TLB. Tags are built by ``SMMUv3TLBTag``.
    public let tlb: IOTLB

    /// Direct-mapped STE cache, indexed by StreamID.
    let steCache: UnsafeMutablePointer<STESlot>
    static let steSlots = 256
    /// Direct-mapped CD cache, indexed by (StreamID, SubstreamID).
    let cdCache: UnsafeMutablePointer<CDSlot>
    static let cdSlots = 1024
    /// Registers and counters, indexed by ``SMMUv3Register``.
    let regs: UnsafeMutablePointer<UInt64>
    /// Page-table formats the caches refer to by index (a miss decodes the STE or CD into
    /// one of them), so a cached entry holds a small integer and no reference.
    let formats: UnsafeMutablePointer<PageTableFormat>
    static let formatCapacity = 64
    /// Executed commands by opcode.
    let opcodeCounts: UnsafeMutablePointer<Int>

    /// The executed commands, oldest first: the newest ``executedLogLimit`` of them.
    public var executed: [SMMUv3Command] { executedLog.elements }
    var executedLog = BoundedLog<SMMUv3Command>(limit: SMMUv3Hardware.executedLogLimit)
    /// How many commands ``executed`` keeps.
    public static let executedLogLimit = 4096

    /// Transactions held by a stall, oldest first (Arm SMMUv3 architecture (IHI 0070), section 3.12.2).
    public internal(set) var stalled: [SMMUv3StalledTransaction] = []
    /// What became of stalled transactions a RESUME named, oldest first.
    public internal(set) var resumed: [SMMUv3ResumeOutcome] = []
    /// PRI responses sent to devices (PRI_RESP), oldest first.
    public internal(set) var priResponses: [SMMUv3PRIResponseRecord] = []
    /// ATC invalidations that found no device with that StreamID below the SMMU.
    public internal(set) var unreachableATCInvalidations: [SMMUv3Command] = []

    /// Devices below the SMMU by StreamID, for ATC invalidations and PRI responses.
    private var endpoints: [UInt32: WeakSMMUEndpoint] = [:]

    /// Guards the event and PRI queue registers and memory.
    let queueLock = Lock()

    /// An SMMU built as `configuration` says, whose tables and queues live in `memory`.
    /// It translates nothing until the driver programs the stream table, the queues and
    /// sets SMMUEN; before that every transaction aborts (GBPA.ABORT).
    public init(memory: PhysicalMemory, configuration: SMMUv3Configuration = SMMUv3Configuration(),
                tlbEntries: Int = 4096) {
        self.memory = memory
        self.configuration = configuration
        tlb = IOTLB(entries: tlbEntries)
        steCache = .allocate(capacity: Self.steSlots)
        steCache.initialize(repeating: STESlot(), count: Self.steSlots)
        cdCache = .allocate(capacity: Self.cdSlots)
        cdCache.initialize(repeating: CDSlot(), count: Self.cdSlots)
        regs = .allocate(capacity: SMMUv3Register.count)
        regs.initialize(repeating: 0, count: SMMUv3Register.count)
        formats = .allocate(capacity: Self.formatCapacity)
        opcodeCounts = .allocate(capacity: 256)
        opcodeCounts.initialize(repeating: 0, count: 256)
    }

    deinit {
        steCache.deallocate()
        cdCache.deallocate()
        regs.deallocate()
        formats.deinitialize(count: Int(regs[SMMUv3Register.formatCount.rawValue]))
        formats.deallocate()
        opcodeCounts.deallocate()
    }

    @inline(__always) func reg(_ r: SMMUv3Register) -> UInt64 { regs[r.rawValue] }
    /// A 64-bit read of the SMMU at physical address `pa` (a register value or table
    /// field: the callers check it is inside memory).
    @inline(__always) func load64(_ pa: UInt64) -> UInt64 { memory.load64(PhysicalAddress(rawValue: pa)) }
    /// A 64-bit write of the SMMU (queue records).
    @inline(__always) func store64(_ pa: UInt64, _ v: UInt64) { memory.store64(PhysicalAddress(rawValue: pa), v) }
    @inline(__always) func setReg(_ r: SMMUv3Register, _ v: UInt64) { regs[r.rawValue] = v }

    // MARK: ID registers

    /// IDR0-IDR5, IIDR and AIDR.
    public var idRegisters: SMMUv3IDRegisters { configuration.idRegisters }

    // MARK: control registers (the driver holds the hardware lock)

    /// `SMMU_STRTAB_BASE` and `SMMU_STRTAB_BASE_CFG` (`arm_smmu_write_strtab`): a linear
    /// table of 2^`log2Size` STEs at `base`, or with `twoLevel` a level-1 table of
    /// 2^(`log2Size` - `split`) descriptors at `base`.
    public func setStreamTable(base: PhysicalAddress, twoLevel: Bool, log2Size: Int, split: Int) {
        setReg(.strtabBase, base.rawValue & 0x000F_FFFF_FFFF_FFC0)
        setReg(.strtabConfig, UInt64(twoLevel ? 1 : 0) << 16 | UInt64(split & 0x1F) << 6 | UInt64(log2Size & 0x3F))
        invalidateConfigurationCache()
    }

    /// `SMMU_CMDQ_BASE`: a command queue of 2^`log2Entries` commands at `base`; PROD and
    /// CONS are reset.
    public func setCommandQueue(base: PhysicalAddress, log2Entries: Int) {
        setReg(.cmdqBase, base.rawValue)
        setReg(.cmdqShift, UInt64(log2Entries))
        setReg(.cmdqProd, 0)
        setReg(.cmdqCons, 0)
    }

    /// `SMMU_EVENTQ_BASE`: an event queue of 2^`log2Entries` records at `base`.
    public func setEventQueue(base: PhysicalAddress, log2Entries: Int) {
        queueLock.withLock {
            setReg(.evtqBase, base.rawValue)
            setReg(.evtqShift, UInt64(log2Entries))
            setReg(.evtqProd, 0)
            setReg(.evtqCons, 0)
        }
    }

    /// `SMMU_PRIQ_BASE`: a PRI queue of 2^`log2Entries` records at `base`.
    public func setPRIQueue(base: PhysicalAddress, log2Entries: Int) {
        queueLock.withLock {
            setReg(.priqBase, base.rawValue)
            setReg(.priqShift, UInt64(log2Entries))
            setReg(.priqProd, 0)
            setReg(.priqCons, 0)
        }
    }

    /// `SMMU_CR0`: SMMUEN (translation on), CMDQEN, EVTQEN and PRIQEN.
    public func setControl(_ cr0: SMMUv3Control) {
        if cr0.contains(.smmuEnable) && !control.contains(.smmuEnable) { invalidateConfigurationCache() }
        setReg(.cr0, UInt64(cr0.rawValue))
    }

    /// `SMMU_CR0` as last written.
    public var control: SMMUv3Control { SMMUv3Control(rawValue: UInt32(truncatingIfNeeded: reg(.cr0))) }

    // MARK: endpoints

    /// Puts `dev` on the SMMU's links as StreamID `sid`, reachable by ATC invalidations and
    /// PRI responses. Caller holds the hardware lock.
    public func attachEndpoint(_ dev: PCIDevice, sid: UInt32) { endpoints[sid] = WeakSMMUEndpoint(device: dev) }
    /// Removes StreamID `sid` from the SMMU's links. Caller holds the hardware lock.
    public func detachEndpoint(sid: UInt32) { endpoints[sid] = nil }
    func endpoint(_ sid: UInt32) -> PCIDevice? { endpoints[sid]?.device }

    // MARK: IOMMUHardware

    /// Translations, table walks, TLB hits and misses, recorded events and executed
    /// commands by opcode (`"CFGI_STE"`, `"TLBI_NH_VA"`, ...).
    public var counters: HardwareCounters {
        var c = HardwareCounters()
        c.translations = Int(reg(.translations))
        c.walks = Int(reg(.walks))
        c.faults = Int(reg(.faults))
        c.iotlbHits = tlb.hits
        c.iotlbMisses = tlb.misses
        for op in SMMUv3Command.Opcode.allCases where opcodeCounts[Int(op.rawValue)] != 0 {
            c.invalidations[op.description] = opcodeCounts[Int(op.rawValue)]
        }
        return c
    }

    /// Executed commands of `opcode`.
    public func executedCount(_ opcode: SMMUv3Command.Opcode) -> Int { opcodeCounts[Int(opcode.rawValue)] }

    /// Whether the tables in memory (not the caches) give (`rid`, `pasid`) a live
    /// translation: without PASID the STE is bypass or stage 2, or a CD-table STE whose
    /// substream-less traffic bypasses or uses a valid CD 0; with a PASID a valid CD at
    /// that index of a CD-table STE (SubstreamID 0 is terminated when S1DSS gives CD 0 to
    /// substream-less traffic). Reads memory only, so it needs no lock.
    public func hasLiveEntry(rid: RID, pasid: PASID?) -> Bool {
        guard let ste = try? fetchSTE(sid: UInt32(rid.raw)).get() else { return false }
        switch ste.config {
        case .bypass?, .stage2?: return pasid == nil
        case .stage1?, .nested?:
            guard let pasid else {
                if ste.s1CDMax != 0 {
                    if ste.s1dss == .bypass { return true }
                    if ste.s1dss != .ssid0 { return false }
                }
                return (try? fetchCD(ste: ste, ssid: 0).get())?.isValid ?? false
            }
            let ssid = pasid.rawValue
            guard ste.s1CDMax != 0, UInt64(ssid) >> ste.s1CDMax == 0, ssid != 0 || ste.s1dss != .ssid0 else { return false }
            return (try? fetchCD(ste: ste, ssid: ssid).get())?.isValid ?? false
        default: return false
        }
    }

    /// Whether the PRI queue still holds a request of `pasid` (nil: requests without
    /// PASID).
    public func hasPendingPageRequests(pasid: PASID?) -> Bool {
        pendingPRIEntries.contains { $0.substreamID == pasid?.rawValue }
    }

    // MARK: configuration structures in memory

    /// The STE of `sid` as the SMMU reads it from the stream table, or the event its
    /// lookup raises (C_BAD_STREAMID).
    public func fetchSTE(sid: UInt32) -> Result<SMMUv3STE, SMMUv3Event.ID> {
        steAddress(sid: sid).map { SMMUv3STE.load(memory, PhysicalAddress(rawValue: $0)) }
    }

    /// The address of the STE of `sid`, walking a two-level table's level-1 descriptor.
    func steAddress(sid: UInt32) -> Result<UInt64, SMMUv3Event.ID> {
        let base = reg(.strtabBase)
        let cfg = reg(.strtabConfig)
        guard base != 0 else { return .failure(.badStreamID) }
        let log2Size = cfg & 0x3F
        if cfg >> 16 & 3 == 0 {
            guard UInt64(sid) >> log2Size == 0 else { return .failure(.badStreamID) }
            return inMemory(base + UInt64(sid) * SMMUv3STE.size, SMMUv3STE.size, else: .steFetch)
        }
        let split = (cfg >> 6) & 0x1F
        let l1 = UInt64(sid) >> split
        guard l1 >> (log2Size - split) == 0 else { return .failure(.badStreamID) }
        guard case .success(let descAddress) = inMemory(base + l1 * 8, 8, else: .steFetch) else { return .failure(.steFetch) }
        let desc = load64(descAddress)
        let span = desc & SMMUv3StreamTableL1.spanMask
        let l2 = UInt64(sid) & ((1 << split) - 1)
        guard span != 0, l2 >> (span - 1) == 0 else { return .failure(.badStreamID) }
        return inMemory((desc & SMMUv3StreamTableL1.pointerMask) + l2 * SMMUv3STE.size, SMMUv3STE.size, else: .steFetch)
    }

    /// `address` when [`address`, `address + size`) is inside memory, else the fetch
    /// fault `id` (the SMMU's read got an external abort).
    @inline(__always)
    func inMemory(_ address: UInt64, _ size: UInt64, else id: SMMUv3Event.ID) -> Result<UInt64, SMMUv3Event.ID> {
        address < memory.size && size <= memory.size - address ? .success(address) : .failure(id)
    }

    /// The CD at index `ssid` of the table `ste` points at, or the event its lookup raises
    /// (C_BAD_SUBSTREAMID for an invalid level-1 descriptor). For a NESTED STE the table
    /// is at an intermediate physical address the stage 2 translates.
    public func fetchCD(ste: SMMUv3STE, ssid: UInt32) -> Result<SMMUv3CD, SMMUv3Event.ID> {
        cdAddress(ste: ste, ssid: ssid).map { SMMUv3CD.load(memory, PhysicalAddress(rawValue: $0)) }
    }

    /// The physical address of CD `ssid` of `ste`'s table.
    func cdAddress(ste: SMMUv3STE, ssid: UInt32) -> Result<UInt64, SMMUv3Event.ID> {
        let nested = ste.config == .nested
        // A NESTED STE's CD table is at intermediate physical addresses: each address is
        // translated by the stage 2 first (a stage-2 fault there is a CD fetch fault).
        func fetchAddress(_ a: UInt64, _ size: UInt64) -> Result<UInt64, SMMUv3Event.ID> {
            guard nested else { return inMemory(a, size, else: .cdFetch) }
            guard let pa = stage2Fetch(ste: ste, ipa: IOVA(rawValue: a)) else { return .failure(.cdFetch) }
            return inMemory(pa.rawValue, size, else: .cdFetch)
        }
        let table = ste.s1ContextPointer
        if ste.s1CDMax == 0 || ste.s1Fmt == SMMUv3CDTableConfig.linear {
            return fetchAddress(table + UInt64(ssid) * SMMUv3CD.size, SMMUv3CD.size)
        }
        let l1Index = UInt64(ssid / SMMUv3CDL1.leafEntries)
        guard case .success(let descAddress) = fetchAddress(table + l1Index * 8, 8) else { return .failure(.cdFetch) }
        let desc = load64(descAddress)
        guard desc & SMMUv3CDL1.valid != 0 else { return .failure(.badSubstreamID) }
        return fetchAddress((desc & SMMUv3CDL1.pointerMask) + UInt64(ssid % SMMUv3CDL1.leafEntries) * SMMUv3CD.size,
                            SMMUv3CD.size)
    }

    // MARK: cache maintenance

    /// Drops every cached STE and CD (CFGI_ALL, and when the stream table moves).
    func invalidateConfigurationCache() {
        for i in 0..<Self.steSlots { steCache[i].key = 0 }
        for i in 0..<Self.cdSlots { cdCache[i].key = 0 }
    }

    /// Drops the cached STE of `sid` and every CD cached through it (CFGI_STE).
    func invalidateSTE(sid: UInt32) {
        let s = steCache + STESlot.index(sid)
        if s.pointee.key == STESlot.key(sid) { s.pointee.key = 0 }
        invalidateCDs(sid: sid)
    }

    /// Drops every CD cached through `sid` (CFGI_CD_ALL).
    func invalidateCDs(sid: UInt32) {
        for i in 0..<Self.cdSlots where cdCache[i].key & CDSlot.validKey != 0 && cdCache[i].sid == sid {
            cdCache[i].key = 0
        }
    }

    /// Drops the cached CD of (`sid`, `ssid`) (CFGI_CD).
    func invalidateCD(sid: UInt32, ssid: UInt32) {
        let c = cdCache + CDSlot.index(sid: sid, ssid: ssid)
        if c.pointee.key == CDSlot.key(sid: sid, ssid: ssid) { c.pointee.key = 0 }
    }

    /// Whether the configuration cache holds the STE of `sid`, and its words 0-3.
    public func cachedSTE(sid: UInt32) -> (UInt64, UInt64, UInt64, UInt64)? {
        let s = steCache + STESlot.index(sid)
        guard s.pointee.key == STESlot.key(sid) else { return nil }
        return (s.pointee.w0, s.pointee.w1, s.pointee.w2, s.pointee.w3)
    }

    /// Whether the configuration cache holds the CD of (`sid`, `ssid`), and its ASID.
    public func cachedCDASID(sid: UInt32, ssid: UInt32) -> UInt16? {
        let c = cdCache + CDSlot.index(sid: sid, ssid: ssid)
        guard c.pointee.key == CDSlot.key(sid: sid, ssid: ssid) else { return nil }
        return UInt16(truncatingIfNeeded: c.pointee.w0 >> 48)
    }

    /// Whether the TLB holds any entry of (`vmid`, `asid`) (stage 1 or nested), or of
    /// `vmid` at all with `asid` nil.
    public func tlbHolds(vmid: UInt16, asid: UInt16?) -> Bool {
        var found = false
        tlb.invalidate { (tag: UInt64, _: IOVA, _: UInt64) -> Bool in
            if SMMUv3TLBTag.vmid(tag) == vmid && (asid == nil || (SMMUv3TLBTag.isStage1(tag) && SMMUv3TLBTag.asid(tag) == asid!)) {
                found = true
            }
            return false
        }
        return found
    }

    /// Registers a page-table format and returns its index (the caches store indices).
    func formatIndex(_ f: PageTableFormat) -> Int32? {
        let n = Int(reg(.formatCount))
        for i in 0..<n where formats[i] == f { return Int32(i) }
        guard n < Self.formatCapacity else { return nil }
        (formats + n).initialize(to: f)
        setReg(.formatCount, UInt64(n + 1))
        return Int32(n)
    }
}

/// `SMMU_CR0` bits.
public struct SMMUv3Control: OptionSet, Hashable, Sendable {
    /// The raw bits.
    public let rawValue: UInt32
    /// Wraps raw bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// `CR0_SMMUEN`: translation on.
    public static let smmuEnable = SMMUv3Control(rawValue: 1 << 0)
    /// `CR0_PRIQEN`.
    public static let priQueueEnable = SMMUv3Control(rawValue: 1 << 1)
    /// `CR0_EVTQEN`.
    public static let eventQueueEnable = SMMUv3Control(rawValue: 1 << 2)
    /// `CR0_CMDQEN`.
    public static let commandQueueEnable = SMMUv3Control(rawValue: 1 << 3)
}

/// The model's registers and counters, by index into ``SMMUv3Hardware/regs``.
enum SMMUv3Register: Int, CaseIterable {
    case translations, walks, faults, cr0
    case strtabBase, strtabConfig
    case cmdqBase, cmdqShift, cmdqProd, cmdqCons
    case evtqBase, evtqShift, evtqProd, evtqCons
    case priqBase, priqShift, priqProd, priqCons
    /// GERROR, as the SMMU toggles it (CMDQ_ERR is bit 0).
    case gerror
    /// The next stall tag.
    case nextStallTag
    /// Entries used in ``SMMUv3Hardware/formats``.
    case formatCount
    static let count = allCases.count
}

/// The TLB tag of an SMMUv3 translation: the kind (stage 1, stage 2 only, or a nested
/// stage 1 + stage 2 result), the VMID and the ASID.
public enum SMMUv3TLBTag {
    /// A stage-1 translation of (VMID, ASID) (VMID 0 for streams without stage 2).
    @inline(__always) public static func stage1(vmid: UInt16, asid: UInt16) -> UInt64 {
        1 << 32 | UInt64(vmid) << 16 | UInt64(asid)
    }
    /// A stage-2 translation of a VMID (any ASID).
    @inline(__always) public static func stage2(vmid: UInt16) -> UInt64 { 2 << 32 | UInt64(vmid) << 16 }
    /// A nested (stage 1 then stage 2) translation of (VMID, ASID).
    @inline(__always) public static func nested(vmid: UInt16, asid: UInt16) -> UInt64 {
        3 << 32 | UInt64(vmid) << 16 | UInt64(asid)
    }
    /// The VMID of a tag.
    @inline(__always) static func vmid(_ tag: UInt64) -> UInt16 { UInt16(truncatingIfNeeded: tag >> 16) }
    /// The ASID of a tag.
    @inline(__always) static func asid(_ tag: UInt64) -> UInt16 { UInt16(truncatingIfNeeded: tag) }
    /// Whether the tag holds a stage-1 result (stage 1 or nested): what TLBI_NH_* reach.
    @inline(__always) static func isStage1(_ tag: UInt64) -> Bool { tag >> 32 & 1 != 0 }
    /// Whether the tag holds a stage-2-only result: what TLBI_S2_IPA reaches.
    @inline(__always) static func isStage2Only(_ tag: UInt64) -> Bool { tag >> 32 == 2 }
}

/// A cached STE: words 0-3 (every field the SMMU uses) and the stage-2 format.
struct STESlot {
    /// `validKey | sid` while valid.
    var key: UInt64 = 0
    var w0: UInt64 = 0
    var w1: UInt64 = 0
    var w2: UInt64 = 0
    var w3: UInt64 = 0
    /// Index of the stage-2 format in ``SMMUv3Hardware/formats``, -1 without stage 2.
    var s2Format: Int32 = -1

    static let validKey: UInt64 = 1 << 63
    @inline(__always) static func key(_ sid: UInt32) -> UInt64 { validKey | UInt64(sid) }
    @inline(__always) static func index(_ sid: UInt32) -> Int { Int(truncatingIfNeeded: (sid ^ (sid >> 8)) & 0xFF) }
}

/// A cached CD: word 0 (flags, ASID, TCR), TTB0 and the stage-1 format.
struct CDSlot {
    /// `validKey | sid << 20 | ssid` while valid.
    var key: UInt64 = 0
    var w0: UInt64 = 0
    var ttb0: PhysicalAddress = 0
    /// Index of the stage-1 format in ``SMMUv3Hardware/formats``; -1 with EPD0.
    var format: Int32 = -1

    static let validKey: UInt64 = 1 << 63
    @inline(__always) static func key(sid: UInt32, ssid: UInt32) -> UInt64 {
        validKey | UInt64(sid) << 20 | UInt64(ssid & 0xF_FFFF)
    }
    @inline(__always) static func index(sid: UInt32, ssid: UInt32) -> Int {
        Int(truncatingIfNeeded: ((UInt64(sid) &* 0x9E37_79B9) ^ UInt64(ssid) &* 0x85EB_CA6B) >> 7) & (SMMUv3Hardware.cdSlots - 1)
    }
    var sid: UInt32 { UInt32(truncatingIfNeeded: (key & ~Self.validKey) >> 20) }
}

/// A weak reference to a device on the SMMU's links.
struct WeakSMMUEndpoint {
    weak var device: PCIDevice?
}

/// A transaction held by a stall: it waits for a RESUME with its tag.
public struct SMMUv3StalledTransaction: Hashable, Sendable {
    /// STAG.
    public let stallTag: UInt16
    /// The StreamID.
    public let streamID: UInt32
    /// The transaction.
    public let request: TranslationRequest
    /// The event that reported it.
    public let event: SMMUv3Event.ID
}

/// What a RESUME did to a stalled transaction.
public struct SMMUv3ResumeOutcome: Hashable, Sendable, CustomStringConvertible {
    /// The transaction.
    public let transaction: SMMUv3StalledTransaction
    /// The action the RESUME asked for.
    public let action: SMMUv3Command.ResumeAction
    /// After a retry: the translation (nil when the retry faulted again, stalling or
    /// aborting as the configuration says).
    public let result: TranslationResult?

    /// `stag 3 retry -> translated 0x…` and the like.
    public var description: String {
        var s = "stag \(transaction.stallTag) \(action)"
        if let result {
            if case .translated(let pa, _, _) = result { s += " -> \(pa)" } else { s += " -> fault" }
        }
        return s
    }
}

/// A PRI response the SMMU sent to a device.
public struct SMMUv3PRIResponseRecord: Hashable, Sendable {
    /// The StreamID.
    public let streamID: UInt32
    /// The SubstreamID, nil without SSV.
    public let substreamID: UInt32?
    /// The page-request group index.
    public let groupIndex: UInt16
    /// The response.
    public let response: SMMUv3Command.PRIResponse
}
