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
