import IOMMUConformance
import IOMMUCore
import IOMMUDrivers

/// The kernel selftest's mock IOMMU as a conformance vendor: units of
/// ``IOMMUDrivers/MockIOMMU``, with the mock's knobs behind the capabilities that need
/// them (driver variants, failure injection and its callback log, any reserved region).
///
/// What it lacks, and so skips: SVA (the mock has no `domain_alloc_sva`), an identity
/// and release domain (the kernel mock has neither), and dirty tracking by the hardware
/// (the mock's dirty bits are set only by the selftest's `IOMMU_TEST_OP_DIRTY`, as in the
/// kernel, never by device writes).
public struct MockVendor: ConformanceVendor {
    /// `"Mock"`.
    public let name = "Mock"
    /// Everything but SVA, identity/release domains and hardware dirty tracking.
    public let capabilities: VendorCapabilities = [
        .pasid, .userPasidTable, .nesting, .cachesTranslations, .driverVariants, .failureInjection,
        .directMappedRegions, .anyReservedRegion, .pageRequests,
    ]

    /// The Mock vendor.
    public init() {}

    /// A ``MockIOMMU`` run by a new ``MockIOMMUDriver`` or by `sibling`'s.
    public func makeUnit(on machine: Machine, sharingDriverWith sibling: IOMMUDevice?) throws -> IOMMUDevice {
        MockIOMMU(driver: (sibling as? MockIOMMU)?.mockDriver ?? MockIOMMUDriver())
    }

    /// A ``MockIOMMU`` whose driver is built with the variant's options.
    public func makeUnit(on machine: Machine, variant: DriverVariant) throws -> IOMMUDevice {
        MockIOMMU(driver: MockIOMMUDriver(userPasidTable: !variant.contains(.withoutUserPasidTable),
                                          blockedDomainSetsPasid: !variant.contains(.blockedDomainWithoutSetDevPasid),
                                          pagingDomainsSetPasid: !variant.contains(.pagingDomainsWithoutSetDevPasid)))
    }

    /// The mock driver reports any region it is told to
    /// (``MockIOMMUDriver/setReservedRegions(_:for:)``).
    public func describeReservedRegions(_ regions: [ReservedRegion], for rid: RID, on unit: IOMMUDevice) throws {
        (unit as? MockIOMMU)?.mockDriver.setReservedRegions(regions, for: rid)
    }

    /// A NEST_PARENT mock paging domain and a nested domain on it with the selftest's
    /// user data (`struct iommu_hwpt_selftest`, IOTLB value 0x0badbeef).
    public func nestedDomain(in rig: Rig, for dev: PCIDevice) throws -> (parent: IOMMUDomain, nested: IOMMUDomain) {
        let parent = try rig.iommu.allocPagingDomain(for: dev, flags: [.nestParent])
        let nested = try rig.driver.domainAllocNested(dev, parent: parent, flags: [], userData: [0xef, 0xbe, 0xad, 0x0b])
        return (parent, nested)
    }

    /// ``MockDeviceState/failSetDevPasid``.
    public func failSetDevPasid(_ errno: Errno?, on dev: PCIDevice) throws {
        guard let state = (dev.iommu as? MockIOMMU)?.mockDriver.state(of: dev) else { throw Errno.noDevice }
        state.failSetDevPasid = errno
    }

    /// ``MockDomain/failMapAfterPages``, counted in the mock's 2 KiB pages.
    public func failMapPages(after pages: Int?, in domain: IOMMUDomain) throws {
        guard let d = domain as? MockDomain else { throw Errno.invalidArgument }
        d.failMapAfterPages = pages
    }

    /// ``MockIOMMUDriver/calls``.
    public func driverCalls(on unit: IOMMUDevice) -> [DriverCall] {
        ((unit as? MockIOMMU)?.mockDriver.calls ?? []).map {
            DriverCall(op: $0.op == .attachDev ? .attachDev : .setDevPasid, domain: $0.domain, blocking: $0.blocking,
                       rid: $0.rid, pasid: $0.pasid, old: $0.old, entryPublished: $0.entryPublished,
                       succeeded: $0.succeeded)
        }
    }

    /// ``MockIOMMUDriver/clearCalls()``.
    public func clearDriverCalls(on unit: IOMMUDevice) { (unit as? MockIOMMU)?.mockDriver.clearCalls() }
}

extension MockVendor {
    /// A rig whose unit runs `driver`, for Mock tests that need driver options the
    /// variants do not cover (no iopf queue, say). Add mock devices with
    /// ``MockIOMMU/makeDevice(on:flags:ats:reservedRegions:)``.
    public func makeRig(driver: MockIOMMUDriver, defaultDomainType: DomainType = .dma) -> Rig {
        let machine = makeMachine()
        machine.iommu.defaultDomainType = defaultDomainType
        let unit = MockIOMMU(driver: driver)
        machine.addIOMMU(unit)
        return Rig(vendor: self, machine: machine, unit: unit)
    }
}
