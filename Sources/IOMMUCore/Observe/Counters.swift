/// A snapshot of the machine's always-on counters: the hardware units' counters summed,
/// plus the core's own.
public struct Counters: Hashable, Sendable {
    /// Sum of every IOMMU unit's hardware counters.
    public var hardware = HardwareCounters()
    /// DMA requests issued by devices.
    public var dmaRequests = 0
    /// Bytes moved by DMA.
    public var dmaBytes = 0
    /// DMA requests that faulted.
    public var dmaFaults = 0
    /// Successful `iommu_map` calls.
    public var maps = 0
    /// `iommu_unmap`/`iommu_unmap_fast` calls.
    public var unmaps = 0
    /// RID and PASID attach operations that succeeded.
    public var attaches = 0
    /// Device ATC hits (ATS).
    public var atcHits = 0
    /// Creates zeroed counters.
    public init() {}

    /// The counters as a flat JSON-ready dictionary.
    public var dictionary: [String: Int] {
        var d: [String: Int] = [
            "translations": hardware.translations, "walks": hardware.walks,
            "iotlb_hits": hardware.iotlbHits, "iotlb_misses": hardware.iotlbMisses,
            "faults": hardware.faults, "dma_requests": dmaRequests, "dma_bytes": dmaBytes,
            "dma_faults": dmaFaults, "maps": maps, "unmaps": unmaps, "attaches": attaches,
            "atc_hits": atcHits,
        ]
        for (k, v) in hardware.invalidations { d["inv_" + k] = v }
        return d
    }
}
