import IOMMUCore

/// What `arm_smmu_device_cfg_probe` found in the ID registers (`ARM_SMMU_FEAT_*`).
public struct ARMSMMUv2Features: OptionSet, Hashable, Sendable {
    /// The raw bits.
    public let rawValue: UInt32
    /// Wraps raw bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// `ARM_SMMU_FEAT_COHERENT_WALK`.
    public static let coherentWalk = ARMSMMUv2Features(rawValue: 1 << 0)
    /// `ARM_SMMU_FEAT_STREAM_MATCH`.
    public static let streamMatch = ARMSMMUv2Features(rawValue: 1 << 1)
    /// `ARM_SMMU_FEAT_TRANS_S1`.
    public static let translateS1 = ARMSMMUv2Features(rawValue: 1 << 2)
    /// `ARM_SMMU_FEAT_TRANS_OPS`: ATS1PR for `iova_to_phys`.
    public static let translationOps = ARMSMMUv2Features(rawValue: 1 << 5)
    /// `ARM_SMMU_FEAT_FMT_AARCH64_4K`.
    public static let aarch64Granule4K = ARMSMMUv2Features(rawValue: 1 << 7)
    /// `ARM_SMMU_FEAT_FMT_AARCH64_16K`.
    public static let aarch64Granule16K = ARMSMMUv2Features(rawValue: 1 << 8)
    /// `ARM_SMMU_FEAT_FMT_AARCH64_64K`.
    public static let aarch64Granule64K = ARMSMMUv2Features(rawValue: 1 << 9)
    /// `ARM_SMMU_FEAT_EXIDS`: 16-bit stream IDs.
    public static let extendedIDs = ARMSMMUv2Features(rawValue: 1 << 12)
}

/// A master as firmware describes it to the SMMU (the device tree's `iommus` /
/// `iommu-map`, or IORT): its stream IDs with their SMR masks, its compatible string,
/// and the IORT RMRs that must stay identity-mapped for it.
public struct ARMSMMUv2FirmwareMaster: Hashable, Sendable {
    /// (stream ID, SMR mask) pairs (`fwspec->ids`).
    public var streamIDs: [ARMSMMUv2StreamID]
    /// The device's compatible string (`"qcom,adreno"`), nil for a PCI function.
    public var compatible: String?
    /// Reserved memory ranges (IORT RMR): `IOMMU_RESV_DIRECT(_RELAXABLE)` regions.
    public var reservedRegions: [ReservedRegion]

    /// A firmware description.
    public init(streamIDs: [ARMSMMUv2StreamID], compatible: String? = nil, reservedRegions: [ReservedRegion] = []) {
        self.streamIDs = streamIDs
        self.compatible = compatible
        self.reservedRegions = reservedRegions
    }
}

/// A stream ID and the SMR mask firmware gives with it (`ARM_SMMU_SMR_ID`, `_MASK`).
public struct ARMSMMUv2StreamID: Hashable, Sendable {
    /// The stream ID.
    public var id: UInt16
    /// Mask bits: IDs differing only there match the same SMR.
    public var mask: UInt16
    /// A stream ID.
    public init(_ id: UInt16, mask: UInt16 = 0) {
        self.id = id
        self.mask = mask
    }
}

/// One ARM SMMUv2 as the driver sees it (`struct arm_smmu_device`): its hardware, what
/// `arm_smmu_device_cfg_probe` read from the ID registers, the implementation hooks
/// (`arm_smmu_impl`: generic or Qualcomm's), the driver's copies of the stream mapping
/// (`smrs`, `s2crs`) and of each context bank (`arm_smmu_cb`), the context-bank
/// allocator (`context_map`), and the context-fault interrupt handlers.
///
/// Interrupts are delivered explicitly: the hardware raises them (``SMMUv2Hardware``
/// keeps them pending) and ``handleInterrupts()`` runs the handlers, as the CPU would
/// take them. A client whose transaction stalled calls it, then asks the hardware how
/// its transaction ended.
public final class ARMSMMUv2: IOMMUDevice, @unchecked Sendable {
    /// The hardware model.
    public let smmu: SMMUv2Hardware
    /// The driver object shared by every unit.
    public let smmuDriver: ARMSMMUv2Driver
    /// The implementation hooks (`smmu->impl`), nil for a generic SMMU.
    public let impl: (any ARMSMMUv2Impl)?
    /// `smmu->features`.
    public let features: ARMSMMUv2Features
    /// `smmu->num_context_banks`.
    public let numContextBanks: Int
    /// `smmu->num_mapping_groups`.
    public let numMappingGroups: Int
    /// `smmu->streamid_mask`.
    public let streamIDMask: UInt16
    /// `smmu->smr_mask_mask`.
    public let smrMaskMask: UInt16
    /// `smmu->va_size`: stage-1 input address bits.
    public let vaSize: Int
    /// `smmu->ipa_size`: stage-1 output (stage-2 input) address bits.
    public let ipaSize: Int
    /// `smmu->pa_size`: output (physical) address bits.
    public let paSize: Int
    /// `smmu->pgsize_bitmap`: the page sizes of every supported granule.
    public let pgsizeBitmap: UInt64

    // Driver state, guarded by the driver's lock.
    var contextMap: [Bool]
    var smrs: [SMR]
    var s2crs: [S2CR]
    var cbs: [ContextBankSoftware]
    /// Context-fault handlers by context bank (`devm_request_irq(..., smmu_domain)`).
    var contextIRQ: [Int: ARMSMMUv2Domain] = [:]
    var firmware: [RID: ARMSMMUv2FirmwareMaster] = [:]
    /// Qualcomm: context banks whose SCTLR gets CFCFG (`qsmmu->stall_enabled`).
    var stallEnabled: Set<Int> = []
    /// Global faults the global interrupt handler took (`arm_smmu_global_fault`).
    var globalFaultLog: [ARMSMMUv2GlobalFault] = []
    /// Context faults no handler took (`report_iommu_fault` returned `ENOSYS`).
    var unhandledFaults: [ARMSMMUv2ContextFaultInfo] = []

    /// `arm_smmu_disable_bypass`: streams the driver has not attached fault rather than
    /// bypass (`CONFIG_ARM_SMMU_DISABLE_BYPASS_BY_DEFAULT`, the kernel's default).
    public let disableBypass: Bool

    /// An SMMU named `name` run by `driver` on `hardware` with implementation `impl`
    /// (`arm_smmu_device_probe`: `arm_smmu_device_cfg_probe`, the implementation's
    /// `cfg_probe`, `arm_smmu_device_reset`).
    /// - Throws: `ENODEV` when the ID registers report no stage-1 translation, no
    ///   AArch64 granule, or stream matching without SMRs.
    public init(name: String, driver: ARMSMMUv2Driver, hardware: SMMUv2Hardware, impl: (any ARMSMMUv2Impl)? = nil,
                disableBypass: Bool = true) throws(Errno) {
        smmu = hardware
        smmuDriver = driver
        self.impl = impl
        self.disableBypass = disableBypass
        let (id0, id1, id2) = (hardware.read32(.global0, SMMUv2Reg.id0), hardware.read32(.global0, SMMUv2Reg.id1),
                               hardware.read32(.global0, SMMUv2Reg.id2))
        var f: ARMSMMUv2Features = [.coherentWalk]
        if id0 & 1 << 30 != 0 { f.insert(.translateS1) }
        guard f.contains(.translateS1) else { throw .noDevice }
        if id0 & 1 << 26 == 0 { f.insert(.translationOps) }
        let sidBits: Int
        if id0 & 1 << 8 != 0 {
            f.insert(.extendedIDs)
            sidBits = 16
        } else {
            sidBits = Int(id0 >> 9 & 0xF)
        }
        streamIDMask = UInt16(truncatingIfNeeded: (1 << sidBits) - 1)
        guard id0 & 1 << 27 != 0 else { throw .noDevice }   // the model implements stream matching only
        f.insert(.streamMatch)
        numMappingGroups = Int(id0 & 0xFF)
        guard numMappingGroups > 0 else { throw .noDevice }
        numContextBanks = Int(id1 & 0xFF)
        ipaSize = Self.sizeBits(id2 & 0xF)
        paSize = Self.sizeBits(id2 >> 4 & 0xF)
        vaSize = Self.sizeBits(id2 >> 8 & 0xF)
        if id2 & 1 << 12 != 0 { f.insert(.aarch64Granule4K) }
        if id2 & 1 << 13 != 0 { f.insert(.aarch64Granule16K) }
        if id2 & 1 << 14 != 0 { f.insert(.aarch64Granule64K) }
        guard !f.isDisjoint(with: [.aarch64Granule4K, .aarch64Granule16K, .aarch64Granule64K]) else { throw .noDevice }
        var sizes: UInt64 = 0
        if f.contains(.aarch64Granule4K) { sizes |= 1 << 12 | 1 << 21 | 1 << 30 }
        if f.contains(.aarch64Granule16K) { sizes |= 1 << 14 | 1 << 25 }
        if f.contains(.aarch64Granule64K) { sizes |= 1 << 16 | 1 << 29 }
        pgsizeBitmap = sizes
        features = f
        contextMap = Array(repeating: false, count: numContextBanks)
        smrs = Array(repeating: SMR(), count: numMappingGroups)
        s2crs = Array(repeating: S2CR(type: disableBypass ? SMMUv2Field.s2crTypeFault : SMMUv2Field.s2crTypeBypass),
                      count: numMappingGroups)
        cbs = Array(repeating: ContextBankSoftware(), count: numContextBanks)
        // arm_smmu_test_smr_masks: which SMR.ID / SMR.MASK bits the hardware keeps.
        smrMaskMask = streamIDMask & 0x7FFF
        super.init(name: name, driver: driver, hardware: hardware, maxPasids: 0)
        hardwareLock.withLock { reset() }
    }

    /// `arm_smmu_id_size_to_bits`.
    static func sizeBits(_ field: UInt32) -> Int {
        switch field {
        case 0: 32
        case 1: 36
        case 2: 40
        case 3: 42
        case 4: 44
        default: 48
        }
    }

    /// `arm_smmu_device_reset`: clear the global FSR, write every stream mapping entry
    /// (all SMRs invalid, S2CRs fault or bypass), disable every context bank and clear
    /// its FSR, invalidate the whole TLB, then enable the client ports with fault
    /// reporting and, with ``disableBypass``, unmatched streams faulting. The caller
    /// holds the hardware lock.
    private func reset() {
        smmu.write32(.global0, SMMUv2Reg.sGFSR, smmu.read32(.global0, SMMUv2Reg.sGFSR))
        for i in 0..<numMappingGroups { writeSME(i) }
        for i in 0..<numContextBanks {
            writeContextBank(i)
            smmu.write32(.contextBank(i), SMMUv2Reg.fsr, SMMUv2Field.fsrFault)
        }
        smmu.write32(.global0, SMMUv2Reg.tlbiAllNSNH, 0)
        var reg = smmu.read32(.global0, SMMUv2Reg.sCR0)
        reg |= SMMUv2Field.sCR0GFRE | SMMUv2Field.sCR0GFIE | 1 << 4 | 1 << 5 | 1 << 11 | 1 << 12
        reg &= ~SMMUv2Field.sCR0ClientPD
        if disableBypass { reg |= SMMUv2Field.sCR0USFCFG } else { reg &= ~SMMUv2Field.sCR0USFCFG }
        smmu.write32(.global0, SMMUv2Reg.sTLBGSync, 0)
        smmu.write32(.global0, SMMUv2Reg.sCR0, reg)
    }

    // MARK: firmware

    /// Firmware describes a master before it is probed (`of_xlate`/IORT): its stream
    /// IDs (default: the RID, as the identity `iommu-map` of a PCI host bridge gives it),
    /// its compatible string and its RMRs.
    public func describeMaster(_ rid: RID, _ master: ARMSMMUv2FirmwareMaster) {
        smmuDriver.lock.withLock { firmware[rid] = master }
    }

    /// The firmware description of `rid`: as described, or its RID as a stream ID.
    func firmwareMaster(_ rid: RID) -> ARMSMMUv2FirmwareMaster {
        firmware[rid] ?? ARMSMMUv2FirmwareMaster(streamIDs: [ARMSMMUv2StreamID(rid.raw)])
    }

    // MARK: interrupts

    /// The CPU takes the unit's pending interrupts: the context-fault handler of every
    /// bank whose interrupt is raised (`arm_smmu_context_fault`, or the implementation's
    /// `context_fault`), then the global-fault handler (`arm_smmu_global_fault`). The
    /// handlers run without the hardware lock, as interrupt handlers run beside the
    /// hardware. A bank with no handler (no domain) keeps its syndrome.
    /// - Returns: the number of handlers that ran.
    @discardableResult
    public func handleInterrupts() -> Int {
        let (banks, global) = hardwareLock.withLock { smmu.takeInterrupts() }
        var ran = 0
        for cb in banks {
            guard let domain = smmuDriver.lock.withLock({ contextIRQ[cb] }) else { continue }
            if let handler = impl?.contextFault {
                handler(domain)
            } else {
                domain.contextFault()
            }
            ran += 1
        }
        if global {
            globalFault()
            ran += 1
        }
        return ran
    }

    /// `arm_smmu_global_fault`: reads and clears the global syndrome, keeping it in
    /// ``globalFaults``.
    private func globalFault() {
        let fault: ARMSMMUv2GlobalFault? = hardwareLock.withLock {
            let gfsr = smmu.read32(.global0, SMMUv2Reg.sGFSR)
            guard gfsr != 0 else { return nil }
            let f = ARMSMMUv2GlobalFault(gfsr: gfsr, gfsynr0: smmu.read32(.global0, SMMUv2Reg.sGFSYNR0),
                                         gfsynr1: smmu.read32(.global0, SMMUv2Reg.sGFSYNR1))
            smmu.write32(.global0, SMMUv2Reg.sGFSR, gfsr)
            return f
        }
        if let fault { smmuDriver.lock.withLock { globalFaultLog.append(fault) } }
    }

    /// The global faults the global-fault handler took, oldest first.
    public var globalFaults: [ARMSMMUv2GlobalFault] { smmuDriver.lock.withLock { globalFaultLog } }

    /// The context faults the handler read with no domain fault handler to report them
    /// to (the kernel's "Unhandled context fault" messages), oldest first.
    public var unhandledContextFaults: [ARMSMMUv2ContextFaultInfo] { smmuDriver.lock.withLock { unhandledFaults } }

    // MARK: inspection

    /// The context banks allocated (`context_map`), ascending.
    public var allocatedContextBanks: [Int] {
        smmuDriver.lock.withLock { contextMap.indices.filter { contextMap[$0] } }
    }

    /// The stream mapping entries in use: (SMR index, stream ID, mask, S2CR type,
    /// context bank, users).
    public var streamMappings: [(index: Int, id: UInt16, mask: UInt16, type: UInt32, contextBank: Int, count: Int)] {
        smmuDriver.lock.withLock {
            smrs.indices.filter { smrs[$0].valid }.map { i in
                (i, smrs[i].id, smrs[i].mask, s2crs[i].type, Int(s2crs[i].cbndx), s2crs[i].count)
            }
        }
    }
}

/// A global fault the global-fault handler read (`sGFSR`, `sGFSYNR0/1`).
public struct ARMSMMUv2GlobalFault: Hashable, Sendable {
    /// `sGFSR`.
    public let gfsr: UInt32
    /// `sGFSYNR0`.
    public let gfsynr0: UInt32
    /// `sGFSYNR1`: the stream ID.
    public let gfsynr1: UInt32
}

/// `struct arm_smmu_smr`: the driver's copy of one SMR.
struct SMR {
    var id: UInt16 = 0
    var mask: UInt16 = 0
    var valid = false
}

/// `struct arm_smmu_s2cr`: the driver's copy of one S2CR and its user count.
struct S2CR {
    var type: UInt32
    var privcfg: UInt32 = 0
    var cbndx: UInt8 = 0
    var count = 0
}

/// `struct arm_smmu_cb`: the driver's copy of a context bank's translation registers.
struct ContextBankSoftware {
    var ttbr: (UInt64, UInt64) = (0, 0)
    var tcr: (UInt32, UInt32) = (0, 0)
    var mair: (UInt32, UInt32) = (0, 0)
    /// `cb->cfg`: the domain whose context this bank holds, nil when unassigned.
    weak var domain: ARMSMMUv2Domain?
}
