/// Mapping permissions and attributes, the kernel's `IOMMU_READ` … `IOMMU_PRIV` flags
/// (`include/linux/iommu.h`), passed to `iommu_map` and `io_pgtable_ops.map_pages`.
///
/// A format encodes what it can express and ignores the rest; see
/// ``PageTableFormat`` for the bits each flag turns into.
public struct IOMMUProt: OptionSet, Sendable, Hashable {
    /// The raw flag word, bit for bit the kernel's `int prot`.
    public let rawValue: UInt32

    /// Wraps a raw flag word.
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `IOMMU_READ`: the device may read.
    @inlinable public static var read: IOMMUProt { IOMMUProt(rawValue: 1 << 0) }
    /// `IOMMU_WRITE`: the device may write.
    @inlinable public static var write: IOMMUProt { IOMMUProt(rawValue: 1 << 1) }
    /// `IOMMU_CACHE`: DMA is cache coherent (VT-d second stage: the SNP bit).
    @inlinable public static var cache: IOMMUProt { IOMMUProt(rawValue: 1 << 2) }
    /// `IOMMU_NOEXEC`: instruction fetches are refused (x86 XD; VT-d: X left clear).
    @inlinable public static var noexec: IOMMUProt { IOMMUProt(rawValue: 1 << 3) }
    /// `IOMMU_MMIO`: the target is device memory (x86: PCD, uncached).
    @inlinable public static var mmio: IOMMUProt { IOMMUProt(rawValue: 1 << 4) }
    /// `IOMMU_PRIV`: only privileged (supervisor) requests may use the mapping
    /// (x86 first stage: U/S = 0).
    @inlinable public static var priv: IOMMUProt { IOMMUProt(rawValue: 1 << 5) }
}
