import IOMMUCore

/// One I/O page request group queued to a fault object (`struct iopf_group` as iommufd
/// sees it): the device, PASID, group index and the faulting pages.
struct FaultGroup {
    var devID: UInt32
    var pasid: UInt32?
    var grpid: UInt32
    var perm: UInt32
    var addr: UInt64
    var handle: IOMMUFDAttachHandle
}

/// `IOMMUFD_OBJ_FAULT` (`struct iommufd_fault`): a queue of I/O page faults delivered to
/// user space through a file descriptor, and the responses written back. Every group
/// gets exactly one response: the user's, or `IOMMUFD_PAGE_RESP_INVALID` when its
/// attachment goes away or the object is destroyed.
public final class FaultObject: IOMMUFDObject, @unchecked Sendable {
    /// Groups not yet read.
    var pending: [FaultGroup] = []
    /// Groups read and awaiting a response, by cookie (`fault->response`, from 1).
    var delivered: [UInt32: FaultGroup] = [:]
    /// Every response sent, oldest first: (group index, code).
    public private(set) var responses: [(grpid: UInt32, code: UInt32)] = []
    /// The fd is open (it holds a users reference).
    var fdOpen = false

    init() { super.init(type: .fault) }

    /// Pending (unread) groups.
    public var pendingCount: Int { pending.count }
    /// Groups read but not answered.
    public var awaitingResponse: Int { delivered.count }

    func respond(_ g: FaultGroup, _ code: UInt32) { responses.append((g.grpid, code)) }

    /// `iommufd_fault_iopf_handler`: queue a group.
    func deliver(_ g: FaultGroup) { pending.append(g) }

    /// Answers INVALID every group of an attachment that went away
    /// (`iommufd_auto_response_faults`).
    func abandon(_ handle: IOMMUFDAttachHandle, _ ctx: IOMMUFD) {
        for g in pending where g.handle === handle { respond(g, IOMMUFDConstant.pageRespInvalid) }
        pending.removeAll { $0.handle === handle }
        for (cookie, g) in delivered.sorted(by: { $0.key < $1.key }) where g.handle === handle {
            respond(g, IOMMUFDConstant.pageRespInvalid)
            delivered[cookie] = nil
        }
    }

    /// `iommufd_fault_destroy`: every outstanding group is answered INVALID.
    override func destroy(_ ctx: IOMMUFD) {
        for g in pending { respond(g, IOMMUFDConstant.pageRespInvalid) }
        for (_, g) in delivered.sorted(by: { $0.key < $1.key }) { respond(g, IOMMUFDConstant.pageRespInvalid) }
        pending = []
        delivered = [:]
    }

    func fdClosed(_ ctx: IOMMUFD) {
        fdOpen = false
        ctx.unref(self)
    }

    /// `iommufd_fault_fops_read`.
    func read(_ ctx: IOMMUFD, buffer: UInt64, count: Int) -> Result<Int, Errno> {
        let size = IOMMUHWPTPgfault.size
        guard count >= 0, count % size == 0 else { return .failure(.illegalSeek) }
        var done = 0
        while let g = pending.first, done + size <= count {
            var cookie: UInt32 = 1
            while delivered[cookie] != nil { cookie += 1 }
            var rec = IOMMUHWPTPgfault()
            rec.flags = IOMMUFDConstant.pgfaultFlagLastPage | (g.pasid != nil ? IOMMUFDConstant.pgfaultFlagPasidValid : 0)
            rec.devId = g.devID
            rec.pasid = g.pasid ?? 0
            rec.grpid = g.grpid
            rec.perm = g.perm
            rec.addr = g.addr
            rec.cookie = cookie
            do { try ctx.user.copyToUser(buffer + UInt64(done), rec.bytes) } catch {
                return done == 0 ? .failure(error) : .success(done)
            }
            pending.removeFirst()
            delivered[cookie] = g
            done += size
        }
        return .success(done)
    }

    /// `iommufd_fault_fops_write`.
    func write(_ ctx: IOMMUFD, buffer: UInt64, count: Int) -> Result<Int, Errno> {
        let size = IOMMUHWPTPageResponse.size
        guard count >= 0, count % size == 0 else { return .failure(.illegalSeek) }
        var done = 0
        var rc: Errno?
        while done < count {
            let bytes: [UInt8]
            do { bytes = try ctx.user.copyFromUser(buffer + UInt64(done), count: size) } catch { rc = error; break }
            let resp = IOMMUHWPTPageResponse(bytes: bytes)
            guard resp.code == IOMMUFDConstant.pageRespSuccess || resp.code == IOMMUFDConstant.pageRespInvalid else {
                rc = .invalidArgument
                break
            }
            guard let g = delivered.removeValue(forKey: resp.cookie) else { rc = .invalidArgument; break }
            respond(g, resp.code)
            done += size
        }
        if done == 0, let rc { return .failure(rc) }
        return .success(done)
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
