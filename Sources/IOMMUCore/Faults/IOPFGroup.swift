/// A complete page-request group handed to a fault handler (`struct iopf_group`): the
/// partial requests that shared the last request's group index, then the last one.
///
/// A group is *pending* from creation until it is answered; ``respond(_:)``
/// (`iopf_group_response`) sends a response only while the group is pending, so a
/// handler and `iopf_queue_remove_device` can never both answer it
/// (``Invariant/onePageResponse``).
public final class IOPFGroup: @unchecked Sendable, CustomStringConvertible {
    /// Every request of the group, partials first, the last request at the end
    /// (`group->faults`).
    public let faults: [IOPFFault]
    /// The device that sent the group (`group->fault_param->dev`).
    public let device: PCIDevice
    /// The attach handle the group was routed through (`group->attach_handle`).
    public let attachHandle: AttachHandle
    /// The domain whose handler got the group (the handle's domain at routing time).
    public let domain: IOMMUDomain
    /// A sequential number, for logs and response accounting.
    public let serial: Int
    let param: IOPFDeviceParam
    /// Guarded by the queue's lock.
    var pending = true
    /// Responses actually delivered for this group; guarded by the queue's lock.
    var delivered = 0

    init(faults: [IOPFFault], device: PCIDevice, handle: AttachHandle, domain: IOMMUDomain,
         param: IOPFDeviceParam, serial: Int) {
        self.faults = faults
        self.device = device
        attachHandle = handle
        self.domain = domain
        self.param = param
        self.serial = serial
    }

    /// The last request (`group->last_fault`), whose PASID and group index the
    /// response carries.
    public var lastFault: IOPFFault { faults[faults.count - 1] }

    /// `group->fault_count`.
    public var faultCount: Int { faults.count }

    /// The queue the group belongs to (`group->fault_param->queue`); nil once the
    /// queue itself is gone.
    public var queue: IOPFQueue? { param.queue }

    /// Whether the group still waits for its response (on `fault_param->faults`).
    public var isPending: Bool { param.queue?.lock.withLock { pending } ?? false }

    /// Responses delivered for this group so far: 1 once answered, never more.
    public var responseCount: Int { param.queue?.lock.withLock { delivered } ?? delivered }

    /// `iopf_group_response(group, status)`: sends `code` to the device through the
    /// driver's `page_response`, only if the group is still pending; otherwise (already
    /// answered, or the device left the queue) a no-op.
    public func respond(_ code: IOMMUPageResponseCode) {
        param.queue?.respond(self, code)
    }

    /// `queue_work(group->fault_param->queue->wq, &group->work)`: run `body` on the
    /// group's iopf queue, now or at the next ``IOPFQueue/runPending()`` depending on
    /// the queue's ``IOPFQueue/Mode``. Dropped if the queue is gone.
    public func queueWork(_ body: @escaping @Sendable () -> Void) {
        param.queue?.enqueue(param, body)
    }

    /// `iopf group #n dev [rid] pasid p grp g (k faults)`.
    public var description: String {
        let f = lastFault
        return "iopf group #\(serial) dev \(device.rid) pasid \(f.pasid.map { "\($0)" } ?? "-") grp \(f.grpid) (\(faults.count) faults)"
    }
}

/// The per-device fault state while the device is on an iopf queue
/// (`struct iommu_fault_param`): partial requests and pending groups. Guarded by the
/// queue's lock.
final class IOPFDeviceParam: @unchecked Sendable {
    /// Strong while the device is on the queue; `iopf_queue_remove_device` breaks it.
    let device: PCIDevice
    /// Weak: the queue owns its device states, not the other way round.
    weak var queue: IOPFQueue?
    /// Non-last requests waiting for their group's last request (`partial`).
    var partial: [IOPFFault] = []
    /// Groups handed to a handler and not answered yet (`faults`).
    var pendingGroups: [IOPFGroup] = []

    init(device: PCIDevice, queue: IOPFQueue) {
        self.device = device
        self.queue = queue
    }
}

/// One page response the core sent through a driver's `page_response`.
public struct IOPFResponseRecord: Hashable, Sendable, CustomStringConvertible {
    /// The device answered.
    public let device: RID
    /// The PASID the response carried, nil for a request without PASID.
    public let pasid: PASID?
    /// The group index.
    public let grpid: UInt32
    /// The response code.
    public let code: IOMMUPageResponseCode
    /// The ``IOPFGroup/serial`` of the group answered; nil for a request answered
    /// without a group (no handler: `iopf_error_response`).
    public let group: Int?

    /// A record (tests compare against these).
    public init(device: RID, pasid: PASID?, grpid: UInt32, code: IOMMUPageResponseCode, group: Int?) {
        self.device = device
        self.pasid = pasid
        self.grpid = grpid
        self.code = code
        self.group = group
    }

    /// `00:02.0 pasid 5 grp 3 SUCCESS`.
    public var description: String {
        "\(device) pasid \(pasid.map { "\($0)" } ?? "-") grp \(grpid) \(code)"
    }
}
