import IOMMUCore

/// One PCI function a check wants behind the vendor's unit: which capabilities it has
/// and which reserved regions firmware describes for it.
public struct DeviceSpec: Hashable, Sendable {
    /// PASID capability width in bits (1...20); nil for a function without PASID. The
    /// device's `max_pasids` is the smaller of this and the unit's PASID space.
    public var pasidWidth: Int?
    /// PASID capability: Privileged Mode Supported.
    public var privileged: Bool
    /// PASID capability: Execute Permission Supported.
    public var execute: Bool
    /// Address Translation Services (the device caches translations in its ATC; PCI
    /// reset handling applies only to ATS functions).
    public var ats: Bool
    /// Page Request Interface (the device can send page requests).
    public var pri: Bool
    /// ACS on the function (isolates it from the other functions of its device).
    public var acs: Bool
    /// Regions firmware describes for the device
    /// (``ConformanceVendor/describeReservedRegions(_:for:on:)``).
    public var reservedRegions: [ReservedRegion]

    /// A device spec; by default a 20-bit PASID function with privileged and execute
    /// support, without ATS or PRI.
    public init(pasidWidth: Int? = 20, privileged: Bool = true, execute: Bool = true, ats: Bool = false,
                pri: Bool = false, acs: Bool = true, reservedRegions: [ReservedRegion] = []) {
        self.pasidWidth = pasidWidth
        self.privileged = privileged
        self.execute = execute
        self.ats = ats
        self.pri = pri
        self.acs = acs
        self.reservedRegions = reservedRegions
    }

    /// A 20-bit PASID function.
    public static let pasid = DeviceSpec()
    /// A function without PASID.
    public static let noPasid = DeviceSpec(pasidWidth: nil)
    /// A 20-bit PASID function with ATS and PRI: it can send page requests (PCIe wants
    /// PASID and ATS enabled before PRI).
    public static let pri = DeviceSpec(ats: true, pri: true)
}

/// How the devices of a rig are placed on the PCI topology.
public enum Topology: Hashable, Sendable {
    /// Each device on a root bus of its own slot, alone in its group.
    case separateGroups
    /// All devices behind one bridge without ACS: one group.
    case sharedGroup
}
