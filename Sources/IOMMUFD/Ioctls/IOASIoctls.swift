import IOMMUCore

/// `ULONG_MAX` on the 64-bit kernels this models.
let ulongMax = UInt64.max

extension IOMMUFD {
    /// `IOMMU_DESTROY` (`iommufd_destroy`).
    func ioctlDestroy(_ u: inout UCmd) throws(Errno) -> Int32 {
        try removeObject(u.decode(IOMMUDestroy.self).id)
        return 0
    }

    /// `IOMMU_IOAS_ALLOC` (`iommufd_ioas_alloc_ioctl`).
    func ioctlIOASAlloc(_ u: inout UCmd) throws(Errno) -> Int32 {
        var c = u.decode(IOMMUIOASAlloc.self)
        guard c.flags == 0 else { throw .notSupported.from("iommufd_ioas_alloc_ioctl", "unknown flags 0x\(String(c.flags, radix: 16))") }
        let ioas = try ioasAlloc()
        c.outIoasId = ioas.rawID
        do { try u.respond(c) } catch {
            abortAndDestroy(ioas)
            throw error
        }
        finalize(ioas)
        return 0
    }

    /// `IOMMU_IOAS_IOVA_RANGES` (`iommufd_ioas_iova_ranges`).
    func ioctlIOASIOVARanges(_ u: inout UCmd) throws(Errno) -> Int32 {
        var c = u.decode(IOMMUIOASIOVARanges.self)
        guard c.reserved == 0 else { throw .notSupported.from("iommufd_ioas_iova_ranges", "__reserved is not zero") }
        let ioas = try get(c.ioasId, .ioas, as: IOASObject.self)
        defer { put(ioas) }
        let capacity = c.numIovas
        let ranges = ioas.iopt.iovaRanges()
        for (i, r) in ranges.enumerated() where UInt32(i) < capacity {
            try user.copyToUser(c.allowedIovas &+ UInt64(i * IOMMUIOVARange.size), r.bytes)
        }
        c.numIovas = UInt32(ranges.count)
        c.outIovaAlignment = ioas.iopt.iovaAlignment
        try u.respond(c)
        if c.numIovas > capacity {
            throw .messageTooLong.from("iommufd_ioas_iova_ranges", "\(c.numIovas) ranges do not fit in num_iovas \(capacity)")
        }
        return 0
    }

    /// `IOMMU_IOAS_ALLOW_IOVAS` (`iommufd_ioas_allow_iovas`).
    func ioctlIOASAllowIOVAs(_ u: inout UCmd) throws(Errno) -> Int32 {
        let c = u.decode(IOMMUIOASAllowIOVAs.self)
        let f = "iommufd_ioas_allow_iovas"
        guard c.reserved == 0 else { throw .notSupported.from(f, "__reserved is not zero") }
        let ioas = try get(c.ioasId, .ioas, as: IOASObject.self)
        defer { put(ioas) }
        var ranges: [IOMMUIOVARange] = []
        for i in 0..<Int(c.numIovas) {
            let b = try user.copyFromUser(c.allowedIovas &+ UInt64(i * IOMMUIOVARange.size), count: IOMMUIOVARange.size)
            let r = IOMMUIOVARange(UAPIBytes(b))
            guard r.start < r.last else {
                throw .invalidArgument.from(f, "range \(i): start 0x\(String(r.start, radix: 16)) is not below last 0x\(String(r.last, radix: 16))")
            }
            if ranges.contains(where: { $0.start <= r.last && r.start <= $0.last }) {
                throw .invalidArgument.from(f, "range \(i) overlaps an earlier one")
            }
            if shouldFail() { throw .noMemory.from(f, "allocation failed by injection") }
            ranges.append(r)
        }
        try ioas.iopt.setAllowed(ranges)
        return 0
    }

    static func mapProt(_ flags: UInt32) -> IOMMUProt {
        var prot: IOMMUProt = [.cache]
        if flags & IOMMUFDConstant.mapWriteable != 0 { prot.insert(.write) }
        if flags & IOMMUFDConstant.mapReadable != 0 { prot.insert(.read) }
        return prot
    }

    /// `IOMMU_IOAS_MAP` (`iommufd_ioas_map`).
    func ioctlIOASMap(_ u: inout UCmd) throws(Errno) -> Int32 {
        var c = u.decode(IOMMUIOASMap.self)
        let known = IOMMUFDConstant.mapFixedIOVA | IOMMUFDConstant.mapWriteable | IOMMUFDConstant.mapReadable
        let f = "iommufd_ioas_map"
        guard c.flags & ~known == 0 else { throw .notSupported.from(f, "unknown flags 0x\(String(c.flags & ~known, radix: 16))") }
        guard c.reserved == 0 else { throw .notSupported.from(f, "__reserved is not zero") }
        guard c.iova < ulongMax, c.length < ulongMax else { throw .overflow.from(f, "iova or length is ULONG_MAX") }
        guard c.flags & (IOMMUFDConstant.mapReadable | IOMMUFDConstant.mapWriteable) != 0 else {
            throw .invalidArgument.from(f, "neither IOMMU_IOAS_MAP_READABLE nor IOMMU_IOAS_MAP_WRITEABLE")
        }
        let ioas = try get(c.ioasId, .ioas, as: IOASObject.self)
        defer { put(ioas) }
        var iova = c.iova
        try mapUserPages(ioas, iova: &iova, uptr: c.userVa, length: c.length, prot: Self.mapProt(c.flags),
                         allocIOVA: c.flags & IOMMUFDConstant.mapFixedIOVA == 0)
        c.iova = iova
        try u.respond(c)
        return 0
    }

    /// `iopt_map_user_pages`.
    func mapUserPages(_ ioas: IOASObject, iova: inout UInt64, uptr: UInt64, length: UInt64, prot: IOMMUProt,
                      allocIOVA: Bool) throws(Errno) {
        let pages = try IOPTPages(ctx: self, uptr: uptr, length: length, writable: prot.contains(.write))
        if accountMode == .mm && pages.accountMode == .user { pages.accountMode = .mm }
        try ioas.iopt.mapPages(CollectionOfOne(IOPTPagesSlice(pages: pages, startByte: uptr - pages.uptr, length: length)),
                               length: length, iova: &iova, prot: prot, allocIOVA: allocIOVA)
    }

    /// `IOMMU_IOAS_COPY` (`iommufd_ioas_copy`).
    func ioctlIOASCopy(_ u: inout UCmd) throws(Errno) -> Int32 {
        var c = u.decode(IOMMUIOASCopy.self)
        let known = IOMMUFDConstant.mapFixedIOVA | IOMMUFDConstant.mapWriteable | IOMMUFDConstant.mapReadable
        let f = "iommufd_ioas_copy"
        guard c.flags & ~known == 0 else { throw .notSupported.from(f, "unknown flags 0x\(String(c.flags & ~known, radix: 16))") }
        guard c.length < ulongMax, c.srcIova < ulongMax, c.dstIova < ulongMax else {
            throw .overflow.from(f, "length, src_iova or dst_iova is ULONG_MAX")
        }
        guard c.flags & (IOMMUFDConstant.mapReadable | IOMMUFDConstant.mapWriteable) != 0 else {
            throw .invalidArgument.from(f, "neither IOMMU_IOAS_MAP_READABLE nor IOMMU_IOAS_MAP_WRITEABLE")
        }
        let src = try get(c.srcIoasId, .ioas, as: IOASObject.self)
        let slices: [IOPTPagesSlice]
        do { slices = try src.iopt.getPages(iova: c.srcIova, length: c.length) } catch {
            put(src)
            throw error
        }
        put(src)
        let dst = try get(c.dstIoasId, .ioas, as: IOASObject.self)
        defer { put(dst) }
        var iova = c.dstIova
        try dst.iopt.mapPages(slices, length: c.length, iova: &iova, prot: Self.mapProt(c.flags),
                              allocIOVA: c.flags & IOMMUFDConstant.mapFixedIOVA == 0)
        c.dstIova = iova
        try u.respond(c)
        return 0
    }

    /// `IOMMU_IOAS_UNMAP` (`iommufd_ioas_unmap`).
    func ioctlIOASUnmap(_ u: inout UCmd) throws(Errno) -> Int32 {
        var c = u.decode(IOMMUIOASUnmap.self)
        let ioas = try get(c.ioasId, .ioas, as: IOASObject.self)
        defer { put(ioas) }
        let result: (Errno?, UInt64)
        if c.iova == 0 && c.length == .max {
            result = ioas.iopt.unmapAll()
        } else {
            guard c.iova < ulongMax, c.length < ulongMax else {
                throw .overflow.from("iommufd_ioas_unmap", "iova or length is ULONG_MAX")
            }
            result = ioas.iopt.unmap(iova: c.iova, length: c.length)
        }
        if let e = result.0 { throw e }
        c.length = result.1
        try u.respond(c)
        return 0
    }

    /// `IOMMU_OPTION` (`iommufd_option`).
    func ioctlOption(_ u: inout UCmd) throws(Errno) -> Int32 {
        var c = u.decode(IOMMUOption.self)
        let f = "iommufd_option"
        guard c.reserved == 0 else { throw .notSupported.from(f, "__reserved is not zero") }
        switch c.optionId {
        case IOMMUFDConstant.optionRlimitMode:
            guard c.objectId == 0 else { throw .notSupported.from(f, "IOMMU_OPTION_RLIMIT_MODE takes object_id 0") }
            switch c.op {
            case IOMMUFDConstant.optionOpGet:
                c.val64 = accountMode == .mm ? 1 : 0
            case IOMMUFDConstant.optionOpSet:
                guard currentCredentials.capable(.sysResource) else { throw .notPermitted.from(f, "setting the rlimit mode needs CAP_SYS_RESOURCE") }
                guard !table.hasObjects else { throw .busy.from(f, "the rlimit mode changes only while the context has no objects") }
                switch c.val64 {
                case 0: accountMode = .user
                case 1: accountMode = .mm
                default: throw .invalidArgument.from(f, "rlimit mode \(c.val64) is neither 0 (user) nor 1 (mm)")
                }
            default: throw .notSupported.from(f, "unknown op \(c.op)")
            }
        case IOMMUFDConstant.optionHugePages:
            let ioas = try get(c.objectId, .ioas, as: IOASObject.self)
            defer { put(ioas) }
            switch c.op {
            case IOMMUFDConstant.optionOpSet:
                switch c.val64 {
                case 0: try ioas.iopt.disableLarge()
                case 1: ioas.iopt.enableLarge()
                default: throw .invalidArgument.from(f, "huge pages value \(c.val64) is neither 0 nor 1")
                }
            case IOMMUFDConstant.optionOpGet:
                c.val64 = ioas.iopt.disableLargePages ? 0 : 1
            default: throw .notSupported.from(f, "unknown op \(c.op)")
            }
        default:
            throw .notSupported.from(f, "unknown option_id \(c.optionId)")
        }
        // Only `val64` goes back.
        var v = UAPIBytes(count: 8)
        v.setU64(0, c.val64)
        try user.copyToUser(u.ubuffer + UInt64(IOMMUOption.offset(of: "val64")), v.bytes)
        return 0
    }
}
