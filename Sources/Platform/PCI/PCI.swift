/// A PCI Requester ID: bus, device and function (`bus:dev.fn`), as carried by every TLP.
public struct RID: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The 16-bit value: bus in bits 15..8, devfn below (`PCI_DEVID`).
    public let raw: UInt16

    /// Builds a RID from bus, device (0...31) and function (0...7).
    public init(bus: UInt8, device: UInt8, function: UInt8) {
        precondition(device < 32 && function < 8, "RID: device must be < 32 and function < 8")
        raw = UInt16(bus) << 8 | UInt16(device) << 3 | UInt16(function)
    }

    /// Builds a RID from its raw 16-bit value.
    public init(raw: UInt16) { self.raw = raw }

    /// The bus number (`PCI_BUS_NUM`).
    public var bus: UInt8 { UInt8(raw >> 8) }
    /// The device and function byte (`devfn`).
    public var devfn: UInt8 { UInt8(raw & 0xff) }
    /// The device (slot) number (`PCI_SLOT`).
    public var device: UInt8 { devfn >> 3 }
    /// The function number (`PCI_FUNC`).
    public var function: UInt8 { devfn & 7 }

    /// `bb:dd.f`, the notation of `lspci`.
    public var description: String {
        func hex(_ v: UInt8, _ w: Int) -> String {
            let s = String(v, radix: 16)
            return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        return "\(hex(bus, 2)):\(hex(device, 2)).\(function)"
    }

    /// Orders RIDs by bus, then devfn.
    public static func < (a: RID, b: RID) -> Bool { a.raw < b.raw }
}

/// The PCI PASID capability (PCI Express base specification, section 7.8.8): width and the two optional permission bits.
public struct PASIDCapability: Hashable, Sendable {
    /// Max PASID width in bits (1...20); the device can emit PASIDs below `1 << width`.
    public var width: Int
    /// Privileged Mode Supported: the device may set the PR bit of the PASID prefix.
    public var privileged: Bool
    /// Execute Permission Supported.
    public var execute: Bool

    /// A PASID capability of `width` bits.
    public init(width: Int, privileged: Bool = false, execute: Bool = false) {
        precondition((1...20).contains(width), "PASID width is 1...20 bits")
        self.width = width
        self.privileged = privileged
        self.execute = execute
    }
}

/// The capabilities of a PCI function that the IOMMU code looks at.
public struct PCICapabilities: Hashable, Sendable {
    /// PASID capability, or nil when the function cannot emit PASID TLPs.
    public var pasid: PASIDCapability?
    /// Address Translation Services: the device caches translations in its ATC.
    public var ats: Bool
    /// Page Request Interface: the device can ask the IOMMU to fault pages in.
    public var pri: Bool
    /// ACS on this function (`REQ_ACS_FLAGS`: SV, RR, CR, UF), isolating it from the
    /// other functions of a multi-function device.
    public var acs: Bool

    /// Capabilities as named; everything defaults to absent except ACS.
    public init(pasid: PASIDCapability? = nil, ats: Bool = false, pri: Bool = false, acs: Bool = true) {
        self.pasid = pasid
        self.ats = ats
        self.pri = pri
        self.acs = acs
    }
}

/// A PCI bridge or switch port. Devices below a bridge without ACS can talk to each other
/// without going through the IOMMU, so the kernel cannot isolate them: they share a group.
public final class PCIBridge: @unchecked Sendable {
    /// A name for logs.
    public let name: String
    /// Whether the bridge's downstream ports enforce ACS (`pci_acs_path_enabled`).
    public let acs: Bool
    /// The bridge above this one, or nil for a root port.
    public let upstream: PCIBridge?

    /// A bridge; `upstream` nil makes it a root port.
    public init(name: String, acs: Bool, upstream: PCIBridge? = nil) {
        self.name = name
        self.acs = acs
        self.upstream = upstream
    }
}
