/// What a group's PASID array holds at one index (`group->pasid_array` entries).
public enum PasidSlot: Sendable {
    /// Reserved by an attach in progress (`XA_ZERO_ENTRY`): not visible to faults.
    case reserved
    /// A bare domain (`IOMMU_PASID_ARRAY_DOMAIN`).
    case domain(IOMMUDomain)
    /// An attach handle carrying the domain (`IOMMU_PASID_ARRAY_HANDLE`).
    case handle(AttachHandle)

    /// The attached domain, nil while only reserved.
    public var domain: IOMMUDomain? {
        switch self {
        case .reserved: nil
        case .domain(let d): d
        case .handle(let h): h.domain
        }
    }
}

/// An IOMMU group (`struct iommu_group`): the unit of isolation. Every device in it has
/// the same RID domain, and a PASID attachment applies to every PASID-capable member.
public final class IOMMUGroup: @unchecked Sendable, CustomStringConvertible {
    /// The group number (`/sys/kernel/iommu_groups/N`).
    public let id: Int
    /// Member devices, in probe order (`group->devices`).
    public internal(set) var devices: [PCIDevice] = []
    /// The current RID domain of the whole group (`group->domain`).
    public internal(set) var domain: IOMMUDomain?
    /// The default domain (`group->default_domain`).
    public internal(set) var defaultDomain: IOMMUDomain?
    /// The blocking domain used while a user owns the group (`group->blocking_domain`).
    public internal(set) var blockingDomain: IOMMUDomain?
    /// Users of the group's DMA (`group->owner_cnt`).
    public internal(set) var ownerCount = 0
    /// The exclusive user-space owner (`group->owner`), nil for DMA-API users, while it
    /// is alive. Weak because the kernel's `void *owner` is a cookie, not a reference: a
    /// group that kept its owner alive would keep an iommufd whose last file reference is
    /// gone from ever running its release (`iommufd_fops_release`), which is what gives
    /// the group back.
    public internal(set) weak var owner: AnyObject?
    /// The owner cookie itself: ownership decisions compare and test this, never
    /// ``owner``, so they stay right while the owner is being torn down (or after an
    /// owner that never released has gone, as a stale kernel cookie would).
    var ownerCookie: ObjectIdentifier?
    /// PASID attachments (`group->pasid_array` at real PASIDs), reserve-then-publish.
    public internal(set) var pasidArray: [PASID: PasidSlot] = [:]
    /// What the kernel keeps at `pasid_array[IOMMU_NO_PASID]`: the attach handle of the
    /// RID's domain when its attacher wants the RID's page faults (iommufd), nil
    /// otherwise. Kept apart from ``pasidArray`` because "no PASID" is not a PASID.
    public internal(set) var ridSlot: PasidSlot?

    /// The slot for requests with `pasid`, or for requests without one (`nil`): the
    /// kernel's `xa_load(&group->pasid_array, pasid)`.
    public func slot(_ pasid: PASID?) -> PasidSlot? {
        guard let pasid else { return ridSlot }
        return pasidArray[pasid]
    }

    /// Whether anything is attached through the PASID array, at a PASID or the RID's
    /// handle (`!xa_empty(&group->pasid_array)`).
    public var hasPasidArrayEntries: Bool { !pasidArray.isEmpty || ridSlot != nil }
    /// Devices under PCI reset (`group->recovery_cnt`).
    public var recoveryCount: Int { resetDepth.count }
    /// The RID is attached to a domain that owns every PASID (a user PASID table).
    public internal(set) var ridOwnsAllPasids = false
    /// Nesting depth of `pci_dev_reset_iommu_prepare` per device under reset
    /// (`group_device.reset_depth`); a device listed here is parked on blocked.
    var resetDepth: [RID: Int] = [:]

    func isBlockedForReset(_ rid: RID) -> Bool { resetDepth[rid] != nil }
    /// Key that devices sharing this group have in common (topology rule).
    let isolationKey: String

    init(id: Int, isolationKey: String) {
        self.id = id
        self.isolationKey = isolationKey
    }

    /// Members whose PASID support lets them emit PASID TLPs (`max_pasids > 0`).
    public var pasidCapableDevices: [PCIDevice] { devices.filter { $0.maxPasids > 0 } }

    /// `group N`.
    public var description: String { "group \(id)" }
}
