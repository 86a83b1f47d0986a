import IOMMUConformance
import IOMMUCore
import IOMMUDrivers

/// A guest's side of SMMUv3 nesting, as a VMM's guest would build it: a two-level CD
/// table and an identity stage-1 table in guest memory, and the virtual STE
/// (`struct iommu_hwpt_arm_smmuv3`) that points at them. Guest memory is host memory the
/// nesting parent maps at intermediate physical addresses (IPAs) from ``tablesIPA``, so
/// the SMMU reads the guest's structures through the parent's stage 2.
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

    /// The vSTE words 0 and 1: S1_TRANS through the guest's CD table, S1DSS=SSID0.
    public let vste: (UInt64, UInt64)
    /// The vSTE as `IOMMU_HWPT_DATA_ARM_SMMUV3` user data (`struct iommu_hwpt_arm_smmuv3`:
    /// two little-endian words).
    public var userData: [UInt8] {
        withUnsafeBytes(of: vste.0.littleEndian, Array.init) + withUnsafeBytes(of: vste.1.littleEndian, Array.init)
    }
    /// Host frames holding the guest's structures, with their IPAs.
    public let frames: [(ipa: IOVA, pa: PhysicalAddress, bytes: Int)]

    /// Builds the guest's structures in `machine`'s memory and maps them into `parent` at
    /// their IPAs.
    public init(machine: Machine, parent: IOMMUDomain) throws {
        let memory = machine.memory
        let leafBytes = Int(SMMUv3CDL1.leafEntries) * Int(SMMUv3CD.size)
        let l1Entries = 1 << (Self.ssidBits - Int(SMMUv3CDL1.leafEntries.trailingZeroBitCount))
        var next = Self.tablesIPA
        var frames: [(IOVA, PhysicalAddress, Int)] = []
        func place(_ bytes: Int) throws -> (IOVA, PhysicalAddress) {
            let size = max(bytes, 4096)
            let pa = try memory.allocContiguous(bytes: size)
            try memory.write(pa, [UInt8](repeating: 0, count: size))
            let ipa = next
            next = next + UInt64(size)
            frames.append((ipa, pa, size))
            try machine.iommu.map(parent, iova: ipa, paddr: pa, size: UInt64(size), prot: [.read, .write])
            return (ipa, pa)
        }
        // Stage 1: IPA = VA over 4 GiB, in 1 GiB blocks, built by the page-table engine in
        // a frame of guest memory (no table below the root).
        let format = try PageTableFormat.armLPAE(.stage1, pageSizes: 1 << 12 | 1 << 21 | 1 << 30, ias: 32, oas: 48)
        let table = try IOPageTable(format: format, memory: memory)
        try table.map(iova: 0, paddr: 0, size: 4 << 30, prot: [.read, .write])
        let (rootIPA, rootPA) = try place(format.rootTableBytes)
        try memory.write(rootPA, try memory.bytes(at: table.root, count: format.rootTableBytes))
        table.destroy()
        guard let lpae = format.lpae else { throw Errno.invalidArgument }
        let cd = SMMUv3CD.stage1(asid: Self.asid, tcr: SMMUv3TCR(t0sz: lpae.tsz, tg: lpae.tg, irgn: 1, orgn: 1, sh: 3, ips: lpae.ps),
                                 ttbr: PhysicalAddress(rawValue: rootIPA.rawValue), mair: LPAEConfig.mair, stallEnabled: false)
        // The CD table: level 1, then the first and the last leaf.
        let (l1IPA, l1PA) = try place(l1Entries * 8)
        for index in [0, l1Entries - 1] {
            let (leafIPA, leafPA) = try place(leafBytes)
            memory.store64(l1PA + UInt64(index) * 8, (leafIPA.rawValue & SMMUv3CDL1.pointerMask) | SMMUv3CDL1.valid)
            for i in 0..<Int(SMMUv3CDL1.leafEntries) {
                for w in 0..<8 { memory.store64(leafPA + UInt64(i) * SMMUv3CD.size + UInt64(w) * 8, cd.words[w]) }
            }
        }
        self.frames = frames
        vste = (SMMUv3STE.valid | SMMUv3STE.Config.stage1.rawValue << 1 | SMMUv3CDTableConfig.twoLevel << 4
                    | (l1IPA.rawValue & SMMUv3STE.s1ContextPtrMask) | UInt64(Self.ssidBits) << 59,
                SMMUv3STE.S1DSS.ssid0.rawValue)
    }
}
