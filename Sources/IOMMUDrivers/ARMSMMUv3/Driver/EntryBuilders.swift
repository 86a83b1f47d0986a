import IOMMUCore

/// Where a device's CD table is and how it is laid out: the `cd_table` part of an STE
/// (`struct arm_smmu_ctx_desc_cfg`: `cdtab_dma`, `s1fmt`, `s1cdmax`).
public struct SMMUv3CDTableConfig: Hashable, Sendable {
    /// Physical address of the table (linear) or of its level-1 table.
    public var pointer: UInt64
    /// `STRTAB_STE_0_S1FMT_LINEAR` (0) or `STRTAB_STE_0_S1FMT_64K_L2` (2).
    public var format: UInt64
    /// log2 of the number of CDs (the STE field keeps its low 5 bits).
    public var cdMax: UInt64

    /// `STRTAB_STE_0_S1FMT_LINEAR`.
    public static let linear: UInt64 = 0
    /// `STRTAB_STE_0_S1FMT_64K_L2`.
    public static let twoLevel: UInt64 = 2

    /// A CD-table configuration.
    public init(pointer: UInt64, format: UInt64, cdMax: UInt64) {
        self.pointer = pointer
        self.format = format
        self.cdMax = cdMax
    }
}

/// The stage-1 translation control of a CD (the `arm_lpae_s1_cfg.tcr` fields the driver
/// copies in: T0SZ, TG0, IRGN0, ORGN0, SH0, IPS).
public struct SMMUv3TCR: Hashable, Sendable {
    /// T0SZ.
    public var t0sz: UInt64
    /// TG0 (0 = 4 KiB, 1 = 64 KiB, 2 = 16 KiB).
    public var tg: UInt64
    /// IRGN0.
    public var irgn: UInt64
    /// ORGN0.
    public var orgn: UInt64
    /// SH0.
    public var sh: UInt64
    /// IPS.
    public var ips: UInt64

    /// A TCR.
    public init(t0sz: UInt64, tg: UInt64, irgn: UInt64, orgn: UInt64, sh: UInt64, ips: UInt64) {
        self.t0sz = t0sz
        self.tg = tg
        self.irgn = irgn
        self.orgn = orgn
        self.sh = sh
        self.ips = ips
    }
}

/// Cacheability and shareability encodings the driver programs.
enum SMMUv3Attr {
    /// `STRTAB_STE_1_S1C_CACHE_WBRA`.
    static let cacheWBRA: UInt64 = 1
    /// `ARM_SMMU_SH_ISH`.
    static let innerShareable: UInt64 = 3
    /// `STRTAB_STE_1_SHCFG_INCOMING`.
    static let shcfgIncoming: UInt64 = 1
    /// `TCR_EL1_IRGN0_WBWA` / `ORGN0_WBWA`.
    static let walkWBWA: UInt64 = 1
}

extension SMMUv3STE {
    /// `arm_smmu_make_abort_ste`: V=1, Config ABORT.
    public static var abort: SMMUv3STE {
        var s = SMMUv3STE()
        s.words[0] = valid | Config.abort.rawValue << 1
        return s
    }

    /// `arm_smmu_make_bypass_ste`: V=1, Config BYPASS, and SHCFG=INCOMING when the SMMU
    /// can override attributes.
    public static func bypass(features: SMMUv3Features) -> SMMUv3STE {
        var s = SMMUv3STE()
        s.words[0] = valid | Config.bypass.rawValue << 1
        if features.contains(.attrTypesOverride) { s.words[1] = SMMUv3Attr.shcfgIncoming << 44 }
        return s
    }

    /// `arm_smmu_make_cdtable_ste`: stage 1 through `table`, with `s1dss` for requests
    /// without PASID, EATS=TRANS when `ats`, stall disabled unless the master stalls, the
    /// NS-EL1 stream world and S2VMID 0 (VMID 0 is reserved for such STEs).
    public static func cdTable(_ table: SMMUv3CDTableConfig, s1dss: S1DSS, ats: Bool, stallEnabled: Bool,
                               features: SMMUv3Features) -> SMMUv3STE {
        var s = SMMUv3STE()
        s.words[0] = valid | Config.stage1.rawValue << 1 | (table.format & 3) << 4 | (table.pointer & s1ContextPtrMask)
            | (table.cdMax & 0x1F) << 59
        var w1 = s1dss.rawValue | SMMUv3Attr.cacheWBRA << 2 | SMMUv3Attr.cacheWBRA << 4
            | SMMUv3Attr.innerShareable << 6
        if features.contains(.stalls) && !stallEnabled { w1 |= s1stalld }
        if ats { w1 |= EATS.translate.rawValue << 28 }
        if features.contains(.attrTypesOverride) && s1dss == .bypass { w1 |= SMMUv3Attr.shcfgIncoming << 44 }
        // STRW NSEL1 (0); S2VMID 0.
        s.words[1] = w1
        return s
    }

    /// `arm_smmu_make_s2_domain_ste`: stage 2 on the table at `tableBase` with `vtcr`,
    /// tagged `vmid`; EATS=TRANS when `ats`, S2S when the master stalls, S2FWB when
    /// `forcedWriteBack`; AArch64 protected walks that record faults.
    public static func stage2(vmid: UInt16, vtcr: VTCR, tableBase: PhysicalAddress, ats: Bool, stallEnabled: Bool,
                              forcedWriteBack: Bool = false, features: SMMUv3Features) -> SMMUv3STE {
        var s = SMMUv3STE()
        s.words[0] = valid | Config.stage2.rawValue << 1
        var w1: UInt64 = ats ? EATS.translate.rawValue << 28 : 0
        if forcedWriteBack { w1 |= s2fwb }
        if features.contains(.attrTypesOverride) { w1 |= SMMUv3Attr.shcfgIncoming << 44 }
        s.words[1] = w1
        s.words[2] = UInt64(vmid) | vtcr.rawValue << 32 | s2aa64 | s2ptw | (stallEnabled ? s2s : 0) | s2r
        s.words[3] = tableBase.rawValue & s2ttbMask
        return s
    }

    /// `arm_smmu_make_nested_cd_table_ste`: the kernel's stage 2 (`stage2`) with Config
    /// NESTED and the user's stage-1 fields of `userWords` (a validated virtual STE:
    /// word 0 without Config, word 1 without EATS), and MEV forced on so that a guest
    /// cannot flood the event queue. With `substreams` false (a driver without
    /// `user_pasid_table`, whose nested domain owns the RID only) S1CDMax is 0 and S1Fmt
    /// linear whatever the guest asked: the context pointer is then a single CD, and a
    /// transaction with a SubstreamID is refused (C_BAD_SUBSTREAMID).
    public static func nested(stage2 s2: SMMUv3STE, userWords: (UInt64, UInt64), substreams: Bool = true) -> SMMUv3STE {
        var s = s2
        var user = userWords.0 & ~configMask
        if !substreams { user &= ~(s1CDMaxMask | s1FmtMask) }
        s.words[0] = valid | Config.nested.rawValue << 1 | user
        s.words[1] |= userWords.1 | mev
        return s
    }
}

extension SMMUv3CD {
    /// `arm_smmu_make_s1_cd`: a stage-1 descriptor for a paging domain's table at `ttbr`
    /// with `tcr`, `mair` and `asid`; TTB1 disabled, AArch64, stall when the master
    /// stalls, record and report faults, ASID not shared; HA and HD with dirty tracking.
    public static func stage1(asid: UInt16, tcr: SMMUv3TCR, ttbr: PhysicalAddress, mair: UInt64, stallEnabled: Bool,
                              dirtyTracking: Bool = false) -> SMMUv3CD {
        var cd = SMMUv3CD()
        var w0 = (tcr.t0sz & 0x3F) | (tcr.tg & 3) << 6 | (tcr.irgn & 3) << 8 | (tcr.orgn & 3) << 10 | (tcr.sh & 3) << 12
        w0 |= epd1 | valid | (tcr.ips & 7) << 32 | aa64 | (stallEnabled ? stall : 0) | record | abortReport | aset
        w0 |= UInt64(asid) << 48
        if dirtyTracking { w0 |= ha | hd }
        cd.words[0] = w0
        cd.words[1] = ttbr.rawValue & ttb0Mask
        cd.words[3] = mair
        return cd
    }

    /// `arm_smmu_make_sva_cd`: a descriptor that shares a process's CPU page table: TTB0 =
    /// the mm's pgd with the CPU's T0SZ (64 - `vaBits`), 4 KiB granule, write-back
    /// inner-shareable walks and the CPU's MAIR. With `pgd` nil it is the "fault
    /// everything" form used at mm release: EPD0 set (TTB0 ignored), and without a
    /// forced stall model S and R cleared so that leftover DMA aborts at once. V=1 either
    /// way, so the SMMU never reports C_BAD_CD for it.
    public static func sva(asid: UInt16, pgd: PhysicalAddress?, vaBits: Int, ips: UInt64, mair: UInt64, stallEnabled: Bool,
                           features: SMMUv3Features) -> SMMUv3CD {
        var cd = SMMUv3CD()
        var w0 = epd1 | valid | (ips & 7) << 32 | aa64 | (stallEnabled ? stall : 0) | record | abortReport | aset
        w0 |= UInt64(asid) << 48
        if let pgd {
            w0 |= UInt64(64 - vaBits) & 0x3F | SMMUv3Attr.walkWBWA << 8 | SMMUv3Attr.walkWBWA << 10
                | SMMUv3Attr.innerShareable << 12
            cd.words[1] = pgd.rawValue & ttb0Mask
        } else {
            w0 |= epd0
            if !features.contains(.stallForce) { w0 &= ~(stall | record) }
        }
        if features.contains(.hardwareAccessFlag) { w0 |= ha }
        if features.contains(.hardwareDirty) { w0 |= hd }
        cd.words[0] = w0
        cd.words[3] = mair
        return cd
    }
}
