/// Readable text for the values a person prints while exploring the model
/// (`print(machine.counters)`); tools read the same values as fields
/// (``Counters/dictionary``).
extension Counters: CustomStringConvertible {
    /// Several lines: DMA, translation, core calls, and invalidations by kind.
    ///
    ///     dma: 7 requests, 138 bytes, 2 faults, 1 ATC hit
    ///     translation: 6 requests, 5 walks, 1 IOTLB hit, 5 IOTLB misses, 1 fault
    ///     core: 1 map, 1 unmap, 3 attaches
    ///     invalidations: devtlb 1, devtlb-pasid 2, pasid-cache 1, piotlb 3, wait 1
    public var description: String {
        [
            "dma: " + [count(dmaRequests, "request"), count(dmaBytes, "byte"), count(dmaFaults, "fault"),
                       count(atcHits, "ATC hit")].joined(separator: ", "),
            "translation: " + hardware.summary,
            "core: " + [count(maps, "map"), count(unmaps, "unmap"), count(attaches, "attach", plural: "attaches")]
                .joined(separator: ", "),
            "invalidations: " + hardware.invalidationSummary,
        ].joined(separator: "\n")
    }
}

extension HardwareCounters: CustomStringConvertible {
    /// `6 requests, 5 walks, 1 IOTLB hit, 5 IOTLB misses, 1 fault; invalidations: ...`.
    public var description: String { summary + "; invalidations: " + invalidationSummary }

    var summary: String {
        [count(translations, "request"), count(walks, "walk"), count(iotlbHits, "IOTLB hit"),
         count(iotlbMisses, "IOTLB miss", plural: "IOTLB misses"), count(faults, "fault")].joined(separator: ", ")
    }

    var invalidationSummary: String {
        invalidations.isEmpty ? "none"
            : invalidations.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }
}

extension IOMMUDomain: CustomDebugStringConvertible {
    /// `DMA#3: type 0x3, page sizes 4K 2M 1G, owner intel-iommu`, plus the process of
    /// an SVA domain and whether it was freed.
    public var debugDescription: String {
        var parts = ["\(self): type 0x\(String(type.rawValue, radix: 16))"]
        if type.isPaging { parts.append("page sizes " + Self.pageSizes(pgsizeBitmap)) }
        parts.append("owner \(owner.name)")
        if let mm { parts.append("mm of pid \(mm.pid), \(users) user(s)") }
        if isFreed { parts.append("freed") }
        return parts.joined(separator: ", ")
    }

    static func pageSizes(_ bitmap: UInt64) -> String {
        let sizes = (0..<64).filter { bitmap & (1 << UInt64($0)) != 0 }.map { shift -> String in
            switch shift {
            case 30...: "\(1 << (shift - 30))G"
            case 20...: "\(1 << (shift - 20))M"
            case 10...: "\(1 << (shift - 10))K"
            default: "\(1 << shift)"
            }
        }
        return sizes.isEmpty ? "none" : sizes.joined(separator: " ")
    }
}

private func count(_ n: Int, _ singular: String, plural: String? = nil) -> String {
    "\(n) " + (n == 1 ? singular : plural ?? singular + "s")
}

extension Violation: Encodable {
    private enum CodingKeys: String, CodingKey { case invariant, name, device, pasid, address, event, message }

    /// The violation as fields: `invariant` (the label, `"I4"`), `name` (`"stale
    /// translation after unmap"`), `device` (`"00:03.0"`), `pasid`, `address` (numbers),
    /// `event` and `message`; absent parts are left out.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(invariant.rawValue, forKey: .invariant)
        try c.encode(invariant.name, forKey: .name)
        try c.encodeIfPresent(device.map { "\($0)" }, forKey: .device)
        try c.encodeIfPresent(pasid?.rawValue, forKey: .pasid)
        try c.encodeIfPresent(address?.rawValue, forKey: .address)
        try c.encode(event, forKey: .event)
        try c.encode(message, forKey: .message)
    }
}
