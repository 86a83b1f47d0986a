import IOMMUCore

/// An open user file on a user WQ (`struct idxd_user_context`, `drivers/dma/idxd/cdev.c`):
/// the process that opened it, its SVA bond and PASID.
public final class IDXDUserContext: @unchecked Sendable {
    /// The WQ the file is open on.
    public let wq: IDXDWorkQueue
    /// The opener's address space (`ctx->mm`).
    public let mm: Process
    var bond: SVABond?
    var pasid: PASID?
    var isOpen = true

    init(wq: IDXDWorkQueue, mm: Process) {
        self.wq = wq
        self.mm = mm
    }

    var device: IDXDDevice { wq.device }

    /// The SVA PASID of this file (`ctx->pasid`), nil once closed.
    public var userPasid: PASID? { device.lock.withLock { isOpen ? pasid : nil } }
    /// Whether the file is still open.
    public var open: Bool { device.lock.withLock { isOpen } }
    var pasidIfBound: PASID? { bond != nil ? pasid : nil }

    /// `idxd_cdev_mmap`: maps the WQ's limited portal into the caller.
    /// - Throws: `EPERM` on a device where user submission is unsafe (INTEL-SA-01084)
    ///   and the caller lacks `CAP_SYS_RAWIO`, or when `process` is not the opener
    ///   (`current->mm != ctx->mm`); `EBADF` after close.
    public func mmap(from process: Process, capSysRawIO: Bool = false) throws(Errno) -> IDXDPortal {
        try device.lock.withLock { () throws(Errno) -> IDXDPortal in
            guard isOpen else { throw .badFileDescriptor }
            guard device.options.userSubmissionSafe || capSysRawIO else { throw .notPermitted }
            guard process === mm else { throw .notPermitted }
            return IDXDPortal(context: self)
        }
    }

    /// `idxd_cdev_write`: the kernel submits `descriptors` for the caller
    /// (`idxd_submit_user_descriptor` each): a dedicated WQ by MOVDIR64B (PASID from
    /// WQCFG), a shared one by ENQCMDS with `priv = 0` and `pasid = ctx->pasid`, whatever
    /// the descriptor said.
    /// - Returns: bytes written (64 per descriptor accepted).
    /// - Throws: `EPERM` when `process` is not the opener; `EINVAL` for a BATCH
    ///   descriptor on a device where user submission is unsafe, or a completion address
    ///   not 32-byte (DSA) / 64-byte (IAA) aligned; `EAGAIN` a full WQ; `EBADF` after
    ///   close. An error after some descriptors were accepted returns their bytes
    ///   instead, as the kernel does; a refused descriptor is never queued.
    public func write(_ descriptors: [IDXDDescriptor], from process: Process) throws(Errno) -> Int {
        try device.lock.withLock { () throws(Errno) -> Int in
            guard isOpen else { throw .badFileDescriptor }
            guard process === mm else { throw .notPermitted }
            var written = 0
            for d in descriptors {
                do throws(Errno) { try submitUser(d) } catch {
                    if written > 0 { return written }
                    throw error
                }
                written += 64
            }
            return written
        }
    }

    private func submitUser(_ descriptor: IDXDDescriptor) throws(Errno) {
        let dev = device
        if dev.options.kind == .dsa && descriptor.opcode == .batch && !dev.options.userSubmissionSafe {
            throw .invalidArgument
        }
        // A misaligned completion record confuses the engine (a security issue).
        guard descriptor.completionAddress.isAligned(to: dev.options.kind.completionAlignment) else {
            throw .invalidArgument
        }
        guard wq._enabled else { throw .noSuchDeviceOrAddress }
        if wq._mode == .dedicated {
            guard wq.pending.count < wq._size else { throw .tryAgain }
            dev.movdir64b(descriptor, to: wq)
        } else {
            var d = descriptor
            d.priv = false
            d.pasid = pasid
            try dev.enqcmdsRetrying(d, to: wq)
        }
    }

    /// `idxd_cdev_release` → `idxd_file_dev_release`: stop the device using the PASID
    /// first — `IDXD_CMD_DRAIN_PASID` on a shared WQ, `idxd_wq_disable_pasid` (disable,
    /// which drains, clear the PASID, enable) on a dedicated one — and only then
    /// `iommu_sva_unbind_device`, which clears the PASID entry and drains page requests
    /// (the checker's PASID teardown order, I10). A second close does nothing.
    public func close() {
        device.lock.withLock {
            releaseLocked()
            wq.contexts.removeAll { $0 === self }
        }
    }

    /// The release itself; the caller removes the context from its WQ. Lock held.
    func releaseLocked() {
        guard isOpen else { return }
        isOpen = false
        let dev = device
        if let pasid, bond != nil {
            if wq._mode == .shared { dev.drainPasid(pasid) } else { dev.clearWQPasid(wq) }
        }
        if let bond, let iommu = dev.iommu {
            dev.log(.iommu("iommu_sva_unbind_device pasid \(pasid.map { "\($0)" } ?? "-")"))
            iommu.svaUnbindDevice(bond)
        }
        bond = nil
    }
}

/// A WQ portal mapped into the opener's address space: what user space submits through.
/// The CPU instruction decides where the PASID comes from.
public struct IDXDPortal: Sendable {
    let context: IDXDUserContext

    /// The WQ behind the portal.
    public var wq: IDXDWorkQueue { context.wq }

    /// ENQCMD by a thread of the process that mapped the portal: the CPU stamps the
    /// thread's PASID (its mm's SVA PASID) and `priv = 0`, whatever the descriptor says.
    /// Returns ``IDXDEnqueueResult/retry`` when the shared WQ is at its threshold (user
    /// space retries), ``IDXDEnqueueResult/generalProtection`` when the mm has no PASID,
    /// and ``IDXDEnqueueResult/retry`` too for a dedicated WQ or a closed file (the device
    /// rejects ENQCMD to a dedicated WQ; a closed file's mapping is gone).
    public func enqcmd(_ descriptor: IDXDDescriptor) -> IDXDEnqueueResult {
        let dev = context.device
        return dev.lock.withLock {
            guard context.isOpen, context.wq._mode == .shared else { return .retry }
            return dev.enqcmdOnce(descriptor, to: context.wq, from: context.mm)
        }
    }

    /// MOVDIR64B to a dedicated WQ: the device uses WQCFG's PASID (set at open). Returns
    /// whether the WQ took it (a full or shared WQ drops the posted write; SWERR says so).
    @discardableResult
    public func movdir64b(_ descriptor: IDXDDescriptor) -> Bool {
        let dev = context.device
        return dev.lock.withLock {
            guard context.isOpen, context.wq._mode == .dedicated else {
                dev._softwareErrors.append("wq\(context.wq.id): MOVDIR64B to a shared WQ portal dropped")
                return false
            }
            return dev.movdir64b(descriptor, to: context.wq)
        }
    }
}

extension IDXDDevice {
    /// `idxd_cdev_open` by `process`: on a dedicated WQ only one file may be open; with
    /// user PASID the process's mm is bound (`iommu_sva_bind_device`), its PASID read
    /// (`iommu_sva_get_pasid`) and, for a dedicated WQ, written to WQCFG
    /// (`idxd_wq_set_pasid`).
    /// - Throws: `EINVAL` unknown WQ or an invalid PASID from the bind; `ENODEV` the WQ is
    ///   not an enabled user WQ (no character device); `EBUSY` a dedicated WQ already open
    ///   (check 78); the bind's errno (`ENODEV`, `EOVERFLOW`, `ENOSPC`, `EBUSY`,
    ///   `EOPNOTSUPP`, `EFAULT`). Nothing stays bound on error.
    public func open(wq id: Int, process: Process) throws(Errno) -> IDXDUserContext {
        try lock.withLock { () throws(Errno) -> IDXDUserContext in
            guard workQueues.indices.contains(id) else { throw .invalidArgument }
            let wq = workQueues[id]
            guard wq._enabled, wq._type == .user, let iommu else { throw .noDevice }
            if wq._mode == .dedicated && !wq.contexts.isEmpty { throw .busy }
            let ctx = IDXDUserContext(wq: wq, mm: process)
            if _userPasidEnabled {
                log(.iommu("iommu_sva_bind_device pid \(process.pid)"))
                let bond = try iommu.svaBindDevice(pci, mm: process)
                let pasid = iommu.svaGetPasid(bond)
                if wq.contexts.contains(where: { $0.pasid == pasid }) {
                    log(.message("PASID entry already exist in xarray."))
                }
                ctx.bond = bond
                ctx.pasid = pasid
                if wq._mode == .dedicated { setWQPasid(wq, pasid) }
            }
            wq.contexts.append(ctx)
            return ctx
        }
    }
}
