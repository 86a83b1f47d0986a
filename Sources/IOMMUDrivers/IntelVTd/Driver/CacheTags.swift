import IOMMUCore

/// An invalidation target of a domain (`struct cache_tag`): an IOTLB tag per (unit, DID,
/// PASID), and a device-TLB tag per (device, DID, PASID) when ATS is enabled.
struct CacheTag {
    enum Kind { case iotlb, devTLB }
    let kind: Kind
    /// `unowned(unsafe)`: a machine never removes an IOMMU unit, and tags exist only
    /// while a device behind the unit is attached, so the unit outlives the tag. Read on
    /// every flush, it then costs no unowned-refcount traffic (copying a tag, or loading
    /// the unit, with safe `unowned` does).
    unowned(unsafe) let unit: IntelIOMMU
    let did: UInt16
    let pasid: UInt32
    let info: VTdDeviceInfo?
    var users: Int
}

/// What identifies a cache tag: its kind, unit, DID, PASID and, for a device-TLB tag,
/// the device.
struct CacheTagKey: Hashable {
    let kind: CacheTag.Kind
    let unit: ObjectIdentifier
    let did: UInt16
    let pasid: UInt32
    let info: ObjectIdentifier?

    init(_ kind: CacheTag.Kind, unit: IntelIOMMU, did: UInt16, pasid: UInt32, info: VTdDeviceInfo?) {
        self.kind = kind
        self.unit = ObjectIdentifier(unit)
        self.did = did
        self.pasid = pasid
        self.info = kind == .devTLB ? info.map(ObjectIdentifier.init) : nil
    }
}

extension VTdDomain {
    /// `cache_tag_assign_domain`: tags for an attachment at (`info`, `pasid`) with `did`.
    func assignCacheTags(unit: IntelIOMMU, did: UInt16, pasid: UInt32, info: VTdDeviceInfo) {
        let users = assignCacheTag(CacheTag(kind: .iotlb, unit: unit, did: did, pasid: pasid, info: nil, users: 1))
        traceTag("cache_tag_assign", unit: unit, info: info, devTLB: false, did: did, pasid: pasid, users: users)
        guard info.dev?.atsEnabled == true else { return }
        let devUsers = assignCacheTag(CacheTag(kind: .devTLB, unit: unit, did: did, pasid: pasid, info: info, users: 1))
        traceTag("cache_tag_assign", unit: unit, info: info, devTLB: true, did: did, pasid: pasid, users: devUsers)
    }

    /// Adds `tag` or, if it exists, one user to it; returns its users now.
    private func assignCacheTag(_ tag: CacheTag) -> Int {
        let key = CacheTagKey(tag.kind, unit: tag.unit, did: tag.did, pasid: tag.pasid, info: tag.info)
        var updated = tag
        if let existing = cacheTags[key] { updated.users = existing.users + 1 }
        cacheTags[key] = updated
        return updated.users
    }

    /// `cache_tag_unassign_domain`.
    func unassignCacheTags(unit: IntelIOMMU, did: UInt16, pasid: UInt32, info: VTdDeviceInfo) {
        for kind in [CacheTag.Kind.iotlb, .devTLB] {
            let key = CacheTagKey(kind, unit: unit, did: did, pasid: pasid, info: info)
            guard var tag = cacheTags[key] else { continue }
            traceTag("cache_tag_unassign", unit: unit, info: info, devTLB: kind == .devTLB, did: did, pasid: pasid,
                     users: tag.users)
            tag.users -= 1
            cacheTags[key] = tag.users == 0 ? nil : tag
        }
    }

    /// Records `intel_iommu:cache_tag_assign` or `cache_tag_unassign` for the tag of
    /// (`unit`, `did`, `pasid`) that the attachment of `info` takes or drops.
    private func traceTag(_ event: String, unit: IntelIOMMU, info: VTdDeviceInfo, devTLB: Bool, did: UInt16,
                          pasid: UInt32, users: Int) {
        unit.events?.record(.cacheTag(event, iommu: unit.name, device: info.rid, devTLB: devTLB, did: did,
                                      pasid: pasid, users: users))
    }

    /// Whether translations of this domain are cached as second-stage entries.
    var flushesAsSecondStage: Bool { entryKind == .secondStage || entryKind == .nested }

    /// `cache_tag_flush_range(domain, start, end, ih)` (`end` inclusive) or, with `all`,
    /// `cache_tag_flush_all`: IOTLB descriptors for every IOTLB tag, then device-TLB
    /// descriptors for every device-TLB tag, submitted per unit.
    func flushRange(start: IOVA, end: IOVA, all: Bool) {
        // Runs on every unmap (and map in caching mode): one pass over the tags per unit
        // the domain is attached to (units in the order of their first tag), each unit's
        // batch built in one reused buffer.
        let firstPage = start.rawValue >> 12
        let lastPage = end.rawValue >> 12
        let size = all ? UInt64.max : (lastPage - firstPage + 1) << 12
        let address = IOVA(rawValue: all ? 0 : firstPage << 12)
        let secondStage = flushesAsSecondStage
        var batch = flushBuffer
        flushBuffer = []
        forEachTaggedUnit { unit in
            batch.removeAll(keepingCapacity: true)
            var devTLBTags = false
            for tag in cacheTags where tag.unit === unit {
                guard tag.kind == .iotlb else {
                    devTLBTags = true
                    continue
                }
                batch.append(secondStage
                    ? Self.secondStageFlush(unit.caps, did: tag.did, first: firstPage, last: lastPage, all: all)
                    : .piotlb(did: tag.did, pasid: tag.pasid, address: address,
                              npages: all ? .max : lastPage - firstPage + 1, ih: false))
            }
            if devTLBTags && unit.vtd.translationEnabled {
                for tag in cacheTags where tag.kind == .devTLB && tag.unit === unit {
                    guard let info = tag.info, let dev = info.dev, dev.isPresent else { continue }
                    batch.append(tag.pasid == IntelIOMMU.ridPasid
                        ? .devTLB(rid: info.rid, address: address, size: size)
                        : .devTLBPasid(rid: info.rid, pasid: PASID(rawValue: tag.pasid), address: address, size: size))
                }
            }
            unit.submit(batch)
        }
        batch.removeAll(keepingCapacity: true)
        flushBuffer = batch
    }

    /// Calls `body` once for each unit some cache tag names, in the order of each unit's
    /// first tag. Allocation-free for the usual domain, whose tags all name one unit.
    func forEachTaggedUnit(_ body: (IntelIOMMU) -> Void) {
        var tags = cacheTags.makeIterator()
        guard let first = tags.next() else { return }
        body(first.unit)
        var other: CacheTag?
        while let tag = tags.next() {
            if tag.unit !== first.unit {
                other = tag
                break
            }
        }
        guard let other else { return }
        var done = [ObjectIdentifier(first.unit), ObjectIdentifier(other.unit)]
        body(other.unit)
        while let tag = tags.next() {
            if done.contains(ObjectIdentifier(tag.unit)) { continue }
            done.append(ObjectIdentifier(tag.unit))
            body(tag.unit)
        }
    }

    /// Page-selective invalidation covering pages [first, last] with a naturally aligned
    /// power-of-two block, or domain-selective when the unit lacks PSI or the mask is
    /// larger than `cap_max_amask_val`.
    static func secondStageFlush(_ caps: VTdCapabilities, did: UInt16, first: UInt64, last: UInt64, all: Bool) -> VTdDescriptor {
        guard !all, caps.pageSelectiveInvalidation else { return .iotlbDomain(did: did) }
        var mask = 0
        while mask < 52 && (first & ~((UInt64(1) << UInt64(mask)) - 1)) + (UInt64(1) << UInt64(mask)) - 1 < last { mask += 1 }
        guard mask <= caps.maxAddressMask else { return .iotlbDomain(did: did) }
        return .iotlbPage(did: did, address: IOVA(rawValue: (first & ~((UInt64(1) << UInt64(mask)) - 1)) << 12), mask: mask,
                         ih: false)
    }
}
