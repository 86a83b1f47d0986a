import IOMMUCore
import IOMMUFDDriver

// The vSMMU (`struct arm_vsmmu`, `arm_vsmmu_ops` in `arm-smmu-v3-iommufd.c`): the
// `IOMMU_VIOMMU_TYPE_ARM_SMMUV3` vIOMMU. It is the slice of one SMMU a VM owns: the VMID of
// its stage-2 nesting parent, the nested domains built from its guest's vSTEs, and the
// guest's invalidation commands, which it checks, retags with the VM's VMID or the
// physical StreamID, and puts on the SMMU's own command queue.

extension ArmSMMUv3Driver: IOMMUFDVIOMMUDriver {
    /// `arm_smmu_get_viommu_size(dev, type) != 0`: a vSMMU needs an SMMU with nesting (both
    /// stages), and a way to keep the guest from bypassing the cache, since nothing
    /// maintains it for the VM: the device's root complex is CANWBS
    /// (``setCANWBS(_:)``) or the SMMU forces write-back at stage 2 (S2FWB). Only
    /// `IOMMU_VIOMMU_TYPE_ARM_SMMUV3`: the model has no implementation-specific vIOMMU
    /// (Tegra241 CMDQV). False (`EOPNOTSUPP` from `IOMMU_VIOMMU_ALLOC`) otherwise, and for
    /// a device the driver did not probe.
    public func supportsVIOMMU(_ dev: PCIDevice, type: UInt32) -> Bool {
        guard let master = dev.driverPrivate as? SMMUv3Master, master.unit.smmuDriver === self else { return false }
        let features = master.unit.features
        guard features.contains(.nesting) else { return false }
        guard canWBS(dev.rid) || features.contains(.s2fwb) else { return false }
        return type == IOMMUVIOMMUType.armSMMUv3
    }

    /// `arm_vsmmu_init`: a vSMMU over the stage-2 nesting parent `parent`, which must be
    /// a domain of the SMMU `dev` sits behind (the vIOMMU's `iommu_dev`). The vSMMU uses
    /// the parent's VMID. The type takes no data: any `userData` is ignored, as the kernel
    /// does.
    /// - Throws: `EINVAL` for a parent of another SMMU (or not a stage-2 domain of this
    ///   driver).
    public func viommuInit(_ core: any IOMMUFDVIOMMUCore, dev: PCIDevice, parent: IOMMUDomain,
                           userData: IOMMUUserData?) throws(Errno) -> any IOMMUFDVIOMMUOps {
        let f = "arm_vsmmu_init"
        guard let unit = dev.iommu as? ArmSMMUv3, unit.smmuDriver === self else {
            throw .invalidArgument.from(f, "\(dev.rid) is not behind an SMMU of this driver")
        }
        guard let s2 = parent as? SMMUv3Domain, s2.owner === self, s2.stage == .s2 else {
            throw .invalidArgument.from(f, "the parent is not a stage-2 domain of this driver")
        }
        guard s2.unit === unit else {
            throw .invalidArgument.from(f, "the parent belongs to \(s2.unit.name), the vIOMMU to \(unit.name)")
        }
        return SMMUv3VSMMU(driver: self, core: core, unit: unit, parent: s2)
    }
}

/// The device as a vSMMU sees it (`struct arm_smmu_vmaster`): the vSMMU and the
/// virtual StreamID (the vDEVICE's `virt_id`) the guest knows it by.
public struct SMMUv3VMaster: @unchecked Sendable {
    /// `vmaster->vsmmu` (weak: the nested HWPT the device is attached to keeps it).
    public private(set) weak var vsmmu: SMMUv3VSMMU?
    /// `vmaster->vsid`.
    public let vsid: UInt64

    init(vsmmu: SMMUv3VSMMU, vsid: UInt64) {
        self.vsmmu = vsmmu
        self.vsid = vsid
    }
}

/// A vSMMU (`struct arm_vsmmu`): one VM's view of an SMMU, made by `IOMMU_VIOMMU_ALLOC`
/// with `IOMMU_VIOMMU_TYPE_ARM_SMMUV3` over a stage-2 nesting parent of that SMMU.
///
/// Its ops (`arm_vsmmu_ops`) are ``allocDomainNested(flags:userData:)`` (nested domains
/// from the guest's vSTEs, attached only to devices with a vDEVICE here unless they abort
/// or bypass) and ``cacheInvalidate(_:handled:)`` (the guest's TLB, CD-cache and ATC
/// invalidations, run on the SMMU's command queue). The model does not yet forward the
/// devices' events to a vEVENTQ (`arm_vmaster_report_event`).
public final class SMMUv3VSMMU: IOMMUFDVIOMMUOps, @unchecked Sendable {
    /// iommufd's vIOMMU (`vsmmu->core`), valid while iommufd holds this vSMMU.
    public unowned let core: any IOMMUFDVIOMMUCore
    /// `vsmmu->smmu`.
    public unowned(unsafe) let unit: ArmSMMUv3
    /// `vsmmu->s2_parent`: the VM's stage 2.
    public let parent: SMMUv3Domain
    /// `vsmmu->vmid`: the parent's VMID, which every TLB invalidation of the guest is
    /// forced to.
    public let vmid: UInt16
    private unowned let driver: ArmSMMUv3Driver

    init(driver: ArmSMMUv3Driver, core: any IOMMUFDVIOMMUCore, unit: ArmSMMUv3, parent: SMMUv3Domain) {
        self.driver = driver
        self.core = core
        self.unit = unit
        self.parent = parent
        vmid = parent.vmid
    }

    /// The vSMMU holds nothing of its own to release (`arm_vsmmu_ops` has no `destroy`);
    /// the VMID stays the parent's.
    public func destroy() {}

    /// `arm_vsmmu_alloc_domain_nested`: a nested domain from the guest's vSTE (`struct
    /// iommu_hwpt_arm_smmuv3`, `IOMMU_HWPT_DATA_ARM_SMMUV3`), on this vSMMU's parent. The
    /// vSTE is checked by `arm_smmu_validate_vste` (``SMMUv3NestedDomain/validate(_:_:)``).
    /// - Throws: `EOPNOTSUPP` for any flag (`IOMMU_HWPT_ALLOC_PASID` included); `EINVAL`
    ///   data of another type or shorter than `ste`; `E2BIG` a longer structure with
    ///   non-zero bytes past `ste`; `EFAULT`; `EIO` a vSTE setting bits a guest does not
    ///   own, or a Config other than ABORT, BYPASS and S1_TRANS, or an EATS other than ABT
    ///   and TRANS.
    public func allocDomainNested(flags: DomainAllocFlags, userData: IOMMUUserData) throws(Errno) -> IOMMUDomain {
        let f = "arm_vsmmu_alloc_domain_nested"
        guard flags.isEmpty else { throw .notSupported.from(f, "flags \(flags) are not supported") }
        let size = IOMMUHWPTARMSMMUv3.size
        let bytes = try userData.copy(expectedType: IOMMUHWPTDataType.armSMMUv3,
                                      minLength: IOMMUHWPTARMSMMUv3.offsetOfEnd("ste"), maxLength: Int(UInt32.max))
        guard bytes[size...].allSatisfy({ $0 == 0 }) else { throw .tooBig.from(f, "non-zero bytes past ste") }
        let arg = IOMMUHWPTARMSMMUv3(bytes: Array(bytes.prefix(size)))
        let (words, ats) = try SMMUv3NestedDomain.validate(arg.ste[0], arg.ste[1])
        return SMMUv3NestedDomain(driver: driver, parent: parent, vste: words, enableATS: ats, vsmmu: self)
    }

    /// `CMDQ_BATCH_ENTRIES`: the commands of one batch of the driver (`BITS_PER_LONG`).
    /// A guest's commands go to the queue `CMDQ_BATCH_ENTRIES - 1` at a time, each run
    /// followed by a CMD_SYNC.
    public static let batchEntries = 64

    /// The most a `kcalloc` gives (`KMALLOC_MAX_SIZE`, 4 MiB): a larger array of entries is
    /// `ENOMEM`.
    static let kmallocMax = 4 << 20

    /// `arm_vsmmu_cache_invalidate`: the guest's commands (`struct
    /// iommu_viommu_arm_smmuv3_invalidate`, `IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3`),
    /// checked and converted one by one (``convert(_:)``) and issued in order on the
    /// SMMU's command queue in runs of `CMDQ_BATCH_ENTRIES - 1` (63), each run followed by
    /// a CMD_SYNC. The array is copied whole first, so a type or copy error handles
    /// nothing.
    ///
    /// `handled` (`entry_num` out) is the number of entries before the first one refused.
    /// As in mainline, the refusal ends the call at once: the converted commands of the
    /// refused entry's unfinished run are counted in `handled` but never reach the queue
    /// (only whole runs before it were issued). A guest that retries from `entry_num`
    /// therefore loses up to 62 invalidations; the model keeps the kernel's answer so that
    /// a VMM written against it sees what it will see on hardware.
    /// - Throws: `ENOMEM` more entries than one allocation holds; `EINVAL` a data type
    ///   other than `IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3`, or no entry (`entry_num`
    ///   0); `E2BIG` an entry longer than 16 bytes with non-zero bytes past `cmd`;
    ///   `EFAULT`; `EIO` an entry whose command a guest may not issue, or whose vSID no
    ///   vDEVICE of this vSMMU has.
    public func cacheInvalidate(_ array: IOMMUUserDataArray, handled: inout UInt32) throws(Errno) {
        handled = 0
        let f = "arm_vsmmu_cache_invalidate"
        let entrySize = IOMMUVIOMMUARMSMMUv3Invalidate.size
        guard Int(array.entryNum) <= Self.kmallocMax / entrySize else {
            throw .noMemory.from(f, "\(array.entryNum) entries are more than one allocation holds")
        }
        let entries = try array.copyAll(expectedType: IOMMUHWPTInvalidateDataType.armSMMUv3, entrySize: entrySize)
        let runLength = Self.batchEntries - 1
        var run: [SMMUv3Command] = []
        run.reserveCapacity(min(entries.count, runLength))
        for (i, raw) in entries.enumerated() {
            let entry = IOMMUVIOMMUARMSMMUv3Invalidate(bytes: raw)
            let command: SMMUv3Command
            do {
                command = try convert(SMMUv3Command(w0: entry.cmd[0], w1: entry.cmd[1]))
            } catch {
                handled = UInt32(i)
                throw error.from(f, "entry \(i): \(error.reason ?? "refused")")
            }
            run.append(command)
            if run.count == runLength {
                submit(run)
                run.removeAll(keepingCapacity: true)
            }
        }
        submit(run)
        handled = UInt32(entries.count)
    }

    /// `arm_smmu_cmdq_issue_cmdlist(smmu, &smmu->cmdq, cmds, n, true)`: one run of
    /// converted commands and its CMD_SYNC on the SMMU's queue; nothing for an empty run.
    private func submit(_ run: [SMMUv3Command]) {
        guard !run.isEmpty else { return }
        driver.lock.withLock { unit.issue(run, sync: true) }
    }

    /// `arm_vsmmu_convert_user_cmd`: the command as the SMMU will run it for this VM.
    /// - TLBI_NSNH_ALL becomes TLBI_NH_ALL of the VM's VMID (the guest cannot reach other
    ///   VMs' entries);
    /// - TLBI_NH_ALL, TLBI_NH_ASID, TLBI_NH_VA and TLBI_NH_VAA keep their fields but carry
    ///   the VM's VMID, whatever the guest wrote there;
    /// - ATC_INV, CFGI_CD and CFGI_CD_ALL name a virtual StreamID, replaced by the physical
    ///   StreamID of the device whose vDEVICE has it (`arm_vsmmu_vsid_to_sid`);
    /// - everything else (CFGI_STE, CFGI_ALL, TLBI_S2_IPA, TLBI_S12_VMALL, the EL2 TLBIs,
    ///   PRI_RESP, RESUME, CMD_SYNC, unknown opcodes) is refused: the kernel owns those.
    /// - Throws: `EIO` a refused opcode or an unknown vSID.
    public func convert(_ command: SMMUv3Command) throws(Errno) -> SMMUv3Command {
        let f = "arm_vsmmu_convert_user_cmd"
        var c = command
        guard let opcode = c.opcode else {
            throw .ioError.from(f, "opcode 0x\(String(c.rawOpcode, radix: 16)) is unknown")
        }
        switch opcode {
        case .tlbiNSNHAll:
            c = .tlbi(.tlbiNHAll, asid: 0, vmid: vmid)
        case .tlbiNHAll, .tlbiNHASID, .tlbiNHVA, .tlbiNHVAA:
            c.vmid = vmid
        case .atcInvalidate, .cfgiCD, .cfgiCDAll:
            let vsid = c.streamID
            guard let sid = physicalStreamID(vsid: vsid) else {
                throw .ioError.from(f, "\(opcode): vSID 0x\(String(vsid, radix: 16)) has no vDEVICE in vIOMMU \(core.rawID)")
            }
            c.streamID = sid
        default:
            throw .ioError.from(f, "\(opcode) is not a command a guest may issue")
        }
        return c
    }

    /// `arm_vsmmu_vsid_to_sid`: the first StreamID of the device whose vDEVICE in this
    /// vSMMU has virtual ID `vsid` (a PCI function has one), or nil.
    private func physicalStreamID(vsid: UInt32) -> UInt32? {
        guard let dev = core.device(virtualID: UInt64(vsid)), let master = dev.driverPrivate as? SMMUv3Master,
              master.unit === unit else { return nil }
        return master.streams.first
    }
}
