import IOMMUCore
import XCTest

/// What a vendor model offers that some conformance checks need. A check that needs a
/// capability the vendor lacks throws `XCTSkip` naming it (style item 9: never a silent
/// pass).
struct VendorCapabilities: OptionSet, CustomStringConvertible {
    let rawValue: Int
    /// `iommu_ops.user_pasid_table`: a nested domain on the RID owns every PASID.
    static let userPasidTable = VendorCapabilities(rawValue: 1 << 0)
    /// `domain_alloc_nested` with a NEST_PARENT paging parent.
    static let nesting = VendorCapabilities(rawValue: 1 << 1)
    /// The hardware caches translations until invalidated (a stale hit is possible
    /// between `iommu_unmap_fast` and `iommu_iotlb_sync`).
    static let cachesTranslations = VendorCapabilities(rawValue: 1 << 2)
    /// `iommu_ops.identity_domain` plus a `release_domain`.
    static let identityReleaseDomain = VendorCapabilities(rawValue: 1 << 3)
    /// The fixture can inject driver failures (set_dev_pasid, map_pages) and build
    /// driver variants (no set_dev_pasid) and records driver callbacks.
    static let failureInjection = VendorCapabilities(rawValue: 1 << 4)
    /// The fixture can make the driver report any reserved region for a device (real
    /// drivers report only what firmware describes: RMRRs, MSI windows).
    static let anyReservedRegion = VendorCapabilities(rawValue: 1 << 5)

    var description: String {
        let names: [(VendorCapabilities, String)] = [
            (.userPasidTable, "userPasidTable"), (.nesting, "nesting"), (.cachesTranslations, "cachesTranslations"),
            (.identityReleaseDomain, "identityReleaseDomain"), (.failureInjection, "failureInjection"),
            (.anyReservedRegion, "anyReservedRegion"),
        ]
        return names.filter { contains($0.0) }.map(\.1).joined(separator: "|")
    }
}

/// One device a check wants.
struct DeviceSpec {
    /// PASID capability width in bits; nil for a device without PASID.
    var pasidWidth: Int? = 20
    /// ATS capability (PCI reset handling applies only to ATS devices).
    var ats = false
    /// Reserved regions the driver reports for it.
    var reservedRegions: [ReservedRegion] = []

    /// A PASID-capable device (width 20).
    static let pasid = DeviceSpec()
    /// A device without PASID.
    static let noPasid = DeviceSpec(pasidWidth: nil)
}

/// How the devices of a rig are placed.
enum Topology {
    /// Each device alone in its group.
    case separateGroups
    /// All devices behind one bridge without ACS, so they share one group.
    case sharedGroup
}

/// A machine with one vendor IOMMU unit and devices behind it, ready for a check.
final class Rig {
    let machine: Machine
    let unit: IOMMUDevice
    var devices: [PCIDevice] = []
    let vendor: any ConformanceVendor

    init(machine: Machine, unit: IOMMUDevice, vendor: any ConformanceVendor) {
        self.machine = machine
        self.unit = unit
        self.vendor = vendor
    }

    var iommu: IOMMUSubsystem { machine.iommu }
    var driver: any IOMMUDriver { unit.driver }
    var memory: PhysicalMemory { machine.memory }

    /// A zeroed 4 KiB DMA buffer filled with `fill`.
    func buffer(fill: UInt8 = 0, bytes: Int = 4096) throws -> UInt64 {
        let pa = try memory.allocContiguous(bytes: bytes)
        memory.write(pa, [UInt8](repeating: fill, count: bytes))
        return pa
    }

    /// A fresh UNMANAGED paging domain for `dev` (`iommu_paging_domain_alloc_flags`).
    func pagingDomain(for dev: PCIDevice? = nil, flags: DomainAllocFlags = []) throws -> IOMMUDomain {
        try iommu.allocPagingDomain(for: dev ?? devices[0], flags: flags)
    }

    /// An IOVA inside the aperture of `domain`, `offset` bytes above a round base.
    func iova(_ domain: IOMMUDomain, _ offset: UInt64 = 0) -> UInt64 {
        max(domain.geometry.apertureStart, 1 << 24) + offset
    }

    /// Whether the hardware of `dev` has a live entry for `pasid` (0 = the RID).
    func live(_ dev: PCIDevice, _ pasid: UInt32) -> Bool {
        unit.hardwareLock.withLock { unit.hardware.hasLiveEntry(rid: dev.rid, pasid: pasid) }
    }
}

/// A vendor the conformance suite runs over. A fixture builds machines for it and knows
/// what it can do; the checks in `ConformanceChecks` use nothing else vendor-specific,
/// except the checks marked Mock-only, which need failure-injection knobs.
protocol ConformanceVendor {
    /// The vendor's name, for messages.
    var name: String { get }
    /// What the vendor offers.
    var capabilities: VendorCapabilities { get }
    /// A machine with one IOMMU unit of this vendor and no devices; new groups get
    /// `defaultDomainType` default domains.
    func makeEmptyRig(defaultDomainType: DomainType) throws -> Rig
    /// A new, unregistered IOMMU unit of this vendor.
    func makeUnit() -> IOMMUDevice
    /// Adds a device with `rid` behind the rig's unit.
    func addDevice(to rig: Rig, rid: RID?, spec: DeviceSpec, upstream: PCIBridge?, multifunction: Bool) throws -> PCIDevice
    /// A paging domain allocated by a *different* driver object of this vendor, so the
    /// core's `domain->owner` check must refuse it (check 4).
    func foreignDomain() throws -> IOMMUDomain
    /// A NEST_PARENT paging parent for `dev` and a nested domain on it.
    func nestedDomain(on rig: Rig, for dev: PCIDevice) throws -> (parent: IOMMUDomain, nested: IOMMUDomain)
}

extension ConformanceVendor {
    /// A rig with one device per spec, placed as `topology` says.
    func makeRig(_ specs: [DeviceSpec], topology: Topology = .separateGroups,
                 defaultDomainType: DomainType = .dma) throws -> Rig {
        let rig = try makeEmptyRig(defaultDomainType: defaultDomainType)
        let bridge = topology == .sharedGroup ? PCIBridge(name: "non-ACS switch", acs: false) : nil
        for (i, spec) in specs.enumerated() {
            let rid = bridge != nil ? RID(bus: 0x40, device: UInt8(i), function: 0) : nil
            rig.devices.append(try addDevice(to: rig, rid: rid, spec: spec, upstream: bridge, multifunction: false))
        }
        return rig
    }

    /// Throws `XCTSkip` naming the capability if the vendor lacks it.
    func require(_ cap: VendorCapabilities) throws {
        guard capabilities.contains(cap) else {
            throw XCTSkip("\(name) lacks capability \(cap)")
        }
    }
}

/// Asserts that `body` throws exactly `expected`.
func assertErrno<T>(_ expected: Errno, _ message: String = "", file: StaticString = #filePath, line: UInt = #line,
                    _ body: () throws -> T) {
    do {
        _ = try body()
        XCTFail("expected \(expected), got success. \(message)", file: file, line: line)
    } catch {
        XCTAssertEqual(error as? Errno, expected, message, file: file, line: line)
    }
}
