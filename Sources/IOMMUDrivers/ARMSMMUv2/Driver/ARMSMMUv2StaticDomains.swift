import IOMMUCore

/// `arm_smmu_identity_domain`: the device's streams bypass translation (S2CR type
/// bypass).
public final class ARMSMMUv2IdentityDomain: IOMMUDomain, @unchecked Sendable {
    unowned let smmuDriver: ARMSMMUv2Driver

    init(driver: ARMSMMUv2Driver) {
        smmuDriver = driver
        super.init(type: .identity, owner: driver, ops: [.attachDev])
    }

    /// `arm_smmu_attach_dev_identity`.
    /// - Throws: `ENODEV` for a device the driver did not probe.
    public override func attachDev(_ dev: PCIDevice, old: IOMMUDomain?) throws(Errno) {
        try smmuDriver.recordAttach(self, dev, old: old) { () throws(Errno) in
            guard let master = dev.driverPrivate as? ARMSMMUv2Master else { throw .noDevice }
            master.unit.installS2CRs(master, type: SMMUv2Field.s2crTypeBypass, cbndx: 0)
        }
    }
}

/// `arm_smmu_blocked_domain`: the device's streams fault (S2CR type fault).
public final class ARMSMMUv2BlockedDomain: IOMMUDomain, @unchecked Sendable {
    unowned let smmuDriver: ARMSMMUv2Driver

    init(driver: ARMSMMUv2Driver) {
        smmuDriver = driver
        super.init(type: .blocked, owner: driver, ops: [.attachDev])
    }

    /// `arm_smmu_attach_dev_blocked`.
    /// - Throws: `ENODEV` for a device the driver did not probe.
    public override func attachDev(_ dev: PCIDevice, old: IOMMUDomain?) throws(Errno) {
        try smmuDriver.recordAttach(self, dev, old: old) { () throws(Errno) in
            guard let master = dev.driverPrivate as? ARMSMMUv2Master else { throw .noDevice }
            master.unit.installS2CRs(master, type: SMMUv2Field.s2crTypeFault, cbndx: 0)
        }
    }
}
