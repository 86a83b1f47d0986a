import IOMMUConformance
import IOMMUCore
import ToyIOMMU

/// The toy IOMMU as the conformance suite sees it: how to build a unit, how firmware
/// describes reserved regions to its driver, which IDs it holds, and what it can do.
struct ToyVendor: ConformanceVendor {
    let name = "Toy"

    /// PASIDs (a 512-entry PASID table per device), an IOTLB, identity and release
    /// domains, two driver variants, and firmware-described reserved regions. No
    /// nesting, SVA, page requests, dirty tracking or failure injection: those checks
    /// are skipped, naming the capability.
    let capabilities: VendorCapabilities = [
        .pasid, .cachesTranslations, .identityReleaseDomain, .driverVariants, .directMappedRegions, .anyReservedRegion,
    ]

    func makeUnit(on machine: Machine, sharingDriverWith sibling: IOMMUDevice?) throws -> IOMMUDevice {
        let driver = (sibling as? ToyIOMMU)?.toyDriver ?? ToyDriver()
        return try ToyIOMMU(name: "toy\(machine.iommus.count)", driver: driver, memory: machine.memory)
    }

    func makeUnit(on machine: Machine, variant: DriverVariant) throws -> IOMMUDevice {
        guard variant.isSubset(of: [.pagingDomainsWithoutSetDevPasid, .blockedDomainWithoutSetDevPasid]) else {
            throw ConformanceError.capabilityWithoutHook(vendor: name, requirement: "makeUnit(on:variant:) for \(variant)",
                                                  capability: .driverVariants)
        }
        let driver = ToyDriver(pagingDomainsSetPasid: !variant.contains(.pagingDomainsWithoutSetDevPasid),
                               blockedDomainSetsPasid: !variant.contains(.blockedDomainWithoutSetDevPasid))
        return try ToyIOMMU(name: "toy\(machine.iommus.count)", driver: driver, memory: machine.memory)
    }

    func describeReservedRegions(_ regions: [ReservedRegion], for rid: RID, on unit: IOMMUDevice) throws {
        (unit as? ToyIOMMU)?.toyDriver.describeFirmwareRegions(regions, for: rid)
    }

    func idsInUse(on unit: IOMMUDevice) -> [String: Int] {
        guard let toy = unit as? ToyIOMMU else { return [:] }
        return ["domain IDs": toy.toyDriver.domainIDsInUse]
    }
}
