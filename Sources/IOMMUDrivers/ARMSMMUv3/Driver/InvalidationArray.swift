import IOMMUCore

/// `enum arm_smmu_inv_type`: what one invalidation target flushes. The order is the order
/// the commands are issued in: TLB invalidations before ATC invalidations.
public enum SMMUv3InvType: UInt8, Hashable, Sendable, Comparable, CustomStringConvertible {
    /// `INV_TYPE_S1_ASID`: stage-1 TLB entries of an ASID (`TLBI_NH_VA` / `TLBI_NH_ASID`).
    case s1ASID = 0
    /// `INV_TYPE_S2_VMID`: stage-2 TLB entries of a VMID (`TLBI_S2_IPA` / `TLBI_S12_VMALL`).
    case s2VMID
    /// `INV_TYPE_S2_VMID_S1_CLEAR`: every stage-1 entry of a nesting parent's VMID
    /// (`TLBI_NH_ALL`), since a guest's combined entries depend on the stage 2.
    case s2VMIDS1Clear
    /// `INV_TYPE_ATS`: a device's ATC for one SubstreamID (`ATC_INV`).
    case ats
    /// `INV_TYPE_ATS_FULL`: a device's whole ATC (a nesting parent changed).
    case atsFull

    /// Orders by the raw value.
    public static func < (l: SMMUv3InvType, r: SMMUv3InvType) -> Bool { l.rawValue < r.rawValue }

    /// Whether it targets a device's ATC.
    public var isATS: Bool { self == .ats || self == .atsFull }

    /// `s1-asid`, `s2-vmid`, `s2-vmid-s1-clear`, `ats`, `ats-full`.
    public var description: String {
        switch self {
        case .s1ASID: "s1-asid"
        case .s2VMID: "s2-vmid"
        case .s2VMIDS1Clear: "s2-vmid-s1-clear"
        case .ats: "ats"
        case .atsFull: "ats-full"
        }
    }
}

/// One invalidation target of a domain (`struct arm_smmu_inv`): which SMMU, what kind,
/// the ASID, VMID or StreamID, the SubstreamID of an ATS target, the opcodes, and how many
/// attachments share it (`users`; 0 marks a "trash" entry waiting to be purged).
public struct SMMUv3Inv: Hashable, Sendable, CustomStringConvertible {
    /// The SMMU's position among its driver's units: the sort key the kernel takes from
    /// the `arm_smmu_device` pointer.
    public var unit: Int
    /// The target kind.
    public var type: SMMUv3InvType
    /// The opcode of a ranged invalidation.
    public var sizeOpcode: SMMUv3Command.Opcode
    /// The opcode of a full invalidation.
    public var nsizeOpcode: SMMUv3Command.Opcode
    /// ASID, VMID or StreamID.
    public var id: UInt32
    /// The SubstreamID of an ATS target (0 otherwise).
    public var ssid: UInt32
    /// Attachments using the target.
    public var users: Int

    /// A target with one user and the opcodes of its type (`arm_smmu_master_build_inv`).
    public init(unit: Int, type: SMMUv3InvType, id: UInt32, ssid: UInt32 = 0) {
        self.unit = unit
        self.type = type
        self.id = id
        self.ssid = type.isATS ? ssid : 0
        users = 1
        switch type {
        case .s1ASID:
            sizeOpcode = .tlbiNHVA
            nsizeOpcode = .tlbiNHASID
        case .s2VMID:
            sizeOpcode = .tlbiS2IPA
            nsizeOpcode = .tlbiS12VMAll
        case .s2VMIDS1Clear:
            sizeOpcode = .tlbiNHAll
            nsizeOpcode = .tlbiNHAll
        case .ats, .atsFull:
            sizeOpcode = .atcInvalidate
            nsizeOpcode = .atcInvalidate
        }
    }

    /// `arm_smmu_inv_cmp`: SMMU, then type, then id, then (ATS only) SubstreamID.
    static func compare(_ l: SMMUv3Inv, _ r: SMMUv3Inv) -> Int {
        if l.unit != r.unit { return l.unit < r.unit ? -1 : 1 }
        if l.type != r.type { return l.type < r.type ? -1 : 1 }
        if l.id != r.id { return l.id < r.id ? -1 : 1 }
        if l.type.isATS && l.ssid != r.ssid { return l.ssid < r.ssid ? -1 : 1 }
        return 0
    }

    /// `s1-asid 5 x2`, `ats 0x8/3 x1`.
    public var description: String {
        "\(type) \(type.isATS ? "0x" + String(id, radix: 16) + "/\(ssid)" : "\(id)") x\(users)"
    }
}

/// A domain's invalidation array (`struct arm_smmu_invs`): the sorted targets every
/// invalidation of the domain reaches. The kernel replaces it under RCU when an attach
/// changes it (`arm_smmu_invs_merge`, `_unref`, `_purge`); the model keeps the same
/// algebra, including "trash" entries (users 0) left in place until a purge, and trailing
/// trash trimmed from the count.
public struct SMMUv3Invs: Hashable, Sendable, CustomStringConvertible {
    /// The entries; only the first ``count`` are live (trailing trash is kept beyond).
    public private(set) var entries: [SMMUv3Inv]
    /// `num_invs`: entries in use, trash in between included.
    public private(set) var count: Int
    /// `num_trashes`: entries within ``count`` with no users.
    public private(set) var trashCount: Int
    /// `has_ats`: an ATS target was added.
    public private(set) var hasATS: Bool
    /// `has_range_inv`: a target's SMMU supports range invalidation.
    public private(set) var hasRangeInvalidation: Bool

    /// An empty array (`arm_smmu_invs_alloc(0)`).
    public init() {
        entries = []
        count = 0
        trashCount = 0
        hasATS = false
        hasRangeInvalidation = false
    }

    /// An array of `entries` as given (a `to_merge` or `to_unref` list), which must be
    /// sorted.
    public init(_ entries: [SMMUv3Inv], rangeInvalidation: Bool = false) {
        self.entries = entries
        count = entries.count
        trashCount = 0
        hasATS = entries.contains { $0.type.isATS }
        hasRangeInvalidation = rangeInvalidation && !entries.isEmpty
    }

    /// The live entries with users, in issue order.
    public var targets: [SMMUv3Inv] { entries.prefix(count).filter { $0.users > 0 } }

    /// Whether no entry has users.
    public var isEmpty: Bool { targets.isEmpty }

    /// `arm_smmu_invs_merge(invs, to_merge)`: a new sorted array with every live entry of
    /// `self` and of `other`; an entry in both gains a user, trash is dropped.
    public func merging(_ other: SMMUv3Invs) -> SMMUv3Invs {
        var out = SMMUv3Invs()
        out.hasRangeInvalidation = hasRangeInvalidation || other.hasRangeInvalidation
        var i = 0
        var j = 0
        let live = entries.prefix(count).filter { $0.users > 0 }
        let add = Array(other.entries.prefix(other.count))
        while i < live.count || j < add.count {
            let cmp = i == live.count ? 1 : j == add.count ? -1 : SMMUv3Inv.compare(live[i], add[j])
            if cmp < 0 {
                out.entries.append(live[i])
                i += 1
            } else if cmp == 0 {
                var e = live[i]
                e.users += 1
                out.entries.append(e)
                i += 1
                j += 1
            } else {
                var e = add[j]
                e.users = 1
                out.entries.append(e)
                j += 1
            }
            if out.entries.last!.type.isATS { out.hasATS = true }
        }
        out.count = out.entries.count
        return out
    }

    /// `arm_smmu_invs_unref(invs, to_unref)`: drops one user from every entry of `other`
    /// in place. An entry left without users becomes trash, and `other`'s copy is marked
    /// with users 0 so the caller knows; trailing trash leaves the count. An entry of
    /// `other` that is not here is a driver bug the kernel WARNs about; it is skipped.
    /// - Returns: the descriptions of the entries of `other` that were not found.
    @discardableResult
    public mutating func unref(_ other: inout SMMUv3Invs) -> [String] {
        var missing: [String] = []
        var lastLive = 0
        var i = 0
        var j = 0
        while i < count || j < other.count {
            // Skip trash on the left, as the kernel's iterator does.
            while i < count && entries[i].users == 0 { i += 1 }
            let cmp = i >= count ? 1 : j >= other.count ? -1 : SMMUv3Inv.compare(entries[i], other.entries[j])
            if i >= count && j >= other.count { break }
            if cmp < 0 {
                lastLive = i + 1
                i += 1
            } else if cmp == 0 {
                entries[i].users -= 1
                if entries[i].users > 0 {
                    other.entries[j].users = 1
                    lastLive = i + 1
                } else {
                    other.entries[j].users = 0
                    trashCount += 1
                }
                i += 1
                j += 1
            } else {
                missing.append(other.entries[j].description)
                j += 1
            }
        }
        // Trailing trash leaves the array.
        trashCount -= count - lastLive
        count = lastLive
        return missing
    }

    /// `arm_smmu_invs_purge`: a compacted copy without trash, or nil when there is none
    /// to purge (or nothing at all).
    public func purged() -> SMMUv3Invs? {
        guard count > 0, trashCount > 0 else { return nil }
        var out = SMMUv3Invs()
        out.hasRangeInvalidation = hasRangeInvalidation
        out.entries = entries.prefix(count).filter { $0.users > 0 }
        out.count = out.entries.count
        out.hasATS = out.entries.contains { $0.type.isATS }
        return out
    }

    /// `[s1-asid 5 x1, ats 0x8/0 x1]`.
    public var description: String { "[" + entries.prefix(count).map(\.description).joined(separator: ", ") + "]" }
}
