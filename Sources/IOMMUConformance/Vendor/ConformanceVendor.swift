import IOMMUCore

/// A vendor IOMMU model the conformance suite runs on: how to build its units and
/// devices, and what it can do.
///
/// Three requirements are enough for a vendor that only translates: ``name``,
/// ``capabilities`` and ``makeUnit(on:sharingDriverWith:)``. Every other requirement has
/// a default; a vendor implements it when it declares the capability that needs it (the
/// default throws ``ConformanceError/capabilityWithoutHook(vendor:requirement:capability:)``,
/// so a declared capability without its hook fails the checks that need it instead of
/// passing them).
///
/// ```swift
/// struct ToyVendor: ConformanceVendor {
///     let name = "Toy"
///     let capabilities: VendorCapabilities = [.pasid, .cachesTranslations]
///     func makeUnit(on machine: Machine, sharingDriverWith sibling: IOMMUDevice?) throws -> IOMMUDevice {
///         let driver = (sibling?.driver as? ToyDriver) ?? ToyDriver()
///         return try ToyIOMMU(name: "toy0", driver: driver, memory: machine.memory)
///     }
/// }
/// ```
public protocol ConformanceVendor: Sendable {
    /// A short identifier for test names and messages: letters and digits (`"Mock"`,
    /// `"VTd"`).
    var name: String { get }

    /// What the vendor can do. Checks that need a capability missing here are skipped,
    /// naming it.
    var capabilities: VendorCapabilities { get }

    /// A new machine for a rig. Default: `Machine(memory: 4 << 30)`; a vendor whose
    /// machines need something else (another CPU architecture) builds its own.
    func makeMachine() -> Machine

    /// A new IOMMU unit of this vendor for `machine` (not registered yet: the rig
    /// registers it with `Machine.addIOMMU`). Hardware tables go in `machine.memory`.
    /// - Parameters:
    ///   - machine: the machine the unit will be registered on.
    ///   - sibling: nil for a unit run by a new driver object, so that its domains are
    ///     foreign to every other unit's (the core's `domain->owner` check); otherwise a
    ///     unit of this vendor whose driver object the new unit shares, as the units of
    ///     one kernel driver do.
    func makeUnit(on machine: Machine, sharingDriverWith sibling: IOMMUDevice?) throws -> IOMMUDevice

    /// A new unit whose driver is built as `variant` says (capability
    /// ``VendorCapabilities/driverVariants``). Default: an empty variant is
    /// ``makeUnit(on:sharingDriverWith:)`` with a new driver; any other variant throws
    /// ``ConformanceError/capabilityWithoutHook(vendor:requirement:capability:)``.
    func makeUnit(on machine: Machine, variant: DriverVariant) throws -> IOMMUDevice

    /// The PCI function for `spec` at `rid` (not added to a machine yet). Default: a
    /// ``/IOMMUCore/PCIDevice`` with the spec's capabilities.
    func makeDevice(_ spec: DeviceSpec, rid: RID, upstream: PCIBridge?, multifunction: Bool) -> PCIDevice

    /// Firmware describes `regions` for the device at `rid` behind `unit` before the
    /// device is probed, so the driver reports them (`iommu_ops.get_resv_regions`).
    /// Needed for ``VendorCapabilities/directMappedRegions`` and
    /// ``VendorCapabilities/anyReservedRegion``. Default: nothing to describe is fine,
    /// anything else throws ``ConformanceError/capabilityWithoutHook(vendor:requirement:capability:)``.
    func describeReservedRegions(_ regions: [ReservedRegion], for rid: RID, on unit: IOMMUDevice) throws

    /// A `IOMMU_HWPT_ALLOC_NEST_PARENT` paging parent for `dev` and a nested domain on it
    /// (`domain_alloc_nested` with the vendor's user data), for
    /// ``VendorCapabilities/nesting``.
    func nestedDomain(in rig: Rig, for dev: PCIDevice) throws -> (parent: IOMMUDomain, nested: IOMMUDomain)

    /// From now on every non-blocking `set_dev_pasid` on `dev` fails with `errno` before
    /// touching the hardware; nil stops it (``VendorCapabilities/failureInjection``).
    func failSetDevPasid(_ errno: Errno?, on dev: PCIDevice) throws

    /// `map_pages` of `domain` fails with `ENOMEM` once `pages` more pages are mapped;
    /// nil stops it (``VendorCapabilities/failureInjection``).
    func failMapPages(after pages: Int?, in domain: IOMMUDomain) throws

    /// The `attach_dev` and `set_dev_pasid` callbacks the core made to the driver of
    /// `unit`, oldest first (``VendorCapabilities/failureInjection``). Default: none.
    func driverCalls(on unit: IOMMUDevice) -> [DriverCall]

    /// Forgets the callbacks ``driverCalls(on:)`` reports. Default: nothing.
    func clearDriverCalls(on unit: IOMMUDevice)

    /// Hardware identifiers the driver holds on `unit`, by kind (VT-d: `["DIDs": 3]`;
    /// an SMMU: ASIDs and VMIDs), for the leak check. Default: none.
    func idsInUse(on unit: IOMMUDevice) -> [String: Int]
}

extension ConformanceVendor {
    /// A 4 GiB machine (committed only where touched).
    public func makeMachine() -> Machine { Machine(memory: 4 << 30) }

    /// The empty variant is a plain unit; others need an implementation.
    public func makeUnit(on machine: Machine, variant: DriverVariant) throws -> IOMMUDevice {
        guard variant.isEmpty else {
            throw ConformanceError.capabilityWithoutHook(vendor: name, requirement: "makeUnit(on:variant:)",
                                                  capability: .driverVariants)
        }
        return try makeUnit(on: machine, sharingDriverWith: nil)
    }

    /// A PCI function with the spec's PASID, ATS, PRI and ACS capabilities.
    public func makeDevice(_ spec: DeviceSpec, rid: RID, upstream: PCIBridge?, multifunction: Bool) -> PCIDevice {
        let pasid = spec.pasidWidth.map { PASIDCapability(width: $0, privileged: spec.privileged, execute: spec.execute) }
        return PCIDevice(rid: rid, caps: PCICapabilities(pasid: pasid, ats: spec.ats, pri: spec.pri, acs: spec.acs),
                         upstream: upstream, multifunction: multifunction)
    }

    /// Accepts no region.
    public func describeReservedRegions(_ regions: [ReservedRegion], for rid: RID, on unit: IOMMUDevice) throws {
        guard regions.isEmpty else {
            throw ConformanceError.capabilityWithoutHook(vendor: name, requirement: "describeReservedRegions(_:for:on:)",
                                                  capability: .directMappedRegions)
        }
    }

    /// Not implemented.
    public func nestedDomain(in rig: Rig, for dev: PCIDevice) throws -> (parent: IOMMUDomain, nested: IOMMUDomain) {
        throw ConformanceError.capabilityWithoutHook(vendor: name, requirement: "nestedDomain(in:for:)", capability: .nesting)
    }

    /// Not implemented.
    public func failSetDevPasid(_ errno: Errno?, on dev: PCIDevice) throws {
        throw ConformanceError.capabilityWithoutHook(vendor: name, requirement: "failSetDevPasid(_:on:)",
                                              capability: .failureInjection)
    }

    /// Not implemented.
    public func failMapPages(after pages: Int?, in domain: IOMMUDomain) throws {
        throw ConformanceError.capabilityWithoutHook(vendor: name, requirement: "failMapPages(after:in:)",
                                              capability: .failureInjection)
    }

    /// No callback log.
    public func driverCalls(on unit: IOMMUDevice) -> [DriverCall] { [] }

    /// No callback log.
    public func clearDriverCalls(on unit: IOMMUDevice) {}

    /// No identifiers.
    public func idsInUse(on unit: IOMMUDevice) -> [String: Int] { [:] }

    /// A rig: a machine from ``makeMachine()`` with one unit of this vendor (built as
    /// `variant` says) and one device per spec, placed as `topology` says. New groups get
    /// `defaultDomainType` default domains (`iommu.passthrough` / `iommu.strict`).
    /// - Throws: what the vendor's builders throw; a device's probe errno.
    public func makeRig(_ specs: [DeviceSpec] = [], topology: Topology = .separateGroups,
                        defaultDomainType: DomainType = .dma, variant: DriverVariant = []) throws -> Rig {
        let machine = makeMachine()
        machine.iommu.defaultDomainType = defaultDomainType
        let unit = try makeUnit(on: machine, variant: variant)
        machine.addIOMMU(unit)
        let rig = Rig(vendor: self, machine: machine, unit: unit)
        let bridge = topology == .sharedGroup ? PCIBridge(name: "non-ACS switch", acs: false) : nil
        for spec in specs { try rig.addDevice(spec, upstream: bridge) }
        return rig
    }

    /// Whether the vendor has every capability in `needed`.
    public func has(_ needed: VendorCapabilities) -> Bool { capabilities.contains(needed) }
}

/// Driver variants a vendor with ``VendorCapabilities/driverVariants`` can build: a
/// driver missing an op or a flag, to check what the core does when an op is NULL.
public struct DriverVariant: OptionSet, Hashable, Sendable, CustomStringConvertible {
    /// The raw bits.
    public let rawValue: UInt32
    /// Wraps raw bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Paging domains without `set_dev_pasid` (a driver that never implemented PASID
    /// attach): the core refuses PASID attach with `EOPNOTSUPP`.
    public static let pagingDomainsWithoutSetDevPasid = DriverVariant(rawValue: 1 << 0)
    /// A blocked domain without `set_dev_pasid`: the core could never remove a PASID,
    /// so it refuses to attach one (`EOPNOTSUPP`).
    public static let blockedDomainWithoutSetDevPasid = DriverVariant(rawValue: 1 << 1)
    /// `iommu_ops.user_pasid_table` cleared: a nested domain on the RID translates the
    /// RID only, and RID-plus-all-PASIDs attach is `EOPNOTSUPP`.
    public static let withoutUserPasidTable = DriverVariant(rawValue: 1 << 2)

    /// The variant's names.
    public var description: String {
        let names: [(DriverVariant, String)] = [
            (.pagingDomainsWithoutSetDevPasid, "pagingDomainsWithoutSetDevPasid"),
            (.blockedDomainWithoutSetDevPasid, "blockedDomainWithoutSetDevPasid"),
            (.withoutUserPasidTable, "withoutUserPasidTable"),
        ]
        let set = names.filter { contains($0.0) }.map(\.1)
        return set.isEmpty ? "standard" : set.joined(separator: ", ")
    }
}

/// One `attach_dev` or `set_dev_pasid` callback the core made to a driver, as a vendor
/// with ``VendorCapabilities/failureInjection`` records it: which callback, on which
/// domain, device and PASID, and what the group's PASID array held at that moment.
public struct DriverCall: Hashable, Sendable, CustomStringConvertible {
    /// Which callback.
    public enum Op: String, Hashable, Sendable {
        /// `iommu_domain_ops.attach_dev`.
        case attachDev = "attach_dev"
        /// `iommu_domain_ops.set_dev_pasid`.
        case setDevPasid = "set_dev_pasid"
    }
    /// The callback.
    public var op: Op
    /// The domain whose op ran (its description, e.g. `BLOCKED#1`).
    public var domain: String
    /// Whether that domain is a blocked domain.
    public var blocking: Bool
    /// The device.
    public var rid: RID
    /// The PASID, nil for `attach_dev` (the RID).
    public var pasid: PASID?
    /// The description of the `old` argument, nil for none.
    public var old: String?
    /// Whether the group's PASID array held a published (not merely reserved) entry at
    /// `pasid` when the callback ran.
    public var entryPublished: Bool
    /// Whether the callback succeeded.
    public var succeeded: Bool

    /// A recorded callback.
    public init(op: Op, domain: String, blocking: Bool, rid: RID, pasid: PASID?, old: String?, entryPublished: Bool,
                succeeded: Bool) {
        self.op = op
        self.domain = domain
        self.blocking = blocking
        self.rid = rid
        self.pasid = pasid
        self.old = old
        self.entryPublished = entryPublished
        self.succeeded = succeeded
    }

    /// `set_dev_pasid BLOCKED#1 00:01.0 pasid 5 old=DMA#3 published ok`.
    public var description: String {
        "\(op.rawValue) \(domain) \(rid) pasid \(pasid.map { "\($0)" } ?? "-") old=\(old ?? "-") \(entryPublished ? "published" : "unpublished") \(succeeded ? "ok" : "failed")"
    }
}

/// Why a vendor could not do what a check asked.
public enum ConformanceError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The vendor declares `capability` but does not implement `requirement`, the hook
    /// the capability needs: the protocol's default ran, so the check fails rather than
    /// passing on a capability the vendor only claims.
    case capabilityWithoutHook(vendor: String, requirement: String, capability: VendorCapabilities)

    /// A sentence naming the vendor, the requirement and the capability.
    public var description: String {
        switch self {
        case .capabilityWithoutHook(let vendor, let requirement, let capability):
            "\(vendor) does not implement ConformanceVendor.\(requirement), which capability \(capability) needs"
        }
    }
}
