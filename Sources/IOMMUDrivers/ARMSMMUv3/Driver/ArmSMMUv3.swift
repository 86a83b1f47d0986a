import IOMMUCore

/// One step the driver took on a unit, in order: an entry update step (the words it
/// stored, then its sync), or a batch of commands it submitted. Tests and the examples
/// read sequences from it.
public enum SMMUv3Operation: Hashable, Sendable, CustomStringConvertible {
    /// A step of the hitless writer on the STE of `sid`: words stored, then synced.
    case steWrite(sid: UInt32, words: [Int], entry: SMMUv3STE)
    /// A step of the hitless writer on CD `ssid` of the device `rid`.
    case cdWrite(rid: RID, ssid: UInt32, words: [Int], entry: SMMUv3CD)
    /// Commands submitted to the command queue, CMD_SYNC included when it was asked for.
    case commands([SMMUv3Command])

    /// A short trace line.
    public var description: String {
        switch self {
        case .steWrite(let sid, let words, let e): "STE 0x\(String(sid, radix: 16)) words \(words): \(e)"
        case .cdWrite(let rid, let ssid, let words, let e): "CD \(rid) ssid \(ssid) words \(words): \(e)"
        case .commands(let c): c.map(\.description).joined(separator: "; ")
        }
    }
}

/// One SMMUv3 as the driver sees it (`struct arm_smmu_device`): its hardware, the stream
/// table and queues the driver allocated for it, the features it probed, the VMID
/// allocator (`vmid_map`), the masters behind it (`streams`) and the log of what the
/// driver did.
public final class ArmSMMUv3: IOMMUDevice, @unchecked Sendable {
    /// The hardware.
    public let smmu: SMMUv3Hardware
    /// The driver object shared by every unit.
    public let smmuDriver: ArmSMMUv3Driver
    /// The unit's position among the driver's units (the invalidation arrays' sort key).
    public private(set) var index = 0
    /// What the driver found (`smmu->features`): the hardware's features plus
    /// ``SMMUv3Features/nesting`` (both stages) and ``SMMUv3Features/sva``
    /// (`arm_smmu_sva_supported`).
    public let features: SMMUv3Features
    /// `asid_bits`, `vmid_bits`, `ssid_bits`, `sid_bits`.
    public let asidBits: Int, vmidBits: Int, ssidBits: Int, sidBits: Int
    /// `oas`: output address bits.
    public let outputAddressBits: Int
    /// `pgsize_bitmap`: page and block sizes of the granules the SMMU supports (4K
    /// granule: 4 KiB, 2 MiB, 1 GiB; 64K granule: 64 KiB, 512 MiB).
    public let pageSizes: UInt64
    /// The unit's I/O page-fault queue (`smmu->evtq.iopf`): stalling masters join it when a
    /// domain with a fault handler is attached. Only with stalls and SVA.
    public let iopfQueue: IOPFQueue?
    /// The unit's PRI fault queue (`smmu->priq.iopf` of the PRI series): PRI-capable
    /// masters join it when a domain with a fault handler is attached. Only with PRI.
    public let priIOPFQueue: IOPFQueue?

    /// StreamID → master (`smmu->streams`). Driver lock held.
    var masters: [UInt32: SMMUv3Master] = [:]
    /// `vmid_map`. Driver lock held.
    var vmids: Set<UInt16> = []
    /// The stream table: a linear table, or a level-1 table with leaves per bus.
    let streamTable: PhysicalAddress
    let streamTableBytes: Int
    let twoLevelStreamTable: Bool
    let streamTableLog2: Int
    var streamLeaves: [UInt32: PhysicalAddress] = [:]
    /// The queues in memory.
    let commandQueue: PhysicalAddress
    let eventQueue: PhysicalAddress
    let priQueue: PhysicalAddress
    /// The driver's copy of the command queue's PROD.
    var commandProducer: UInt32 = 0
    /// The newest operations (bounded: the map/unmap path logs its invalidations).
    var operationLog = BoundedLog<SMMUv3Operation>(limit: ArmSMMUv3.operationLogLimit)
    /// How many operations ``operations`` keeps.
    public static let operationLogLimit = 4096
    /// Events the event-queue thread read and did not turn into page faults, oldest
    /// first (what the kernel prints with `arm_smmu_dump_event`).
    public internal(set) var unhandledEvents: [SMMUv3Event] = []
    /// Whether the event queue or the PRI queue overflowed since the unit started.
    public internal(set) var queueOverflows = 0

    /// Page size of the CPU whose page tables SVA shares (arm64, 4 KiB pages).
    static let cpuPageSize: UInt64 = 4096
    /// The CPU's physical address bits and ASID bits (ID_AA64MMFR0_EL1 of the model's
    /// arm64 CPU), which SVA needs the SMMU to match.
    static let cpuPhysicalAddressBits = 48
    static let cpuASIDBits = 16
    /// `MAIR_EL1` of the model's arm64 CPU (the attribute indices its page tables use).
    public static let cpuMAIR: UInt64 = 0x0000_04FF_440C_0400

    /// A unit named `name` (`smmu0`) run by `driver` on `hardware`
    /// (`arm_smmu_device_probe`): reads the ID registers (`arm_smmu_device_hw_probe`),
    /// allocates the queues and the stream table (`arm_smmu_init_structures`) with every
    /// STE set to ABORT, programs them and enables the SMMU (`arm_smmu_device_reset`),
    /// then invalidates every cached configuration and TLB entry.
    /// - Throws: `ENOMEM` when a table or queue cannot be allocated; `ENXIO` for an SMMU
    ///   without any translation stage or without AArch64 tables.
    public init(name: String, driver: ArmSMMUv3Driver, hardware: SMMUv3Hardware) throws(Errno) {
        let cfg = hardware.configuration
        var f = cfg.features.subtracting([.sva, .nesting, .e2h])
        guard f.contains(.stage1) || f.contains(.stage2) else { throw .noSuchDeviceOrAddress }
        if f.isSuperset(of: [.stage1, .stage2]) { f.insert(.nesting) }
        asidBits = cfg.asidBits
        vmidBits = cfg.vmidBits
        ssidBits = cfg.ssidBits
        sidBits = cfg.sidBits
        outputAddressBits = cfg.outputAddressBits
        var sizes: UInt64 = 0
        if cfg.granules & (1 << 12) != 0 { sizes |= 1 << 12 | 1 << 21 | 1 << 30 }
        if cfg.granules & (1 << 14) != 0 { sizes |= 1 << 14 | 1 << 25 }
        if cfg.granules & (1 << 16) != 0 { sizes |= 1 << 16 | 1 << 29 }
        pageSizes = sizes
        if Self.svaSupported(features: f, pageSizes: sizes, outputAddressBits: cfg.outputAddressBits, asidBits: cfg.asidBits) {
            f.insert(.sva)
        }
        features = f
        smmu = hardware
        smmuDriver = driver
        let memory = hardware.memory
        // Queues.
        commandQueue = try memory.allocContiguous(bytes: max(4096, (1 << cfg.commandQueueShift) * Int(SMMUv3Command.size)))
        eventQueue = try memory.allocContiguous(bytes: max(4096, (1 << cfg.eventQueueShift) * Int(SMMUv3Event.size)))
        priQueue = f.contains(.pri)
            ? try memory.allocContiguous(bytes: max(4096, (1 << cfg.priQueueShift) * Int(SMMUv3PRIEntry.size))) : 0
        // Stream table (`arm_smmu_init_strtab`).
        twoLevelStreamTable = f.contains(.twoLevelStreamTable)
        if twoLevelStreamTable {
            let split = Int(SMMUv3StreamTableL1.split)
            let l1 = min(1 << max(0, cfg.sidBits - split), Int(SMMUv3StreamTableL1.maxL1Entries))
            streamTableBytes = max(4096, l1 * 8)
            streamTableLog2 = l1.trailingZeroBitCount + split
        } else {
            streamTableBytes = max(4096, (1 << cfg.sidBits) * Int(SMMUv3STE.size))
            streamTableLog2 = cfg.sidBits
        }
        streamTable = try memory.allocContiguous(bytes: streamTableBytes)
        if !twoLevelStreamTable {
            for sid in 0..<UInt64(1 << cfg.sidBits) { SMMUv3STE.abort.store(memory, streamTable + sid * SMMUv3STE.size) }
        }
        iopfQueue = f.isSuperset(of: [.sva, .stalls]) ? IOPFQueue(name: "\(name)-iopfq") : nil
        priIOPFQueue = f.contains(.pri) ? IOPFQueue(name: "\(name)-priq") : nil
        let maxPasids = UInt32(1) << UInt32(f.contains(.twoLevelCDTable) ? cfg.ssidBits
                                                                           : min(cfg.ssidBits, Int(SMMUv3CDL1.linearCDMax)))
        super.init(name: name, driver: driver, hardware: hardware, maxPasids: cfg.ssidBits == 0 ? 0 : maxPasids)
        index = driver.register(self)
        reset()
    }

    /// `arm_smmu_device_reset`: program the stream table and the queues, enable them and
    /// translation, then CFGI_ALL and TLBI_NSNH_ALL.
    private func reset() {
        hardwareLock.withLock {
            let cfg = smmu.configuration
            smmu.setControl([])
            smmu.setStreamTable(base: streamTable, twoLevel: twoLevelStreamTable, log2Size: streamTableLog2,
                                split: Int(SMMUv3StreamTableL1.split))
            smmu.setCommandQueue(base: commandQueue, log2Entries: cfg.commandQueueShift)
            smmu.setEventQueue(base: eventQueue, log2Entries: cfg.eventQueueShift)
            var cr0: SMMUv3Control = [.commandQueueEnable, .eventQueueEnable]
            if priQueue != 0 {
                smmu.setPRIQueue(base: priQueue, log2Entries: cfg.priQueueShift)
                cr0.insert(.priQueueEnable)
            }
            smmu.setControl(cr0)
        }
        issue([.cfgiAll, .tlbi(.tlbiNSNHAll, asid: 0, vmid: 0)], sync: true)
        hardwareLock.withLock {
            smmu.setControl(smmu.control.union(.smmuEnable))
        }
    }

    /// `arm_smmu_sva_supported`: a coherent SMMU whose granules include the CPU's page
    /// size, whose output size covers the CPU's physical addresses and whose ASIDs are at
    /// least as wide as the CPU's (the model's CPU has 48-bit VAs, so VAX is not needed).
    static func svaSupported(features: SMMUv3Features, pageSizes: UInt64, outputAddressBits: Int, asidBits: Int) -> Bool {
        guard features.contains(.coherency), features.contains(.stage1) else { return false }
        guard pageSizes & cpuPageSize != 0 else { return false }
        return outputAddressBits >= cpuPhysicalAddressBits && asidBits >= cpuASIDBits
    }

    /// Whether the SMMU can walk `mm`'s page table as its own: an arm64 (VMSAv8-64 stage 1,
    /// 4 KiB granule, 48-bit) table, which is what SVA shares.
    func canShare(_ mm: Process) -> Bool { SMMUv3Formats.isArm64ProcessTable(mm.pageTable.format) }

    /// The operations the driver performed on this unit since creation or the last
    /// ``clearOperations()``, oldest first: the newest ``operationLogLimit`` of them.
    public var operations: [SMMUv3Operation] { smmuDriver.lock.withLock { operationLog.elements } }
    /// Forgets the operation log.
    public func clearOperations() { smmuDriver.lock.withLock { operationLog.removeAll() } }

    /// VMIDs allocated (`vmid_map`), ascending.
    public var allocatedVMIDs: [UInt16] { smmuDriver.lock.withLock { vmids.sorted() } }

    /// The STE of `rid` as it is in memory, nil when the stream table does not reach it.
    public func ste(_ rid: RID) -> SMMUv3STE? { try? smmu.fetchSTE(sid: UInt32(rid.raw)).get() }

    /// CD `ssid` of the device `rid` as it is in memory (the driver's CD table), nil when
    /// the device has no CD table or it does not reach `ssid`.
    public func cd(_ rid: RID, ssid: UInt32) -> SMMUv3CD? {
        smmuDriver.lock.withLock { masters[UInt32(rid.raw)]?.cdTable.cd(ssid) }
    }

    /// The domain's tag on this SMMU (`ASID 5`, or `VMID 2` for stage 2 and a nested
    /// domain's parent) and its page-table root (`pgd 0x…`; an SVA domain's is the mm's).
    public override func graphDetails(of domain: IOMMUDomain) -> [String] {
        switch domain {
        case let d as SMMUv3SVADomain where d.unit === self:
            return ["ASID \(d.asid)"] + (d.mm.map { ["pgd \($0.pgdPhysical) (mm)"] } ?? [])
        case let d as SMMUv3Domain where d.unit === self:
            return [d.stage == .s2 ? "VMID \(d.vmid)" : "ASID \(d.asid)"] + (d.pageTable.map { ["pgd \($0.root)"] } ?? [])
        case let n as SMMUv3NestedDomain where n.parent.unit === self:
            return ["VMID \(n.parent.vmid) (parent)", "vSTE 0x" + String(n.vste.0, radix: 16) + " 0x" + String(n.vste.1, radix: 16)]
        default:
            return []
        }
    }

    // MARK: page requests

    /// A PCIe page request reaches the SMMU: it is written into the PRI queue, where it
    /// waits for ``servicePageRequests()``.
    /// - Returns: whether it was queued (false without PRI or with the queue full).
    public override func receivePageRequest(_ request: PageRequest) -> Bool {
        smmu.receivePageRequest(sid: UInt32(request.rid.raw), request)
    }

    /// One run of the driver's queue threads: the event queue (`arm_smmu_evtq_thread`:
    /// stall events become page faults) and the PRI queue (`arm_smmu_priq_thread`).
    /// - Returns: the records read.
    @discardableResult
    public override func servicePageRequests() -> Int { processEventQueue() + processPRIQueue() }

    // MARK: commands

    /// `arm_smmu_cmdq_issue_cmdlist`: writes `commands` (and a CMD_SYNC when `sync`) at
    /// PROD, publishes PROD and waits for CONS to pass them. A command the SMMU refuses is
    /// replaced by a CMD_SYNC and the error acknowledged (`arm_smmu_cmdq_skip_err`).
    func issue(_ commands: [SMMUv3Command], sync: Bool) {
        var all = commands
        if sync { all.append(.sync) }
        guard !all.isEmpty else { return }
        operationLog.append(.commands(all))
        let shift = UInt64(smmu.configuration.commandQueueShift)
        let capacity = 1 << Int(shift)
        hardwareLock.withLock {
            var i = 0
            while i < all.count {
                // The model's SMMU drains the queue on every PROD write, so each chunk fits.
                let chunk = all[i..<min(all.count, i + capacity - 1)]
                var prod = commandProducer
                for c in chunk {
                    let slot = PhysicalAddress(rawValue: SMMUv3Hardware.queueSlot(base: commandQueue.rawValue, shift: shift, index: prod, size: SMMUv3Command.size))
                    smmu.memory.store64(slot, c.w0)
                    smmu.memory.store64(slot + 8, c.w1)
                    prod = SMMUv3Hardware.queueIncrement(prod, shift: shift)
                }
                commandProducer = prod
                smmu.writeCommandQueueProducer(prod)
                while smmu.commandQueueConsumer >> 24 & 0x7F != 0 {
                    let cons = smmu.commandQueueConsumer & ~(0x7F << 24)
                    let slot = PhysicalAddress(rawValue: SMMUv3Hardware.queueSlot(base: commandQueue.rawValue, shift: shift, index: cons, size: SMMUv3Command.size))
                    smmu.memory.store64(slot, SMMUv3Command.sync.w0)
                    smmu.memory.store64(slot + 8, SMMUv3Command.sync.w1)
                    smmu.acknowledgeCommandError()
                }
                i += chunk.count
            }
        }
    }

    /// `arm_smmu_cmdq_issue_cmd_with_sync`.
    func issueWithSync(_ command: SMMUv3Command) { issue([command], sync: true) }

    // MARK: stream table

    /// `arm_smmu_init_sid_strtab`: checks that `sid` is within the stream table and, for a
    /// two-level table, allocates its leaf (256 STEs set to ABORT) and installs the
    /// level-1 descriptor.
    /// - Throws: `ERANGE` beyond the table; `ENOMEM`.
    func initStreamTableEntry(sid: UInt32) throws(Errno) {
        guard UInt64(sid) >> UInt64(streamTableLog2) == 0 else { throw .outOfRange }
        guard twoLevelStreamTable else { return }
        let l1 = sid >> SMMUv3StreamTableL1.split
        if streamLeaves[l1] != nil { return }
        let entries = 1 << Int(SMMUv3StreamTableL1.split)
        let leaf = try smmu.memory.allocContiguous(bytes: entries * Int(SMMUv3STE.size))
        for i in 0..<UInt64(entries) { SMMUv3STE.abort.store(smmu.memory, leaf + i * SMMUv3STE.size) }
        streamLeaves[l1] = leaf
        // The L1 descriptor is one 64-bit store the SMMU reads atomically.
        smmu.memory.store64(streamTable + UInt64(l1) * 8,
                            (leaf.rawValue & SMMUv3StreamTableL1.pointerMask) | UInt64(SMMUv3StreamTableL1.split + 1))
    }

    /// The address of the STE of `sid` (`arm_smmu_get_step_for_sid`).
    func steAddress(sid: UInt32) -> PhysicalAddress? {
        if twoLevelStreamTable {
            guard let leaf = streamLeaves[sid >> SMMUv3StreamTableL1.split] else { return nil }
            return leaf + UInt64(sid & ((1 << SMMUv3StreamTableL1.split) - 1)) * SMMUv3STE.size
        }
        return streamTable + UInt64(sid) * SMMUv3STE.size
    }

    /// `arm_smmu_write_ste`: the hitless writer on the STE of `sid`, each step synced with
    /// CFGI_STE (leaf) and CMD_SYNC, then PREFETCH_CFG.
    func writeSTE(sid: UInt32, _ target: SMMUv3STE) {
        guard let pa = steAddress(sid: sid) else { return }
        let memory = smmu.memory
        let current = SMMUv3STE.load(memory, pa)
        let skipCFGI = smmuDriver.bugs.contains(.skipCFGIAfterSTEWrite)
        SMMUv3EntryWriter(kind: .ste).write(current: current.words, target: target.words) { step in
            hardwareLock.withLock { for i in step.changedWords { memory.store64(pa + UInt64(i) * 8, step.entry[i]) } }
            operationLog.append(.steWrite(sid: sid, words: step.changedWords, entry: SMMUv3STE(words: step.entry)))
            if !skipCFGI { issueWithSync(.cfgiSTE(sid: sid, leaf: true)) }
        }
        issue([.prefetchConfig(sid: sid)], sync: false)
    }

    // MARK: VMIDs

    /// `ida_alloc_range(&smmu->vmid_map, 1, (1 << vmid_bits) - 1)`: VMID 0 is reserved
    /// for S1 and bypass STEs. Driver lock held.
    func allocateVMID() -> UInt16? {
        let limit = (1 << vmidBits) - 1
        var v = 1
        while v <= limit && vmids.contains(UInt16(v)) { v += 1 }
        guard v <= limit else { return nil }
        vmids.insert(UInt16(v))
        return UInt16(v)
    }

    /// `ida_free(&smmu->vmid_map, vmid)`, with the model's ASID/VMID audit: no STE may still
    /// carry the VMID and the TLB must hold nothing tagged with it. Driver lock held.
    func releaseVMID(_ vmid: UInt16) {
        vmids.remove(vmid)
        guard let machine, machine.checker.isEnabled else { return }
        for master in masters.values {
            for sid in master.streams {
                guard let ste = self.ste(RID(raw: UInt16(truncatingIfNeeded: sid))), ste.isValid,
                      ste.config == .stage2 || ste.config == .nested, ste.vmid == vmid else { continue }
                machine.checker.report(Violation(.asidVMIDAccounting, device: master.rid, event: "vmid free",
                                                 message: "VMID \(vmid) freed while the STE of \(master.rid) still carries it"))
            }
        }
        if hardwareLock.withLock({ smmu.tlbHolds(vmid: vmid, asid: nil) }) {
            machine.checker.report(Violation(.asidVMIDAccounting, event: "vmid free",
                                             message: "VMID \(vmid) freed while \(name)'s TLB still holds translations tagged with it"))
        }
    }

    /// Records a WARN of the driver on the device's machine.
    func warn(_ dev: PCIDevice?, _ function: String, _ message: String) {
        (dev?.machine ?? machine)?.recordWarning(Warning(function: function, message: message))
    }
}
