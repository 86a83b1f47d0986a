/// The device side of ATS: the ATC caches translations the IOMMU returned, at 4 KiB
/// granularity (the smallest translation unit), and serves later requests without asking
/// the IOMMU until a device-TLB invalidation removes them. That is why a missing devTLB
/// invalidation is visible in the model exactly as on hardware.
extension PCIDevice {
    /// The ATC tag: PASID (or none), privilege and the access kind of the request that
    /// filled the entry, so a read translation never serves a write.
    @inline(__always)
    static func atcTag(pasid: PASID?, privileged: Bool, access: DMAAccess) -> UInt64 {
        UInt64(pasid?.rawValue ?? 0) | (pasid == nil ? 0 : 1 << 20) | (privileged ? 1 << 21 : 0) | UInt64(access.rawValue) << 22
    }

    @inline(__always)
    func atcLookup(_ r: TranslationRequest) -> TranslationResult? {
        guard let atc else { return nil }
        let tag = Self.atcTag(pasid: r.pasid, privileged: r.privileged, access: r.access)
        guard let entry = atc.lookup(tag: tag, iova: r.address) else { return nil }
        return .translated(address: entry.translate(r.address), length: 4096 - r.address.offset(within: 4096), cached: true)
    }

    @inline(__always)
    func atcFill(_ r: TranslationRequest, _ result: TranslationResult) {
        guard let atc, case .translated(let pa, _, _) = result else { return }
        let tag = Self.atcTag(pasid: r.pasid, privileged: r.privileged, access: r.access)
        atc.insert(tag: tag, iova: r.address.alignedDown(to: 4096), pageSize: 4096, pa: pa.alignedDown(to: 4096),
                   perms: [.read, .write])
    }

    /// Executes a device-TLB invalidation at the device: drops ATC entries for requests
    /// without PASID (`pasid` nil) or with `pasid`, over [`address`, `address + size`).
    /// The IOMMU's hardware model calls this for devTLB and PASID-based devTLB
    /// descriptors. Caller holds the unit's hardware lock.
    public func invalidateATC(pasid: PASID?, address: IOVA, size: UInt64) {
        guard let atc else { return }
        for priv in [false, true] {
            for access in UInt8(0)...7 {
                atc.invalidate(tag: Self.atcTag(pasid: pasid, privileged: priv, access: DMAAccess(rawValue: access)),
                               iova: address, size: size)
            }
        }
    }

    /// Drops every ATC entry (a global devTLB invalidation). Caller holds the hardware lock.
    public func invalidateATCAll() { atc?.invalidateAll() }
}
