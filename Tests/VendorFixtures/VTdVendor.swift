import IOMMUConformance
import IOMMUCore
import IOMMUDrivers

/// Intel VT-d in scalable mode as a conformance vendor: units of
/// ``IOMMUDrivers/IntelIOMMU`` on ``IOMMUDrivers/VTdHardware`` with the given
/// capabilities, run by an ``IOMMUDrivers/IntelIOMMUDriver`` with the given deliberate
/// bugs (none by default).
///
/// What it lacks, and so skips: nesting and the user PASID table (not modelled for
/// VT-d; PASIDs attach one by one), and reserved regions other than RMRRs (the driver
/// reports what the DMAR table describes, plus the interrupt window).
public struct VTdVendor: ConformanceVendor {
    /// `"VTd"` unless set (a test running a buggy driver names it so).
    public var name = "VTd"
    /// The hardware capabilities of every unit.
    public var caps: VTdCapabilities
    /// The driver's deliberate bugs (to show what the checker catches).
    public var bugs: VTdDriverBugs

    /// PASIDs, caches, identity and blocking release domains, driver variants and failure
    /// injection (the driver's package test hooks), RMRRs, SVA, page requests,
    /// second-stage dirty tracking, and domains spanning units.
    public let capabilities: VendorCapabilities = [
        .pasid, .cachesTranslations, .identityReleaseDomain, .driverVariants, .failureInjection, .directMappedRegions,
        .sva, .pageRequests, .dirtyTracking, .domainsSpanUnits,
    ]

    /// A VT-d vendor whose units have `caps` and whose driver has `bugs`.
    public init(caps: VTdCapabilities = VTdCapabilities(), bugs: VTdDriverBugs = []) {
        self.caps = caps
        self.bugs = bugs
    }

    /// An ``IntelIOMMU`` named `dmarN` (N = the units already on the machine) whose
    /// tables live in the machine's memory. Its driver logs the core's callbacks.
    public func makeUnit(on machine: Machine, sharingDriverWith sibling: IOMMUDevice?) throws -> IOMMUDevice {
        let driver = (sibling as? IntelIOMMU)?.intelDriver ?? IntelIOMMUDriver(bugs: bugs)
        driver.recordsCalls = true
        return try IntelIOMMU(name: "dmar\(machine.iommus.count)", driver: driver,
                              hardware: VTdHardware(memory: machine.memory, caps: caps))
    }

    /// An ``IntelIOMMU`` whose new driver is built without what `variant` removes (the
    /// driver's test initialiser), logging the core's callbacks.
    /// ``DriverVariant/withoutUserPasidTable`` removes nothing: `intel_iommu_ops` has no
    /// `user_pasid_table` (PASIDs attach one by one), so the standard driver already is
    /// that variant.
    public func makeUnit(on machine: Machine, variant: DriverVariant) throws -> IOMMUDevice {
        let driver = IntelIOMMUDriver(bugs: bugs,
                                      blockedDomainSetsPasid: !variant.contains(.blockedDomainWithoutSetDevPasid),
                                      pagingDomainsSetPasid: !variant.contains(.pagingDomainsWithoutSetDevPasid))
        driver.recordsCalls = true
        return try IntelIOMMU(name: "dmar\(machine.iommus.count)", driver: driver,
                              hardware: VTdHardware(memory: machine.memory, caps: caps))
    }

    /// RMRRs (`IOMMU_RESV_DIRECT`, or `_RELAXABLE`) as the DMAR table describes them.
    public func describeReservedRegions(_ regions: [ReservedRegion], for rid: RID, on unit: IOMMUDevice) throws {
        guard let driver = (unit as? IntelIOMMU)?.intelDriver else { throw Errno.noDevice }
        for r in regions {
            guard r.kind == .direct || r.kind == .directRelaxable else {
                throw ConformanceError.capabilityWithoutHook(vendor: name, requirement: "describeReservedRegions(_:for:on:)",
                                                      capability: .anyReservedRegion)
            }
            driver.addRMRR(for: rid, start: r.start, length: r.length, relaxable: r.kind == .directRelaxable)
        }
    }

    /// ``IntelIOMMUDriver``'s `failSetDevPasid(_:on:)` hook (paging, identity, SVA and
    /// supervisor-SVA domains).
    public func failSetDevPasid(_ errno: Errno?, on dev: PCIDevice) throws {
        guard let driver = (dev.iommu as? IntelIOMMU)?.intelDriver else { throw Errno.noDevice }
        try driver.failSetDevPasid(errno, on: dev)
    }

    /// ``DMARDomain``'s `failMapAfterPages` hook, counted in pages of the size each
    /// `map_pages` call maps.
    public func failMapPages(after pages: Int?, in domain: IOMMUDomain) throws {
        guard let d = domain as? DMARDomain else { throw Errno.invalidArgument }
        d.failMapAfterPages = pages
    }

    /// The `attach_dev` and `set_dev_pasid` callbacks the driver of `unit` logged.
    public func driverCalls(on unit: IOMMUDevice) -> [DriverCall] {
        ((unit as? IntelIOMMU)?.intelDriver.calls ?? []).map {
            DriverCall(op: $0.op == .attachDev ? .attachDev : .setDevPasid, domain: $0.domain, blocking: $0.blocking,
                       rid: $0.rid, pasid: $0.pasid, old: $0.old, entryPublished: $0.entryPublished,
                       succeeded: $0.succeeded)
        }
    }

    /// Forgets the callbacks the driver of `unit` logged.
    public func clearDriverCalls(on unit: IOMMUDevice) { (unit as? IntelIOMMU)?.intelDriver.clearCalls() }

    /// The DIDs allocated on the unit (`domain_ida`).
    public func idsInUse(on unit: IOMMUDevice) -> [String: Int] {
        guard let u = unit as? IntelIOMMU else { return [:] }
        return ["DIDs": u.allocatedDIDs.count]
    }
}
