import IOMMUCore
import Synchronization

/// Per (domain, unit) DID bookkeeping (`struct iommu_domain_info`).
struct DomainIOMMUInfo {
    var refcount: Int
    var did: UInt16
}

/// The common part of every VT-d domain (`struct dmar_domain`): the DIDs it holds per
/// unit, its cache tags, and its attachments. Paging, SVA, identity and blocked domains
/// derive from it.
public class VTdDomain: IOMMUDomain, @unchecked Sendable {
    /// `iommu_array`: unit → {refcnt, did}.
    var iommuInfo: [ObjectIdentifier: DomainIOMMUInfo] = [:]
    /// `cache_tags`, in the order they were assigned.
    var cacheTags = KeyedList<CacheTagKey, CacheTag>()
    /// Scratch descriptor buffer of ``flushRange(start:end:all:)`` (driver lock held),
    /// kept so that a flush allocates nothing once warm.
    var flushBuffer: [VTdDescriptor] = []
    /// Units the domain is attached to whose new mappings need `iotlb_sync_map` work
    /// (``needsSyncMap(on:)``): `dmar_domain->iotlb_sync_map`, kept as a count so that a
    /// map reads it without the driver's lock and skips the sync when it is 0.
    let syncMapUnits = Atomic<Int>(0)
    /// `devices` + `dev_pasids`: where the domain is attached, in attach order.
    var attachments = KeyedList<VTdAttachment.Key, VTdAttachment>()

    /// The driver that owns the domain. Every VT-d domain is created by its subclass's
    /// `init(driver: IntelIOMMUDriver, ...)`, which passes that driver as `owner`, so the
    /// owner is always an `IntelIOMMUDriver`: read on every map/unmap/flush, it skips the
    /// checked existential cast (`as!`), which is a runtime dynamic-cast call (debug
    /// builds still check it).
    var intelDriver: IntelIOMMUDriver { unsafeDowncast(owner, to: IntelIOMMUDriver.self) }

    /// Whether new mappings of this domain must be made visible on `unit` by
    /// `iotlb_sync_map` (a write-buffer flush, or a caching-mode range flush). None by
    /// default; paging domains decide.
    func needsSyncMap(on unit: IntelIOMMU) -> Bool { false }

    /// Whether the domain's entries use `FLPT_DEFAULT_DID` and take no DID reference
    /// (SVA and identity domains, `iommu_domain_did`).
    var usesDefaultDID: Bool { false }

    /// The PGTT of the entries this domain installs; nil for the blocked domain.
    var entryKind: VTdPGTT? { nil }

    /// Builds the PASID entry this domain installs on `unit` with `did`.
    func makeEntry(unit: IntelIOMMU, did: UInt16) -> VTdPASIDEntry { VTdPASIDEntry() }

    /// A first-stage-only entry (PGTT 1) on the x86-64 table at `root`, the part of
    /// `intel_pasid_setup_first_level` every first-stage user shares: paging domains,
    /// SVA on `mm->pgd`, and the supervisor-SVA variant on the kernel's table.
    func firstStageEntry(unit: IntelIOMMU, did: UInt16, root: PhysicalAddress, levels: Int) -> VTdPASIDEntry {
        var e = VTdPASIDEntry()
        e.pgtt = .firstStage
        e.did = did
        e.flptptr = root
        e.flpm = levels == 5 ? 1 : 0
        e.aw = UInt8((unit.caps.secondStageLevels ?? 4) - 2)
        e.pwsnp = unit.caps.coherent
        return e
    }

    /// The DID of this domain on `unit`, if it holds one (or the default DID).
    func didOn(_ unit: IntelIOMMU) -> UInt16? {
        usesDefaultDID ? IntelIOMMU.defaultDID : iommuInfo[ObjectIdentifier(unit)]?.did
    }

    /// `domain_attach_iommu`: take a reference on this domain's DID on `unit`,
    /// allocating the DID on first use. No-op for default-DID domains.
    /// - Throws: `ENOSPC` when the unit has no free DID ("No free domain ids").
    func attachIOMMU(_ unit: IntelIOMMU) throws(Errno) -> UInt16 {
        if usesDefaultDID { return IntelIOMMU.defaultDID }
        let key = ObjectIdentifier(unit)
        if var info = iommuInfo[key] {
            info.refcount += 1
            iommuInfo[key] = info
            return info.did
        }
        guard let did = unit.allocateDID(for: self) else {
            unit.events?.record(.model("no_free_did", [.init("iommu", unit.name)]))
            throw .noSpace.from("domain_attach_iommu", "no free domain ID on \(unit.name)")
        }
        iommuInfo[key] = DomainIOMMUInfo(refcount: 1, did: did)
        if needsSyncMap(on: unit) { syncMapUnits.add(1, ordering: .releasing) }
        return did
    }

    /// `domain_detach_iommu`: drop a reference; the DID is freed at zero (or, with the
    /// `.freeDIDWhileReferenced` bug, on the first detach).
    func detachIOMMU(_ unit: IntelIOMMU) {
        if usesDefaultDID { return }
        let key = ObjectIdentifier(unit)
        guard var info = iommuInfo[key] else { return }
        let buggy = intelDriver.bugs.contains(.freeDIDWhileReferenced)
        let stillOwned = unit.didOwners[info.did] == ObjectIdentifier(self)
        info.refcount -= 1
        if info.refcount == 0 {
            iommuInfo[key] = nil
            if needsSyncMap(on: unit) { syncMapUnits.subtract(1, ordering: .releasing) }
            if stillOwned { unit.releaseDID(info.did) }
        } else {
            iommuInfo[key] = info
            if buggy && stillOwned { unit.releaseDID(info.did) }
        }
    }

    /// `domain_remove_dev_pasid` / the RID part of `device_block_translation`: forget
    /// the attachment at (`info`, `pasid`), its cache tags and its DID reference.
    func removeAttachment(_ info: VTdDeviceInfo, pasid: UInt32) {
        guard attachments.removeValue(forKey: VTdAttachment.Key(info: info, pasid: pasid)) != nil else { return }
        if let did = didOn(info.unit) { unassignCacheTags(unit: info.unit, did: did, pasid: pasid, info: info) }
        detachIOMMU(info.unit)
    }

    /// Records an attachment whose DID reference and cache tags are already taken.
    func addAttachment(_ info: VTdDeviceInfo, pasid: UInt32) {
        attachments[VTdAttachment.Key(info: info, pasid: pasid)] = VTdAttachment(info: info, pasid: pasid)
    }
}

/// One place a domain is attached: a device's RID (PASID-table index RID_PASID, 0) or one of its PASIDs.
struct VTdAttachment {
    unowned let info: VTdDeviceInfo
    let pasid: UInt32

    /// An attachment's identity: the device and the PASID.
    struct Key: Hashable {
        let info: ObjectIdentifier
        let pasid: UInt32

        init(info: VTdDeviceInfo, pasid: UInt32) {
            self.info = ObjectIdentifier(info)
            self.pasid = pasid
        }
    }
}
