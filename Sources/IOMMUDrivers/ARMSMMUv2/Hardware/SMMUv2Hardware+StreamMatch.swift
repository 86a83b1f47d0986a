extension SMMUv2Hardware {
    /// The stream IDs an SMR value matches (none when it is invalid): every ID equal to
    /// SMR.ID on the bits SMR.MASK leaves unmasked.
    func streamIDs(matching smr: UInt32) -> [Int] {
        guard smr & SMMUv2Field.smrValid != 0 else { return [] }
        let id = Int(smr & 0xFFFF) & streamIDMask
        let mask = Int(smr >> 16 & 0x7FFF) & streamIDMask
        var ids: [Int] = []
        ids.reserveCapacity(1 << mask.nonzeroBitCount)
        // Every subset of the mask bits, from the empty one up (the classic submask walk).
        var sub = 0
        repeat {
            ids.append((id & ~mask) | sub)
            sub = (sub - mask) & mask
        } while sub != 0
        return ids
    }

    /// An SMR changed from `old` to `new`: recomputes the match of every stream ID either
    /// value matches, as the hardware's comparators would see them now. A stream ID that
    /// two valid SMRs match is a conflict (sGFSR.SMCF on use).
    func rematch(_ old: UInt32, _ new: UInt32) {
        var affected = Set(streamIDs(matching: old))
        affected.formUnion(streamIDs(matching: new))
        for sid in affected {
            var match: UInt16 = 0
            for g in 0..<config.streamMatchGroups {
                let smr = smrs[g]
                guard smr & SMMUv2Field.smrValid != 0 else { continue }
                let mask = Int(smr >> 16 & 0x7FFF)
                guard (sid ^ Int(smr & 0xFFFF)) & ~mask & streamIDMask == 0 else { continue }
                if match != 0 {
                    match = Self.conflict
                    break
                }
                match = UInt16(g + 1)
            }
            streamMatch[sid] = match
        }
    }
}
