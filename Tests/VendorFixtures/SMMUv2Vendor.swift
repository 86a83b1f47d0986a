import IOMMUConformance
import IOMMUCore
import IOMMUDrivers

/// ARM SMMUv2 as a conformance vendor: units of ``IOMMUDrivers/ARMSMMUv2`` on
/// ``IOMMUDrivers/SMMUv2Hardware``, run by an ``IOMMUDrivers/ARMSMMUv2Driver``, with the
/// generic implementation (or Qualcomm's Adreno one when asked). A PCI function's stream
/// ID is its RID.
///
/// What it lacks, and so skips: PASIDs (SMMUv2 has no substream IDs), and with them SVA,
/// page requests, the user PASID table and the driver variants that remove PASID ops;
/// nesting (arm-smmu offers no nested domains); dirty tracking; an identity *release*
/// domain (arm-smmu sets `identity_domain` but no `release_domain`); reserved regions of
/// any kind (a knob of the kernel selftest's mock; IORT RMRs are supported).
public struct SMMUv2Vendor: ConformanceVendor {
    /// `"SMMUv2"` unless set.
    public var name = "SMMUv2"
    /// The hardware configuration of every unit.
    public var config: SMMUv2Configuration
    /// Whether units use the Qualcomm Adreno implementation.
    public var qualcomm: Bool

    /// A TLB that only invalidation empties, IORT RMRs, and the driver's test hooks for
    /// failing `map_pages` and recording `attach_dev`.
    public let capabilities: VendorCapabilities = [.cachesTranslations, .directMappedRegions, .failureInjection]

    /// An SMMUv2 vendor with `config`; `qualcomm` selects the Adreno implementation.
    public init(config: SMMUv2Configuration = SMMUv2Configuration(), qualcomm: Bool = false) {
        self.config = config
        self.qualcomm = qualcomm
    }

    /// An ``ARMSMMUv2`` named `smmuN` whose driver is `sibling`'s or a new one.
    public func makeUnit(on machine: Machine, sharingDriverWith sibling: IOMMUDevice?) throws -> IOMMUDevice {
        let driver = (sibling as? ARMSMMUv2)?.smmuDriver ?? ARMSMMUv2Driver()
        return try ARMSMMUv2(name: "smmu\(machine.iommus.count)", driver: driver,
                             hardware: SMMUv2Hardware(memory: machine.memory, config: config),
                             impl: qualcomm ? QcomAdrenoSMMU() : nil)
    }

    /// IORT RMRs (`IOMMU_RESV_DIRECT`, or `_RELAXABLE`) for the stream of `rid`.
    public func describeReservedRegions(_ regions: [ReservedRegion], for rid: RID, on unit: IOMMUDevice) throws {
        guard let smmu = unit as? ARMSMMUv2 else { throw Errno.noDevice }
        guard !regions.isEmpty else { return }
        for r in regions where r.kind != .direct && r.kind != .directRelaxable {
            throw ConformanceError.capabilityWithoutHook(vendor: name, requirement: "describeReservedRegions(_:for:on:)",
                                                  capability: .anyReservedRegion)
        }
        smmu.describeMaster(rid, ARMSMMUv2FirmwareMaster(streamIDs: [ARMSMMUv2StreamID(rid.raw)],
                                                         reservedRegions: regions))
    }

    /// SMMUv2 has no `set_dev_pasid`, so there is no callback to fail: accepted and
    /// without effect.
    public func failSetDevPasid(_ errno: Errno?, on dev: PCIDevice) throws {
        guard dev.iommu is ARMSMMUv2 else { throw Errno.noDevice }
    }

    /// ``ARMSMMUv2Domain``'s `failMapAfterPages` hook.
    public func failMapPages(after pages: Int?, in domain: IOMMUDomain) throws {
        guard let d = domain as? ARMSMMUv2Domain else { throw Errno.invalidArgument }
        d.failMapAfterPages = pages
    }

    /// The `attach_dev` callbacks the driver recorded (SMMUv2 has no `set_dev_pasid`).
    public func driverCalls(on unit: IOMMUDevice) -> [DriverCall] {
        ((unit as? ARMSMMUv2)?.smmuDriver.attachCalls ?? []).map {
            DriverCall(op: .attachDev, domain: $0.domain, blocking: $0.blocking, rid: $0.rid, pasid: nil, old: $0.old,
                       entryPublished: false, succeeded: $0.succeeded)
        }
    }

    /// Forgets the recorded callbacks.
    public func clearDriverCalls(on unit: IOMMUDevice) { (unit as? ARMSMMUv2)?.smmuDriver.clearAttachCalls() }

    /// The context banks allocated (one per finalised domain: its ASID is the bank's
    /// index).
    public func idsInUse(on unit: IOMMUDevice) -> [String: Int] {
        guard let u = unit as? ARMSMMUv2 else { return [:] }
        return ["context banks": u.allocatedContextBanks.count]
    }
}
