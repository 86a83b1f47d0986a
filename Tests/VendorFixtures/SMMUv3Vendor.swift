import IOMMUConformance
import IOMMUCore
import IOMMUDrivers

/// ARM SMMUv3 as a conformance vendor, written against the public API only: units of
/// ``IOMMUDrivers/ArmSMMUv3`` on ``IOMMUDrivers/SMMUv3Hardware`` built as the
/// configuration says, run by an ``IOMMUDrivers/ArmSMMUv3Driver`` with the given
/// deliberate bugs (none by default).
///
/// What it lacks, and so skips: reserved regions other than IORT RMRs (the driver reports
/// what firmware describes: an RMR is `IOMMU_RESV_DIRECT`, and its only other region is
/// the software MSI window it always reports), and domains spanning units (a domain is
/// finalised for one SMMU, `smmu_domain->smmu`, and another SMMU's device gets `EINVAL`).
public struct SMMUv3Vendor: ConformanceVendor {
    /// `"SMMUv3"` unless set (a test running a buggy driver names it so).
    public var name = "SMMUv3"
    /// The hardware every unit is built with.
    public var configuration: SMMUv3Configuration
    /// The driver's deliberate bugs.
    public var bugs: SMMUv3DriverBugs

    /// PASIDs, the user PASID table and nesting (a vSTE on a stage-2 nesting parent),
    /// caches, identity and blocking release domains, driver variants and failure
    /// injection (the driver's package test hooks), RMRs, SVA on arm64 processes, page
    /// requests (stalls and PRI), stage-1 dirty tracking (HTTU: CD.HA/HD).
    public let capabilities: VendorCapabilities = [
        .pasid, .userPasidTable, .nesting, .cachesTranslations, .identityReleaseDomain, .driverVariants,
        .failureInjection, .directMappedRegions, .sva, .pageRequests, .dirtyTracking,
    ]

    /// An SMMUv3 vendor whose units are built as `configuration` says and whose driver
    /// has `bugs`.
    public init(configuration: SMMUv3Configuration = SMMUv3Configuration(), bugs: SMMUv3DriverBugs = []) {
        self.configuration = configuration
        self.bugs = bugs
    }

    /// An arm64 machine: SVA shares a process's own page table, which must be the arm64
    /// CPU's format for the SMMU to walk it.
    public func makeMachine() -> Machine { Machine(memory: 4 << 30, architecture: .arm64) }

    /// An ``ArmSMMUv3`` named `smmuN` (N = the units already on the machine) whose tables
    /// live in the machine's memory. Its driver logs the core's callbacks.
    public func makeUnit(on machine: Machine, sharingDriverWith sibling: IOMMUDevice?) throws -> IOMMUDevice {
        let driver = (sibling as? ArmSMMUv3)?.smmuDriver ?? ArmSMMUv3Driver(bugs: bugs)
        driver.recordsCalls = true
        return try ArmSMMUv3(name: "smmu\(machine.iommus.count)", driver: driver,
                             hardware: SMMUv3Hardware(memory: machine.memory, configuration: configuration))
    }

    /// An ``ArmSMMUv3`` whose new driver is built without what `variant` removes (the
    /// driver's test initialiser), logging the core's callbacks.
    public func makeUnit(on machine: Machine, variant: DriverVariant) throws -> IOMMUDevice {
        let driver = ArmSMMUv3Driver(bugs: bugs, userPasidTable: !variant.contains(.withoutUserPasidTable),
                                     blockedDomainSetsPasid: !variant.contains(.blockedDomainWithoutSetDevPasid),
                                     pagingDomainsSetPasid: !variant.contains(.pagingDomainsWithoutSetDevPasid))
        driver.recordsCalls = true
        return try ArmSMMUv3(name: "smmu\(machine.iommus.count)", driver: driver,
                             hardware: SMMUv3Hardware(memory: machine.memory, configuration: configuration))
    }

    /// A stage-2 nesting parent and a nested domain from the vSTE of an ``SMMUv3Guest``
    /// built in the parent: the guest's CD table serves the RID and every PASID with an
    /// identity stage 1 over the first 4 GiB, so DMA reaches what the parent maps. For a
    /// driver without the user PASID table the guest's table is linear (1024 CDs), so
    /// its RID translates when the driver rightly gives the STE no substreams, and its
    /// PASIDs would if the driver wrongly kept the guest's S1CDMax.
    public func nestedDomain(in rig: Rig, for dev: PCIDevice) throws -> (parent: IOMMUDomain, nested: IOMMUDomain) {
        let parent = try rig.iommu.allocPagingDomain(for: dev, flags: [.nestParent])
        let guest = try SMMUv3Guest(machine: rig.machine, parent: parent, linearCDTable: !rig.driver.userPasidTable)
        let nested = try rig.driver.domainAllocNested(dev, parent: parent, flags: [], userData: guest.userData)
        return (parent, nested)
    }

    /// IORT RMRs (`IOMMU_RESV_DIRECT`, or `_RELAXABLE`).
    public func describeReservedRegions(_ regions: [ReservedRegion], for rid: RID, on unit: IOMMUDevice) throws {
        guard let driver = (unit as? ArmSMMUv3)?.smmuDriver else { throw Errno.noDevice }
        for r in regions {
            guard r.kind == .direct || r.kind == .directRelaxable else {
                throw ConformanceError.capabilityWithoutHook(vendor: name, requirement: "describeReservedRegions(_:for:on:)",
                                                      capability: .anyReservedRegion)
            }
            driver.addRMR(for: rid, start: r.start, length: r.length, relaxable: r.kind == .directRelaxable)
        }
    }

    /// ``ArmSMMUv3Driver``'s `failSetDevPasid(_:on:)` hook (`arm_smmu_set_pasid`, for
    /// stage-1 and SVA domains).
    public func failSetDevPasid(_ errno: Errno?, on dev: PCIDevice) throws {
        guard let driver = (dev.iommu as? ArmSMMUv3)?.smmuDriver else { throw Errno.noDevice }
        try driver.failSetDevPasid(errno, on: dev)
    }

    /// ``SMMUv3Domain``'s `failMapAfterPages` hook, counted in pages of the size each
    /// `map_pages` call maps.
    public func failMapPages(after pages: Int?, in domain: IOMMUDomain) throws {
        guard let d = domain as? SMMUv3Domain, d.pageTable != nil else { throw Errno.invalidArgument }
        d.failMapAfterPages = pages
    }

    /// The `attach_dev` and `set_dev_pasid` callbacks the driver of `unit` logged.
    public func driverCalls(on unit: IOMMUDevice) -> [DriverCall] {
        ((unit as? ArmSMMUv3)?.smmuDriver.calls ?? []).map {
            DriverCall(op: $0.op == .attachDev ? .attachDev : .setDevPasid, domain: $0.domain, blocking: $0.blocking,
                       rid: $0.rid, pasid: $0.pasid, old: $0.old, entryPublished: $0.entryPublished,
                       succeeded: $0.succeeded)
        }
    }

    /// Forgets the callbacks the driver of `unit` logged.
    public func clearDriverCalls(on unit: IOMMUDevice) { (unit as? ArmSMMUv3)?.smmuDriver.clearCalls() }

    /// The ASIDs of the driver and the VMIDs of the unit.
    public func idsInUse(on unit: IOMMUDevice) -> [String: Int] {
        guard let u = unit as? ArmSMMUv3 else { return [:] }
        return ["ASIDs": u.smmuDriver.allocatedASIDs.count, "VMIDs": u.allocatedVMIDs.count]
    }
}
