import IOMMUCore

extension IDXDDevice {
    /// The sysfs writes that configure a disabled WQ (`mode`, `size`, `threshold`).
    /// `pasid: false` is a model knob with no sysfs file: it keeps a dedicated kernel WQ
    /// on the RID even when the device has a kernel PASID, as on a kernel without one, so
    /// that RID and PASID work can run side by side on one device.
    /// - Throws: `EPERM` if the WQ is enabled (sysfs refuses changes then); `EINVAL` for a
    ///   WQ number out of range, a size below 1 or a threshold above the size. Nothing
    ///   changes on error.
    public func configureWQ(_ id: Int, mode: IDXDWQMode, size: Int = 16, threshold: Int? = nil,
                            pasid: Bool = true) throws(Errno) {
        try lock.withLock { () throws(Errno) in
            guard workQueues.indices.contains(id) else { throw .invalidArgument }
            let wq = workQueues[id]
            guard !wq._enabled else { throw .notPermitted }
            let t = threshold ?? (mode == .shared ? size : 0)
            guard size >= 1, t >= 0, t <= size else { throw .invalidArgument }
            wq._mode = mode
            wq._size = size
            wq._threshold = t
            wq._pasidAllowed = pasid
        }
    }

    /// Binds a WQ to a driver: `idxd_dmaengine_drv_probe` for ``IDXDWQType/kernel``,
    /// `idxd_user_drv_probe` for ``IDXDWQType/user``, both around `idxd_drv_enable_wq`:
    /// a shared WQ needs a PASID for its type (`wq_shared_supported`) and a threshold; a
    /// kernel WQ, or any shared WQ, whose type has a PASID gets WQCFG `pasid_en` with the
    /// kernel PASID (dedicated) or 0 (shared: each descriptor carries its own); WQCFG
    /// `priv` stays 0; a dedicated kernel WQ with `pasid_en` needs the PCI PASID
    /// capability's Privileged Mode (a DSA architecture rule). A dedicated kernel WQ without a
    /// kernel PASID runs on the RID. Dedicated user WQs get their PASID at open.
    /// On failure ``commandStatus`` says why.
    /// - Throws: for a user WQ without user PASID `EOPNOTSUPP`
    ///   (`IDXD_SCMD_WQ_USER_NO_IOMMU`, check 77); `EBUSY` already enabled
    ///   (`IDXD_SCMD_WQ_ENABLED`); otherwise `ENXIO` with the reason in
    ///   ``commandStatus`` (`IDXD_SCMD_WQ_NO_SVM`, `_NO_THRESH`, `_NO_PRIV`,
    ///   `_DEV_NOT_ENABLED`) — the dmaengine probe turns every enable failure into
    ///   `-ENXIO`, and so does `idxd_drv_enable_wq` for the user ones it detects.
    ///   `EINVAL` for `.none` or an unknown WQ. Nothing changes on error.
    public func enableWQ(_ id: Int, type: IDXDWQType) throws(Errno) {
        try lock.withLock { () throws(Errno) in
            guard workQueues.indices.contains(id), type != .none else { throw .invalidArgument }
            let wq = workQueues[id]
            if type == .user && !_userPasidEnabled {
                _cmdStatus = .wqUserNoIOMMU
                throw .notSupported
            }
            do throws(Errno) { try enableWQLocked(wq, type: type) } catch {
                // The dmaengine probe reports any failure of idxd_drv_enable_wq as ENXIO.
                throw type == .kernel && error != .busy ? .noSuchDeviceOrAddress : error
            }
            _cmdStatus = .ok
        }
    }

    /// `idxd_drv_enable_wq` with the WQCFG write of `idxd_wq_config_write`.
    private func enableWQLocked(_ wq: IDXDWorkQueue, type: IDXDWQType) throws(Errno) {
        guard _enabled else {
            _cmdStatus = .deviceNotEnabled
            throw .noSuchDeviceOrAddress
        }
        guard !wq._enabled else {
            _cmdStatus = .wqEnabled
            throw .busy
        }
        let oldType = wq._type
        wq._type = type
        var config = IDXDWQConfig()
        do throws(Errno) {
            if wq._mode == .shared {
                guard wq.sharedSupported, wq._pasidAllowed else {
                    _cmdStatus = .wqNoSVM
                    throw .noSuchDeviceOrAddress
                }
                guard wq._threshold > 0 else {
                    _cmdStatus = .wqNoThreshold
                    throw .noSuchDeviceOrAddress
                }
            }
            if wq._pasidAllowed && wq.pasidEnabledForType && (type == .kernel || wq._mode == .shared) {
                config.pasidEnabled = true
                config.pasid = wq._mode == .dedicated ? _kernelPasid : nil
            }
            // DSA spec: a dedicated WQ with pasid_en needs PASID Privileged Mode enabled.
            let privMode = pci.pasidEnabled && pci.caps.pasid?.privileged == true
            if wq._mode == .dedicated && config.pasidEnabled && type == .kernel && !privMode {
                _cmdStatus = .wqNoPriv
                throw .notSupported
            }
        } catch {
            wq._type = oldType
            throw error
        }
        wq._config = config
        command(.enableWQ(wq.id))
        wq._enabled = true
    }

    /// Unbinds a WQ from its driver (`idxd_drv_disable_wq`): drain, reset, type none.
    /// - Throws: `EINVAL` unknown WQ; `EBUSY` while user files are open on it (the kernel
    ///   would wait for them to close; the model refuses instead). A disabled WQ is left
    ///   as it is.
    public func disableWQ(_ id: Int) throws(Errno) {
        try lock.withLock { () throws(Errno) in
            guard workQueues.indices.contains(id) else { throw .invalidArgument }
            let wq = workQueues[id]
            guard wq.contexts.isEmpty else { throw .busy }
            if wq._enabled { disableWQLocked(wq) }
        }
    }

    func disableWQLocked(_ wq: IDXDWorkQueue) {
        command(.disableWQ(wq.id))
        runPending { $0.wq == wq.id }
        wq._enabled = false
        wq._type = .none
        wq._config = IDXDWQConfig()
    }

    /// `idxd_wq_set_pasid` on a dedicated WQ: disable (drains), write WQCFG PASID, enable.
    func setWQPasid(_ wq: IDXDWorkQueue, _ pasid: PASID) {
        command(.disableWQ(wq.id))
        runPending { $0.wq == wq.id }
        wq._config = IDXDWQConfig()
        wq._config.pasidEnabled = true
        wq._config.pasid = pasid
        command(.enableWQ(wq.id))
    }

    /// `idxd_wq_disable_pasid` on a dedicated WQ: disable (drains), clear the WQCFG PASID,
    /// enable again.
    func clearWQPasid(_ wq: IDXDWorkQueue) {
        command(.disableWQ(wq.id))
        runPending { $0.wq == wq.id }
        wq._config = IDXDWQConfig()
        command(.enableWQ(wq.id))
    }

    /// `idxd_device_drain_pasid`: `IDXD_CMD_DRAIN_PASID` completes every descriptor of
    /// `pasid` still queued on any WQ before it returns.
    public func drainPasid(_ pasid: PASID) {
        lock.withLock {
            command(.drainPASID(pasid))
            runPending { $0.pasid == pasid }
        }
    }
}
