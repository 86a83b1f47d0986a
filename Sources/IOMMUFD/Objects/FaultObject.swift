import IOMMUCore

/// `IOMMUFD_OBJ_FAULT` (`struct iommufd_fault`): a queue of I/O page-fault groups
/// delivered to user space through a file descriptor, and the responses written back.
///
/// Groups arrive from the core's io-pgfault path (`IOMMUFDFaultHandler`, installed on
/// the domain of every HWPT allocated with `IOMMU_HWPT_FAULT_ID_VALID`) and stay
/// pending in the core until answered. Every group gets exactly one response: the
/// user's, written to the fd, or `IOMMU_PAGE_RESP_INVALID` when its attachment goes away
/// or the object is destroyed; the core's pending check (`iopf_group_response`) drops a
/// second attempt, e.g. after `iopf_queue_remove_device` already answered the group.
public final class FaultObject: IOMMUFDObject, @unchecked Sendable {
    /// The FAULT ID (`obj->id`).
    public var id: FaultObjectID { FaultObjectID(rawValue: rawID) }
    /// Guards ``deliver`` and ``response`` (`fault->common.lock` + `fault->mutex`): the
    /// handler runs on whatever thread reports the fault, outside the context lock.
    private let faultLock = Lock()
    /// Groups queued by the handler and not yet read (`fault->common.deliver`).
    private var deliver: [IOPFGroup] = []
    /// Groups read and awaiting a response, by cookie (`fault->response`, an allocating
    /// xarray from 1: the lowest free cookie is used).
    private var response: [UInt32: IOPFGroup] = [:]
    /// The fd is open (it holds a users reference).
    var fdOpen = false

    init() { super.init(type: .fault) }

    /// Groups queued and not yet read.
    public var pendingCount: Int { faultLock.withLock { deliver.count } }
    /// Groups read but not answered.
    public var awaitingResponse: Int { faultLock.withLock { response.count } }

    /// `iommufd_fault_iopf_handler`: queue `group` for user space. It stays pending in
    /// the core until answered through ``write(_:buffer:count:)`` or automatically.
    func enqueue(_ group: IOPFGroup) {
        faultLock.withLock { deliver.append(group) }
    }

    /// `iommufd_auto_response_faults(hwpt, handle)`: answers `INVALID` every group that
    /// came through `handle`, read or not, after the attachment went away (detach or
    /// replace). Groups the core already answered (the device left its iopf queue) get
    /// nothing more.
    func autoRespond(_ handle: AttachHandle) {
        let groups: [IOPFGroup] = faultLock.withLock {
            var out = deliver.filter { $0.attachHandle === handle }
            deliver.removeAll { $0.attachHandle === handle }
            for (cookie, g) in response.sorted(by: { $0.key < $1.key }) where g.attachHandle === handle {
                response[cookie] = nil
                out.append(g)
            }
            return out
        }
        for g in groups { g.respond(.invalid) }
    }

    /// `iommufd_fault_destroy`: every group still queued or awaiting a response is
    /// answered `INVALID`.
    override func destroy(_ ctx: IOMMUFD) {
        let groups: [IOPFGroup] = faultLock.withLock {
            let out = deliver + response.sorted { $0.key < $1.key }.map(\.value)
            deliver = []
            response = [:]
            return out
        }
        for g in groups { g.respond(.invalid) }
    }

    func fdClosed(_ ctx: IOMMUFD) {
        fdOpen = false
        ctx.unref(self)
    }

    /// `iommufd_fault_fops_read`: whole groups only, one `struct iommu_hwpt_pgfault` per
    /// request of the group (its own flags, the group's cookie). A group that does not
    /// fit in what is left of `count` stays queued, as does one whose records cannot be
    /// copied out.
    /// - Returns: bytes read; `ESPIPE` for a count that is not a multiple of 40;
    ///   `EFAULT` when nothing could be copied.
    func read(_ ctx: IOMMUFD, buffer: UInt64, count: Int) -> Result<Int, Errno> {
        let size = IOMMUHWPTPgfault.size
        guard count >= 0, count % size == 0 else {
            return .failure(.illegalSeek.from("iommufd_fault_fops_read", "count \(count) is not a multiple of \(size)"))
        }
        var done = 0
        var rc: Errno?
        while let group = faultLock.withLock({ deliver.first }), group.faultCount * size <= count - done {
            let cookie: UInt32 = faultLock.withLock {
                var c: UInt32 = 1
                while response[c] != nil { c += 1 }
                return c
            }
            let devID = (group.attachHandle as? IOMMUFDAttachHandle)?.idev.rawID ?? 0
            var bytes: [UInt8] = []
            bytes.reserveCapacity(group.faultCount * size)
            for f in group.faults {
                bytes += IOMMUHWPTPgfault(flags: f.flags.rawValue, devId: devID, pasid: f.pasid?.rawValue ?? 0, grpid: f.grpid,
                                          perm: f.perm.rawValue, addr: f.address.rawValue, length: 0, cookie: cookie).bytes
            }
            do { try ctx.user.copyToUser(buffer + UInt64(done), bytes) } catch {
                rc = error
                break
            }
            faultLock.withLock {
                deliver.removeAll { $0 === group }
                response[cookie] = group
            }
            done += bytes.count
        }
        if done == 0, let rc { return .failure(rc) }
        return .success(done)
    }

    /// `iommufd_fault_fops_write`: an array of `struct iommu_hwpt_page_response`, each
    /// answering the group of its cookie through the core (`iopf_group_response`).
    /// Processing stops at the first bad record; records before it stay answered.
    /// - Returns: bytes consumed; if none: `ESPIPE` for a count that is not a multiple
    ///   of 8, `EINVAL` for a code other than SUCCESS/INVALID or a cookie that names no
    ///   group awaiting a response (never read, or already answered), `EFAULT`.
    func write(_ ctx: IOMMUFD, buffer: UInt64, count: Int) -> Result<Int, Errno> {
        let size = IOMMUHWPTPageResponse.size
        guard count >= 0, count % size == 0 else {
            return .failure(.illegalSeek.from("iommufd_fault_fops_write", "count \(count) is not a multiple of \(size)"))
        }
        var done = 0
        var rc: Errno?
        while done < count {
            let bytes: [UInt8]
            do { bytes = try ctx.user.copyFromUser(buffer + UInt64(done), count: size) } catch { rc = error; break }
            let resp = IOMMUHWPTPageResponse(bytes: bytes)
            // IOMMUFD_PAGE_RESP_{SUCCESS,INVALID} equal the core's codes; FAILURE is not
            // the user's to send.
            guard resp.code == IOMMUFDConstant.pageRespSuccess || resp.code == IOMMUFDConstant.pageRespInvalid,
                  let code = IOMMUPageResponseCode(rawValue: resp.code) else {
                rc = .invalidArgument.from("iommufd_fault_fops_write", "response code \(resp.code) is neither SUCCESS nor INVALID")
                break
            }
            guard let group = faultLock.withLock({ response.removeValue(forKey: resp.cookie) }) else {
                rc = .invalidArgument.from("iommufd_fault_fops_write", "no group awaits a response with cookie \(resp.cookie)")
                break
            }
            group.respond(code)
            done += size
        }
        if done == 0, let rc { return .failure(rc) }
        return .success(done)
    }
}

/// The I/O page-fault handler of a HWPT allocated with `IOMMU_HWPT_FAULT_ID_VALID`
/// (`iommufd_fault_iopf_handler`, set as `hwpt->domain->iopf_handler`): hands every
/// group routed to the domain to the HWPT's FAULT object, where it waits for user space.
final class IOMMUFDFaultHandler: IOPFHandler, @unchecked Sendable {
    /// `hwpt->fault`. Weak: the HWPT holds the object; the domain, and with it this
    /// handler, can outlive the HWPT in a group still referenced somewhere.
    private weak var fault: FaultObject?

    init(fault: FaultObject) { self.fault = fault }

    /// Queues `group` on the FAULT object.
    /// - Throws: `ENODEV` if the FAULT object is gone (the core then answers `FAILURE`).
    func handleIOPF(_ group: IOPFGroup) throws(Errno) {
        guard let fault else { throw .noDevice.from("iommufd_fault_iopf_handler", "the FAULT object is gone") }
        fault.enqueue(group)
    }
}

extension Errno {
    /// `ESPIPE` (29): fault queue reads and writes need whole records at position 0.
    public static let illegalSeek = Errno(rawValue: 29)
    /// `EBADE` (52): selftest ACCESS_PAGES found a pinned page that is not the user's.
    public static let invalidExchange = Errno(rawValue: 52)
    /// `EMSGSIZE` (90): `IOMMU_IOAS_IOVA_RANGES` array too small.
    public static let messageTooLong = Errno(rawValue: 90)
}
