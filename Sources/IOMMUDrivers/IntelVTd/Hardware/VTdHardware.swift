import IOMMUCore

/// The VT-d remapping hardware of one unit in scalable mode: its registers, the root /
/// context / PASID tables it reads from ``/Platform/PhysicalMemory``, its caches (context cache,
/// PASID cache, IOTLB), the queued-invalidation engine and the page-request queue.
///
/// The kernel has no such object; it is what `drivers/iommu/intel/` programs. The driver
/// writes entries to memory and submits ``VTdDescriptor``s; ``translate(_:)`` walks the
/// tables on a miss and serves later requests from the caches until an invalidation
/// removes them, so a missing invalidation is a visible stale translation.
///
/// Concurrency: ``translate(_:)`` and ``submit(_:)`` run with the unit's
/// `hardwareLock` held (the DMA engine and the driver take it); the page-request queue
/// has its own lock because the IOMMU core asks about it without the hardware lock.
public final class VTdHardware: IOMMUHardware, @unchecked Sendable {
    /// The memory the tables live in.
    public let memory: PhysicalMemory
    /// The unit's capability registers.
    public let caps: VTdCapabilities
    /// The IOTLB, tagged by DID and PASID (see ``iotlbTag(did:pasid:)``).
    public let iotlb: IOTLB

    /// Direct-mapped context cache, one slot per RID hash.
    let contextCache: UnsafeMutablePointer<ContextSlot>
    static let contextSlots = 256
    /// Direct-mapped PASID cache.
    let pasidCache: UnsafeMutablePointer<PASIDSlot>
    static let pasidSlots = 1024
    /// [0] translations, [1] walks, [2] recorded faults, [3] suppressed faults,
    /// [4] page requests queued, [5] root table address, [6] translation enabled,
    /// [7] PRQ overflow, [8] write-buffer flushes, [9] next PRG index.
    let regs: UnsafeMutablePointer<UInt64>
    /// Executed descriptors by kind, indexed like ``VTdDescriptor/allKinds``.
    let kindCounts: UnsafeMutablePointer<Int>

    /// The executed descriptors, oldest first (the model's view of the invalidation
    /// queue): the newest ``executedLogLimit`` of them, since every unmap executes some.
    public var executed: [VTdDescriptor] { executedLog.elements }
    var executedLog = BoundedLog<VTdDescriptor>(limit: VTdHardware.executedLogLimit)
    /// How many descriptors ``executed`` keeps.
    public static let executedLogLimit = 4096
    /// Device-TLB descriptors dropped because the target device was gone (an
    /// invalidation time-out the real queue would hang on).
    public internal(set) var droppedDescriptors: [VTdDescriptor] = []
    /// The fault-recording registers, oldest first.
    public internal(set) var faultRecords: [VTdFaultRecord] = []
    /// Page-group responses delivered to devices, oldest first.
    public internal(set) var pageResponses: [VTdPageResponse] = []

    private var endpoints: [UInt16: WeakEndpoint] = [:]
    let prqLock = Lock()
    var prq: [VTdPageRequest] = []
    /// Capacity of the page-request queue (`PRQ_SIZE` / 32 bytes per descriptor).
    public static let prqCapacity = 2048

    /// A unit with `caps` whose tables live in `memory`; translation is off until the
    /// driver sets a root table and enables it.
    public init(memory: PhysicalMemory, caps: VTdCapabilities = VTdCapabilities(), iotlbEntries: Int = 4096) {
        self.memory = memory
        self.caps = caps
        iotlb = IOTLB(entries: iotlbEntries)
        contextCache = .allocate(capacity: Self.contextSlots)
        contextCache.initialize(repeating: ContextSlot(), count: Self.contextSlots)
        pasidCache = .allocate(capacity: Self.pasidSlots)
        pasidCache.initialize(repeating: PASIDSlot(), count: Self.pasidSlots)
        regs = .allocate(capacity: 10)
        regs.initialize(repeating: 0, count: 10)
        kindCounts = .allocate(capacity: VTdDescriptor.allKinds.count)
        kindCounts.initialize(repeating: 0, count: VTdDescriptor.allKinds.count)
    }

    deinit {
        contextCache.deallocate()
        pasidCache.deallocate()
        regs.deallocate()
        kindCounts.deallocate()
    }

    // MARK: registers

    /// Writes `DMAR_RTADDR_REG` (with `DMA_RTADDR_SMT`) and issues Set Root Table
    /// Pointer (`iommu_set_root_entry`). Caller holds the hardware lock.
    public func setRootTable(_ pa: PhysicalAddress) { regs[5] = pa.rawValue & ~0xFFF }
    /// The root-table address register.
    public var rootTableAddress: PhysicalAddress { PhysicalAddress(rawValue: regs[5]) }
    /// Sets or clears `DMA_GCMD_TE` (`iommu_enable_translation`). Caller holds the lock.
    public func setTranslationEnabled(_ on: Bool) { regs[6] = on ? 1 : 0 }
    /// Whether translation is enabled (`DMA_GSTS_TES`).
    public var translationEnabled: Bool { regs[6] != 0 }
    /// A write-buffer flush (`DMA_GCMD_WBF`, `iommu_flush_write_buffer`): makes table
    /// writes visible to a unit that needs it; it drops no cached translation.
    public func flushWriteBuffer() { regs[8] &+= 1 }
    /// Write-buffer flushes so far.
    public var writeBufferFlushes: Int { Int(regs[8]) }
    /// Faults suppressed by FPD.
    public var suppressedFaults: Int { Int(regs[3]) }
    /// Page requests queued so far.
    public var pageRequestsQueued: Int { Int(regs[4]) }
    /// The PRQ overflow flag (`DMA_PRS_PRO`).
    public var prqOverflow: Bool { regs[7] != 0 }

    // MARK: endpoints

    /// Makes the device reachable by device-TLB invalidations and page-group responses
    /// (it sits on a link below this unit). Caller holds the hardware lock.
    public func attachEndpoint(_ dev: PCIDevice) { endpoints[dev.rid.raw] = WeakEndpoint(device: dev) }
    /// Removes a device from the unit's links. Caller holds the hardware lock.
    public func detachEndpoint(_ rid: RID) { endpoints[rid.raw] = nil }
    func endpoint(_ rid: RID) -> PCIDevice? { endpoints[rid.raw]?.device }

    // MARK: IOMMUHardware

    /// The unit's counters: translations, walks, IOTLB hits/misses, recorded faults and
    /// executed descriptors by kind.
    public var counters: HardwareCounters {
        var c = HardwareCounters()
        c.translations = Int(regs[0])
        c.walks = Int(regs[1])
        c.faults = Int(regs[2])
        c.iotlbHits = iotlb.hits
        c.iotlbMisses = iotlb.misses
        for (i, k) in VTdDescriptor.allKinds.enumerated() where kindCounts[i] != 0 { c.invalidations[k] = kindCounts[i] }
        return c
    }

    /// Whether the PASID-table entry of (`rid`, `pasid`) is present in memory (nil: the
    /// context's RID_PASID entry), walking root, context and directory as the hardware
    /// would.
    public func hasLiveEntry(rid: RID, pasid: PASID?) -> Bool {
        guard let pa = pasidEntryAddress(rid: rid, pasid: pasid) else { return false }
        return memory.load64(pa) & 1 != 0
    }

    /// Whether page requests with `pasid` (nil: requests without PASID) are still queued.
    public func hasPendingPageRequests(pasid: PASID?) -> Bool {
        prqLock.withLock { prq.contains { $0.pasid == pasid } }
    }

    /// The address of the PASID-table entry of (`rid`, `pasid`) (nil: the context's
    /// RID_PASID entry) reached through the tables in memory, nil where a level is
    /// missing.
    public func pasidEntryAddress(rid: RID, pasid: PASID?) -> PhysicalAddress? {
        guard regs[5] != 0 else { return nil }
        let re = memory.load64(VTdRootEntry.address(root: rootTableAddress, bus: rid.bus) + (rid.devfn >= 0x80 ? 8 : 0))
        guard re & 1 != 0 else { return nil }
        let ce = VTdContextEntry.load(memory, VTdContextEntry.address(table: PhysicalAddress(rawValue: re & ~0xFFF),
                                                                      devfn: rid.devfn))
        guard ce.present else { return nil }
        let p = pasid?.rawValue ?? ce.ridPasid
        guard VTdPASIDDirectory.index(p) < UInt64(1) << UInt64(ce.pdts + 7) else { return nil }
        let de = memory.load64(ce.pasidDirectory + VTdPASIDDirectory.index(p) * 8)
        guard de & 1 != 0 else { return nil }
        return PhysicalAddress(rawValue: (de & VTdPASIDDirectory.pointerMask)) + VTdPASIDDirectory.tableIndex(p) * VTdPASIDEntry.size
    }

    // MARK: tags

    /// The IOTLB tag of first-stage translations of (DID, PASID).
    @inline(__always)
    public static func iotlbTag(did: UInt16, pasid: UInt32) -> UInt64 { UInt64(did) << 21 | UInt64(pasid & 0xF_FFFF) }
    /// The IOTLB tag of second-stage translations of a DID (not PASID-specific: every
    /// PASID on the same second-stage table shares them).
    @inline(__always)
    public static func secondStageTag(did: UInt16) -> UInt64 { UInt64(did) << 21 | 1 << 20 }
    /// The DID of an IOTLB tag.
    @inline(__always)
    static func did(ofTag tag: UInt64) -> UInt16 { UInt16(truncatingIfNeeded: tag >> 21) }

    // MARK: audits for the model's checkers

    /// Whether the PASID cache holds a present copy of the entry at PASID-table index
    /// `pasid` of `rid` (0: the RID_PASID entry).
    func pasidCacheHoldsPresent(rid: RID, pasid: UInt32) -> Bool {
        let key = PASIDSlot.key(rid: rid.raw, pasid: pasid)
        let s = pasidCache + PASIDSlot.index(rid: rid.raw, pasid: pasid)
        return s.pointee.key == key && s.pointee.flags & PASIDSlot.presentFlag != 0
    }

    /// Whether the IOTLB still holds any translation tagged with `did` (and, for
    /// first-stage entries, PASID-table index `pasid` when given).
    func iotlbHolds(did: UInt16, pasid: UInt32? = nil) -> Bool {
        var found = false
        iotlb.invalidate { tag, _, _ in
            if Self.did(ofTag: tag) == did {
                if let pasid {
                    if tag == Self.iotlbTag(did: did, pasid: pasid) || tag == Self.secondStageTag(did: did) { found = true }
                } else {
                    found = true
                }
            }
            return false
        }
        return found
    }
}

/// A weak reference to a device on the unit's links.
struct WeakEndpoint {
    weak var device: PCIDevice?
}

/// A context-cache slot: the decoded context entry of one RID.
struct ContextSlot {
    /// `validKey | rid` while valid.
    var key: UInt32 = 0
    var flags: UInt32 = 0
    var directory: UInt64 = 0
    var directoryEntries: UInt64 = 0
    var ridPasid: UInt32 = 0

    static let validKey: UInt32 = 1 << 16
    static let present: UInt32 = 1 << 0
    static let fpd: UInt32 = 1 << 1
    static let dte: UInt32 = 1 << 2
    static let paside: UInt32 = 1 << 3
    static let pre: UInt32 = 1 << 4

    @inline(__always) static func index(_ rid: UInt16) -> Int { Int((rid ^ (rid >> 8)) & 0xff) }
}

/// A PASID-cache slot: the decoded PASID-table entry of one (RID, PASID).
struct PASIDSlot {
    /// `validKey | rid << 20 | pasid` while valid.
    var key: UInt64 = 0
    var root: UInt64 = 0
    var did: UInt16 = 0
    var flags: UInt8 = 0
    var pgtt: UInt8 = 0
    var levels: UInt8 = 0

    static let validKey: UInt64 = 1 << 63
    static let presentFlag: UInt8 = 1 << 0
    static let fpdFlag: UInt8 = 1 << 1
    static let sreFlag: UInt8 = 1 << 2
    static let wpeFlag: UInt8 = 1 << 3
    static let ssadeFlag: UInt8 = 1 << 4

    @inline(__always) static func key(rid: UInt16, pasid: UInt32) -> UInt64 {
        validKey | UInt64(rid) << 20 | UInt64(pasid & 0xF_FFFF)
    }
    @inline(__always) static func index(rid: UInt16, pasid: UInt32) -> Int {
        Int(truncatingIfNeeded: ((UInt64(rid) &* 0x9E37_79B9) ^ UInt64(pasid) &* 0x85EB_CA6B) >> 7) & (VTdHardware.pasidSlots - 1)
    }
}
