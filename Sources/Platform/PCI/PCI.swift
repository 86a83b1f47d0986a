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

/// The PCI PASID capability (PCIe §7.8.8): width and the two optional permission bits.
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

/// A PCI function: the endpoint that issues DMA. Carries the per-device IOMMU data of
/// `struct dev_iommu` once the IOMMU core has probed it.
public final class PCIDevice: @unchecked Sendable, CustomStringConvertible {
    /// The requester ID.
    public let rid: RID
    /// A human name for logs (e.g. `"dsa0"`).
    public let name: String
    /// The function's capabilities.
    public let caps: PCICapabilities
    /// The bridge above the device, or nil when it sits on a root bus.
    public let upstream: PCIBridge?
    /// Whether the function belongs to a multi-function device (header type bit 7).
    public let multifunction: Bool
    /// The IOMMU instance the device sits behind (`dev->iommu->iommu_dev`), or nil.
    public internal(set) var iommu: IOMMUDevice? { didSet { refreshDMAPath() } }
    /// The device's group once probed (`dev->iommu_group`).
    public internal(set) var group: IOMMUGroup?
    /// `dev->iommu->max_pasids`: min(the PCI PASID width, the IOMMU's), 0 without PASID.
    public internal(set) var maxPasids: UInt32 = 0
    /// `dev->iommu->require_direct`: the device has an `IOMMU_RESV_DIRECT` region.
    public internal(set) var requireDirect = false
    /// Vendor per-device data (`dev_iommu_priv_get/set`).
    public var driverPrivate: AnyObject?
    /// The device's I/O page-fault state while it is on an iopf queue
    /// (`dev->iommu->fault_param`); guarded by the IOMMU core's lock.
    var iopfParam: IOPFDeviceParam?
    /// Whether the device is still present on the bus (`pci_device_is_present`).
    public var isPresent = true
    /// The device's address translation cache (ATS ATC). Filled by translated requests
    /// while ``atsEnabled``; cleared by the IOMMU's device-TLB invalidations.
    public let atc: IOTLB?
    /// ATS enabled by the IOMMU driver (`pci_enable_ats`).
    public var atsEnabled = false { didSet { refreshDMAPath() } }
    /// PASID enabled by the IOMMU driver (`pci_enable_pasid`).
    public var pasidEnabled = false
    /// PRI enabled by the IOMMU driver (`pci_enable_pri`).
    public var priEnabled = false
    /// The machine the device belongs to.
    public internal(set) weak var machine: Machine? { didSet { refreshDMAPath() } }
    /// What the DMA engine needs, resolved once: see `DMAPath`. It sits behind a pointer
    /// because every read of a class `var` pays a dynamic exclusivity check, which cost
    /// more than the IOTLB lookup on the 8-byte DMA path.
    let dmaPathStorage: UnsafeMutablePointer<DMAPath?> = {
        let p = UnsafeMutablePointer<DMAPath?>.allocate(capacity: 1)
        p.initialize(to: nil)
        return p
    }()

    var dmaPath: DMAPath? { dmaPathStorage.pointee }

    private func refreshDMAPath() {
        dmaPathStorage.pointee = machine.map { DMAPath(machine: $0, unit: iommu, ats: atsEnabled) }
    }

    deinit {
        dmaPathStorage.deinitialize(count: 1)
        dmaPathStorage.deallocate()
    }

    /// A PCI function with `rid` and `caps`, below `upstream`; `multifunction` marks a
    /// function of a multi-function device.
    public init(rid: RID, name: String? = nil, caps: PCICapabilities = PCICapabilities(),
                upstream: PCIBridge? = nil, multifunction: Bool = false) {
        self.rid = rid
        self.multifunction = multifunction
        self.name = name ?? "pci \(rid)"
        self.caps = caps
        self.upstream = upstream
        self.atc = caps.ats ? IOTLB(entries: 256) : nil
    }

    /// `name (rid)`.
    public var description: String { "\(name) [\(rid)]" }
}
