/// A page of the SMMUv2 register space: global register spaces 0 and 1, or one context
/// bank's page (`ARM_SMMU_GR0`, `ARM_SMMU_GR1`, `ARM_SMMU_CB(smmu, n)` in
/// `drivers/iommu/arm/arm-smmu/arm-smmu.h`).
public enum SMMUv2Page: Hashable, Sendable, CustomStringConvertible {
    /// Global register space 0: configuration, ID, global faults, TLB maintenance,
    /// stream matching (SMR, S2CR).
    case global0
    /// Global register space 1: per-context-bank attributes (CBAR, CBA2R, CBFRSYNRA).
    case global1
    /// The registers of context bank `n`.
    case contextBank(Int)

    /// `GR0`, `GR1` or `CB<n>`.
    public var description: String {
        switch self {
        case .global0: "GR0"
        case .global1: "GR1"
        case .contextBank(let n): "CB\(n)"
        }
    }
}

/// Register offsets and fields of the ARM SMMU architecture version 2, with the kernel's
/// names (`ARM_SMMU_*` in `arm-smmu.h`). Offsets are within a page (``SMMUv2Page``).
public enum SMMUv2Reg {
    // MARK: global register space 0

    /// `ARM_SMMU_GR0_sCR0`: global configuration.
    public static let sCR0 = 0x0
    /// `ARM_SMMU_GR0_ID0`: stage support, stream matching, stream ID bits, SMR count.
    public static let id0 = 0x20
    /// `ARM_SMMU_GR0_ID1`: page size, context bank counts.
    public static let id1 = 0x24
    /// `ARM_SMMU_GR0_ID2`: input, output and upstream bus sizes; translation granules.
    public static let id2 = 0x28
    /// `ARM_SMMU_GR0_ID7`: the implementation's major and minor revision.
    public static let id7 = 0x3C
    /// `ARM_SMMU_GR0_sGFSR`: global fault status (write 1 to clear).
    public static let sGFSR = 0x48
    /// `ARM_SMMU_GR0_sGFSYNR0`: global fault syndrome 0 (access attributes).
    public static let sGFSYNR0 = 0x50
    /// `ARM_SMMU_GR0_sGFSYNR1`: global fault syndrome 1 (the stream ID).
    public static let sGFSYNR1 = 0x54
    /// `ARM_SMMU_GR0_sGFSYNR2`: global fault syndrome 2 (implementation defined).
    public static let sGFSYNR2 = 0x58
    /// `ARM_SMMU_GR0_TLBIVMID`: invalidate every TLB entry of a VMID.
    public static let tlbiVMID = 0x64
    /// `ARM_SMMU_GR0_TLBIALLNSNH`: invalidate every non-secure, non-hyp TLB entry.
    public static let tlbiAllNSNH = 0x68
    /// `ARM_SMMU_GR0_sTLBGSYNC`: wait for global TLB maintenance to complete.
    public static let sTLBGSync = 0x70
    /// `ARM_SMMU_GR0_sTLBGSTATUS`: GSACTIVE while global TLB maintenance is in flight.
    public static let sTLBGStatus = 0x74
    /// `ARM_SMMU_GR0_SMR(n)`: stream match register `n`.
    public static func smr(_ n: Int) -> Int { 0x800 + (n << 2) }
    /// `ARM_SMMU_GR0_S2CR(n)`: stream-to-context register `n`.
    public static func s2cr(_ n: Int) -> Int { 0xC00 + (n << 2) }

    // MARK: global register space 1

    /// `ARM_SMMU_GR1_CBAR(n)`: context bank `n`'s type and attributes.
    public static func cbar(_ n: Int) -> Int { n << 2 }
    /// `ARM_SMMU_GR1_CBFRSYNRA(n)`: the stream ID of context bank `n`'s recorded fault.
    public static func cbfrsynra(_ n: Int) -> Int { 0x400 + (n << 2) }
    /// `ARM_SMMU_GR1_CBA2R(n)`: context bank `n`'s AArch64 (VA64) and 16-bit VMID.
    public static func cba2r(_ n: Int) -> Int { 0x800 + (n << 2) }

    // MARK: context bank

    /// `ARM_SMMU_CB_SCTLR`: system control (enable, fault reporting, stall).
    public static let sctlr = 0x0
    /// `ARM_SMMU_CB_ACTLR`: auxiliary control (implementation defined).
    public static let actlr = 0x4
    /// `ARM_SMMU_CB_RESUME`: resume (retry) or terminate the stalled transaction.
    public static let resume = 0x8
    /// `ARM_SMMU_CB_TCR2`: physical address size, 16-bit ASIDs.
    public static let tcr2 = 0x10
    /// `ARM_SMMU_CB_TTBR0`: the lower range's table base and its ASID (64-bit).
    public static let ttbr0 = 0x20
    /// `ARM_SMMU_CB_TTBR1`: the upper range's table base and its ASID (64-bit).
    public static let ttbr1 = 0x28
    /// `ARM_SMMU_CB_TCR`: translation control (range sizes, granules, walk disables).
    public static let tcr = 0x30
    /// `ARM_SMMU_CB_CONTEXTIDR`: a value software may set for its own use.
    public static let contextIDR = 0x34
    /// `ARM_SMMU_CB_S1_MAIR0`: memory attribute indirection, attributes 0–3.
    public static let mair0 = 0x38
    /// `ARM_SMMU_CB_S1_MAIR1`: memory attribute indirection, attributes 4–7.
    public static let mair1 = 0x3C
    /// `ARM_SMMU_CB_PAR`: the result of an address translation operation (64-bit).
    public static let par = 0x50
    /// `ARM_SMMU_CB_FSR`: fault status (write 1 to clear; SS clears only by RESUME).
    public static let fsr = 0x58
    /// `ARM_SMMU_CB_FAR`: the faulting input address (64-bit).
    public static let far = 0x60
    /// `ARM_SMMU_CB_FSYNR0`: fault syndrome 0 (level, write, privilege, CB index).
    public static let fsynr0 = 0x68
    /// `ARM_SMMU_CB_FSYNR1`: fault syndrome 1 (implementation defined: here the stream ID).
    public static let fsynr1 = 0x6C
    /// `ARM_SMMU_CB_S1_TLBIVA`: invalidate by VA and ASID, every level (64-bit).
    public static let tlbiVA = 0x600
    /// `ARM_SMMU_CB_S1_TLBIVAA`: invalidate by VA, every ASID (64-bit).
    public static let tlbiVAA = 0x608
    /// `TLBIALL`: invalidate every entry of this context bank.
    public static let tlbiAll = 0x618
    /// `ARM_SMMU_CB_S1_TLBIASID`: invalidate every entry of an ASID.
    public static let tlbiASID = 0x610
    /// `ARM_SMMU_CB_S1_TLBIVAL`: invalidate by VA and ASID, last level only (64-bit).
    public static let tlbiVAL = 0x620
    /// `ARM_SMMU_CB_TLBSYNC`: wait for this context bank's TLB maintenance.
    public static let tlbSync = 0x7F0
    /// `ARM_SMMU_CB_TLBSTATUS`: SACTIVE while this context bank's maintenance is in flight.
    public static let tlbStatus = 0x7F4
    /// `ARM_SMMU_CB_ATS1PR`: translate a VA as a privileged read (64-bit).
    public static let ats1PR = 0x800
    /// `ARM_SMMU_CB_ATSR`: ACTIVE while a translation operation runs.
    public static let atsr = 0x8F0
}

/// Field values of the SMMUv2 registers (`ARM_SMMU_*` bit definitions).
public enum SMMUv2Field {
    // sCR0
    /// `ARM_SMMU_sCR0_CLIENTPD`: client ports disabled: every transaction bypasses.
    public static let sCR0ClientPD: UInt32 = 1 << 0
    /// `ARM_SMMU_sCR0_GFRE`: global fault reporting.
    public static let sCR0GFRE: UInt32 = 1 << 1
    /// `ARM_SMMU_sCR0_GFIE`: global fault interrupt.
    public static let sCR0GFIE: UInt32 = 1 << 2
    /// `ARM_SMMU_sCR0_USFCFG`: an unmatched stream faults instead of bypassing.
    public static let sCR0USFCFG: UInt32 = 1 << 10

    // sGFSR
    /// Invalid context fault: the S2CR routes to a fault or to a missing context bank.
    public static let gfsrICF: UInt32 = 1 << 0
    /// `ARM_SMMU_sGFSR_USF`: unidentified stream fault (no SMR matched, USFCFG set).
    public static let gfsrUSF: UInt32 = 1 << 1
    /// Stream match conflict fault: more than one SMR matched.
    public static let gfsrSMCF: UInt32 = 1 << 2
    /// Multiple faults while the syndrome was held.
    public static let gfsrMULTI: UInt32 = 1 << 31

    // SMR
    /// `ARM_SMMU_SMR_VALID`.
    public static let smrValid: UInt32 = 1 << 31

    // S2CR types
    /// `S2CR_TYPE_TRANS`: translate in the context bank of CBNDX.
    public static let s2crTypeTranslate: UInt32 = 0
    /// `S2CR_TYPE_BYPASS`: pass through untranslated.
    public static let s2crTypeBypass: UInt32 = 1
    /// `S2CR_TYPE_FAULT`: abort every transaction.
    public static let s2crTypeFault: UInt32 = 2

    // CBAR types
    /// `CBAR_TYPE_S2_TRANS`.
    public static let cbarTypeS2: UInt32 = 0
    /// `CBAR_TYPE_S1_TRANS_S2_BYPASS`: the only context type this model translates.
    public static let cbarTypeS1BypassS2: UInt32 = 1

    // CBA2R
    /// `ARM_SMMU_CBA2R_VA64`: the context uses the AArch64 (VMSAv8-64) format.
    public static let cba2rVA64: UInt32 = 1 << 0

    // SCTLR
    /// `ARM_SMMU_SCTLR_M`: translation enabled.
    public static let sctlrM: UInt32 = 1 << 0
    /// `ARM_SMMU_SCTLR_TRE`: TEX remap.
    public static let sctlrTRE: UInt32 = 1 << 1
    /// `ARM_SMMU_SCTLR_AFE`: access flag enable.
    public static let sctlrAFE: UInt32 = 1 << 2
    /// `ARM_SMMU_SCTLR_CFRE`: context fault reporting (an abort to the client).
    public static let sctlrCFRE: UInt32 = 1 << 5
    /// `ARM_SMMU_SCTLR_CFIE`: context fault interrupt.
    public static let sctlrCFIE: UInt32 = 1 << 6
    /// `ARM_SMMU_SCTLR_CFCFG`: stall a faulting transaction until RESUME (instead of
    /// terminating it).
    public static let sctlrCFCFG: UInt32 = 1 << 7
    /// `ARM_SMMU_SCTLR_HUPCF`: hit under previous context fault: keep serving
    /// transactions while one is stalled.
    public static let sctlrHUPCF: UInt32 = 1 << 8
    /// `ARM_SMMU_SCTLR_S1_ASIDPNE`: ASID private namespace.
    public static let sctlrASIDPNE: UInt32 = 1 << 12

    // RESUME
    /// `ARM_SMMU_RESUME_TERMINATE`: abort the stalled transaction (clear: retry it).
    public static let resumeTerminate: UInt32 = 1 << 0

    // TCR (AArch64 stage 1)
    /// `ARM_SMMU_TCR_T0SZ`: 64 minus the lower range's input bits.
    public static let tcrT0SZShift: UInt32 = 0
    /// `ARM_SMMU_TCR_EPD0`: walks through TTBR0 disabled (lower range faults).
    public static let tcrEPD0: UInt32 = 1 << 7
    /// `ARM_SMMU_TCR_TG0`: the lower range's granule (bits 15:14).
    public static let tcrTG0Shift: UInt32 = 14
    /// T1SZ (bits 21:16): 64 minus the upper range's input bits.
    public static let tcrT1SZShift: UInt32 = 16
    /// `ARM_SMMU_TCR_A1`: the ASID comes from TTBR1 (clear: from TTBR0).
    public static let tcrA1: UInt32 = 1 << 22
    /// `ARM_SMMU_TCR_EPD1`: walks through TTBR1 disabled (upper range faults).
    public static let tcrEPD1: UInt32 = 1 << 23
    /// TG1 (bits 31:30): the upper range's granule.
    public static let tcrTG1Shift: UInt32 = 30

    // TCR2
    /// `ARM_SMMU_TCR2_PASIZE` (bits 3:0): the output size, IPS encoding.
    public static let tcr2PASizeMask: UInt32 = 0xF
    /// `ARM_SMMU_TCR2_AS`: 16-bit ASIDs.
    public static let tcr2AS: UInt32 = 1 << 4
    /// `ARM_SMMU_TCR2_SEP_UPSTREAM` in `ARM_SMMU_TCR2_SEP` (bits 17:15).
    public static let tcr2SEPUpstream: UInt32 = 0x7 << 15

    // TTBRn
    /// `ARM_SMMU_TTBRn_ASID`: bits 63:48.
    public static let ttbrASIDShift: UInt64 = 48
    /// The table base address bits of a TTBR (47:1; bit 0 is CnP).
    public static let ttbrAddressMask: UInt64 = 0x0000_FFFF_FFFF_FFFE

    // FSR
    /// `ARM_SMMU_CB_FSR_TF`: translation fault.
    public static let fsrTF: UInt32 = 1 << 1
    /// `ARM_SMMU_CB_FSR_AFF`: access flag fault.
    public static let fsrAFF: UInt32 = 1 << 2
    /// `ARM_SMMU_CB_FSR_PF`: permission fault.
    public static let fsrPF: UInt32 = 1 << 3
    /// `ARM_SMMU_CB_FSR_EF`: external fault (the walk could not read a table).
    public static let fsrEF: UInt32 = 1 << 4
    /// `ARM_SMMU_CB_FSR_SS`: a transaction is stalled, waiting for RESUME.
    public static let fsrSS: UInt32 = 1 << 30
    /// `ARM_SMMU_CB_FSR_MULTI`: another fault arrived while one was recorded.
    public static let fsrMULTI: UInt32 = 1 << 31
    /// `ARM_SMMU_CB_FSR_FAULT`: every bit that reports a fault.
    public static let fsrFault: UInt32 = fsrMULTI | fsrSS | 1 << 8 | fsrEF | fsrPF | fsrTF | fsrAFF | 1 << 7 | 1 << 5 | 1 << 6

    // FSYNR0
    /// `ARM_SMMU_CB_FSYNR0_PLVL` (bits 1:0): the table level of the fault.
    public static let fsynr0PLVLMask: UInt32 = 0x3
    /// `ARM_SMMU_CB_FSYNR0_WNR`: the faulting access was a write.
    public static let fsynr0WNR: UInt32 = 1 << 4
    /// `ARM_SMMU_CB_FSYNR0_PNU`: the faulting access was privileged.
    public static let fsynr0PNU: UInt32 = 1 << 5
    /// `ARM_SMMU_CB_FSYNR0_IND`: the faulting access was an instruction fetch.
    public static let fsynr0IND: UInt32 = 1 << 6
    /// `ARM_SMMU_CB_FSYNR0_S1CBNDX` (bits 23:16): the context bank.
    public static let fsynr0S1CBNDXShift: UInt32 = 16

    // PAR / ATSR
    /// `ARM_SMMU_CB_PAR_F`: the translation operation faulted.
    public static let parF: UInt64 = 1 << 0
    /// `ARM_SMMU_CB_ATSR_ACTIVE`.
    public static let atsrActive: UInt32 = 1 << 0
}
