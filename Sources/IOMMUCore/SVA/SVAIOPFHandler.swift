/// The fault handler of every SVA domain (`iommu_sva_iopf_handler`): each group is
/// handled as a work item on the device's iopf queue (`iommu_sva_handle_iopf`), which
/// faults the requested pages into the domain's process and answers the group once.
///
/// Per request (`iommu_sva_handle_mm`): the request must carry a PASID; the mm must not
/// be exiting (`mmget_not_zero`); a VMA must cover the address (`vma_lookup`) and allow
/// every access asked for (read, write, execute; a request without PRIV is a user
/// access); then `handle_mm_fault` (``/Platform/Process/handleFault(address:write:exec:)``).
/// Any failure answers `INVALID`, and the rest of the group is not processed.
public final class SVAIOPFHandler: IOPFHandler, @unchecked Sendable {
    /// The one handler the SVA core installs on its domains.
    public static let shared = SVAIOPFHandler()

    private init() {}

    /// `iommu_sva_iopf_handler(group)`: queue the group's work. Never throws for an SVA
    /// domain.
    /// - Throws: `EINVAL` if the group's domain has no mm (not an SVA domain).
    public func handleIOPF(_ group: IOPFGroup) throws(Errno) {
        guard let mm = group.domain.mm else {
            throw .invalidArgument.from("iommu_sva_iopf_handler", "\(group.domain) is not an SVA domain (no mm)")
        }
        group.queueWork { Self.handleGroup(group, mm: mm) }
    }

    /// `iommu_sva_handle_iopf`: serve the requests in order, stop at the first failure,
    /// answer once.
    static func handleGroup(_ group: IOPFGroup, mm: Process) {
        var status = IOMMUPageResponseCode.invalid
        for fault in group.faults {
            status = handle(fault, in: mm)
            if status != .success { break }
        }
        group.respond(status)
    }

    /// `iommu_sva_handle_mm`: one request.
    static func handle(_ fault: IOPFFault, in mm: Process) -> IOMMUPageResponseCode {
        guard fault.pasidValid, !mm.isExiting else { return .invalid }
        var wanted: ProcessProt = []
        if fault.perm.contains(.read) { wanted.insert(.read) }
        if fault.perm.contains(.write) { wanted.insert(.write) }
        if fault.perm.contains(.exec) { wanted.insert(.exec) }
        // Under SVA the page address is the process's virtual address.
        let va = fault.address.rawValue
        guard let vmaProt = mm.vmaProtection(at: va), vmaProt.isSuperset(of: wanted) else { return .invalid }
        do {
            try mm.handleFault(address: va, write: wanted.contains(.write), exec: wanted.contains(.exec))
        } catch {
            return .invalid
        }
        return .success
    }
}
