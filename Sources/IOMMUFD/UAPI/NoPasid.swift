import IOMMUCore

// The uAPI's spelling of "no PASID": a `pasid` field of 0 (`IOMMU_NO_PASID`). The Swift
// API spells it nil; these two convert at the byte-image boundary, and nowhere else.
extension PASID {
    /// The PASID a uAPI `pasid` field names, nil for `IOMMU_NO_PASID` (0): the RID.
    @inlinable
    package static func uapi(_ raw: UInt32) -> PASID? { raw == 0 ? nil : PASID(rawValue: raw) }
}

extension Optional where Wrapped == PASID {
    /// The uAPI `pasid` field for this PASID: `IOMMU_NO_PASID` (0) for nil.
    @inlinable
    package var uapiValue: UInt32 { self?.rawValue ?? 0 }
}
