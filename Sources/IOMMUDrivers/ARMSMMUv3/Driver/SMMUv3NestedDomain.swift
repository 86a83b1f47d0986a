import IOMMUCore
import IOMMUFDDriver

/// A nested domain (`struct arm_smmu_nested_domain`): a user's virtual STE on a stage-2
/// nesting parent. Attached to a RID it installs an STE with Config NESTED: the kernel's
/// stage 2 under the user's CD table, which then translates the RID and every PASID of
/// the device — the "RID plus all PASIDs" attach shape (`user_pasid_table`).
///
/// Made through a vSMMU (``vsmmu``, `arm_vsmmu_alloc_domain_nested`) it takes only
/// devices the vSMMU knows (a vDEVICE) unless its vSTE aborts or bypasses; made straight
/// on a nesting parent (the older path) it has no vSMMU.
public final class SMMUv3NestedDomain: IOMMUDomain, @unchecked Sendable {
    /// The stage-2 parent (the vSMMU's `s2_parent`).
    public let parent: SMMUv3Domain
    /// `nested_domain->vsmmu`: the vSMMU the domain was made on, nil for one allocated
    /// directly on its parent.
    public let vsmmu: SMMUv3VSMMU?
    /// `enable_ats`: the vSTE asked for EATS=TRANS on a CD-table configuration.
    public let enableATS: Bool
    /// The validated virtual STE, words 0 and 1 (EATS removed: the kernel sets it).
    public let vste: (UInt64, UInt64)

    /// The driver that owns the domain.
    var smmuDriver: ArmSMMUv3Driver { unsafeDowncast(owner, to: ArmSMMUv3Driver.self) }

    init(driver: ArmSMMUv3Driver, parent: SMMUv3Domain, vste: (UInt64, UInt64), enableATS: Bool,
         vsmmu: SMMUv3VSMMU? = nil) {
        self.parent = parent
        self.vsmmu = vsmmu
        self.vste = vste
        self.enableATS = enableATS
        super.init(type: .nested, owner: driver, ops: [.attachDev])
    }

    /// `arm_smmu_validate_vste`: a non-valid vSTE becomes all zero (an abort STE); a valid
    /// one may only set the bits a guest owns (`STRTAB_STE_0/1_NESTING_ALLOWED`), its
    /// Config must be ABORT, BYPASS or S1_TRANS, and its EATS ABT or TRANS.
    /// - Returns: the vSTE words to keep (EATS cleared) and whether ATS is asked for.
    /// - Throws: `EIO`, reserved for invalid vSTE data.
    public static func validate(_ w0: UInt64, _ w1: UInt64) throws(Errno) -> (words: (UInt64, UInt64), enableATS: Bool) {
        guard w0 & SMMUv3STE.valid != 0 else { return ((0, 0), false) }
        guard w0 & ~SMMUv3STE.nestingAllowed0 == 0, w1 & ~SMMUv3STE.nestingAllowed1 == 0 else { throw .ioError }
        let config = (w0 & SMMUv3STE.configMask) >> 1
        guard config == SMMUv3STE.Config.abort.rawValue || config == SMMUv3STE.Config.bypass.rawValue
                || config == SMMUv3STE.Config.stage1.rawValue else { throw .ioError }
        let eats = (w1 & SMMUv3STE.eatsMask) >> 28
        guard eats == SMMUv3STE.EATS.abort.rawValue || eats == SMMUv3STE.EATS.translate.rawValue else { throw .ioError }
        let ats = config == SMMUv3STE.Config.stage1.rawValue && eats == SMMUv3STE.EATS.translate.rawValue
        return ((w0, w1 & ~SMMUv3STE.eatsMask), ats)
    }

    /// `arm_smmu_make_nested_domain_ste`: a non-valid or ABORT vSTE gives an ABORT STE
    /// (so the guest sees C_BAD_STE-like aborts); BYPASS gives the parent's stage-2 STE;
    /// S1_TRANS gives a NESTED STE with the guest's CD table.
    func makeSTE(_ master: SMMUv3Master, ats: Bool) -> SMMUv3STE {
        var config = (vste.0 & SMMUv3STE.configMask) >> 1
        if vste.0 & SMMUv3STE.valid == 0 { config = SMMUv3STE.Config.abort.rawValue }
        switch config {
        case SMMUv3STE.Config.stage1.rawValue:
            return .nested(stage2: parent.makeS2STE(master, ats: ats), userWords: vste,
                           substreams: smmuDriver.userPasidTable)
        case SMMUv3STE.Config.bypass.rawValue:
            return parent.makeS2STE(master, ats: ats)
        default:
            return .abort
        }
    }

    /// `arm_smmu_attach_dev_nested`: the STE built from the vSTE on the parent's stage 2,
    /// through the attach sequence; ATS only if the vSTE asked for it (the guest then
    /// sends the ATC invalidations). Through a vSMMU the device's vDEVICE gives it its
    /// virtual StreamID (``SMMUv3Master/vmaster``).
    /// - Throws: `ENOENT` for a device the driver did not probe; `EINVAL` for a device of
    ///   another SMMU; `EBUSY` while the kernel has PASIDs attached to the device;
    ///   `ENOENT` for a stage-1 vSTE made on a vSMMU where the device has no vDEVICE
    ///   (`arm_smmu_attach_prepare_vmaster`).
    public override func attachDev(_ dev: PCIDevice, old: IOMMUDomain?) throws(Errno) {
        // The vDEVICE lookup takes iommufd's lock; done before the driver's is taken.
        var vsid: Result<UInt64, Errno>?
        if let vsmmu {
            do { vsid = .success(try vsmmu.core.virtualID(of: dev)) } catch { vsid = .failure(error) }
        }
        try smmuDriver.callback(.attachDev, self, dev, old: old) { () throws(Errno) in
            guard let master = dev.driverPrivate as? SMMUv3Master else { throw .noEntry }
            guard parent.unit === master.unit else { throw .invalidArgument }
            guard master.cdTable.usedSSIDs == 0 else { throw .busy }
            var state = SMMUv3AttachState(master: master, oldDomain: old, ssid: 0)
            state.vmaster = try prepareVMaster(vsid)
            state.disableATS = !enableATS
            try prepareAttach(&state, newDomain: self)
            installSTE(master, makeSTE(master, ats: state.atsEnabled))
            commitAttach(&state)
        }
    }

    /// `arm_smmu_attach_prepare_vmaster`: the device's view through the vSMMU, from its
    /// vDEVICE's virtual ID. Without a vDEVICE only an ABORT or BYPASS vSTE (a non-valid
    /// vSTE counts as ABORT) may attach: a stage-1 vSTE needs the vSID for the guest's CD
    /// and ATC invalidations.
    /// - Throws: `ENOENT` for a stage-1 vSTE and a device without a vDEVICE in the vSMMU.
    private func prepareVMaster(_ vsid: Result<UInt64, Errno>?) throws(Errno) -> SMMUv3VMaster? {
        guard let vsmmu, let vsid else { return nil }
        switch vsid {
        case .success(let id):
            return SMMUv3VMaster(vsmmu: vsmmu, vsid: id)
        case .failure(let error):
            let config = (vste.0 & SMMUv3STE.configMask) >> 1
            if config == SMMUv3STE.Config.abort.rawValue || config == SMMUv3STE.Config.bypass.rawValue { return nil }
            throw error.from("arm_smmu_attach_prepare_vmaster",
                             "a stage-1 vSTE needs the device's vDEVICE in vIOMMU \(vsmmu.core.rawID)")
        }
    }
}

extension ArmSMMUv3Driver {
    /// `domain_alloc_nested` on a nesting parent (`arm_vsmmu_alloc_domain_nested`, the
    /// vSMMU being the parent's: same SMMU, the parent's VMID): the user data is `struct
    /// iommu_hwpt_arm_smmuv3`, a 128-bit virtual STE (two little-endian words).
    /// - Throws: `EOPNOTSUPP` for flags; `EINVAL` for a parent that is not a stage-2
    ///   nesting parent of this driver, of the device's SMMU, or data of the wrong size;
    ///   `EIO` for a vSTE that sets bits a guest does not own or an unsupported Config or
    ///   EATS.
    public func domainAllocNested(_ dev: PCIDevice, parent: IOMMUDomain, flags: DomainAllocFlags,
                                  userData: [UInt8]) throws(Errno) -> IOMMUDomain {
        guard flags.isEmpty else { throw .notSupported }
        guard let s2 = parent as? SMMUv3Domain, s2.owner === self, s2.stage == .s2, s2.nestParent,
              let unit = dev.iommu as? ArmSMMUv3, s2.unit === unit else { throw .invalidArgument }
        guard userData.count == 16 else { throw .invalidArgument }
        let bytes = UAPIBytes(userData)
        let (words, ats) = try SMMUv3NestedDomain.validate(bytes.u64(0), bytes.u64(8))
        return SMMUv3NestedDomain(driver: self, parent: s2, vste: words, enableATS: ats)
    }
}
