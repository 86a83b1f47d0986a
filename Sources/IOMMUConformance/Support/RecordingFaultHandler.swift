import IOMMUCore

/// A domain fault handler (`iommu_domain.iopf_handler`) for the page-request checks:
/// records every group it is given and, unless ``answer`` is nil, answers it from work
/// queued on the group's iopf queue, as iommufd's fault object answers later from user
/// space.
final class RecordingFaultHandler: IOPFHandler, @unchecked Sendable {
    private let lock = Lock()
    private var _groups: [IOPFGroup] = []
    /// The answer queued for each group; nil leaves groups unanswered.
    let answer: IOMMUPageResponseCode?

    init(answer: IOMMUPageResponseCode? = .success) { self.answer = answer }

    /// The groups received, oldest first.
    var groups: [IOPFGroup] { lock.withLock { _groups } }

    func handleIOPF(_ group: IOPFGroup) throws(Errno) {
        lock.withLock { _groups.append(group) }
        if let answer { group.queueWork { group.respond(answer) } }
    }
}

extension Rig {
    /// Sends each request from `dev` to its unit (every one must be taken), then runs
    /// the unit's page-request handling once, as its interrupt would.
    func sendPageRequests(_ dev: PCIDevice, _ requests: [PageRequest], service: Bool = true) throws {
        for r in requests {
            guard try dev.sendPageRequest(r) else { throw PageRequestRefused(request: r) }
        }
        if service { dev.iommu?.servicePageRequests() }
    }

    /// The page responses the core sent so far (`iommu_page_response` through the
    /// drivers), oldest first.
    var responses: [IOPFResponseRecord] { iommu.faultLog.responses }
}

/// A unit refused a page request a check sent.
struct PageRequestRefused: Error, CustomStringConvertible {
    let request: PageRequest
    var description: String { "the IOMMU did not take \(request)" }
}

/// A page request of group `group` for virtual address `address` of the process bound
/// at `pasid` (SVA: the device uses the VA as its IOVA).
func pageRequest(_ dev: PCIDevice, pasid: PASID?, group: UInt16, address: UInt64,
                 access: IOMMUFaultPerm = .read, last: Bool = true) -> PageRequest {
    PageRequest(rid: dev.rid, pasid: pasid, access: access, groupIndex: group, isLastInGroup: last,
                address: IOVA(sva: address))
}
