#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A DMA request a device could not complete: the IOMMU refused a translation.
public struct DMAFault: Error, Hashable, Sendable, CustomStringConvertible {
    /// The requester.
    public let device: RID
    /// The request's PASID, nil without PASID.
    public let pasid: PASID?
    /// The address that faulted (under SVA, the process's virtual address).
    public let address: IOVA
    /// What the request did.
    public let access: DMAAccess
    /// The vendor's reason.
    public let reason: FaultReason
    /// The unit that recorded the fault (`"none"` for a device without IOMMU).
    public let iommu: String

    /// The errno a driver would see for this request: `ENODEV` for a device on no
    /// machine (``FaultReason/noMachine``: there is no bus to carry the request),
    /// `EFAULT` for an address outside physical memory, `EIO` for a refusal by the
    /// IOMMU (the completion of a faulted request is an error status). Its reason is the
    /// fault's description.
    public var errno: Errno {
        let e: Errno = reason == .noMachine ? .noDevice : reason == .outsideMemory ? .badAddress : .ioError
        return e.from(access.contains(.write) ? "dmaWrite" : "dmaRead", description)
    }

    /// `DMAR fault: dev 00:02.0 pasid 5 addr 0x1000 write: 0x..: reason`.
    public var description: String {
        let p = pasid.map { " pasid \($0)" } ?? ""
        let kind = access.contains(.write) ? "write" : access.contains(.execute) ? "exec" : "read"
        return "\(iommu) fault: dev \(device)\(p) addr \(address) \(kind): \(reason)"
    }
}

extension FaultReason {
    /// A device without an IOMMU addressed memory outside the machine.
    public static let outsideMemory = FaultReason(code: 0xffff, text: "physical address outside memory")
    /// The device is on no machine (never added, or its machine is gone): nothing
    /// carries the request. ``DMAFault/errno`` maps it to `ENODEV`.
    public static let noMachine = FaultReason(code: 0xfffe, text: "device is on no machine")
}

extension PCIDevice {
    /// Issues a DMA read: the device reads `buffer.count` bytes of host memory at `address`
    /// (an IOVA, or a process VA under SVA) into `buffer`. Each page is translated by the
    /// device's ATC (with ATS) or the IOMMU (IOTLB, then a table walk); the first refusal
    /// stops the transfer. Allocation-free.
    /// - Throws: ``DMAFault`` with the vendor's reason; bytes before the fault were moved.
    ///   A device on no machine gets reason ``FaultReason/noMachine`` (errno `ENODEV`),
    ///   an address past the end of memory ``FaultReason/outsideMemory`` (`EFAULT`).
    public func dmaRead(at address: IOVA, into buffer: UnsafeMutableRawBufferPointer,
                        pasid: PASID? = nil, privileged: Bool = false) throws(DMAFault) {
        try transfer(address: address, count: buffer.count, pasid: pasid, privileged: privileged,
                     access: .read) { pa, offset, n in
            buffer.baseAddress!.advanced(by: offset).copyMemory(from: pa, byteCount: n)
        }
    }

    /// Issues a DMA write: the device writes `buffer` to host memory at `address`.
    /// - Throws: ``DMAFault``; bytes before the fault were written. As
    ///   ``dmaRead(at:into:pasid:privileged:)``: `noMachine` (`ENODEV`), `outsideMemory`.
    public func dmaWrite(at address: IOVA, from buffer: UnsafeRawBufferPointer,
                         pasid: PASID? = nil, privileged: Bool = false) throws(DMAFault) {
        try transfer(address: address, count: buffer.count, pasid: pasid, privileged: privileged,
                     access: .write) { pa, offset, n in
            pa.copyMemory(from: buffer.baseAddress!.advanced(by: offset), byteCount: n)
        }
    }

    /// Convenience: reads `count` bytes by DMA and returns them.
    /// - Throws: ``DMAFault``.
    public func dmaRead(at address: IOVA, count: Int, pasid: PASID? = nil, privileged: Bool = false) throws(DMAFault) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var fault: DMAFault?
        out.withUnsafeMutableBytes { buf in
            do throws(DMAFault) { try dmaRead(at: address, into: buf, pasid: pasid, privileged: privileged) } catch { fault = error }
        }
        if let fault { throw fault }
        return out
    }

    /// Convenience: writes `bytes` by DMA.
    /// - Throws: ``DMAFault``.
    public func dmaWrite(at address: IOVA, bytes: [UInt8], pasid: PASID? = nil, privileged: Bool = false) throws(DMAFault) {
        var fault: DMAFault?
        bytes.withUnsafeBytes { buf in
            do throws(DMAFault) { try dmaWrite(at: address, from: buf, pasid: pasid, privileged: privileged) } catch { fault = error }
        }
        if let fault { throw fault }
    }

    /// The engine: translate page by page and move bytes with `copy(hostPointer, offset, n)`.
    /// Class properties are read once before the loop, since each read of a class `var`
    /// carries a dynamic exclusivity check that costs more than an IOTLB lookup.
    @inline(__always)
    private func transfer(address: IOVA, count: Int, pasid: PASID?, privileged: Bool, access: DMAAccess,
                          _ copy: (UnsafeMutableRawPointer, Int, Int) -> Void) throws(DMAFault) {
        guard let path = dmaPathStorage.pointee else {
            // No machine, no bus: nothing to record the fault in either.
            throw DMAFault(device: rid, pasid: pasid, address: address, access: access, reason: .noMachine, iommu: "none")
        }
        let memorySize = path.memorySize
        guard let unit = path.unit, let mutex = path.mutex, let stats = path.stats else {
            // No IOMMU: the bus address is the physical address.
            let pa = address.rawValue
            guard pa < memorySize, UInt64(count) <= memorySize - pa else {
                let f = DMAFault(device: rid, pasid: pasid, address: address, access: access,
                                 reason: .outsideMemory, iommu: "none")
                machine?.noteUntranslatedDMA(bytes: 0, faulted: true)
                machine?.recordFault(f)
                throw f
            }
            if path.externalActive.isSet, !access.contains(.write) {
                path.memory.willRead(PhysicalAddress(rawValue: pa), count: count)
            }
            copy(path.memoryBase + Int(pa), 0, count)
            if path.externalActive.isSet, access.contains(.write) {
                path.memory.didWrite(PhysicalAddress(rawValue: pa), count: count)
            }
            machine?.noteUntranslatedDMA(bytes: count, faulted: false)
            return
        }
        let checking = path.checkerEnabled.isSet
        let ats = path.ats
        var done = 0
        var request = TranslationRequest(rid: rid, pasid: pasid, privileged: privileged, access: access, address: address,
                                         ats: ats)
        while done < count {
            request.address = address &+ UInt64(done)
            pthread_mutex_lock(mutex)
            let translated: TranslationResult
            if ats, let hit = atcLookup(request) {
                stats.pointee.atcHits &+= 1
                translated = hit
            } else {
                translated = unit._withUnsafeGuaranteedRef { $0.hardware.translate(request) }
                if ats, case .translated = translated { atcFill(request, translated) }
            }
            if done == 0 { stats.pointee.requests &+= 1 }
            guard case .translated(let physical, let length, let cached) = translated else {
                stats.pointee.faults &+= 1
                pthread_mutex_unlock(mutex)
                if case .fault(let reason) = translated { try fail(request, reason) }
                return
            }
            let n = min(count - done, Int(clamping: length))
            stats.pointee.bytes &+= n
            let pa = physical.rawValue
            guard pa < memorySize, UInt64(n) <= memorySize - pa else {
                pthread_mutex_unlock(mutex)
                return try fail(request, .outsideMemory)
            }
            // The bytes move under the unit's lock, which every invalidation takes: once
            // an invalidation (and so iommu_unmap or iommu_iotlb_sync) returns, no DMA is
            // still moving bytes through a translation it removed, as the hardware's
            // invalidation wait drains requests in flight. Frames whose bytes live outside
            // the model (``ExternalFrameOwner``) are refreshed before and written back after.
            let external = path.externalActive.isSet
            if external, !access.contains(.write) { path.memory.willRead(physical, count: n) }
            copy(path.memoryBase + Int(pa), done, n)
            if external, access.contains(.write) { path.memory.didWrite(physical, count: n) }
            pthread_mutex_unlock(mutex)
            // The checker takes the core's locks, which are taken before the unit's.
            if checking { check(request, physical: physical, cached: cached, by: path.checker) }
            done += n
        }
    }

    /// Out of line, so that the engine's loop reads no class property (the weak
    /// `machine`) and so pays no dynamic exclusivity check while the checker is off.
    @inline(never)
    private func check(_ request: TranslationRequest, physical: PhysicalAddress, cached: Bool,
                       by checker: InvariantChecker) {
        guard let machine else { return }
        checker.checkTranslation(machine: machine, device: self, request: request, physical: physical, cached: cached)
    }

    @inline(never)
    private func fail(_ request: TranslationRequest, _ reason: FaultReason) throws(DMAFault) {
        let f = DMAFault(device: rid, pasid: request.pasid, address: request.address, access: request.access,
                         reason: reason, iommu: iommu?.name ?? "none")
        machine?.recordFault(f)
        throw f
    }
}

/// Everything the DMA engine needs, resolved when the device joins a machine or changes
/// IOMMU, as plain values and unowned(unsafe) references. Copying it costs no reference
/// counting: profiling showed retain/release of these objects was over half of an 8-byte
/// DMA. It is safe because the machine owns the memory, the checker and the units, the
/// device holds its unit, and the machine clears every device's path when it goes away.
struct DMAPath {
    let memoryBase: UnsafeMutableRawPointer
    let memorySize: UInt64
    /// The checker's on/off switch (an atomic: it may flip while devices DMA).
    let checkerEnabled: AtomicFlag.Reference
    /// `PhysicalMemory.externalFramesActive`: whether any frame's bytes live outside the
    /// model (see ``ExternalFrameOwner``).
    let externalActive: AtomicFlag.Reference
    unowned(unsafe) let memory: PhysicalMemory
    unowned(unsafe) let checker: InvariantChecker
    let unit: Unmanaged<IOMMUDevice>?
    let mutex: UnsafeMutablePointer<pthread_mutex_t>?
    let stats: UnsafeMutablePointer<DMAStats>?
    /// The device's `atsEnabled` when the path was resolved (refreshed when it changes).
    let ats: Bool

    init(machine: Machine, unit: IOMMUDevice?, ats: Bool) {
        self.ats = ats
        memoryBase = machine.memory.base
        memorySize = machine.memory.size
        checkerEnabled = machine.checker.enabledFlag.reference
        externalActive = machine.memory.externalFramesActive.reference
        memory = machine.memory
        checker = machine.checker
        self.unit = unit.map { Unmanaged.passUnretained($0) }
        mutex = unit?.hardwareLock.mutex
        stats = unit?.dmaStatsStorage
    }
}
