import IOMMUCore

/// `mock_blocking_domain`: the mock driver's static blocked domain. `attach_dev` and
/// `set_dev_pasid` program a blocked hardware entry; a blocking `set_dev_pasid` also
/// disarms the PASID 1024 quirk.
public final class MockBlockedDomain: IOMMUDomain, @unchecked Sendable {
    private unowned let driver: MockIOMMUDriver

    init(driver: MockIOMMUDriver, setsPasid: Bool) {
        self.driver = driver
        super.init(type: .blocked, owner: driver, ops: setsPasid ? [.attachDev, .setDevPasid] : [.attachDev])
    }

    /// `mock_domain_nop_attach` on the blocked domain: the RID stops translating and
    /// gives up the IOPF enablement of the domain it leaves.
    public override func attachDev(_ dev: PCIDevice, old: IOMMUDomain?) throws(Errno) {
        // Neither part can fail for the blocked domain (no vIOMMU, no fault handler).
        try driver.attachVIOMMU(dev, for: self)
        try driver.switchRIDIOPF(dev, to: self)
        driver.program(dev, pasid: nil, .blocked)
        driver.record(.attachDev, self, dev, pasid: nil, old: old, succeeded: true)
    }

    /// `mock_domain_set_dev_pasid_nop` on the blocked domain: removes the PASID's entry
    /// and drops the old domain's cached translations and IOPF enablement for it. Never
    /// fails.
    public override func setDevPasid(_ dev: PCIDevice, pasid: PASID, old: IOMMUDomain?) throws(Errno) {
        guard ops.contains(.setDevPasid) else { throw .notSupported.from("mock_domain_set_dev_pasid_nop", "\(self) has no set_dev_pasid") }
        try driver.checkSetDevPasid(dev, pasid: pasid, blocking: true)
        try driver.switchPasidIOPF(dev, to: self, old: old)
        driver.program(dev, pasid: pasid, nil)
        driver.record(.setDevPasid, self, dev, pasid: pasid, old: old, succeeded: true)
    }
}
