import IOMMUCore

/// What the CPU reports after ENQCMD/ENQCMDS (the ZF flag) or a user ENQCMD that could
/// not run at all.
public enum IDXDEnqueueResult: Sendable, Hashable {
    /// The WQ accepted the descriptor (ZF = 0).
    case accepted
    /// The shared WQ was full (ZF = 1): the submitter must retry.
    case retry
    /// ENQCMD raised #GP because the thread has no PASID (the mm was never bound): the
    /// process would get SIGSEGV.
    case generalProtection
}

extension IDXDDevice {
    /// Accepts `q` into `wq` if `capacity` allows; runs it at once unless the engine is
    /// manual. Lock held.
    func accept(_ q: QueuedDescriptor, into wq: IDXDWorkQueue, capacity: Int) -> Bool {
        guard wq._enabled, wq.pending.count < capacity else { return false }
        wq.pending.append(q)
        if !_manualEngine { runPending { _ in true } }
        return true
    }

    /// MOVDIR64B to a dedicated WQ's portal: a posted 64-byte write. The device stamps
    /// the descriptor with WQCFG's PASID (when `pasid_en`) and `priv`, ignoring the
    /// descriptor's own fields. A full WQ drops it and logs a software error.
    /// Lock held. Returns whether the WQ took it.
    @discardableResult
    func movdir64b(_ d: IDXDDescriptor, to wq: IDXDWorkQueue) -> Bool {
        let cfg = wq._config
        let q = QueuedDescriptor(wq: wq.id, descriptor: d, pasid: cfg.pasidEnabled ? cfg.pasid : nil, privileged: cfg.priv)
        if accept(q, into: wq, capacity: wq._size) { return true }
        _softwareErrors.append("wq\(wq.id): MOVDIR64B dropped (WQ full or disabled)")
        return false
    }

    /// ENQCMDS (ring 0): PASID and privilege come from the descriptor. ENQCMDS may fill a
    /// shared WQ up to its size. Lock held.
    func enqcmdsOnce(_ d: IDXDDescriptor, to wq: IDXDWorkQueue) -> IDXDEnqueueResult {
        let q = QueuedDescriptor(wq: wq.id, descriptor: d, pasid: d.pasid, privileged: d.priv)
        return accept(q, into: wq, capacity: wq._size) ? .accepted : .retry
    }

    /// ENQCMD (ring 3): the CPU replaces the descriptor's PASID with the thread's
    /// IA32_PASID (the mm's PASID, `mm_get_enqcmd_pasid`) and clears `priv`; it may only
    /// fill a shared WQ up to its threshold. Lock held.
    func enqcmdOnce(_ d: IDXDDescriptor, to wq: IDXDWorkQueue, from mm: Process) -> IDXDEnqueueResult {
        guard let pasid = mm.enqcmdPasid else { return .generalProtection }
        var stamped = d
        stamped.pasid = pasid
        stamped.priv = false
        let q = QueuedDescriptor(wq: wq.id, descriptor: stamped, pasid: pasid, privileged: false)
        return accept(q, into: wq, capacity: wq._threshold) ? .accepted : .retry
    }

    /// `idxd_enqcmds(wq, portal, desc)`: ENQCMDS, retried `enqcmds_retries` times while
    /// the shared WQ is full (the device may complete work meanwhile, see
    /// ``descriptorsCompletedPerRetry``). Lock held.
    /// - Throws: `EAGAIN` if the WQ stayed full.
    func enqcmdsRetrying(_ d: IDXDDescriptor, to wq: IDXDWorkQueue) throws(Errno) {
        var left = options.enqcmdsRetries
        while true {
            if enqcmdsOnce(d, to: wq) == .accepted { return }
            guard left > 0, wq._enabled else { throw .tryAgain }
            left -= 1
            _retries += 1
            if _manualEngine && _progressPerRetry > 0 { runEngine(limit: _progressPerRetry) }
        }
    }

    /// `idxd_submit_desc` for a dmaengine descriptor (`idxd_dma_submit_memcpy` & co.):
    /// the kernel stamps the kernel PASID when it has one and `priv = 0` (kernel DMA on
    /// VT-d uses user privilege), then MOVDIR64B to a dedicated WQ or ENQCMDS with retries
    /// to a shared one. A dedicated kernel WQ without kernel PASID runs on the RID.
    /// - Throws: `EINVAL` unknown WQ; `ENXIO` the WQ is not an enabled kernel WQ
    ///   (`percpu_ref_tryget_live` fails); `EAGAIN` a full shared WQ after the retries,
    ///   or a full dedicated WQ (no free descriptor slot, `IDXD_OP_NONBLOCK`). Nothing is
    ///   queued on error.
    public func submitKernel(_ descriptor: IDXDDescriptor, wq id: Int) throws(Errno) {
        try lock.withLock { () throws(Errno) in
            guard workQueues.indices.contains(id) else { throw .invalidArgument }
            let wq = workQueues[id]
            guard wq._enabled, wq._type == .kernel else { throw .noSuchDeviceOrAddress }
            var d = descriptor
            d.pasid = _kernelPasid
            d.priv = false
            if wq._mode == .dedicated {
                guard wq.pending.count < wq._size else { throw .tryAgain }
                movdir64b(d, to: wq)
            } else {
                try enqcmdsRetrying(d, to: wq)
            }
        }
    }

    /// A kernel user of the shared WQ building its own descriptor (PASID and `priv` as
    /// given) and submitting it with `idxd_enqcmds`: how the PASID flavours other than
    /// the kernel PASID (supervisor SVA, private PASIDs) reach the device.
    /// - Throws: `EINVAL` unknown or dedicated WQ (ENQCMDS needs a shared WQ portal);
    ///   `ENXIO` WQ not enabled; `EAGAIN` still full after the retries.
    public func enqcmds(_ descriptor: IDXDDescriptor, wq id: Int) throws(Errno) {
        try lock.withLock { () throws(Errno) in
            guard workQueues.indices.contains(id) else { throw .invalidArgument }
            let wq = workQueues[id]
            guard wq._mode == .shared else { throw .invalidArgument }
            guard wq._enabled else { throw .noSuchDeviceOrAddress }
            try enqcmdsRetrying(descriptor, to: wq)
        }
    }
}
