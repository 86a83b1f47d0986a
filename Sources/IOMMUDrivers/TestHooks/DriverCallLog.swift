import IOMMUCore

/// One `attach_dev` or `set_dev_pasid` callback the core made to a driver, as a driver's
/// test hook logs it (`ArmSMMUv3Driver.calls`, `IntelIOMMUDriver.calls`). No kernel
/// counterpart: the conformance suite's failure-injection checks read it.
package struct DriverCallRecord: Hashable, Sendable {
    /// Which callback.
    package enum Op: Hashable, Sendable {
        /// `iommu_domain_ops.attach_dev`.
        case attachDev
        /// `iommu_domain_ops.set_dev_pasid`.
        case setDevPasid
    }
    /// The callback.
    package var op: Op
    /// The domain whose op ran, as it describes itself.
    package var domain: String
    /// Whether that domain is the blocking domain.
    package var blocking: Bool
    /// The device.
    package var rid: RID
    /// The PASID; nil for `attach_dev`.
    package var pasid: PASID?
    /// The `old` argument's description; nil for none.
    package var old: String?
    /// Whether the group's PASID array held a published (not merely reserved) entry at
    /// `pasid` (the RID's slot for `attach_dev`) when the callback began.
    package var entryPublished: Bool
    /// Whether the callback succeeded.
    package var succeeded: Bool
}

/// A driver's log of the core's `attach_dev` and `set_dev_pasid` callbacks, for the test
/// hooks. Off by default, so a long-lived driver keeps no log. A callback that runs
/// inside another one (a driver calling its own callback) is not the core's and is not
/// logged. Not locked itself (hence `@unchecked Sendable`): the driver holds its own lock
/// around every use. A class,
/// so that a nested callback reaches the same log without overlapping access to it.
package final class DriverCallLog: @unchecked Sendable {
    private var log: [DriverCallRecord]?
    private var depth = 0

    package init() {}

    /// Whether callbacks are logged; turning it off forgets the log.
    package var isRecording: Bool {
        get { log != nil }
        set { log = newValue ? (log ?? []) : nil }
    }

    /// The logged callbacks, oldest first.
    package var calls: [DriverCallRecord] { log ?? [] }

    /// Forgets the logged callbacks (logging goes on).
    package func clear() { if log != nil { log = [] } }

    /// Runs `body`, the callback `op` of `domain` for `dev` (and `pasid`), logging it with
    /// what the group's PASID array held when it began and whether it succeeded.
    package func run(_ op: DriverCallRecord.Op, _ domain: IOMMUDomain, _ dev: PCIDevice, pasid: PASID?,
                     old: IOMMUDomain?, _ body: () throws(Errno) -> Void) throws(Errno) {
        guard log != nil, depth == 0 else {
            depth += 1
            defer { depth -= 1 }
            return try body()
        }
        var published = false
        if let slot = dev.group?.slot(pasid) {
            if case .reserved = slot {} else { published = true }
        }
        var call = DriverCallRecord(op: op, domain: "\(domain)", blocking: domain.type == .blocked, rid: dev.rid,
                                    pasid: pasid, old: old.map { "\($0)" }, entryPublished: published,
                                    succeeded: false)
        depth += 1
        defer {
            depth -= 1
            log?.append(call)
        }
        try body()
        call.succeeded = true
    }
}
