import IOMMUCore

/// The copy engine's driver: a kernel DMA-API driver. It binds to the device's default
/// domain (`iommu_device_use_default_domain`), maps each buffer with `dma_map_page`
/// (source read-only, destination writable), hands the engine a descriptor of DMA
/// addresses, and unmaps both when the job is done, so the engine can reach the buffers
/// only while the job runs.
public final class CopyEngineDriver: @unchecked Sendable {
    /// The engine driven.
    public let engine: CopyEngineDevice
    private let iommu: IOMMUSubsystem

    /// Binds to `engine`, which must sit behind an IOMMU on `machine`.
    /// - Throws: `EBUSY` if a user owns the device's group; `EPROBE_DEFER` before the
    ///   group's default domain exists; `ENODEV` if the device has no group.
    public init(engine: CopyEngineDevice, machine: Machine) throws(Errno) {
        self.engine = engine
        iommu = machine.iommu
        guard engine.pci.group != nil else { throw .noDevice }
        try iommu.deviceUseDefaultDomain(engine.pci)
    }

    /// Copies `length` bytes from physical address `source` to physical address
    /// `destination` with the engine.
    /// - Returns: the descriptor the engine ran (its DMA addresses are unmapped again).
    /// - Throws: the DMA API's errno (`ENOMEM` when out of IOVA space, `EINVAL`), or the
    ///   engine's ``IOMMUCore/DMAFault``. The buffers are unmapped in every case.
    @discardableResult
    public func copy(from source: PhysicalAddress, to destination: PhysicalAddress, length: Int) throws -> CopyDescriptor {
        let dev = engine.pci
        let src = try iommu.dmaMapPage(dev, paddr: source, size: UInt64(length), prot: [.read])
        defer { try? iommu.dmaUnmapPage(dev, dmaAddress: src, size: UInt64(length)) }
        let dst = try iommu.dmaMapPage(dev, paddr: destination, size: UInt64(length), prot: [.write])
        defer { try? iommu.dmaUnmapPage(dev, dmaAddress: dst, size: UInt64(length)) }
        let job = CopyDescriptor(source: src, destination: dst, length: length)
        if let fault = engine.execute(job) { throw fault }
        return job
    }

    /// Unbinds (`iommu_device_unuse_default_domain`).
    public func unbind() { iommu.deviceUnuseDefaultDomain(engine.pci) }
}
