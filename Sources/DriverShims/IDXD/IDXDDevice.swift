import IOMMUCore

/// An idxd-like accelerator (Intel DSA/IAA) and its driver (`drivers/dma/idxd`): the PCI
/// function, its work queues and engine, probe and remove, and the kernel side of
/// submission. One device serves DMA without PASID, a kernel PASID and user SVA PASIDs at
/// once, each translated by the IOMMU and reached through the core API only.
///
/// Build the PCI function with ``makeFunction(rid:name:privilegedMode:)``, add it to a
/// machine behind an IOMMU, then ``probe(_:options:)``.
///
/// Thread-safe: one lock guards the device, its WQs and user contexts (the kernel's
/// `dev_lock` and `wq_lock` folded together).
public final class IDXDDevice: @unchecked Sendable {
    /// The PCI function (`idxd->pdev`).
    public let pci: PCIDevice
    /// Probe options (module parameters and device properties).
    public let options: IDXDOptions
    /// The work queues (`idxd->wqs`), fixed at probe.
    public private(set) var workQueues: [IDXDWorkQueue] = []

    let lock = RecursiveLock()
    var _enabled = false
    var _bound = false
    var _kernelPasid: PASID?
    var _userPasidEnabled = false
    var _cmdStatus = IDXDCommandStatus.ok
    var _trace: [IDXDTraceEntry] = []
    var _completions: [IDXDCompletion] = []
    var _softwareErrors: [String] = []
    var _manualEngine = false
    var _progressPerRetry = 0
    var _retries = 0

    /// A PCI function with what DSA advertises: PASID (20 bits; Privileged Mode as given),
    /// ATS and PRI.
    public static func makeFunction(rid: RID, name: String = "dsa0", privilegedMode: Bool = true) -> PCIDevice {
        PCIDevice(rid: rid, name: name,
                  caps: PCICapabilities(pasid: PASIDCapability(width: 20, privileged: privilegedMode), ats: true, pri: true))
    }

    private init(pci: PCIDevice, options: IDXDOptions) {
        self.pci = pci
        self.options = options
        workQueues = (0..<max(0, options.workQueues)).map { IDXDWorkQueue(id: $0, device: self) }
    }

    var iommu: IOMMUSubsystem? { pci.machine?.iommu }

    // MARK: observation

    /// The kernel PASID (`idxd->pasid`), nil when kernel DMA with PASID is off.
    public var kernelPasid: PASID? { lock.withLock { _kernelPasid } }
    /// `IDXD_FLAG_PASID_ENABLED`: the default domain is attached to the kernel PASID.
    public var kernelPasidEnabled: Bool { kernelPasid != nil }
    /// `IDXD_FLAG_USER_PASID_ENABLED`: user WQs (SVA) are allowed.
    public var userPasidEnabled: Bool { lock.withLock { _userPasidEnabled } }
    /// Whether the device is enabled (`IDXD_DEV_ENABLED`).
    public var isEnabled: Bool { lock.withLock { _enabled } }
    /// Whether the driver is bound (between probe and remove).
    public var isBound: Bool { lock.withLock { _bound } }
    /// sysfs `cmd_status`: why the last enable failed.
    public var commandStatus: IDXDCommandStatus { lock.withLock { _cmdStatus } }
    /// Device commands and IOMMU calls, oldest first.
    public var trace: [IDXDTraceEntry] { lock.withLock { _trace } }
    /// Every descriptor the engine executed, oldest first.
    public var completions: [IDXDCompletion] { lock.withLock { _completions } }
    /// Errors the device logged in SWERR (a dropped MOVDIR64B, a completion record that
    /// could not be written).
    public var softwareErrors: [String] { lock.withLock { _softwareErrors } }
    /// ENQCMDS retries the kernel made so far (each spin of `idxd_enqcmds`).
    public var enqcmdsRetryCount: Int { lock.withLock { _retries } }
    /// Forgets the trace and the completion log.
    public func clearTrace() {
        lock.withLock {
            _trace.removeAll()
            _completions.removeAll()
        }
    }

    /// The engine model. `false` (default): a descriptor runs as soon as a WQ accepts it.
    /// `true`: descriptors wait in their WQ until ``runEngine(limit:)`` (or a drain), so a
    /// WQ can fill up.
    public var manualEngine: Bool {
        get { lock.withLock { _manualEngine } }
        set { lock.withLock { _manualEngine = newValue } }
    }

    /// With ``manualEngine``: descriptors the device completes while the CPU spins once in
    /// `idxd_enqcmds` (0: the device is stalled and the retry gives up with `EAGAIN`).
    public var descriptorsCompletedPerRetry: Int {
        get { lock.withLock { _progressPerRetry } }
        set { lock.withLock { _progressPerRetry = max(0, newValue) } }
    }

    func log(_ e: IDXDTraceEntry) { _trace.append(e) }
    func command(_ c: IDXDCommand) { _trace.append(.command(c)) }

    // MARK: probe / remove

    /// `idxd_pci_probe` → `idxd_probe` → `idxd_device_drv_probe`: the driver core claims
    /// the default domain for the DMA API (`iommu_device_use_default_domain`), the device
    /// is reset, then with `sva` user PASIDs are allowed and the kernel PASID is set up
    /// (`idxd_enable_system_pasid`: `iommu_get_domain_for_dev`, `iommu_alloc_global_pasid`,
    /// `iommu_attach_device_pasid` of that domain); if that fails the driver logs "No
    /// in-kernel DMA with PASID" and carries on without it. Finally the WQs are created
    /// and the device is enabled.
    /// A function without PASID probes fine and runs its kernel WQs on the RID.
    /// - Throws: `ENODEV` when `pci` is on no machine; `EINVAL` for fewer than one WQ, a
    ///   negative retry count or a zero transfer limit; the errno of
    ///   `iommu_device_use_default_domain` (`EPROBE_DEFER`, `EBUSY`). Nothing is claimed
    ///   on error.
    public static func probe(_ pci: PCIDevice, options: IDXDOptions = IDXDOptions()) throws(Errno) -> IDXDDevice {
        guard let machine = pci.machine else { throw .noDevice }
        guard options.workQueues >= 1, options.enqcmdsRetries >= 0, options.maxTransferBytes > 0 else {
            throw .invalidArgument
        }
        let dev = IDXDDevice(pci: pci, options: options)
        try dev.lock.withLock { () throws(Errno) in
            dev.log(.iommu("iommu_device_use_default_domain"))
            try machine.iommu.deviceUseDefaultDomain(pci)
            dev._bound = true
            dev.command(.resetDevice)
            if options.sva {
                // User SVA is allowed by the module parameter alone; a function without
                // PASID fails later, at bind (and the kernel PASID fails to allocate).
                dev._userPasidEnabled = true
                do throws(Errno) { try dev.enableSystemPasid() } catch {
                    dev.log(.message("No in-kernel DMA with PASID. \(error)"))
                }
            } else {
                dev.log(.message("User forced SVA off via module param."))
            }
            dev.command(.enableDevice)
            dev._enabled = true
        }
        return dev
    }

    /// `idxd_enable_system_pasid`.
    /// - Throws: `EPERM` no domain; `ENOSPC` no global PASID; the attach errno (the
    ///   PASID is freed again).
    private func enableSystemPasid() throws(Errno) {
        guard let iommu else { throw .noDevice }
        log(.iommu("iommu_get_domain_for_dev"))
        guard let domain = iommu.domainForDevice(pci) else { throw .notPermitted }
        log(.iommu("iommu_alloc_global_pasid"))
        // idxd_enable_system_pasid turns IOMMU_PASID_INVALID into ENOSPC.
        let pasid: PASID
        do { pasid = try iommu.allocGlobalPasid(for: pci) } catch { throw .noSpace }
        log(.iommu("iommu_attach_device_pasid pasid \(pasid)"))
        do throws(Errno) { try iommu.attachDevicePasid(domain, to: pci, pasid: pasid) } catch {
            log(.iommu("iommu_free_global_pasid pasid \(pasid)"))
            iommu.freeGlobalPasid(pasid)
            throw error
        }
        _kernelPasid = pasid
    }

    /// `idxd_disable_system_pasid`: detach the default domain from the kernel PASID,
    /// then free the PASID.
    private func disableSystemPasid() {
        guard let pasid = _kernelPasid, let iommu else { return }
        if let domain = iommu.domainForDevice(pci) {
            log(.iommu("iommu_detach_device_pasid pasid \(pasid)"))
            iommu.detachDevicePasid(domain, from: pci, pasid: pasid)
        }
        log(.iommu("iommu_free_global_pasid pasid \(pasid)"))
        iommu.freeGlobalPasid(pasid)
        _kernelPasid = nil
    }

    /// `idxd_remove` and the driver core's unbind: every open user file is released in
    /// the kernel's order (drain, then SVA unbind), every WQ is disabled (drained),
    /// the device is disabled and reset, the kernel PASID is detached and freed, and only
    /// then the DMA-API claim is dropped (`iommu_device_unuse_default_domain`, which
    /// WARNs if PASIDs are still attached; check 82). A second call does nothing.
    public func remove() {
        lock.withLock {
            guard _bound else { return }
            for wq in workQueues {
                for ctx in wq.contexts { ctx.releaseLocked() }
                if wq._enabled { disableWQLocked(wq) }
            }
            command(.disableDevice)
            command(.resetDevice)
            _enabled = false
            disableSystemPasid()
            _userPasidEnabled = false
            log(.iommu("iommu_device_unuse_default_domain"))
            iommu?.deviceUnuseDefaultDomain(pci)
            _bound = false
        }
    }
}
