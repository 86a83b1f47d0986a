import IOMMUCore

/// What an in-kernel user of an IOAS provides (`struct iommufd_access_ops`).
public struct IOMMUFDAccessOps: Sendable {
    /// `needs_pin_pages`: the user pins pages; the IOAS alignment becomes PAGE_SIZE.
    public var needsPinPages: Bool
    /// `unmap(data, iova, length)`: the IOAS is unmapping `[iova, iova+length)`; the user
    /// must unpin everything it pinned there before returning. Nil for users that only
    /// read and write through the access.
    public var unmap: (@Sendable (_ iova: IOVA, _ length: UInt64) -> Void)?
    /// Ops.
    public init(needsPinPages: Bool, unmap: (@Sendable (IOVA, UInt64) -> Void)?) {
        self.needsPinPages = needsPinPages
        self.unmap = unmap
    }
}

/// `IOMMUFD_OBJ_ACCESS` (`struct iommufd_access`): an in-kernel user (an emulated or
/// mdev device) that pins, reads and writes IOAS memory by IOVA, without a domain.
public final class AccessObject: IOMMUFDObject, @unchecked Sendable {
    /// The ACCESS ID (`obj->id`).
    public var id: AccessObjectID { AccessObjectID(rawValue: rawID) }
    /// The ops given at creation.
    public let ops: IOMMUFDAccessOps
    /// `access->ioas`: where pins and reads go; nil while detaching, which blocks new pins.
    var ioas: IOASObject?
    /// `access->ioas_unpin`: where unpins go. It outlives ``ioas`` while a detach runs the
    /// driver's `unmap` callback, so the driver can still unpin what it pinned.
    var ioasUnpin: IOASObject?
    /// `access->iova_alignment`.
    var iovaAlignment: UInt64
    /// `iommufd_access_is_internal`: made by iommufd itself (a HW queue's), with no driver
    /// ops; its pins lock their areas against unmap (`area->num_locks`).
    let isInternal: Bool

    init(ops: IOMMUFDAccessOps, isInternal: Bool = false) {
        self.ops = ops
        self.isInternal = isInternal
        iovaAlignment = ops.needsPinPages ? IOPTPages.pageSize : 1
        super.init(type: .access)
    }

    /// `iommufd_access_destroy_object`: detach from the IOAS, which first asks the driver
    /// to unpin everything (see ``IOMMUFD/accessDetachLocked(_:from:)``).
    override func destroy(_ ctx: IOMMUFD) {
        if let ioas { ctx.accessDetachLocked(self, from: ioas) }
    }
}

extension IOMMUFD {
    /// `iommufd_access_create(ictx, ops, data, &id)`: a new access, finalized, with a
    /// reference held for the caller (so `IOMMU_DESTROY` on it is `EBUSY`).
    /// - Throws: `ENOMEM`.
    public func accessCreate(ops: IOMMUFDAccessOps) throws(Errno) -> AccessObject {
        try lock.withLock { () throws(Errno) -> AccessObject in
            let a = AccessObject(ops: ops)
            try allocObject(a)
            ref(a)
            finalize(a)
            return a
        }
    }

    /// `iommufd_access_create_internal`: an access iommufd uses itself (no driver ops,
    /// PAGE_SIZE alignment), finalized with a reference for its user, so `IOMMU_DESTROY`
    /// of its ID is `EBUSY`. An injection point (`ENOMEM`, the object allocation).
    /// - Throws: `ENOMEM`.
    func accessCreateInternal() throws(Errno) -> AccessObject {
        let a = AccessObject(ops: IOMMUFDAccessOps(needsPinPages: true, unmap: nil), isInternal: true)
        try allocObject(a)
        ref(a)
        finalize(a)
        return a
    }

    /// `iommufd_access_destroy_internal`: as ``accessDestroy(_:)``.
    func accessDestroyInternal(_ access: AccessObject) { accessDestroy(access) }

    /// `iommufd_access_attach_internal`: as ``accessAttach(_:ioasID:)`` on `ioas` itself.
    /// - Throws: `EADDRINUSE` areas that break PAGE_SIZE alignment.
    func accessAttachInternal(_ access: AccessObject, to ioas: IOASObject) throws(Errno) {
        try accessAttach(access, ioasID: ioas.id)
    }

    /// `iommufd_access_destroy`: detach and destroy an access made by ``accessCreate(ops:)``.
    /// Detaching calls the access's `unmap(0, ULONG_MAX)` first, so a driver that still
    /// holds pins releases them (`iommufd_access_change_ioas(access, NULL)`).
    public func accessDestroy(_ access: AccessObject) {
        lock.withLock {
            guard table.live(access.rawID) === access else { return }
            unref(access)
            table.release(access.rawID)
            access.users = 0
            access.destroy(self)
        }
    }

    /// `iommufd_access_attach(access, ioas_id)`.
    /// - Throws: `EINVAL` already attached; `ENOENT` not an IOAS; `EADDRINUSE` the IOAS
    ///   has areas that break the access's alignment.
    public func accessAttach(_ access: AccessObject, ioasID: IOASObjectID) throws(Errno) {
        try lock.withLock { () throws(Errno) in
            guard access.ioas == nil else {
                warn("iommufd_access_attach", "access already attached")
                throw .invalidArgument
            }
            try accessChangeIOAS(access, ioasID.rawValue)
        }
    }

    /// `iommufd_access_replace(access, ioas_id)`: move an attached access.
    /// - Throws: `ENOENT` not attached, or not an IOAS; `EADDRINUSE` as attach.
    public func accessReplace(_ access: AccessObject, ioasID: IOASObjectID) throws(Errno) {
        try lock.withLock { () throws(Errno) in
            guard access.ioas != nil else { throw .noEntry }
            try accessChangeIOAS(access, ioasID.rawValue)
        }
    }

    /// `iommufd_access_detach(access)`: as the detach of ``accessDestroy(_:)``, calling the
    /// access's `unmap(0, ULONG_MAX)` before leaving the IOAS.
    public func accessDetach(_ access: AccessObject) {
        lock.withLock {
            if let ioas = access.ioas { accessDetachLocked(access, from: ioas) }
        }
    }

    /// `iommufd_access_change_ioas(access, new)` for a new IOAS by ID.
    private func accessChangeIOAS(_ access: AccessObject, _ ioasID: UInt32) throws(Errno) {
        let ioas = try get(ioasID, .ioas, as: IOASObject.self)
        defer { put(ioas) }
        let old = access.ioas
        if ioas === old { return }
        access.ioas = nil
        ioas.iopt.accesses.append(access)
        do { try ioas.iopt.recalculateAlignment() } catch {
            ioas.iopt.accesses.removeAll { $0 === access }
            access.ioas = old
            throw error
        }
        ref(ioas)
        if let old { accessDetachLocked(access, from: old) }
        access.ioas = ioas
        access.ioasUnpin = ioas
    }

    /// `iommufd_access_change_ioas(access, NULL)` on `ioas`: block new pins, call the
    /// driver's `unmap(0, ULONG_MAX)` so it unpins everything it still holds there (an
    /// access destroyed or detached with pins left behind must not leave them on the
    /// pages), then leave the IOAS. As in the kernel, pins the driver still does not
    /// release are its bug: they keep the area busy and a later unmap of it gets
    /// `EDEADLOCK` with a WARN.
    func accessDetachLocked(_ access: AccessObject, from ioas: IOASObject) {
        access.ioas = nil
        access.ops.unmap?(0, ulongMax)
        ioas.iopt.accesses.removeAll { $0 === access }
        try? ioas.iopt.recalculateAlignment()
        access.ioasUnpin = nil
        unref(ioas)
    }

    /// `iommufd_access_notify_unmap`: call every access's `unmap` for the range.
    func notifyAccessUnmap(_ iopt: IOPageTableState, iova: UInt64, length: UInt64) {
        for a in iopt.accesses { a.ops.unmap?(IOVA(rawValue: iova), length) }
    }

    /// The (area, first, last) chunks covering `[iova, last]` through adjacent areas.
    private func contigAreas(_ iopt: IOPageTableState, _ iova: UInt64, _ last: UInt64) -> ([(IOPTArea, UInt64, UInt64)], Bool) {
        var out: [(IOPTArea, UInt64, UInt64)] = []
        var cur = iova
        guard var area = iopt.areas.area(containing: cur) else { return ([], false) }
        while true {
            let end = min(last, area.last)
            out.append((area, cur, end))
            if end == last { return (out, true) }
            cur = end + 1
            guard let next = iopt.areas.area(startingAt: cur) else { return (out, false) }
            area = next
        }
    }

    /// `iommufd_access_pin_pages(access, iova, length, pages, flags)`: pin the pages
    /// behind `[iova, iova+length)` and return their physical addresses, one per page.
    /// Undone completely on error. Unpin with exactly the same range.
    /// - Throws: `EINVAL` zero length, an access without `unmap`, a range not page
    ///   aligned at area boundaries, or an area being unmapped; `EOVERFLOW`; `ENOENT` not
    ///   attached or a hole; `EPERM` a write pin of a read-only area; pin errors.
    public func accessPinPages(_ access: AccessObject, iova: IOVA, length: UInt64,
                               write: Bool) throws(Errno) -> [PhysicalAddress] {
        try lock.withLock { () throws(Errno) -> [PhysicalAddress] in
            guard access.ops.needsPinPages, access.isInternal || access.ops.unmap != nil else { throw .invalidArgument }
            guard length != 0 else { throw .invalidArgument }
            let iova = iova.rawValue
            let (last, o) = iova.addingReportingOverflow(length - 1)
            guard !o else { throw .overflow }
            guard let ioas = access.ioas else { throw .noEntry }
            let (chunks, complete) = contigAreas(ioas.iopt, iova, last)
            var done: [(IOPTArea, ClosedRange<Int>)] = []
            var out: [PhysicalAddress] = []
            do throws(Errno) {
                for (i, (area, from, to)) in chunks.enumerated() {
                    if area.preventAccess { throw .invalidArgument }
                    if i == 0 && area.startByte(at: from) % IOPTPages.pageSize != 0 { throw .invalidArgument }
                    if to != last && (area.startByte(at: to) + 1) % IOPTPages.pageSize != 0 { throw .invalidArgument }
                    let needed: IOMMUProt = write ? .write : .read
                    if !area.prot.contains(needed) { throw .notPermitted }
                    let range = area.pageRange(from, to)
                    try area.pages.pinForAccess(range)
                    area.numAccesses += 1
                    if access.isInternal { area.numLocks += 1 }
                    done.append((area, range))
                    for p in range { out.append(area.pages.physicalAddress(ofByte: UInt64(p) * IOPTPages.pageSize)) }
                }
                if !complete { throw .noEntry }
            } catch {
                for (area, range) in done {
                    area.numAccesses -= 1
                    if access.isInternal { area.numLocks -= 1 }
                    area.pages.unpinForAccess(range)
                }
                throw error
            }
            return out
        }
    }

    /// `iommufd_access_unpin_pages(access, iova, length)`: undo a pin of the same range.
    public func accessUnpinPages(_ access: AccessObject, iova: IOVA, length: UInt64) {
        let iova = iova.rawValue
        lock.withLock {
            let (last, overflow) = iova.addingReportingOverflow(length &- 1)
            guard length != 0, let ioas = access.ioasUnpin, !overflow else {
                warn("iommufd_access_unpin_pages", "bad range or detached access")
                return
            }
            let (chunks, complete) = contigAreas(ioas.iopt, iova, last)
            if !complete { warn("iommufd_access_unpin_pages", "range is no longer mapped") }
            for (area, from, to) in chunks {
                area.numAccesses -= 1
                if access.isInternal { area.numLocks -= 1 }
                area.pages.unpinForAccess(area.pageRange(from, to))
            }
        }
    }

    /// `iommufd_access_rw(access, iova, data, length, flags)`: copy between `data` and
    /// the memory behind `[iova, iova+count)`, any alignment. Reads return the bytes. Each
    /// area's part goes through `iopt_pages_rw_access` (see `IOPTPages.readWrite`): the
    /// caller's own user memory through the CPU, anything else through pinned pages.
    /// - Parameters:
    ///   - access: an attached access.
    ///   - iova: the first byte.
    ///   - count: how many bytes.
    ///   - data: the bytes to write, or nil to read.
    ///   - slowPath: `__IOMMUFD_ACCESS_RW_SLOW_PATH` (test kernels): take the pinning
    ///     path even for the caller's own memory.
    /// - Returns: the bytes read (empty for a write).
    /// - Throws: `EINVAL` zero length; `EOVERFLOW`; `ENOENT` not attached or a hole;
    ///   `EPERM` protection; `EFAULT` memory that cannot be reached.
    public func accessRW(_ access: AccessObject, iova: IOVA, count: Int, write data: [UInt8]?,
                         slowPath: Bool = false) throws(Errno) -> [UInt8] {
        let iova = iova.rawValue
        return try lock.withLock { () throws(Errno) -> [UInt8] in
            guard count > 0 else { throw .invalidArgument }
            let (last, o) = iova.addingReportingOverflow(UInt64(count) - 1)
            guard !o else { throw .overflow }
            guard let ioas = access.ioas else { throw .noEntry }
            let (chunks, complete) = contigAreas(ioas.iopt, iova, last)
            guard complete else { throw .noEntry }
            var out: [UInt8] = []
            var offset = 0
            for (area, from, to) in chunks {
                if !area.prot.contains(data != nil ? .write : .read) { throw .notPermitted }
                let n = Int(to - from + 1)
                let part = data.map { Array($0[offset..<offset + n]) }
                out += try area.pages.readWrite(startByte: area.startByte(at: from), count: n, write: part,
                                                slowPath: slowPath)
                offset += n
            }
            return out
        }
    }
}
