/// An I/O page-fault queue (`struct iopf_queue`): the devices whose page requests an
/// IOMMU reports, and the work queue that runs fault handlers.
///
/// The work queue is deterministic and explicitly driven, in the spirit of an embedded
/// event loop: in ``Mode/deferred`` mode (the default) queued work waits until
/// ``runPending()`` runs it in submission order on the caller's thread; in
/// ``Mode/inline`` mode work runs at once, inside the call that queued it. No thread is
/// ever started. `deinit` reports work or groups left pending (a WARN, and an ``Invariant/onePageResponse``
/// violation per unanswered group when the checker is on).
public final class IOPFQueue: @unchecked Sendable, CustomStringConvertible {
    /// When queued work runs.
    public enum Mode: Sendable, Hashable {
        /// Work waits for ``IOPFQueue/runPending()`` (or a flush): the window between a
        /// fault report and its handling is visible to tests.
        case deferred
        /// Work runs immediately, inside the call that queued it.
        case inline
    }

    /// Deliberate bugs, to show what the checker catches.
    public struct Bugs: OptionSet, Hashable, Sendable {
        /// The raw bits.
        public let rawValue: UInt32
        /// Wraps raw bits.
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// `iopf_group_response` answers without checking that the group is still
        /// pending (the historical double response).
        public static let respondWithoutPendingCheck = Bugs(rawValue: 1 << 0)
    }

    /// The queue's name (`"dmar0-iopfq"`).
    public let name: String
    /// Deliberate bugs of this queue (none normally).
    public let bugs: Bugs
    let lock = Lock()
    private var _mode: Mode
    var devices: [IOPFDeviceParam] = []
    private var work: [(param: IOPFDeviceParam, body: @Sendable () -> Void)] = []
    private var running = false

    /// `iopf_queue_alloc(name)`: an empty queue.
    public init(name: String, mode: Mode = .deferred, bugs: Bugs = []) {
        self.name = name
        _mode = mode
        self.bugs = bugs
    }

    deinit {
        // Devices still on a dead queue are let go, so they can join another one.
        iopfParamLock.withLock {
            for p in devices where p.device.iopfParam === p { p.device.iopfParam = nil }
        }
        let leftovers = devices.flatMap(\.pendingGroups)
        if !work.isEmpty || !leftovers.isEmpty {
            let machine = devices.first?.device.machine
            machine?.recordWarning(Warning(function: "iopf_queue_free",
                                           message: "\(name) freed with \(work.count) work items and \(leftovers.count) groups pending"))
            for g in leftovers {
                machine?.checker.report(Violation(.onePageResponse, device: g.device.rid,
                                                  pasid: g.lastFault.pasid,
                                                  address: g.lastFault.address, event: "iopf queue free",
                                                  message: "\(g) never got a response"))
            }
        }
    }

    /// `name`.
    public var description: String { name }

    /// When queued work runs; switching to ``Mode/inline`` does not run what is queued.
    public var mode: Mode {
        get { lock.withLock { _mode } }
        set { lock.withLock { _mode = newValue } }
    }

    /// Work items queued and not yet run.
    public var pendingWorkCount: Int { lock.withLock { work.count } }

    /// Whether nothing is queued and no group waits for a response.
    public var isIdle: Bool { lock.withLock { work.isEmpty && devices.allSatisfy { $0.pendingGroups.isEmpty } } }

    /// The devices on the queue (`queue->devices`).
    public var attachedDevices: [PCIDevice] { lock.withLock { devices.map(\.device) } }

    /// The groups of `dev` waiting for a response (`fault_param->faults`), oldest first.
    public func pendingGroups(of dev: PCIDevice) -> [IOPFGroup] {
        lock.withLock { devices.first { $0.device === dev }?.pendingGroups ?? [] }
    }

    /// The partial (non-last) requests of `dev` waiting for their group's last request.
    public func partialFaults(of dev: PCIDevice) -> [IOPFFault] {
        lock.withLock { devices.first { $0.device === dev }?.partial ?? [] }
    }

    // MARK: devices

    /// `iopf_queue_add_device(queue, dev)`: the device's page requests may now be
    /// reported and grouped.
    /// - Throws: `ENODEV` if the device has no IOMMU or its driver has no
    ///   `page_response`; `EBUSY` if the device is already on a queue. Nothing changes
    ///   on error.
    public func addDevice(_ dev: PCIDevice) throws(Errno) {
        guard let unit = dev.iommu else { throw .noDevice.from("iopf_queue_add_device", "\(dev.rid) has no IOMMU") }
        guard unit.driver.pageResponse != nil else {
            throw .noDevice.from("iopf_queue_add_device", "\(unit.driver.name) has no page_response")
        }
        try iopfParamLock.withLock { () throws(Errno) in
            guard dev.iopfParam == nil else { throw .busy.from("iopf_queue_add_device", "\(dev.rid) is already on an iopf queue") }
            let param = IOPFDeviceParam(device: dev, queue: self)
            lock.withLock { devices.append(param) }
            dev.iopfParam = param
        }
        dev.machine?.events.record(.model("iopf_queue_add_device", device: dev.rid,
                                          [.init("queue", name), .init("device", dev.rid.devName)]))
    }

    /// `iopf_queue_remove_device(queue, dev)`: drops the device's partial requests,
    /// answers every pending group `INVALID`, and detaches the device. A handler still
    /// running for one of those groups later answers nothing (the group is no longer
    /// pending). Call it after the IOMMU stopped accepting page requests for the device
    /// and its hardware queue is flushed. WARNs (and does nothing) if the device is not
    /// on this queue.
    public func removeDevice(_ dev: PCIDevice) {
        let param: IOPFDeviceParam? = iopfParamLock.withLock {
            guard let p = dev.iopfParam, p.queue === self else { return nil }
            dev.iopfParam = nil
            return p
        }
        guard let param else {
            dev.machine?.recordWarning(Warning(function: "iopf_queue_remove_device", message: "\(dev.rid) is not on \(name)"))
            return
        }
        let groups: [IOPFGroup] = lock.withLock {
            param.partial.removeAll()
            let g = param.pendingGroups
            param.pendingGroups.removeAll()
            for group in g { group.pending = false }
            devices.removeAll { $0 === param }
            return g
        }
        for g in groups { deliver(g, .invalid) }
        dev.machine?.events.record(.model("iopf_queue_remove_device", device: dev.rid,
                                          [.init("queue", name), .init("device", dev.rid.devName)]))
    }

    /// `iopf_queue_discard_partial(queue)`: drops every partial request of every device
    /// (the hardware queue overflowed and last requests may be lost).
    public func discardPartial() {
        lock.withLock { for d in devices { d.partial.removeAll() } }
    }

    /// `iopf_queue_free(queue)`: devices still on the queue are removed (WARN; their
    /// pending groups are answered `INVALID`), then queued work runs to completion, as
    /// `destroy_workqueue` drains.
    public func free() {
        for dev in attachedDevices {
            dev.machine?.recordWarning(Warning(function: "iopf_queue_free", message: "\(dev.rid) still on \(name)"))
            removeDevice(dev)
        }
        runPending()
    }

    // MARK: work

    /// Runs queued work in submission order, including work queued while running, until
    /// none is left (`flush_workqueue`). Like an embedded event loop the queue is driven
    /// by one thread at a time: a call made while a run is in progress (from inside a
    /// work item, where the kernel would deadlock, or from another thread, which is
    /// misuse) returns 0 at once and the run in progress carries on.
    /// - Returns: the number of work items run.
    @discardableResult
    public func runPending() -> Int {
        let outer: Bool = lock.withLock {
            if running { return false }
            running = true
            return true
        }
        guard outer else { return 0 }
        var count = 0
        while let item = lock.withLock({ work.isEmpty ? nil : work.removeFirst() }) {
            item.body()
            count += 1
        }
        lock.withLock { running = false }
        return count
    }

    func enqueue(_ param: IOPFDeviceParam, _ body: @escaping @Sendable () -> Void) {
        let now: Bool = lock.withLock {
            if _mode == .inline { return true }
            work.append((param, body))
            return false
        }
        if now { body() }
    }

    // MARK: groups and responses

    /// Queues a non-last request (`report_partial_fault`).
    func addPartial(_ param: IOPFDeviceParam, _ fault: IOPFFault) {
        lock.withLock { param.partial.append(fault) }
    }

    /// `iopf_group_alloc`: gathers the partials with the last request's group index and
    /// puts the new group on the pending list.
    func makeGroup(_ param: IOPFDeviceParam, last: IOPFFault, handle: AttachHandle, domain: IOMMUDomain) -> IOPFGroup {
        lock.withLock {
            let mine = param.partial.filter { $0.grpid == last.grpid }
            param.partial.removeAll { $0.grpid == last.grpid }
            let g = IOPFGroup(faults: mine + [last], device: param.device, handle: handle, domain: domain,
                              param: param, serial: nextGroupSerial())
            param.pendingGroups.append(g)
            return g
        }
    }

    func respond(_ group: IOPFGroup, _ code: IOMMUPageResponseCode) {
        let send: Bool = lock.withLock {
            if group.pending {
                group.pending = false
                group.param.pendingGroups.removeAll { $0 === group }
                return true
            }
            return bugs.contains(.respondWithoutPendingCheck)
        }
        if send {
            deliver(group, code)
        } else {
            group.device.machine?.iommu.faultLog.noteSuppressedResponse()
        }
    }

    /// Sends a group's response through the driver and accounts for it
    /// (``Invariant/onePageResponse``).
    private func deliver(_ group: IOPFGroup, _ code: IOMMUPageResponseCode) {
        let count: Int = lock.withLock {
            group.delivered += 1
            return group.delivered
        }
        let last = group.lastFault
        sendPageResponse(group.device, last, code, group: group.serial)
        if count > 1, let machine = group.device.machine {
            machine.checker.report(Violation(.onePageResponse, device: group.device.rid,
                                             pasid: last.pasid, address: last.address,
                                             event: "iopf_group_response",
                                             message: "\(group) answered \(count) times (\(code) after an earlier response)"))
        }
    }
}

/// Guards every device's ``PCIDevice/iopfParam`` pointer (`dev->iommu->lock` for
/// `fault_param`). Never held while calling out.
let iopfParamLock = Lock()

nonisolated(unsafe) private var groupSerialCounter = 0
private let groupSerialLock = Lock()
private func nextGroupSerial() -> Int {
    groupSerialLock.withLock {
        groupSerialCounter += 1
        return groupSerialCounter
    }
}

/// Calls the driver's `page_response` for the group whose last request is `fault` and
/// records the response in the machine's fault log.
func sendPageResponse(_ dev: PCIDevice, _ fault: IOPFFault, _ code: IOMMUPageResponseCode, group: Int?) {
    let msg = IOMMUPageResponse(pasid: fault.pasid, grpid: fault.grpid, code: code)
    dev.iommu?.driver.pageResponse?(dev, fault, msg)
    guard let machine = dev.machine else { return }
    machine.iommu.faultLog.noteResponse(IOPFResponseRecord(device: dev.rid, pasid: fault.pasid,
                                                           grpid: fault.grpid, code: code, group: group))
    machine.events.record(.devPageResponse(device: dev.rid, pasid: fault.pasid,
                                           grpid: fault.grpid, code: code))
}
