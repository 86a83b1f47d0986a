import IOMMUCore

/// A context fault the handler read and nobody handled (`arm_smmu_print_context_fault_info`,
/// "Unhandled context fault"): the syndrome of bank ``contextBank``.
public struct ARMSMMUv2ContextFaultInfo: Hashable, Sendable, CustomStringConvertible {
    /// The context bank.
    public let contextBank: Int
    /// `FSR`.
    public let fsr: UInt32
    /// `FAR`: the faulting address.
    public let iova: IOVA
    /// `FSYNR0`.
    public let fsynr0: UInt32
    /// `CBFRSYNRA`: the stream ID.
    public let cbfrsynra: UInt32

    /// `Unhandled context fault: fsr=0x… iova=0x… fsynr=0x… cbfrsynra=0x… cb=N`.
    public var description: String {
        "Unhandled context fault: fsr=0x\(String(fsr, radix: 16)), iova=\(iova), "
            + "fsynr=0x\(String(fsynr0, radix: 16)), cbfrsynra=0x\(String(cbfrsynra, radix: 16)), cb=\(contextBank)"
    }
}

extension ARMSMMUv2Domain {
    /// `arm_smmu_context_fault`, the context bank's interrupt handler: read the syndrome
    /// (`arm_smmu_read_context_fault_info`); if the FSR reports no fault, nothing to do
    /// (`IRQ_NONE`). Otherwise report it to the domain's fault handler
    /// (`report_iommu_fault`, read or write from FSYNR0.WNR), keep it as unhandled if
    /// there is none (`ENOSYS`), clear the FSR, and if a transaction is stalled (FSR.SS)
    /// resume it: retry when the handler asked to (`EAGAIN`), terminate otherwise (the
    /// hardware ignores the RESUME if the handler already resumed the transaction).
    public func contextFault() {
        guard let (unit, cb) = smmuDriver.lock.withLock({ () -> (ARMSMMUv2, Int)? in
            finalisedUnit.map { ($0, cfg.contextBank) }
        }) else { return }
        let page = SMMUv2Page.contextBank(cb)
        let info = unit.hardwareLock.withLock {
            ARMSMMUv2ContextFaultInfo(contextBank: cb, fsr: unit.smmu.read32(page, SMMUv2Reg.fsr),
                                      iova: IOVA(rawValue: unit.smmu.read64(page, SMMUv2Reg.far)),
                                      fsynr0: unit.smmu.read32(page, SMMUv2Reg.fsynr0),
                                      cbfrsynra: unit.smmu.read32(.global1, SMMUv2Reg.cbfrsynra(cb)))
        }
        guard info.fsr & SMMUv2Field.fsrFault != 0, let machine = unit.machine else { return }
        let direction: IOMMUFaultDirection = info.fsynr0 & SMMUv2Field.fsynr0WNR != 0 ? .write : .read
        var result: Errno?
        do throws(Errno) { try machine.iommu.reportIOMMUFault(self, dev: nil, iova: info.iova, direction: direction) } catch {
            result = error
        }
        if result == .noFunction { unit.smmuDriver.lock.withLock { unit.unhandledFaults.append(info) } }
        unit.hardwareLock.withLock {
            unit.smmu.write32(page, SMMUv2Reg.fsr, info.fsr)
            if info.fsr & SMMUv2Field.fsrSS != 0 {
                unit.smmu.write32(page, SMMUv2Reg.resume, result == .tryAgain ? 0 : SMMUv2Field.resumeTerminate)
            }
        }
    }
}
