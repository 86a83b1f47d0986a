import IOMMUCore

/// The driver's per-device data (`struct arm_smmu_master_cfg` with the device's
/// `iommu_fwspec`): the unit, the stream IDs, and the stream mapping entries they took.
public final class ARMSMMUv2Master: @unchecked Sendable {
    /// The unit the device sits behind.
    public let unit: ARMSMMUv2
    /// The device's RID.
    public let rid: RID
    /// What firmware said about the device.
    public let firmware: ARMSMMUv2FirmwareMaster
    /// The stream mapping entry of each stream ID (`smendx`), -1 while none
    /// (`INVALID_SMENDX`). Guarded by the driver lock.
    var smendx: [Int]
    /// The device's driver data as the Qualcomm implementation fills it for the GPU
    /// (`dev_get_drvdata(dev)`, a `struct adreno_smmu_priv`): empty until a context is
    /// initialised for a GPU.
    public let adrenoSMMU = AdrenoSMMUPriv()

    init(unit: ARMSMMUv2, rid: RID, firmware: ARMSMMUv2FirmwareMaster) {
        self.unit = unit
        self.rid = rid
        self.firmware = firmware
        smendx = Array(repeating: -1, count: firmware.streamIDs.count)
    }

    /// The stream IDs, in firmware order.
    public var streamIDs: [ARMSMMUv2StreamID] { firmware.streamIDs }
}

extension ARMSMMUv2 {
    /// `arm_smmu_write_sme`: S2CR then SMR of entry `idx`, from the driver's copies. The
    /// caller holds the hardware lock.
    func writeSME(_ idx: Int) {
        let s = s2crs[idx]
        smmu.write32(.global0, SMMUv2Reg.s2cr(idx), s.type << 16 | s.privcfg << 24 | UInt32(s.cbndx))
        let smr = smrs[idx]
        var reg = UInt32(smr.id) | UInt32(smr.mask) << 16
        if smr.valid { reg |= SMMUv2Field.smrValid }
        smmu.write32(.global0, SMMUv2Reg.smr(idx), reg)
    }

    /// `arm_smmu_find_sme(id, mask)`: an entry that already matches the whole (id, mask)
    /// range, else the first free one.
    /// - Throws: `EINVAL` when an entry overlaps the range only in part (some stream ID
    ///   would match two entries); `ENOSPC` when every entry is taken.
    func findSME(id: UInt16, mask: UInt16) throws(Errno) -> Int {
        var free: Int?
        for i in 0..<numMappingGroups {
            let smr = smrs[i]
            guard smr.valid else {
                if free == nil { free = i }
                continue
            }
            if mask & smr.mask == mask && (id ^ smr.id) & ~smr.mask == 0 { return i }
            if (id ^ smr.id) & ~(smr.mask | mask) == 0 { throw .invalidArgument }
        }
        guard let free else { throw .noSpace }
        return free
    }

    /// `arm_smmu_master_alloc_smes`: take a stream mapping entry per stream ID, then
    /// write them (S2CRs as they are: fault or bypass until a domain is attached).
    /// - Throws: `EEXIST` if the master already holds entries; `findSME`'s errno. On
    ///   error every entry taken is given back.
    func allocSMEs(_ master: ARMSMMUv2Master) throws(Errno) {
        var taken: [Int] = []
        do throws(Errno) {
            for (i, sid) in master.streamIDs.enumerated() {
                guard master.smendx[i] == -1 else { throw .exists }
                let idx = try findSME(id: sid.id, mask: sid.mask)
                if s2crs[idx].count == 0 {
                    smrs[idx] = SMR(id: sid.id, mask: sid.mask, valid: true)
                }
                s2crs[idx].count += 1
                master.smendx[i] = idx
                taken.append(idx)
            }
        } catch {
            for (i, idx) in taken.enumerated().reversed() {
                _ = freeSME(idx)
                master.smendx[i] = -1
            }
            throw error
        }
        hardwareLock.withLock { for idx in master.smendx { writeSME(idx) } }
    }

    /// `arm_smmu_free_sme`: drop one user; the last resets the entry. Returns whether it
    /// must be rewritten.
    func freeSME(_ idx: Int) -> Bool {
        s2crs[idx].count -= 1
        guard s2crs[idx].count == 0 else { return false }
        s2crs[idx] = S2CR(type: disableBypass ? SMMUv2Field.s2crTypeFault : SMMUv2Field.s2crTypeBypass)
        smrs[idx].valid = false
        return true
    }

    /// `arm_smmu_master_free_smes`.
    func freeSMEs(_ master: ARMSMMUv2Master) {
        hardwareLock.withLock {
            for (i, idx) in master.smendx.enumerated() where idx >= 0 {
                if freeSME(idx) { writeSME(idx) }
                master.smendx[i] = -1
            }
        }
    }

    /// `arm_smmu_master_install_s2crs`: route every stream of the master as `type` to
    /// `cbndx`, writing only the entries that change.
    func installS2CRs(_ master: ARMSMMUv2Master, type: UInt32, cbndx: UInt8) {
        hardwareLock.withLock {
            for idx in master.smendx where idx >= 0 {
                if s2crs[idx].type == type && s2crs[idx].cbndx == cbndx { continue }
                s2crs[idx].type = type
                s2crs[idx].privcfg = 0
                s2crs[idx].cbndx = cbndx
                writeSME(idx)
            }
        }
    }
}
