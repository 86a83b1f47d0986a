import IOMMUCore

/// Which kind of entry the hitless writer updates, and so which bits the SMMU reads in
/// it (`struct arm_smmu_entry_writer_ops`: `get_used` and `get_update_safe`).
public enum SMMUv3EntryKind: Hashable, Sendable, CustomStringConvertible {
    /// A stream table entry (`arm_smmu_ste_writer_ops`).
    case ste
    /// A context descriptor (`arm_smmu_cd_writer_ops`).
    case cd

    /// `arm_smmu_get_ste_used` / `arm_smmu_get_cd_used`: the bits the SMMU reads in
    /// `entry`, given the configuration `entry` itself selects. A bit outside them may
    /// change at any time without the SMMU noticing.
    public func usedBits(_ entry: SMMUv3Words) -> SMMUv3Words {
        switch self {
        case .ste: Self.steUsedBits(entry)
        case .cd: Self.cdUsedBits(entry)
        }
    }

    /// `arm_smmu_get_ste_update_safe`: bits that may change while in use without
    /// sequencing, for an update from `current` to `target`. STE only:
    /// - EATS between ABT and TRANS, because the attach sequence has PCI ATS disabled
    ///   whenever that changes; not when either side uses S1CHK or S2S, since a
    ///   transient EATS=1 with S2S=1 is an illegal STE (and EATS 0b11 is an errant 0b00);
    /// - MEV, which only merges fault records.
    /// A CD has no such bits.
    public func updateSafeBits(current: SMMUv3Words, target: SMMUv3Words) -> SMMUv3Words {
        guard self == .ste else { return SMMUv3Words() }
        var safe = SMMUv3Words()
        let s1chk = SMMUv3STE.EATS.stage1Check.rawValue << 28
        let trans = SMMUv3STE.EATS.translate.rawValue << 28
        if (current[1] | target[1]) & s1chk == 0 && (current[2] | target[2]) & SMMUv3STE.s2s == 0 {
            safe[1] |= trans
        }
        safe[1] |= SMMUv3STE.mev
        return safe
    }

    /// `ste` or `cd`.
    public var description: String { self == .ste ? "ste" : "cd" }

    private static func steUsedBits(_ e: SMMUv3Words) -> SMMUv3Words {
        var used = SMMUv3Words()
        used[0] = SMMUv3STE.valid
        guard e[0] & SMMUv3STE.valid != 0 else { return used }
        used[0] |= SMMUv3STE.configMask
        let config = (e[0] & SMMUv3STE.configMask) >> 1
        // Config bit 0: stage 1 translates (S1_TRANS, NESTED).
        if config & 1 != 0 {
            used[0] |= SMMUv3STE.s1FmtMask | SMMUv3STE.s1ContextPtrMask | SMMUv3STE.s1CDMaxMask
            used[1] |= SMMUv3STE.s1dssMask | SMMUv3STE.s1cirMask | SMMUv3STE.s1corMask | SMMUv3STE.s1cshMask
                | SMMUv3STE.s1stalld | SMMUv3STE.strwMask | SMMUv3STE.eatsMask | SMMUv3STE.mev
            used[2] |= SMMUv3STE.s2vmidMask
            // SHCFG applies to the bypassed substream (Arm SMMUv3 architecture (IHI 0070), section 13.5).
            if e[1] & SMMUv3STE.s1dssMask == SMMUv3STE.S1DSS.bypass.rawValue { used[1] |= SMMUv3STE.shcfgMask }
        }
        // Config bit 1: stage 2 translates (S2_TRANS, NESTED).
        if config & 2 != 0 {
            used[1] |= SMMUv3STE.s2fwb | SMMUv3STE.eatsMask | SMMUv3STE.shcfgMask | SMMUv3STE.mev
            used[2] |= SMMUv3STE.s2vmidMask | SMMUv3STE.vtcrMask | SMMUv3STE.s2aa64 | SMMUv3STE.s2endi
                | SMMUv3STE.s2ptw | SMMUv3STE.s2s | SMMUv3STE.s2r
            used[3] |= SMMUv3STE.s2ttbMask
        }
        if config == SMMUv3STE.Config.bypass.rawValue { used[1] |= SMMUv3STE.shcfgMask }
        return used
    }

    private static func cdUsedBits(_ e: SMMUv3Words) -> SMMUv3Words {
        guard e[0] & SMMUv3CD.valid != 0 else {
            var used = SMMUv3Words()
            used[0] = SMMUv3CD.valid
            return used
        }
        var used = SMMUv3Words(repeating: .max)
        // With EPD0 the SMMU never walks TTB0, so the TTB0 fields are ignored.
        if e[0] & SMMUv3CD.epd0 != 0 {
            used[0] &= ~SMMUv3CD.ttb0ControlMask
            used[1] &= ~SMMUv3CD.ttb0Mask
        }
        return used
    }
}

/// How an entry update was carried out (`arm_smmu_write_entry`).
public enum SMMUv3EntryUpdate: Hashable, Sendable, CustomStringConvertible {
    /// No used bit needed a sequenced change: every word was written at once (at most
    /// one sync; none when nothing changed).
    case direct
    /// Exactly one word's used bits change: hitless. Unused bits first (sync), then the
    /// critical word with one 64-bit store (sync), then the bits the target no longer
    /// uses (sync). The SMMU sees the old or the new entry at every moment.
    case hitless(criticalWord: Int)
    /// Used bits change in two or more words: V=0 first (sync), words 1-7 (sync), then
    /// word 0 with V=1 (sync). In between, the stream or substream is invalid.
    case breaking

    /// `direct`, `hitless (critical word 1)` or `breaking`.
    public var description: String {
        switch self {
        case .direct: "direct"
        case .hitless(let w): "hitless (critical word \(w))"
        case .breaking: "breaking"
        }
    }
}

/// One step of an entry update: the words stored (each one 64-bit store), after which the
/// writer syncs (the caller issues CFGI and CMD_SYNC), and the entry as it then is.
public struct SMMUv3EntryWriteStep: Hashable, Sendable {
    /// The indices of the words this step stored, ascending.
    public let changedWords: [Int]
    /// The whole entry after the step.
    public let entry: SMMUv3Words
}

/// The hitless entry writer (`arm_smmu_write_entry`), shared by STEs and CDs.
///
/// The SMMU reads an entry with 64-bit single-copy atomicity only, while an entry is
/// eight words: rewriting it word by word could let the SMMU fetch a mix of old and new
/// configuration that is neither. So the writer first sets every word the current
/// configuration ignores to its target value, then counts the words whose *used* bits
/// still differ from the target: with none, one store per changed word; with exactly
/// one, that "critical" word flips the whole configuration in one 64-bit store; with
/// more, the entry must go through V=0. The caller syncs after every step that changed
/// something, so the SMMU's configuration cache never holds a torn entry.
public struct SMMUv3EntryWriter: Sendable {
    /// The kind of entry written.
    public let kind: SMMUv3EntryKind

    /// A writer for `kind`.
    public init(kind: SMMUv3EntryKind) { self.kind = kind }

    /// `arm_smmu_entry_qword_diff`: the words whose used bits must change after the bits
    /// `current` ignores are set to `target` (bit i = word i), and that intermediate
    /// entry.
    public func usedWordDiff(current: SMMUv3Words, target: SMMUv3Words) -> (diff: UInt8, unusedUpdate: SMMUv3Words) {
        var currentUsed = kind.usedBits(current)
        let targetUsed = kind.usedBits(target)
        // Safe bits count only where both configurations use them; elsewhere the unused
        // side sequences them.
        let safe = kind.updateSafeBits(current: current, target: target) & targetUsed & currentUsed
        currentUsed &= ~safe
        let unusedUpdate = (current & currentUsed) | (target & ~currentUsed)
        var diff: UInt8 = 0
        for i in 0..<8 where unusedUpdate[i] & targetUsed[i] != target[i] { diff |= 1 << UInt8(i) }
        return (diff, unusedUpdate)
    }

    /// The update `arm_smmu_write_entry` would do from `current` to `target`.
    public func classify(current: SMMUv3Words, target: SMMUv3Words) -> SMMUv3EntryUpdate {
        let diff = usedWordDiff(current: current, target: target).diff
        if diff.nonzeroBitCount == 1 { return .hitless(criticalWord: diff.trailingZeroBitCount) }
        return diff == 0 ? .direct : .breaking
    }

    /// `arm_smmu_write_entry`: moves an entry from `current` to `target`. `step` runs
    /// once per step that stored something: it must store the step's words (one 64-bit
    /// store each, in any order within the step) and then sync, so the SMMU sees the step
    /// before the next one starts.
    ///
    /// A target that sets a bit its own configuration does not use is a driver bug the
    /// kernel WARNs about; the model writes it anyway (it is ignored by the SMMU).
    /// - Returns: how the update was carried out.
    @discardableResult
    public func write(current: SMMUv3Words, target: SMMUv3Words,
                      step: (SMMUv3EntryWriteStep) -> Void) -> SMMUv3EntryUpdate {
        var entry = current
        let (diff, unusedUpdate) = usedWordDiff(current: current, target: target)
        // `entry_set`: store the words of `value` in [start, start + count) that differ.
        func set(_ value: SMMUv3Words, _ start: Int, _ count: Int) {
            var changed: [Int] = []
            for i in start..<(start + count) where entry[i] != value[i] {
                entry[i] = value[i]
                changed.append(i)
            }
            if !changed.isEmpty { step(SMMUv3EntryWriteStep(changedWords: changed, entry: entry)) }
        }
        if diff.nonzeroBitCount == 1 {
            let critical = diff.trailingZeroBitCount
            var first = unusedUpdate
            // The critical word's unused bits are written with it in the next step,
            // which saves a sync when nothing else changes.
            first[critical] = entry[critical]
            set(first, 0, 8)
            set(target, critical, 1)
            set(target, 0, 8)
            return .hitless(criticalWord: critical)
        }
        if diff != 0 {
            var invalid = unusedUpdate
            invalid[0] = 0
            set(invalid, 0, 1)
            set(target, 1, 7)
            set(target, 0, 1)
            return .breaking
        }
        set(target, 0, 8)
        return .direct
    }
}
