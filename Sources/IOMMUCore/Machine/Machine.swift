import Synchronization

/// The world a scenario runs in: physical memory, the IOMMU units, the PCI devices, the
/// processes, and the IOMMU core (`iommu`) that drives them. Tests and examples build one,
/// add IOMMUs and devices, then bind drivers.
public final class Machine: @unchecked Sendable {
    /// Physical memory (page tables, hardware tables and DMA buffers all live here).
    public let memory: PhysicalMemory
    /// The CPU architecture: the format of every process's page table (``makeProcess(pid:levels:)``).
    public let architecture: CPUArchitecture
    /// The IOMMU core of this machine.
    public var iommu: IOMMUSubsystem { _iommu }
    // Set once at the end of init: the core needs `self` to exist first.
    private var _iommu: IOMMUSubsystem!
    /// The event log (off by default).
    public let events = EventLog()
    /// The invariant checker (off by default).
    public let checker = InvariantChecker()

    private let lock = Lock()
    private var _iommus: [IOMMUDevice] = []
    private var _devices: [PCIDevice] = []
    private var _warnings: [Warning] = []
    private var _faults: [DMAFault] = []
    private var coreCounters = Counters()
    /// `iommu_map`/`iommu_unmap` counts: atomics rather than fields under `lock`, since
    /// every map and unmap bumps one (the other core counters are rare).
    /// Shared with the core, which bumps them without going through this object.
    let mapCounters = MapCounters()
    /// Who adds objects to ``graph(title:)`` besides the core (iommufd contexts).
    let graphContributors = GraphContributors()

    /// A machine with `memory` bytes of physical address space (default 64 GiB, committed
    /// only where touched) and CPUs of `architecture`.
    public init(memory: UInt64 = 64 << 30, architecture: CPUArchitecture = .x86_64) {
        self.memory = PhysicalMemory(size: memory)
        self.architecture = architecture
        _iommu = IOMMUSubsystem(machine: self)
        // The allocator's WARNs (double free, put of a free frame) are the machine's.
        self.memory.warningHandler = { [weak self] warning in self?.recordWarning(warning) }
        observeEnvironment()
    }

    deinit {
        // Devices may outlive the machine; their cached DMA path must not.
        for dev in _devices { dev.machine = nil }
    }

    /// A new address space on this machine (`mm_alloc` + `pgd_alloc`): a ``/Platform/Process``
    /// whose page table has the format of the machine's ``architecture``.
    /// - Throws: `EINVAL` for a level count the architecture has no paging mode for
    ///   (x86-64: 4 or 5; arm64: 4); `ENOMEM` if the top-level table cannot be allocated.
    public func makeProcess(pid: Int32, levels: Int = 4) throws(Errno) -> Process {
        try Process(memory: memory, pid: pid, architecture: architecture, levels: levels)
    }

    /// IOMMU units, in registration order.
    public var iommus: [IOMMUDevice] { lock.withLock { _iommus } }
    /// PCI devices, in the order they were added.
    public var allDevices: [PCIDevice] { lock.withLock { _devices } }
    /// Kernel WARNs the model recorded.
    public var warnings: [Warning] { lock.withLock { _warnings } }

    /// Records a `WARN_ON` that fired (in ``warnings`` and as a `core:warn` event): how
    /// the core, and a vendor driver, report a kernel bug or misuse that the kernel
    /// would print a stack for but survive.
    public func recordWarning(_ w: Warning) {
        lock.withLock { _warnings.append(w) }
        events.record(.model("warn", [.init("function", w.function), .init("message", w.message)]))
    }

    /// Registers an IOMMU unit (`iommu_device_register`) and probes the devices already
    /// placed behind it the way `bus_iommu_probe` does: every device joins its group
    /// first, then each new group gets its default domain.
    public func addIOMMU(_ unit: IOMMUDevice) {
        addIOMMU(unit, stoppingBeforeDefaultDomains: false)
    }

    /// Test hook: registers `unit` but stops between the two halves of `bus_iommu_probe`,
    /// leaving the new groups without a default domain (where a DMA-API driver bind gets
    /// `EPROBE_DEFER`). ``finishDefaultDomains()`` completes the probe.
    package func addIOMMU(_ unit: IOMMUDevice, stoppingBeforeDefaultDomains: Bool) {
        let pending: [PCIDevice] = lock.withLock {
            _iommus.append(unit)
            unit.machine = self
            unit.events = events
            return _devices.filter { $0.iommu === unit && $0.group == nil }
        }
        events.record(.model("iommu_device_register", [.init("iommu", unit.name), .init("driver", unit.driver.name)]))
        for dev in pending {
            do { try iommu.probe(dev, deferDefaultDomain: true) } catch {
                recordWarning(Warning(function: "bus_iommu_probe", message: "\(dev.rid): probe failed: \(error)"))
            }
        }
        if !stoppingBeforeDefaultDomains { iommu.setupPendingDefaultDomains() }
    }

    /// Test hook: the second half of `bus_iommu_probe` after
    /// ``addIOMMU(_:stoppingBeforeDefaultDomains:)``.
    package func finishDefaultDomains() { iommu.setupPendingDefaultDomains() }

    /// Adds a PCI device behind `unit` (or with no IOMMU). If the unit is registered the
    /// device is probed at once (`iommu_probe_device`: group, default domain, first
    /// attach); otherwise it is probed when the unit registers.
    /// - Throws: `EEXIST` for a RID already on the machine; the driver's probe errno.
    @discardableResult
    public func addDevice(_ dev: PCIDevice, behind unit: IOMMUDevice?) throws(Errno) -> PCIDevice {
        let registered: Bool = try lock.withLock { () throws(Errno) -> Bool in
            guard !_devices.contains(where: { $0.rid == dev.rid }) else {
                throw .exists.from("addDevice", "a device with RID \(dev.rid) is already on the machine")
            }
            dev.machine = self
            dev.iommu = unit
            _devices.append(dev)
            return unit.map { u in _iommus.contains { $0 === u } } ?? false
        }
        guard registered else { return dev }
        do { try iommu.probe(dev) } catch {
            lock.withLock {
                _devices.removeAll { $0 === dev }
                dev.iommu = nil
            }
            throw error
        }
        return dev
    }

    /// `device_del`: takes `dev` off the machine. Its IOMMU lets it go first
    /// (`iommu_release_device`: release domain, the driver's `release_device`, the group
    /// dismantled when it was the last member); then its RID is free for a new device.
    /// A device that is not on the machine is left as it is.
    public func removeDevice(_ dev: PCIDevice) {
        guard lock.withLock({ _devices.contains { $0 === dev } }) else { return }
        iommu.releaseDevice(dev)
        lock.withLock { _devices.removeAll { $0 === dev } }
    }

    /// The device with `rid`, if any.
    public func device(_ rid: RID) -> PCIDevice? { allDevices.first { $0.rid == rid } }

    /// The always-on counters: every unit's hardware counters plus the core's.
    public var counters: Counters {
        var c = lock.withLock { coreCounters }
        c.maps = mapCounters.maps.value
        c.unmaps = mapCounters.unmaps.value
        for unit in iommus {
            let (hw, dma) = unit.hardwareLock.withLock { (unit.hardware.counters, unit.dmaStats) }
            c.hardware.add(hw)
            c.dmaRequests += dma.requests
            c.dmaBytes += dma.bytes
            c.dmaFaults += dma.faults
            c.atcHits += dma.atcHits
        }
        return c
    }

    func noteAttach() { lock.withLock { coreCounters.attaches += 1 } }
    func noteUntranslatedDMA(bytes: Int, faulted: Bool) {
        lock.withLock {
            coreCounters.dmaRequests += 1
            coreCounters.dmaBytes += bytes
            if faulted { coreCounters.dmaFaults += 1 }
        }
    }

    /// Every DMA fault recorded, oldest first.
    public var faultLog: [DMAFault] { lock.withLock { _faults } }

    func recordFault(_ f: DMAFault) {
        lock.withLock { _faults.append(f) }
        events.record(.ioPageFault(device: f.device, iova: f.address, write: f.access.contains(.write),
                                   pasid: f.pasid, reason: f.reason.description))
    }
}

/// The `iommu_map`/`iommu_unmap` counts of a machine: striped counters rather than
/// fields under the machine's lock or one shared atomic, since every map and unmap bumps
/// one, from as many threads as map at once (the other core counters are rare). A class of its own so that the core holds it strongly (see
/// ``IOMMUSubsystem``).
final class MapCounters: Sendable {
    let maps = StripedCounter()
    let unmaps = StripedCounter()
    func noteMap() { maps.add(1) }
    func noteUnmap() { unmaps.add(1) }
}
