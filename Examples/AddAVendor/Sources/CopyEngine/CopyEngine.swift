import IOMMUCore

/// One copy job as the driver writes it to the engine: copy `length` bytes from DMA
/// address `source` to DMA address `destination` (IOVAs the driver got from the DMA
/// API, not physical addresses).
public struct CopyDescriptor: Hashable, Sendable {
    /// Where the engine reads.
    public var source: IOVA
    /// Where the engine writes.
    public var destination: IOVA
    /// Bytes to copy.
    public var length: Int

    /// A descriptor.
    public init(source: IOVA, destination: IOVA, length: Int) {
        self.source = source
        self.destination = destination
        self.length = length
    }
}

/// The copy engine: a PCI function that executes ``CopyDescriptor``s by DMA through the
/// IOMMU it sits behind, as a memcpy offload engine does. It knows nothing of the IOMMU;
/// it only issues reads and writes with its requester ID.
public final class CopyEngineDevice: @unchecked Sendable {
    /// The PCI function.
    public let pci: PCIDevice

    /// A copy engine at `rid` (not yet added to a machine).
    public init(rid: RID) {
        pci = PCIDevice(rid: rid, name: "copy-engine")
    }

    /// Executes one descriptor: a DMA read of the source, then a DMA write of the bytes
    /// read. A refused request stops the job and is returned (the engine's error
    /// register); nothing is written after a refused read.
    /// - Returns: nil when the job completed, else the DMA fault.
    public func execute(_ job: CopyDescriptor) -> DMAFault? {
        do {
            let bytes = try pci.dmaRead(at: job.source, count: job.length)
            try pci.dmaWrite(at: job.destination, bytes: bytes)
            return nil
        } catch {
            return error
        }
    }
}
