import IOMMUConformance
import IOMMUCore
import IOMMUDrivers

/// A guest's side of SMMUv3 nesting, as a VMM's guest would build it: a two-level CD
/// table and an identity stage-1 table in guest memory, and the virtual STE
/// (`struct iommu_hwpt_arm_smmuv3`) that points at them. The structures fill
/// ``guestBytes`` of guest memory from the intermediate physical address (IPA)
/// ``tablesIPA``; the nesting parent maps that range, so the SMMU reads them through the
/// parent's stage 2 (each CD and table address separately: the range need not be
/// contiguous in host memory).
///
/// Every CD of the table's first leaf (SubstreamIDs 0-1023) and of its last leaf (up to
/// 2^20 - 1) is valid and points at the same stage-1 table, which maps the first 4 GiB of
/// the IPA space onto itself with 1 GiB blocks: a device's DMA with or without PASID
/// reaches whatever the parent maps at the same address.
public struct SMMUv3Guest {
    /// The IPA of the guest's structures (above the 4 GiB the identity stage 1 covers the
    /// parent's own mappings below it).
    public static let tablesIPA: IOVA = 0x1_0000_0000
    /// SubstreamID bits of the guest's CD table.
    public static let ssidBits = 20
    /// The ASID the guest gives its CDs.
    public static let asid: UInt16 = 7
    /// Bytes of guest memory the structures take from ``tablesIPA`` (a multiple of 4 KiB).
    public static let guestBytes = 4096 + l1Bytes + 2 * leafBytes

    private static let leafBytes = Int(SMMUv3CDL1.leafEntries) * Int(SMMUv3CD.size)
    private static let l1Entries = 1 << (ssidBits - Int(SMMUv3CDL1.leafEntries.trailingZeroBitCount))
    private static let l1Bytes = l1Entries * 8

    /// The vSTE words 0 and 1: S1_TRANS through the guest's CD table, S1DSS=SSID0.
    public let vste: (UInt64, UInt64)
    /// The vSTE as `IOMMU_HWPT_DATA_ARM_SMMUV3` user data (`struct iommu_hwpt_arm_smmuv3`:
    /// two little-endian words).
    public var userData: [UInt8] {
        withUnsafeBytes(of: vste.0.littleEndian, Array.init) + withUnsafeBytes(of: vste.1.littleEndian, Array.init)
    }

    /// Builds the guest's structures in one run of `machine`'s memory and maps it into
    /// `parent` at ``tablesIPA``. With `linearCDTable` the vSTE points at the first leaf
    /// alone, as a linear table of 1024 CDs (S1CDMax 10), whose first entry is also a
    /// valid table of one CD: the RID translates through it even for an SMMU that allows
    /// the STE no substreams (a two-level table's pointer is no CD).
    public init(machine: Machine, parent: IOMMUDomain, linearCDTable: Bool = false) throws {
        let memory = machine.memory
        let pa = try memory.allocContiguous(bytes: Self.guestBytes)
        try memory.write(pa, [UInt8](repeating: 0, count: Self.guestBytes))
        try machine.iommu.map(parent, iova: Self.tablesIPA, paddr: pa, size: UInt64(Self.guestBytes), prot: [.read, .write])
        try self.init(memory: memory, linearCDTable: linearCDTable) { ipa, bytes in try memory.write(pa + (ipa.rawValue - Self.tablesIPA.rawValue), bytes) }
    }

    /// Builds the guest's structures through `write`, which stores bytes at an IPA of
    /// guest memory in [``tablesIPA``, ``tablesIPA`` + ``guestBytes``) (zeroed before).
    /// `memory` only lends the page-table engine a scratch frame for the stage-1 table.
    /// With `linearCDTable` the vSTE points at the first leaf as a linear table.
    public init(memory: PhysicalMemory, linearCDTable: Bool = false, write: (IOVA, [UInt8]) throws -> Void) throws {
        let rootIPA = Self.tablesIPA
        let l1IPA = rootIPA + 4096
        let leafIPAs = [l1IPA + UInt64(Self.l1Bytes), l1IPA + UInt64(Self.l1Bytes + Self.leafBytes)]
        // Stage 1: IPA = VA over 4 GiB, in 1 GiB blocks, built by the page-table engine
        // (no table below the root), then copied into guest memory.
        let format = try PageTableFormat.armLPAE(.stage1, pageSizes: 1 << 12 | 1 << 21 | 1 << 30, ias: 32, oas: 48)
        let table = try IOPageTable(format: format, memory: memory)
        defer { table.destroy() }
        try table.map(iova: 0, paddr: 0, size: 4 << 30, prot: [.read, .write])
        try write(rootIPA, memory.bytes(at: table.root, count: format.rootTableBytes))
        guard let lpae = format.lpae else { throw Errno.invalidArgument }
        let cd = SMMUv3CD.stage1(asid: Self.asid, tcr: SMMUv3TCR(t0sz: lpae.tsz, tg: lpae.tg, irgn: 1, orgn: 1, sh: 3, ips: lpae.ps),
                                 ttbr: PhysicalAddress(rawValue: rootIPA.rawValue), mair: LPAEConfig.mair, stallEnabled: false)
        let cdBytes = (0..<8).flatMap { w in withUnsafeBytes(of: cd.words[w].littleEndian, Array.init) }
        let leaf = [UInt8]((0..<Int(SMMUv3CDL1.leafEntries)).map { _ in cdBytes }.joined())
        // The CD table: level 1 with its first and last descriptors, then the two leaves.
        for (index, leafIPA) in zip([0, Self.l1Entries - 1], leafIPAs) {
            let desc = (leafIPA.rawValue & SMMUv3CDL1.pointerMask) | SMMUv3CDL1.valid
            try write(l1IPA + UInt64(index) * 8, withUnsafeBytes(of: desc.littleEndian, Array.init))
            try write(leafIPA, leaf)
        }
        if linearCDTable {
            vste = (SMMUv3STE.valid | SMMUv3STE.Config.stage1.rawValue << 1 | SMMUv3CDTableConfig.linear << 4
                        | (leafIPAs[0].rawValue & SMMUv3STE.s1ContextPtrMask)
                        | UInt64(SMMUv3CDL1.leafEntries.trailingZeroBitCount) << 59,
                    SMMUv3STE.S1DSS.ssid0.rawValue)
        } else {
            vste = (SMMUv3STE.valid | SMMUv3STE.Config.stage1.rawValue << 1 | SMMUv3CDTableConfig.twoLevel << 4
                        | (l1IPA.rawValue & SMMUv3STE.s1ContextPtrMask) | UInt64(Self.ssidBits) << 59,
                    SMMUv3STE.S1DSS.ssid0.rawValue)
        }
    }
}
