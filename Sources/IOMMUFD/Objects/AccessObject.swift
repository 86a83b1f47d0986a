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
    /// - Throws: `ENOMEM`; `EBADF` once the context is closed.
    public func accessCreate(ops: IOMMUFDAccessOps) throws(Errno) -> AccessObject {
        try entry("iommufd_access_create") { () throws(Errno) -> AccessObject in
            try checkOpen("iommufd_access_create")
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
    /// - Throws: `EINVAL` already attached; `ENOENT` not an IOAS, or the access was
    ///   destroyed; `EADDRINUSE` the IOAS has areas that break the access's alignment.
    public func accessAttach(_ access: AccessObject, ioasID: IOASObjectID) throws(Errno) {
        try entry("iommufd_access_attach") { () throws(Errno) in
            try checkLive(access, "iommufd_access_attach")
            guard access.ioas == nil else {
                warn("iommufd_access_attach", "access already attached")
                throw .invalidArgument.from("iommufd_access_attach", "\(access) is already attached")
            }
            try accessChangeIOAS(access, ioasID.rawValue)
        }
    }

    /// `iommufd_access_replace(access, ioas_id)`: move an attached access.
    /// - Throws: `ENOENT` not attached, not an IOAS, or the access was destroyed;
    ///   `EADDRINUSE` as attach.
    public func accessReplace(_ access: AccessObject, ioasID: IOASObjectID) throws(Errno) {
        try entry("iommufd_access_replace") { () throws(Errno) in
            try checkLive(access, "iommufd_access_replace")
            guard access.ioas != nil else { throw .noEntry.from("iommufd_access_replace", "\(access) is not attached") }
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

    /// A call on an object the caller destroyed (or whose context closed) is refused:
    /// the kernel would use freed memory.
    /// - Throws: `ENOENT` naming the object.
    func checkLive(_ obj: IOMMUFDObject, _ function: String) throws(Errno) {
        guard table.live(obj.rawID) === obj else {
            throw .noEntry.from(function, "\(obj) was destroyed\(isClosed ? " (the context is closed)" : "")")
        }
    }

    /// Objects are made only while the context is open (its fd is not released).
    /// - Throws: `EBADF`.
    func checkOpen(_ function: String) throws(Errno) {
        guard !isClosed else { throw .badFileDescriptor.from(function, "the context is closed") }
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
    ///   attached, a hole, or the access was destroyed; `EPERM` a write pin of a
    ///   read-only area; pin errors.
    public func accessPinPages(_ access: AccessObject, iova: IOVA, length: UInt64,
                               write: Bool) throws(Errno) -> [PhysicalAddress] {
        try entry("iommufd_access_pin_pages") { () throws(Errno) -> [PhysicalAddress] in
            let f = "iommufd_access_pin_pages"
            try checkLive(access, f)
            guard access.ops.needsPinPages, access.isInternal || access.ops.unmap != nil else {
                throw .invalidArgument.from(f, "\(access) was not created with needs_pin_pages and an unmap op")
            }
            guard length != 0 else { throw .invalidArgument.from(f, "length is 0") }
            let iova = iova.rawValue
            let (last, o) = iova.addingReportingOverflow(length - 1)
            guard !o else { throw .overflow.from(f, "iova 0x\(String(iova, radix: 16)) + length 0x\(String(length, radix: 16)) overflows") }
            guard let ioas = access.ioas else { throw .noEntry.from(f, "\(access) is not attached") }
            let (chunks, complete) = contigAreas(ioas.iopt, iova, last)
            var done: [(IOPTArea, ClosedRange<Int>)] = []
            var out: [PhysicalAddress] = []
            do throws(Errno) {
                for (i, (area, from, to)) in chunks.enumerated() {
                    if area.preventAccess { throw .invalidArgument.from(f, "the area at 0x\(String(area.iova, radix: 16)) is being unmapped") }
                    if i == 0 && area.startByte(at: from) % IOPTPages.pageSize != 0 {
                        throw .invalidArgument.from(f, "iova 0x\(String(from, radix: 16)) is not at a page boundary of its area")
                    }
                    if to != last && (area.startByte(at: to) + 1) % IOPTPages.pageSize != 0 {
                        throw .invalidArgument.from(f, "the area ends at 0x\(String(to, radix: 16)) inside a page")
                    }
                    let needed: IOMMUProt = write ? .write : .read
                    if !area.prot.contains(needed) {
                        throw .notPermitted.from(f, "a \(write ? "write" : "read") pin of the area at 0x\(String(area.iova, radix: 16)) mapped \(area.prot)")
                    }
                    let range = area.pageRange(from, to)
                    try area.pages.pinForAccess(range)
                    area.numAccesses += 1
                    if access.isInternal { area.numLocks += 1 }
                    done.append((area, range))
                    for p in range { out.append(area.pages.physicalAddress(ofByte: UInt64(p) * IOPTPages.pageSize)) }
                }
                if !complete { throw .noEntry.from(f, "[0x\(String(iova, radix: 16)), 0x\(String(last, radix: 16))] has a hole") }
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
    /// - Throws: `EINVAL` zero length; `EOVERFLOW`; `ENOENT` not attached, a hole, or the
    ///   access was destroyed; `EPERM` protection; `EFAULT` memory that cannot be reached.
    public func accessRW(_ access: AccessObject, iova: IOVA, count: Int, write data: [UInt8]?,
                         slowPath: Bool = false) throws(Errno) -> [UInt8] {
        let iova = iova.rawValue
        return try entry("iommufd_access_rw") { () throws(Errno) -> [UInt8] in
            let f = "iommufd_access_rw"
            try checkLive(access, f)
            guard count > 0 else { throw .invalidArgument.from(f, "count \(count) is not positive") }
            let (last, o) = iova.addingReportingOverflow(UInt64(count) - 1)
            guard !o else { throw .overflow.from(f, "iova 0x\(String(iova, radix: 16)) + count \(count) overflows") }
            guard let ioas = access.ioas else { throw .noEntry.from(f, "\(access) is not attached") }
            let (chunks, complete) = contigAreas(ioas.iopt, iova, last)
            guard complete else { throw .noEntry.from(f, "[0x\(String(iova, radix: 16)), 0x\(String(last, radix: 16))] has a hole") }
            var out: [UInt8] = []
            var offset = 0
            for (area, from, to) in chunks {
                if !area.prot.contains(data != nil ? .write : .read) {
                    throw .notPermitted.from(f, "a \(data != nil ? "write" : "read") of the area at 0x\(String(area.iova, radix: 16)) mapped \(area.prot)")
                }
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
