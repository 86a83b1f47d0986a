/// A machine's CPU architecture. It decides the format of every process's CPU page table
/// (`mm->pgd`), which shared virtual addressing hands to an IOMMU as it is: an x86-64
/// table for VT-d's first stage, an arm64 table for an SMMU's context descriptor.
public enum CPUArchitecture: String, Hashable, Sendable, CaseIterable {
    /// x86-64: 4-level (48-bit) or 5-level (57-bit) paging; user space ends at 2^47 or
    /// 2^56 (`TASK_SIZE`).
    case x86_64
    /// arm64 with 4 KiB pages and 48-bit virtual addresses: an LPAE stage-1 table with
    /// four levels (``PageTableFormat/arm64CPU``) behind TTBR0; user space ends at 2^48.
    case arm64

    /// The CPU page-table format with `levels` levels, nil if the architecture has no
    /// such paging mode (arm64 here: 4 levels only).
    public func pageTableFormat(levels: Int) -> PageTableFormat? {
        switch self {
        case .x86_64: levels == 4 || levels == 5 ? .x86_64(levels: levels) : nil
        case .arm64: levels == 4 ? .arm64CPU : nil
        }
    }
}
