import IOMMUCore
import IOMMUDrivers

/// How the GPU driver gives processes their GPU address spaces: mainline's per-process
/// page tables, the 2017 private-PASID proposal, or one table for everyone.
public enum AdrenoAddressSpaces: String, CaseIterable, Sendable, Codable {
    /// Mainline: a page table per process (`msm_iommu_pagetable_create`), made and
    /// mapped by the GPU driver through `adreno_smmu_priv` (`set_ttbr0_cfg`), switched
    /// by the GPU's own `CP_SMMU_TABLE_UPDATE`; every table shares ASID 0.
    case perProcess = "per-process tables"
    /// The 2017 proposal: a private PASID per process (`iommu_sva_alloc_pasid`) whose
    /// table and ASID the SMMUv2 driver makes and "installs" by calling back into the GPU
    /// driver (`install_pasid`); the GPU switches with the same packet.
    case privatePASID = "private PASIDs"
    /// One IO page table for every process (the GPU's UNMANAGED domain): what the display,
    /// video and camera blocks use, and the GPU before per-process tables.
    case globalTable = "one global table"

    /// Where the design comes from.
    public var origin: String {
        switch self {
        case .perProcess: "mainline (adreno_smmu_priv, msm_iommu_pagetable_create)"
        case .privatePASID: "2017 iommu_sva_alloc_pasid proposal with an SMMUv2 backdoor"
        case .globalTable: "one UNMANAGED domain for every process"
        }
    }
}

/// Deliberate GPU driver bugs, to show what the invariant checker catches.
public struct MSMDriverBugs: OptionSet, Hashable, Sendable {
    /// The raw bits.
    public let rawValue: UInt32
    /// Wraps raw bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// An unmap in a process table that is not the ring's current one skips the flush of
    /// the shared ASID ("it is not in TTBR0, nothing can be cached"), although the GPU
    /// may still be running that table's queued work with its entries in the TLB.
    public static let skipFlushForNonCurrentTable = MSMDriverBugs(rawValue: 1 << 0)
    /// Closing a process frees its page table at once, although the ring still has it
    /// current for work that is queued.
    public static let freeTableWhileCurrent = MSMDriverBugs(rawValue: 1 << 1)
}

/// A unit of GPU work a process submits: the model's DMA work packets.
public enum AdrenoWork: Hashable, Sendable {
    /// Copy `length` bytes from one GPU address to another.
    case copy(from: IOVA, to: IOVA, length: Int)
    /// Fill `length` bytes at a GPU address with `byte`.
    case fill(IOVA, length: Int, byte: UInt8)
    /// Read `length` bytes at a GPU address into the process's result buffer.
    case readBack(from: IOVA, into: IOVA, length: Int)
}

/// A buffer object (`msm_gem_object`) and where it is mapped on the GPU.
public final class MSMBuffer: @unchecked Sendable, CustomStringConvertible {
    /// The GPU address.
    public let gpuAddress: IOVA
    /// Its size in bytes.
    public let size: UInt64
    /// The physically contiguous memory behind it.
    public let physical: PhysicalAddress
    /// The context whose address space maps it; nil for a kernel (global) buffer.
    public weak var context: MSMContext?
    /// Whether it is still mapped.
    public internal(set) var mapped = true

    init(gpuAddress: IOVA, size: UInt64, physical: PhysicalAddress, context: MSMContext?) {
        self.gpuAddress = gpuAddress
        self.size = size
        self.physical = physical
        self.context = context
    }

    /// `0x… (+size)`.
    public var description: String { "\(gpuAddress) (\(size) bytes)" }
}

/// A process's GPU context (`struct msm_context` with its VM).
public final class MSMContext: @unchecked Sendable, CustomStringConvertible {
    /// The process's name, for logs and fault reports.
    public let name: String
    /// `ctx->seqno`: never reused, so the ring can tell contexts apart.
    public let seqno: Int
    /// Whether userspace manages the VM (`VM_BIND`): page-size leaves only, page tables
    /// preallocated before each map.
    public let vmBind: Bool
    /// The address space.
    var space: Space
    /// Submissions queued and not retired (each holds a reference to the VM).
    var inFlight = 0
    /// Closed by the process; the VM goes when the last submission retires.
    var closed = false
    /// The next GPU address the driver picks when the process does not choose one.
    var nextAddress: IOVA = MSMContext.userBase
    /// Buffers created for it.
    var buffers: [MSMBuffer] = []

    /// The address space of a context.
    enum Space {
        case pagetable(MSMPagetable)
        case pasid(PASID)
        case global
        case gone
    }

    /// Where user addresses start (`msm_gpu_create_private_vm`).
    public static let userBase: IOVA = 0x1_0000_0000

    init(name: String, seqno: Int, vmBind: Bool, space: Space) {
        self.name = name
        self.seqno = seqno
        self.vmBind = vmBind
        self.space = space
    }

    /// `name#seqno`.
    public var description: String { "\(name)#\(seqno)" }

    /// The base of the context's own page table (what TTBR0 holds while it runs), nil
    /// without a table of its own.
    public var tableBase: PhysicalAddress? {
        switch space {
        case .pagetable(let pt): pt.ttbr
        case .pasid, .global, .gone: nil
        }
    }
}

/// A GPU fault as the GPU driver's handler saw it (`adreno_fault_handler`): which
/// process, which address, and the SMMU's syndrome from `get_fault_info`.
public struct MSMFault: Hashable, Sendable, CustomStringConvertible {
    /// The process whose address space faulted, or what the driver could tell.
    public let process: String
    /// The faulting GPU address.
    public let iova: IOVA
    /// Whether it was a write.
    public let write: Bool
    /// TTBR0 at the fault (from `get_fault_info`, or as the ring recorded it).
    public let ttbr0: UInt64
    /// FSR at the fault; nil where the driver has no `get_fault_info` (the 2017
    /// variant), so no syndrome.
    public let fsr: UInt32?
    /// How the driver told the stalled transaction to end (nil: stall not enabled).
    public let terminated: Bool?

    /// `process: write 0x… ttbr0=0x… fsr=0x…` (`no syndrome` without `get_fault_info`).
    public var description: String {
        "\(process): \(write ? "write" : "read") \(iova)"
            + (ttbr0 != 0 ? " ttbr0=0x\(String(ttbr0, radix: 16))" : "")
            + (fsr.map { " fsr=0x\(String($0, radix: 16))" } ?? " (no syndrome: no get_fault_info)")
    }
}
