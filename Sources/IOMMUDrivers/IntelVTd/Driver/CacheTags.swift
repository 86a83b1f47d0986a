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

extension VTdDomain {
    /// `cache_tag_assign_domain`: tags for an attachment at (`info`, `pasid`) with `did`.
    func assignCacheTags(unit: IntelIOMMU, did: UInt16, pasid: UInt32, info: VTdDeviceInfo) {
        let i = cacheTags.firstIndex { $0.kind == .iotlb && $0.unit === unit && $0.did == did && $0.pasid == pasid }
        if let i { cacheTags[i].users += 1 } else {
            cacheTags.append(CacheTag(kind: .iotlb, unit: unit, did: did, pasid: pasid, info: nil, users: 1))
        }
        traceTag("cache_tag_assign", unit: unit, info: info, devTLB: false, did: did, pasid: pasid,
                 users: i.map { cacheTags[$0].users } ?? 1)
        guard info.dev?.atsEnabled == true else { return }
        let j = cacheTags.firstIndex { $0.kind == .devTLB && $0.info === info && $0.did == did && $0.pasid == pasid }
        if let j { cacheTags[j].users += 1 } else {
            cacheTags.append(CacheTag(kind: .devTLB, unit: unit, did: did, pasid: pasid, info: info, users: 1))
        }
        traceTag("cache_tag_assign", unit: unit, info: info, devTLB: true, did: did, pasid: pasid,
                 users: j.map { cacheTags[$0].users } ?? 1)
    }

    /// `cache_tag_unassign_domain`.
    func unassignCacheTags(unit: IntelIOMMU, did: UInt16, pasid: UInt32, info: VTdDeviceInfo) {
        for kind in [CacheTag.Kind.iotlb, .devTLB] {
            guard let i = cacheTags.firstIndex(where: {
                $0.kind == kind && $0.unit === unit && $0.did == did && $0.pasid == pasid && (kind == .iotlb || $0.info === info)
            }) else { continue }
            traceTag("cache_tag_unassign", unit: unit, info: info, devTLB: kind == .devTLB, did: did, pasid: pasid,
                     users: cacheTags[i].users)
            cacheTags[i].users -= 1
            if cacheTags[i].users == 0 { cacheTags.remove(at: i) }
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
        // Runs on every unmap (and map in caching mode): units are visited in the order
        // of their first tag by index scans over the (few) tags, and each unit's batch is
        // built in one reused buffer, instead of per-unit arrays on every call.
        let firstPage = start.rawValue >> 12
        let lastPage = end.rawValue >> 12
        let size = all ? UInt64.max : (lastPage - firstPage + 1) << 12
        let address = IOVA(rawValue: all ? 0 : firstPage << 12)
        let secondStage = flushesAsSecondStage
        let tags = cacheTags
        var batch = flushBuffer
        flushBuffer = []
        for t in tags.indices {
            let unit = tags[t].unit
            if tags[..<t].contains(where: { $0.unit === unit }) { continue }
            batch.removeAll(keepingCapacity: true)
            for tag in tags[t...] where tag.kind == .iotlb && tag.unit === unit {
                batch.append(secondStage
                    ? Self.secondStageFlush(unit.caps, did: tag.did, first: firstPage, last: lastPage, all: all)
                    : .piotlb(did: tag.did, pasid: tag.pasid, address: address,
                              npages: all ? .max : lastPage - firstPage + 1, ih: false))
            }
            if tags[t...].contains(where: { $0.kind == .devTLB }) {
                let enabled = unit.vtd.translationEnabled
                for tag in tags[t...] where tag.kind == .devTLB && tag.unit === unit {
                    guard let info = tag.info, let dev = info.dev, dev.isPresent, enabled else { continue }
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
