import IOMMUCore

/// Per-device driver state (`struct arm_smmu_master`): the device's StreamIDs, its CD
/// table, and which PCI features the driver turned on.
public final class SMMUv3Master: @unchecked Sendable {
    /// The device (weak: the machine owns it).
    public private(set) weak var dev: PCIDevice?
    /// The requester ID.
    public let rid: RID
    /// The SMMU the device sits behind. `unowned(unsafe)`: a machine never removes a unit,
    /// and a master belongs to a device probed behind it.
    public unowned(unsafe) let unit: ArmSMMUv3
    /// `streams`: the StreamIDs, ascending (one for a PCI function: its RID).
    public let streams: [UInt32]
    /// The device's CD table (`cd_table`), allocated on first use.
    public let cdTable: SMMUv3CDTable
    /// `ssid_bits`: SubstreamID bits the device uses (0 without PASID).
    public internal(set) var ssidBits = 0
    /// `ats_enabled`: PCI ATS is on and the STE allows it.
    public internal(set) var atsEnabled = false
    /// `ste_ats_enabled`: the installed STE has EATS=TRANS.
    public internal(set) var steATSEnabled = false
    /// `stall_enabled`: faults of this device stall (`dma-can-stall` or a forced stall
    /// model).
    public internal(set) var stallEnabled = false
    /// `pri_supported`: the SMMU has a PRI queue and the device a PRI capability; PRI is
    /// then enabled while ATS is (PCIe page requests travel with ATS).
    public internal(set) var priSupported = false
    /// `prg_resp_needs_ssid`: page responses carry the request's PASID (a PASID-capable
    /// PRI device; the model's devices all need it).
    public internal(set) var prgResponseNeedsSSID = false
    /// `ats_always_on`: the device needs ATS even on an identity domain (not modelled:
    /// no device requires it).
    public internal(set) var atsAlwaysOn = false
    /// `iopf_refcount`: attachments of domains with a fault handler; the device is on one
    /// of the unit's iopf queues (stall or PRI) while it is non-zero.
    public internal(set) var iopfRefcount = 0
    /// Test hook (``ArmSMMUv3Driver/failSetDevPasid(_:on:)``): the errno every
    /// non-blocking `set_dev_pasid` on the device fails with, nil normally.
    var failSetDevPasid: Errno?
    /// `vmaster`: the vSMMU and virtual StreamID the device is attached through, set by a
    /// RID attach of a nested domain made on a vSMMU where the device has a vDEVICE; nil
    /// otherwise (every other RID attach clears it).
    public internal(set) var vmaster: SMMUv3VMaster?

    init(dev: PCIDevice, unit: ArmSMMUv3, streams: [UInt32]) {
        self.dev = dev
        rid = dev.rid
        self.unit = unit
        self.streams = streams.sorted()
        cdTable = SMMUv3CDTable(unit: unit)
    }

    /// `arm_smmu_ats_supported`: the SMMU and the device both do ATS.
    var atsSupported: Bool { unit.features.contains(.ats) && (dev?.caps.ats ?? false) }

    /// `arm_smmu_sync_cd`: CFGI_CD of `ssid` for each StreamID, then CMD_SYNC.
    func syncCD(ssid: UInt32, leaf: Bool) {
        unit.issue(streams.map { .cfgiCD(sid: $0, ssid: ssid, leaf: leaf) }, sync: true)
    }

    /// `arm_smmu_write_cd_entry`: the hitless writer on CD `ssid`, each step synced with
    /// CFGI_CD for every StreamID; `used_ssids` follows the non-zero SSIDs that become
    /// valid or invalid.
    func writeCD(ssid: UInt32, at pa: PhysicalAddress, _ target: SMMUv3CD) {
        let memory = unit.smmu.memory
        let current = SMMUv3CD.load(memory, pa)
        if ssid != 0 && current.isValid != target.isValid { cdTable.usedSSIDs += current.isValid ? -1 : 1 }
        SMMUv3EntryWriter(kind: .cd).write(current: current.words, target: target.words) { step in
            unit.hardwareLock.withLock { for i in step.changedWords { memory.store64(pa + UInt64(i) * 8, step.entry[i]) } }
            unit.operationLog.append(.cdWrite(rid: rid, ssid: ssid, words: step.changedWords, entry: SMMUv3CD(words: step.entry)))
            syncCD(ssid: ssid, leaf: true)
        }
    }

    /// `arm_smmu_clear_cd`: CD `ssid` becomes all zero (V=0), if the table has it.
    func clearCD(ssid: UInt32) {
        guard cdTable.isAllocated, let pa = cdTable.cdAddress(ssid) else { return }
        writeCD(ssid: ssid, at: pa, SMMUv3CD())
    }

    /// `arm_smmu_alloc_cd_ptr`: the address of CD `ssid`, allocating the table (and, in a
    /// two-level table, the leaf, whose level-1 descriptor the SMMU may have cached as
    /// invalid: hence a non-leaf CFGI_CD).
    /// - Throws: `ENOMEM`; `EINVAL` for an SSID beyond the table.
    func allocCD(ssid: UInt32) throws(Errno) -> PhysicalAddress {
        if !cdTable.isAllocated { try cdTable.allocate(ssidBits: ssidBits, atsAlwaysOn: atsAlwaysOn) }
        guard UInt64(ssid) >> cdTable.cdMax == 0 || (cdTable.cdMax == 0 && ssid == 0) else { throw .invalidArgument }
        if cdTable.format == SMMUv3CDTableConfig.twoLevel, try cdTable.allocateLeaf(for: ssid) {
            syncCD(ssid: ssid, leaf: false)
        }
        guard let pa = cdTable.cdAddress(ssid) else { throw .noMemory }
        return pa
    }
}

/// A device's context-descriptor table (`struct arm_smmu_ctx_desc_cfg`): linear (up to
/// 1024 CDs, or any size without two-level support) or a level-1 table of descriptors
/// pointing at leaves of 1024 CDs allocated on demand. Driver lock held for everything.
public final class SMMUv3CDTable: @unchecked Sendable {
    unowned(unsafe) let unit: ArmSMMUv3
    /// `cdtab_dma`: the table (or level-1 table) address; 0 until allocated.
    public private(set) var pointer: PhysicalAddress = 0
    /// `s1fmt`.
    public private(set) var format: UInt64 = SMMUv3CDTableConfig.linear
    /// `s1cdmax`: log2 of the CDs.
    public private(set) var cdMax: UInt64 = 0
    /// `used_ssids`: valid CDs at a non-zero SSID.
    public internal(set) var usedSSIDs = 0
    /// `in_ste`: the installed STE points at this table.
    public internal(set) var inSTE = false
    private var tableBytes = 0
    private var leaves: [UInt64: PhysicalAddress] = [:]

    init(unit: ArmSMMUv3) { self.unit = unit }

    /// `arm_smmu_cdtab_allocated`.
    public var isAllocated: Bool { pointer != 0 }

    /// The STE's view of the table.
    var config: SMMUv3CDTableConfig { SMMUv3CDTableConfig(pointer: pointer.rawValue, format: format, cdMax: cdMax) }

    static let leafBytes = Int(SMMUv3CDL1.leafEntries) * Int(SMMUv3CD.size)

    /// `arm_smmu_alloc_cd_tables`: 2^`ssidBits` CDs (at least 2 when ATS must stay on);
    /// linear when that fits one leaf or the SMMU has no two-level CD tables.
    /// - Throws: `ENOMEM`.
    func allocate(ssidBits: Int, atsAlwaysOn: Bool) throws(Errno) {
        var bits = UInt64(ssidBits)
        if atsAlwaysOn { bits = max(bits, 1) }
        let contexts = 1 << Int(bits)
        let memory = unit.smmu.memory
        if !unit.features.contains(.twoLevelCDTable) || contexts <= Int(SMMUv3CDL1.leafEntries) {
            tableBytes = max(4096, contexts * Int(SMMUv3CD.size))
            pointer = try memory.allocContiguous(bytes: tableBytes)
            format = SMMUv3CDTableConfig.linear
        } else {
            let l1 = (contexts + Int(SMMUv3CDL1.leafEntries) - 1) / Int(SMMUv3CDL1.leafEntries)
            tableBytes = max(4096, l1 * 8)
            pointer = try memory.allocContiguous(bytes: tableBytes)
            format = SMMUv3CDTableConfig.twoLevel
        }
        cdMax = bits
    }

    /// Allocates the leaf of `ssid` in a two-level table and writes its level-1
    /// descriptor (one 64-bit store). Returns whether a leaf was added.
    /// - Throws: `ENOMEM`.
    func allocateLeaf(for ssid: UInt32) throws(Errno) -> Bool {
        let index = UInt64(ssid / SMMUv3CDL1.leafEntries)
        guard leaves[index] == nil else { return false }
        let leaf = try unit.smmu.memory.allocContiguous(bytes: Self.leafBytes)
        leaves[index] = leaf
        unit.smmu.memory.store64(pointer + index * 8, (leaf.rawValue & SMMUv3CDL1.pointerMask) | SMMUv3CDL1.valid)
        return true
    }

    /// `arm_smmu_get_cd_ptr`: the address of CD `ssid`, nil when its leaf is not allocated.
    func cdAddress(_ ssid: UInt32) -> PhysicalAddress? {
        guard isAllocated else { return nil }
        if format == SMMUv3CDTableConfig.linear {
            guard UInt64(ssid) < UInt64(tableBytes) / SMMUv3CD.size else { return nil }
            return pointer + UInt64(ssid) * SMMUv3CD.size
        }
        guard let leaf = leaves[UInt64(ssid / SMMUv3CDL1.leafEntries)] else { return nil }
        return leaf + UInt64(ssid % SMMUv3CDL1.leafEntries) * SMMUv3CD.size
    }

    /// CD `ssid` as it is in memory.
    public func cd(_ ssid: UInt32) -> SMMUv3CD? { cdAddress(ssid).map { SMMUv3CD.load(unit.smmu.memory, $0) } }

    /// Every valid CD: (SSID, CD).
    func validCDs() -> [(UInt32, SMMUv3CD)] {
        guard isAllocated else { return [] }
        var out: [(UInt32, SMMUv3CD)] = []
        let memory = unit.smmu.memory
        func scan(_ base: PhysicalAddress, first: UInt32, count: Int) {
            for i in 0..<count where memory.load64(base + UInt64(i) * SMMUv3CD.size) & SMMUv3CD.valid != 0 {
                out.append((first + UInt32(i), SMMUv3CD.load(memory, base + UInt64(i) * SMMUv3CD.size)))
            }
        }
        if format == SMMUv3CDTableConfig.linear {
            scan(pointer, first: 0, count: tableBytes / Int(SMMUv3CD.size))
        } else {
            for (index, leaf) in leaves.sorted(by: { $0.key < $1.key }) {
                scan(leaf, first: UInt32(index) * SMMUv3CDL1.leafEntries, count: Int(SMMUv3CDL1.leafEntries))
            }
        }
        return out
    }

    /// `arm_smmu_free_cd_tables`.
    func free() {
        guard isAllocated else { return }
        let memory = unit.smmu.memory
        for leaf in leaves.values { memory.free(leaf, bytes: Self.leafBytes) }
        leaves = [:]
        memory.free(pointer, bytes: tableBytes)
        pointer = 0
        usedSSIDs = 0
        inSTE = false
    }
}
