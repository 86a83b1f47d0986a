import IOMMUCore

/// `struct arm_smmu_tlbi`: one invalidation request of a domain, and the command shapes
/// computed for it.
struct SMMUv3TLBI {
    var iova: UInt64
    var size: UInt64
    var granule: UInt64
    var leafOnly: Bool
    /// `single.use_full_inv` / `single.num`: per-granule commands, or a full one.
    var singleFull = false
    var singleCount = 0
    /// `range.use_full_inv` / `data0` / `data1`: one range command, or a full one.
    var rangeFull = false
    var rangeNum: UInt64 = 0
    var rangeScale: UInt64 = 0
    var rangeTTL: UInt64 = 0

    /// The longest run of single commands before a full invalidation is cheaper
    /// (`arm_smmu_tlbi_calc_single`; like arm64's `MAX_DVM_OPS` for 4K pages).
    static let maxSingleCommands = 512
}

/// `arm_smmu_atc_inv_master`: ATC_INV of the whole address space for `ssid` (0: without
/// SSV, the whole ATC) on every StreamID of the master, then CMD_SYNC.
func atcInvalidateMaster(_ master: SMMUv3Master, ssid: UInt32) {
    master.unit.issue(master.streams.map { .atcInvalidateAll(sid: $0, ssid: ssid) }, sync: true)
}

extension SMMUv3Domain {
    /// `arm_smmu_domain_tlbi` for [`iova`, `iova + size`) with leaves of `granule`: every
    /// target of the invalidation array, TLB invalidations before ATC invalidations.
    /// Driver lock held.
    func invalidateRange(iova: IOVA, size: UInt64, granule: UInt64, leafOnly: Bool) {
        var t = SMMUv3TLBI(iova: iova.rawValue, size: size, granule: max(granule, 1), leafOnly: leafOnly)
        calcSingle(&t)
        if invs.hasRangeInvalidation { calcRange(&t) } else { t.rangeFull = true }
        issue(t)
    }

    /// `arm_smmu_domain_inv`: every translation of the domain, on every target.
    func invalidateAll() {
        var t = SMMUv3TLBI(iova: 0, size: .max, granule: 1 << UInt64(granuleShift), leafOnly: false)
        t.singleFull = true
        t.rangeFull = true
        issue(t)
    }

    /// `arm_smmu_tlbi_calc_single`.
    private func calcSingle(_ t: inout SMMUv3TLBI) {
        let ops = t.size / t.granule
        if ops == 0 || ops > UInt64(SMMUv3TLBI.maxSingleCommands) {
            t.singleFull = true
        } else {
            t.singleCount = Int(ops)
        }
    }

    /// `arm_smmu_tlbi_calc_range`: the smallest SCALE whose 32 units cover the range in
    /// granules; a single granule uses NUM=0 SCALE=0 with a TTL hint.
    private func calcRange(_ t: inout SMMUv3TLBI) {
        let tg = UInt64(granuleShift)
        let first = t.iova >> tg
        let last = (t.iova &+ (t.size - 1)) >> tg
        let count = last - first + 1
        var ttl: UInt64 = 0
        if t.leafOnly {
            let levelBits = tg - 3
            let granuleBits = UInt64(t.granule.trailingZeroBitCount)
            ttl = granuleBits >= 3 ? 4 - (granuleBits - 3) / levelBits : 0
        }
        if count == 1 {
            t.rangeNum = 0
            t.rangeScale = 0
            t.rangeTTL = ttl == 0 ? 3 : ttl
            return
        }
        let scale = UInt64(64 - ((count - 1) / 32).leadingZeroBitCount)
        if scale > 31 {
            t.rangeFull = true
            return
        }
        if tg == 14 && ttl == 1 { ttl = 0 }
        if ttl != 0 {
            // The address must be aligned to the TTL level's size (Arm SMMUv3 architecture (IHI 0070), section 4.4.1).
            let pageBits = (tg - 3) * (3 - min(ttl, 3)) + tg
            if (first << tg) & ((1 << pageBits) - 1) != 0 { ttl = 0 }
        }
        t.rangeNum = (count + (1 << scale) - 1) / (1 << scale) - 1
        t.rangeScale = scale
        t.rangeTTL = ttl
    }

    /// `arm_smmu_domain_tlbi_inv`: walks the live targets in order, batching commands and
    /// syncing when the SMMU changes, before a nesting parent's stage-1 clear, and between
    /// TLB and ATC invalidations.
    private func issue(_ t: SMMUv3TLBI) {
        let targets = invs.targets
        var batch: [SMMUv3Command] = []
        var usedS12VMAll = false
        let units = smmuDriver.units
        for (i, inv) in targets.enumerated() {
            let unit = units[inv.unit]
            switch inv.type {
            case .s1ASID:
                add(inv, .tlbi(inv.sizeOpcode, asid: UInt16(truncatingIfNeeded: inv.id), vmid: 0), t, unit, &batch)
            case .s2VMID:
                usedS12VMAll = add(inv, .tlbi(inv.sizeOpcode, asid: 0, vmid: UInt16(truncatingIfNeeded: inv.id)), t, unit,
                                   &batch)
            case .s2VMIDS1Clear:
                // TLBI_S12_VMALL already cleared the stage-1 entries.
                if !usedS12VMAll { batch.append(.tlbi(.tlbiNHAll, asid: 0, vmid: UInt16(truncatingIfNeeded: inv.id))) }
            case .ats:
                batch.append(atcCommand(sid: inv.id, ssid: inv.ssid, t))
            case .atsFull:
                batch.append(.atcInvalidateAll(sid: inv.id, ssid: 0))
            }
            let next = i + 1 < targets.count ? targets[i + 1] : nil
            if !batch.isEmpty && (next == nil || Self.endsBatch(inv, next!)) {
                unit.issue(batch, sync: true)
                batch.removeAll()
            }
        }
    }

    /// `arm_smmu_invs_end_batch`.
    private static func endsBatch(_ cur: SMMUv3Inv, _ next: SMMUv3Inv) -> Bool {
        if cur.unit != next.unit { return true }
        if cur.type != .s2VMIDS1Clear && next.type == .s2VMIDS1Clear { return true }
        return !cur.type.isATS && next.type.isATS
    }

    /// `arm_smmu_inv_to_cmdq_batch`: the TLBI commands of one target. Returns whether it
    /// fell back to a full invalidation.
    @discardableResult
    private func add(_ inv: SMMUv3Inv, _ base: SMMUv3Command, _ t: SMMUv3TLBI, _ unit: ArmSMMUv3,
                     _ batch: inout [SMMUv3Command]) -> Bool {
        var full = base
        full.w0 = (full.w0 & ~0xFF) | UInt64(inv.nsizeOpcode.rawValue)
        if unit.features.contains(.rangeInvalidation) {
            if t.rangeFull {
                batch.append(full)
                return true
            }
            guard let op = base.opcode else { return false }
            batch.append(.tlbiRange(op, asid: base.asid, vmid: base.vmid, address: (t.iova >> UInt64(granuleShift)) << UInt64(granuleShift),
                                    granuleShift: granuleShift, num: t.rangeNum, scale: t.rangeScale, leaf: t.leafOnly,
                                    ttl: t.rangeTTL))
            return false
        }
        if t.singleFull {
            batch.append(full)
            return true
        }
        var iova = t.iova
        for _ in 0..<t.singleCount {
            var c = base
            c.w1 = (t.leafOnly ? 1 : 0) | (iova & ~0xFFF)
            batch.append(c)
            iova &+= t.granule
        }
        return false
    }

    /// `arm_smmu_atc_inv_to_cmd`: the smallest naturally aligned power-of-two span of 4 KiB
    /// pages covering the range (ATS invalidation ranges must be aligned to their size).
    private func atcCommand(sid: UInt32, ssid: UInt32, _ t: SMMUv3TLBI) -> SMMUv3Command {
        if t.singleFull && t.rangeFull && t.size == .max { return .atcInvalidateAll(sid: sid, ssid: ssid) }
        let first = t.iova >> 12
        let last = (t.iova &+ (t.size - 1)) >> 12
        let span = UInt64(64 - (first ^ last).leadingZeroBitCount)
        let start = first & ~((1 << span) - 1)
        return .atcInvalidate(sid: sid, ssid: ssid, address: start << 12, size: span)
    }
}
