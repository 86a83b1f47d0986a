import IOMMUCore
import IOMMUFDDriver

/// A mock nested domain (`struct mock_iommu_domain_nested`, `domain_nested_ops`): a
/// user stage 1 on a ``MockDomain`` stage-2 parent. The mock's stage 1 is nothing but
/// four fake IOTLB words (`iotlb[MOCK_NESTED_DOMAIN_IOTLB_NUM]`) that user invalidations
/// clear; DMA through it is translated by the parent's table. One made through a vIOMMU
/// (``viommu``) takes only devices that have a vDEVICE in it.
public final class MockNestedDomain: IOMMUDomain, @unchecked Sendable {
    /// The stage-2 parent (allocated with NEST_PARENT).
    public let parent: MockDomain
    /// `mock_nested->mock_viommu`: the vIOMMU it was made through, if any.
    public private(set) weak var viommu: MockVIOMMU?
    private unowned let driver: MockIOMMUDriver
    private let lock = Lock()
    private var words: [UInt32]

    init(driver: MockIOMMUDriver, parent: MockDomain, iotlb: UInt32, viommu: MockVIOMMU? = nil) {
        self.driver = driver
        self.parent = parent
        self.viommu = viommu
        words = Array(repeating: iotlb, count: Mock.nestedIOTLBCount)
        super.init(type: .nested, owner: driver, ops: [.attachDev, .setDevPasid, .cacheInvalidateUser])
    }

    /// `__mock_domain_alloc_nested`'s data: `struct iommu_hwpt_selftest` (`iotlb`), copied
    /// with `iommu_copy_struct_from_user`.
    /// - Throws: `EOPNOTSUPP` another data type; `EINVAL` a length other than the
    ///   structure's 4 bytes; `EFAULT`.
    static func iotlb(from data: IOMMUUserData) throws(Errno) -> UInt32 {
        guard data.type == IOMMUHWPTDataType.selftest else { throw .notSupported }
        let bytes = try data.copy(expectedType: IOMMUHWPTDataType.selftest, minLength: IOMMUHWPTSelftest.size,
                                  maxLength: IOMMUHWPTSelftest.size)
        return IOMMUHWPTSelftest(bytes: bytes).iotlb
    }

    /// The fake IOTLB (`mock_nested->iotlb`), each word initialised to the user's value.
    public var iotlb: [UInt32] { lock.withLock { words } }

    /// `mock_domain_nop_attach` for a nested domain: the RID entry points at the parent's
    /// table; with the driver's user PASID table every PASID follows it.
    /// A domain with a fault handler puts the device on the iopf queue.
    /// - Throws: the injected ``MockDeviceState/failAttachDev`` errno; `ENODEV`/`EBUSY`
    ///   from enabling IOPF. The RID entry is unchanged on error.
    public override func attachDev(_ dev: PCIDevice, old: IOMMUDomain?) throws(Errno) {
        do throws(Errno) {
            if let e = driver.state(of: dev)?.failAttachDev { throw e }
            try driver.attachVIOMMU(dev, for: self)
            try driver.switchRIDIOPF(dev, to: self)
        } catch {
            driver.record(.attachDev, self, dev, pasid: nil, old: old, succeeded: false)
            throw error
        }
        driver.program(dev, pasid: nil, .nested(parentTable: parent.table, parentSerial: parent.serial))
        driver.record(.attachDev, self, dev, pasid: nil, old: old, succeeded: true)
    }

    /// `mock_domain_set_dev_pasid_nop` for a nested domain.
    /// - Throws: `ENOMEM` from the PASID 1024 quirk; the injected errno; `ENODEV`/`EBUSY`
    ///   from enabling IOPF.
    public override func setDevPasid(_ dev: PCIDevice, pasid: PASID, old: IOMMUDomain?) throws(Errno) {
        do throws(Errno) {
            try driver.checkSetDevPasid(dev, pasid: pasid, blocking: false)
            try driver.switchPasidIOPF(dev, to: self, old: old)
        } catch {
            driver.record(.setDevPasid, self, dev, pasid: pasid, old: old, succeeded: false)
            throw error
        }
        driver.program(dev, pasid: pasid, .nested(parentTable: parent.table, parentSerial: parent.serial))
        driver.record(.setDevPasid, self, dev, pasid: pasid, old: old, succeeded: true)
    }

    /// One entry of `struct iommu_hwpt_invalidate_selftest`: `flags` and `iotlb_id`.
    public struct Invalidation: Hashable, Sendable {
        /// `IOMMU_TEST_INVALIDATE_FLAG_ALL` or 0.
        public var flags: UInt32
        /// Which IOTLB word to clear (0...3) when not ALL.
        public var iotlbID: UInt32
        /// An invalidation entry.
        public init(flags: UInt32 = 0, iotlbID: UInt32) {
            self.flags = flags
            self.iotlbID = iotlbID
        }
    }

    /// `mock_domain_cache_invalidate_user`: processes entries in order, clearing one word
    /// or (with FLAG_ALL) all four; stops at the first bad entry.
    /// - Parameters:
    ///   - entries: the user's invalidation entries, in order.
    ///   - processed: set to the number of entries processed (what the kernel writes
    ///     back to `entry_num`), also when an entry fails.
    /// - Throws: `EOPNOTSUPP` for an unknown flag; `EINVAL` for an id above
    ///   `MOCK_NESTED_DOMAIN_IOTLB_ID_MAX`. Earlier entries stay applied.
    public func cacheInvalidateUser(_ entries: [Invalidation], processed: inout Int) throws(Errno) {
        processed = 0
        for inv in entries {
            guard inv.flags & ~Mock.invalidateFlagAll == 0 else { throw .notSupported.from("mock_domain_cache_invalidate_user", "unknown flags 0x\(String(inv.flags, radix: 16))") }
            guard inv.iotlbID <= Mock.nestedIOTLBIDMax else { throw .invalidArgument.from("mock_domain_cache_invalidate_user", "iotlb_id \(inv.iotlbID) is above \(Mock.nestedIOTLBIDMax)") }
            lock.withLock {
                if inv.flags & Mock.invalidateFlagAll != 0 {
                    for i in words.indices { words[i] = 0 }
                } else {
                    words[Int(inv.iotlbID)] = 0
                }
            }
            processed += 1
        }
    }
}
