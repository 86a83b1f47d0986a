import IOMMUCore

extension IOMMUFD {
    /// `IOMMU_IOAS_MAP_FILE` (`iommufd_ioas_map_file` → `iopt_map_file_pages`): map
    /// `length` bytes of the memfd `fd` of the calling process, from byte `start`.
    ///
    /// Checks, in the kernel's order: unknown flags → `EOPNOTSUPP` (the struct has no
    /// reserved field: `fd` sits there); `iova` or `length` ≥ `ULONG_MAX` → `EOVERFLOW`;
    /// neither READABLE nor WRITEABLE → `EINVAL`; the IOAS → `ENOENT`; `fget(fd)` →
    /// `EBADF`; `start + length - 1` wraps → `EOVERFLOW`; `length` 0 → `EINVAL`. Then the
    /// MAP rules (`iopt_map_common`): alignment, reserved ranges, `EEXIST`, `ENOSPC`, and
    /// pinning into every attached domain, where a range reaching past the end of the
    /// file is `EINVAL` (`memfd_pin_folios`). As with MAP, with no domain nothing is
    /// pinned, so a range past EOF is noticed only when a domain or an access pins it.
    /// A file that is neither shmem nor hugetlbfs (``Memfd/isShmem`` false: only the
    /// model as a service installs such stand-ins, for a client's real descriptor) is
    /// `EINVAL`, right after `fget`.
    func ioctlIOASMapFile(_ u: inout UCmd) throws(Errno) -> Int32 {
        var c = u.decode(IOMMUIOASMapFile.self)
        let known = IOMMUFDConstant.mapFixedIOVA | IOMMUFDConstant.mapWriteable | IOMMUFDConstant.mapReadable
        let f = "iommufd_ioas_map_file"
        guard c.flags & ~known == 0 else { throw .notSupported.from(f, "unknown flags 0x\(String(c.flags & ~known, radix: 16))") }
        guard c.iova < ulongMax, c.length < ulongMax else { throw .overflow.from(f, "iova or length is ULONG_MAX") }
        guard c.flags & (IOMMUFDConstant.mapReadable | IOMMUFDConstant.mapWriteable) != 0 else {
            throw .invalidArgument.from(f, "neither IOMMU_IOAS_MAP_READABLE nor IOMMU_IOAS_MAP_WRITEABLE")
        }
        let ioas = try get(c.ioasId, .ioas, as: IOASObject.self)
        defer { put(ioas) }
        let file = try current.memfd(c.fd)
        guard file.isShmem else { throw .invalidArgument.from(f, "fd \(c.fd) is not a shmem/memfd file") }
        let prot = Self.mapProt(c.flags)
        let pages = try IOPTPages(ctx: self, file: file, start: c.start, length: c.length,
                                  writable: prot.contains(.write))
        if accountMode == .mm && pages.accountMode == .user { pages.accountMode = .mm }
        var iova = c.iova
        try ioas.iopt.mapPages([IOPTPagesSlice(pages: pages, startByte: c.start - pages.uptr, length: c.length)],
                               length: c.length, iova: &iova, prot: prot,
                               allocIOVA: c.flags & IOMMUFDConstant.mapFixedIOVA == 0)
        c.iova = iova
        try u.respond(c)
        return 0
    }

    /// `IOMMU_IOAS_CHANGE_PROCESS` (`iommufd_ioas_change_process`): make the calling
    /// task the owner of every IOAS's pinned pages, moving exactly the charge the kernel
    /// moves.
    ///
    /// `__reserved` ≠ 0 → `EOPNOTSUPP`. Any area of any IOAS that is not file-backed
    /// (`IOMMU_IOAS_MAP_FILE`) → `EINVAL`. Then, per `iopt_pages` (counted once however
    /// many areas share it), `need_charge_update` decides whether its charge moves:
    /// never for ACCOUNT_NONE; in MM mode when it belongs to another mm; in USER mode
    /// when it belongs to another mm or another user (USER mode charges `pinned_vm` of
    /// the mm too). The pinned pages of those are charged to the caller first, per mode
    /// (`charge_current`, against the caller's `RLIMIT_MEMLOCK`); over the limit →
    /// `ENOMEM` with nothing changed. Only then is each old owner uncharged, and every
    /// `iopt_pages` (ACCOUNT_NONE ones too, `change_mm`) takes the caller's mm, task and
    /// user. So an ACCOUNT_NONE mapping leaves its `VmPin` with the old mm, and its later
    /// unpin takes it from the new one (``PinAccounting`` keeps that signed, as the
    /// kernel's `atomic64_t`). Success with no IOAS or no area.
    func ioctlIOASChangeProcess(_ u: inout UCmd) throws(Errno) -> Int32 {
        let c = u.decode(IOMMUIOASChangeProcess.self)
        guard c.reserved == 0 else { throw .notSupported.from("iommufd_ioas_change_process", "__reserved is not zero") }
        var all: [IOPTPages] = []
        var seen = Set<ObjectIdentifier>()
        for case let ioas as IOASObject in table.liveObjects {
            for area in ioas.iopt.areas {
                guard area.pages.isFile else {
                    throw .invalidArgument.from("iommufd_ioas_change_process", "the area at 0x\(String(area.iova, radix: 16)) of \(ioas) maps user memory, not a file")
                }
                if seen.insert(ObjectIdentifier(area.pages)).inserted { all.append(area.pages) }
            }
        }
        let caller = current
        let task = currentCredentials
        let callerUser = task.uid
        func needChargeUpdate(_ p: IOPTPages) -> Bool {
            switch p.accountMode {
            case .none: false
            case .mm: p.process !== caller
            case .user: p.sourceUser != callerUser || p.process !== caller
            }
        }
        let moving = all.filter(needChargeUpdate)
        var npinned: [IOPTAccountMode: UInt64] = [:]
        for p in moving { npinned[p.accountMode, default: 0] += UInt64(p.pinnedCount) }
        // charge_current: every mode, in enum order, undone if a later one fails.
        var charged: [(IOPTAccountMode, UInt64)] = []
        for mode in [IOPTAccountMode.none, .user, .mm] {
            guard let n = npinned[mode], n > 0 else { continue }
            do throws(Errno) {
                try accounting.charge(n, mode: mode, limit: task.memlockLimitPages, uid: callerUser, pid: caller.pid)
            } catch {
                for (m, k) in charged.reversed() {
                    if let (function, message) = accounting.uncharge(k, mode: m, uid: callerUser, pid: caller.pid) {
                        warn(function, message)
                    }
                }
                throw error
            }
            charged.append((mode, n))
        }
        for p in all {
            if needChargeUpdate(p), p.pinnedCount > 0,
               let (function, message) = accounting.uncharge(UInt64(p.pinnedCount), mode: p.accountMode,
                                                             uid: p.sourceUser, pid: p.process.pid) {
                warn(function, message)
            }
            // change_mm
            p.process = caller
            p.sourceTask = task
            p.sourceUser = callerUser
        }
        return 0
    }
}
