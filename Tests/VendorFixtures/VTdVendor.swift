import IOMMUConformance
import IOMMUCore
import IOMMUDrivers

/// Intel VT-d in scalable mode as a conformance vendor: units of
/// ``IOMMUDrivers/IntelIOMMU`` on ``IOMMUDrivers/VTdHardware`` with the given
/// capabilities, run by an ``IOMMUDrivers/IntelIOMMUDriver`` with the given deliberate
/// bugs (none by default).
///
/// What it lacks, and so skips: nesting and the user PASID table (not modelled for
/// VT-d; PASIDs attach one by one), driver variants and failure injection (the VT-d
/// driver has no such knobs), and reserved regions other than RMRRs.
public struct VTdVendor: ConformanceVendor {
    /// `"VTd"` unless set (a test running a buggy driver names it so).
    public var name = "VTd"
    /// The hardware capabilities of every unit.
    public var caps: VTdCapabilities
    /// The driver's deliberate bugs (to show what the checker catches).
    public var bugs: VTdDriverBugs

    /// PASIDs, caches, identity and blocking release domains, RMRRs, SVA, page requests
    /// and second-stage dirty tracking.
    public let capabilities: VendorCapabilities = [
        .pasid, .cachesTranslations, .identityReleaseDomain, .directMappedRegions, .sva, .pageRequests, .dirtyTracking,
        .domainsSpanUnits,
    ]

    /// A VT-d vendor whose units have `caps` and whose driver has `bugs`.
    public init(caps: VTdCapabilities = VTdCapabilities(), bugs: VTdDriverBugs = []) {
        self.caps = caps
        self.bugs = bugs
    }

    /// An ``IntelIOMMU`` named `dmarN` (N = the units already on the machine) whose
    /// tables live in the machine's memory.
    public func makeUnit(on machine: Machine, sharingDriverWith sibling: IOMMUDevice?) throws -> IOMMUDevice {
        let driver = (sibling as? IntelIOMMU)?.intelDriver ?? IntelIOMMUDriver(bugs: bugs)
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

    /// The DIDs allocated on the unit (`domain_ida`).
    public func idsInUse(on unit: IOMMUDevice) -> [String: Int] {
        guard let u = unit as? IntelIOMMU else { return [:] }
        return ["DIDs": u.allocatedDIDs.count]
    }
}
