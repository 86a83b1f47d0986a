import IOMMUCore
import IOMMUFD

extension IOMMUFD {
    /// `IOMMU_TEST_CMD` (`iommufd_test`): the selftest ops of `iommufd_test.h`.
    /// Unknown ops are `EOPNOTSUPP`.
    func ioctlTestCmd(_ backend: MockSelftestBackend, _ u: inout UCmd) throws(Errno) -> Int32 {
        var c = u.decode(IOMMUTestCmd.self)
        typealias T = IOMMUTestCmd
        switch c.op {
        case IOMMUTestOp.addReserved:
            let m = c.member(T.AddReserved.self)
            let ioas = try get(c.id, .ioas, as: IOASObject.self)
            defer { put(ioas) }
            try ioas.iopt.reserve(m.start, m.start &+ m.length &- 1, owner: nil)
        case IOMMUTestOp.mockDomain, IOMMUTestOp.mockDomainFlags:
            let flags = c.op == IOMMUTestOp.mockDomainFlags ? c.member(T.MockDomainFlags.self).devFlags : 0
            let (stdev, hwpt, idev) = try testMockDomain(backend, ptID: c.id, flags: flags)
            do throws(Errno) {
                if c.op == IOMMUTestOp.mockDomainFlags {
                    c.setMember(T.MockDomainFlags(outStdevId: stdev.rawID, outHwptId: hwpt, outIdevId: idev, devFlags: flags))
                } else {
                    c.setMember(T.MockDomain(outStdevId: stdev.rawID, outHwptId: hwpt, outIdevId: idev))
                }
                try u.respond(c)
            } catch {
                abortAndDestroy(stdev)
                throw error
            }
            finalize(stdev)
        case IOMMUTestOp.mdCheckMap:
            try testCheckMap(backend, c)
        case IOMMUTestOp.mdCheckRefs:
            let m = c.member(T.CheckRefs.self)
            guard m.length % IOPTPages.pageSize == 0, m.uptr % IOPTPages.pageSize == 0 else { throw .invalidArgument }
            // get_user_pages_fast one page at a time: a page that is not
            // mapped ends the walk with EFAULT, as the fault would.
            var va = m.uptr
            var preparedUpTo = m.uptr
            for _ in 0..<(m.length / IOPTPages.pageSize) {
                if va == preparedUpTo {
                    // An mm whose pages live outside the model (a ProcessPager's) brings
                    // the next stretch up to date first, a bounded one at a time.
                    let stretch = min(m.length - (va &- m.uptr), 512 * IOPTPages.pageSize)
                    try? current.prepareUserPages(address: va, length: stretch)
                    preparedUpTo = va &+ stretch
                }
                if current.physicalAddress(of: va) == nil { try current.handleFault(address: va, write: false) }
                let count = current.physicalAddress(of: va).map { PagePinRegistry.shared.pinCount(machine.memory, $0) } ?? 0
                guard count == Int(m.refs) else { throw .ioError }
                va &+= IOPTPages.pageSize
            }
        case IOMMUTestOp.createAccess:
            var m = c.member(T.CreateAccess.self)
            guard m.flags & ~IOMMUTestOp.createAccessNeedsPinPages == 0 else { throw .notSupported }
            let st = SelftestAccess(ctx: self)
            let access = try accessCreate(ops: IOMMUFDAccessOps(
                needsPinPages: m.flags & IOMMUTestOp.createAccessNeedsPinPages != 0,
                unmap: { [weak st] iova, length in st?.unmap(iova: iova, length: length) }))
            st.access = access
            do throws(Errno) {
                try accessAttach(access, ioasID: IOASObjectID(rawValue: c.id))
            } catch {
                accessDestroy(access)
                throw error
            }
            let fd: Int32
            do { fd = try installFile(.access(st)) } catch {
                st.close(self)
                throw error
            }
            m.outAccessFd = UInt32(bitPattern: fd)
            c.setMember(m)
            do { try u.respond(c) } catch {
                _ = closeFileLocked(fd)
                throw error
            }
        case IOMMUTestOp.destroyAccessPages:
            let st = try testAccess(c.id)
            let m = c.member(T.DestroyAccessPages.self)
            guard let item = st.items.removeValue(forKey: m.accessPagesId) else { throw .noEntry }
            accessUnpinPages(st.access, iova: IOVA(rawValue: item.iova), length: item.length)
        case IOMMUTestOp.accessPages:
            var m = c.member(T.AccessPages.self)
            guard m.length <= 16 << 20 else { throw .noMemory }
            guard m.flags & ~(IOMMUTestOp.accessFlagWrite | IOMMUTestOp.accessFlagSyz) == 0 else { throw .notSupported }
            let st = try testAccess(c.id)
            guard st.access.ops.needsPinPages else { throw .notSupported }
            let pas = try accessPinPages(st.access, iova: IOVA(rawValue: m.iova), length: m.length,
                                         write: m.flags & IOMMUTestOp.accessFlagWrite != 0)
            // `iommufd_test_check_pages`: each pinned page is the page behind `uptr`.
            let first = m.uptr &- (m.iova % IOPTPages.pageSize)
            for (i, pa) in pas.enumerated() {
                let va = first &+ UInt64(i) * IOPTPages.pageSize
                if current.lookupUserPage(address: va)?.alignedDown(to: IOPTPages.pageSize) != pa.alignedDown(to: IOPTPages.pageSize) {
                    accessUnpinPages(st.access, iova: IOVA(rawValue: m.iova), length: m.length)
                    throw .invalidExchange
                }
            }
            st.nextItemID += 1
            st.items[st.nextItemID] = (m.iova, m.length)
            m.outAccessPagesId = st.nextItemID
            c.setMember(m)
            do { try u.respond(c) } catch {
                st.items[st.nextItemID] = nil
                accessUnpinPages(st.access, iova: IOVA(rawValue: m.iova), length: m.length)
                throw error
            }
        case IOMMUTestOp.accessRW:
            let m = c.member(T.AccessRW.self)
            guard m.flags & ~(IOMMUTestOp.accessRWWrite | IOMMUTestOp.accessRWSlowPath) == 0 else { throw .notSupported }
            guard m.length <= 16 << 20 else { throw .noMemory }
            let st = try testAccess(c.id)
            let slow = m.flags & IOMMUTestOp.accessRWSlowPath != 0
            if m.flags & IOMMUTestOp.accessRWWrite != 0 {
                let data = try user.copyFromUser(m.uptr, count: Int(m.length))
                _ = try accessRW(st.access, iova: IOVA(rawValue: m.iova), count: Int(m.length), write: data, slowPath: slow)
            } else {
                let data = try accessRW(st.access, iova: IOVA(rawValue: m.iova), count: Int(m.length), write: nil, slowPath: slow)
                try user.copyToUser(m.uptr, data)
            }
        case IOMMUTestOp.setTempMemoryLimit:
            let m = c.member(T.MemoryLimit.self)
            guard m.limit >= 12 else { throw .invalidArgument }
            tempMemoryLimit = m.limit
        case IOMMUTestOp.mockDomainReplace:
            let stdev = try get(c.id, .selftest, as: SelftestObject.self)
            defer { put(stdev) }
            guard let idev = stdev.idev else { throw .noEntry }
            let pt = try changePT(idev, pasid: nil, ptID: c.member(T.MockDomainReplace.self).ptId,
                                  mode: .replace)
            c.setMember(T.MockDomainReplace(ptId: pt))
            try u.respond(c)
        case IOMMUTestOp.accessReplaceIOAS:
            let st = try testAccess(c.id)
            try accessReplace(st.access, ioasID: IOASObjectID(rawValue: c.member(T.AccessReplaceIOAS.self).ioasId))
        case IOMMUTestOp.dirty:
            var m = c.member(T.Dirty.self)
            guard m.pageSize != 0, m.length != 0, m.iova % m.pageSize == 0, m.length % m.pageSize == 0,
                  m.uptr != 0 else { throw .invalidArgument }
            let hwpt = try get(c.id, .hwptPaging, as: HWPTPagingObject.self)
            defer { put(hwpt) }
            guard let d = hwpt.domain, backend.isMockPagingDomain(d) else { throw .invalidArgument }
            // kvzalloc of the bitmap: a size past INT_MAX is refused (ENOMEM).
            let bits = m.length / m.pageSize
            let bytes = bits / 8 + (bits % 8 == 0 ? 0 : 1)
            guard bytes <= UInt64(Int32.max) else { throw .noMemory }
            let bitmap = try user.copyFromUser(m.uptr, count: Int(bytes))
            m.outNrDirty = try backend.markDirty(d, iova: m.iova, length: m.length, pageSize: m.pageSize, bitmap: bitmap)
            c.setMember(m)
            try u.respond(c)
        case IOMMUTestOp.mdCheckIOTLB:
            let m = c.member(T.CheckIOTLB.self)
            let hwpt = try get(c.id, .hwptNested, as: HWPTNestedObject.self)
            defer { put(hwpt) }
            guard let d = hwpt.domain else { throw .invalidArgument }
            guard try backend.nestedIOTLB(d, id: m.id) == m.iotlb else { throw .invalidArgument }
        case IOMMUTestOp.triggerIOPF:
            let m = c.member(T.TriggerIOPF.self)
            let idev = try get(m.devId, .device, as: DeviceObject.self)
            defer { put(idev) }
            // `iommufd_test_trigger_iopf`: the outcome of the report is not the caller's
            // business; an unhandled request was already answered INVALID by the core.
            try? machine.iommu.reportDeviceFault(idev.dev, IOPFFault(flags: .lastPage, pasid: .uapi(m.pasid), grpid: m.grpid,
                                                                      perm: IOMMUFaultPerm(rawValue: m.perm),
                                                                      address: IOVA(rawValue: m.addr)))
        case IOMMUTestOp.devCheckCache:
            let m = c.member(T.CheckDevCache.self)
            let idev = try get(c.id, .device, as: DeviceObject.self)
            defer { put(idev) }
            guard try backend.deviceCache(idev.dev, id: m.id) == m.cache else { throw .invalidArgument }
        case IOMMUTestOp.triggerVEvent:
            let idev = try get(c.member(T.TriggerVEvent.self).devId, .device, as: DeviceObject.self)
            defer { put(idev) }
            try backend.triggerVirtualEvent(idev.dev)
        case IOMMUTestOp.pasidAttach, IOMMUTestOp.pasidReplace:
            let m = c.member(T.PasidAttach.self)
            let stdev = try get(c.id, .selftest, as: SelftestObject.self)
            defer { put(stdev) }
            guard let idev = stdev.idev else { throw .noEntry }
            let pt = try changePT(idev, pasid: .uapi(m.pasid), ptID: m.ptId,
                                  mode: c.op == IOMMUTestOp.pasidAttach ? .attach : .replace)
            c.setMember(T.PasidAttach(pasid: m.pasid, ptId: pt))
            try u.respond(c)
        case IOMMUTestOp.pasidDetach:
            let stdev = try get(c.id, .selftest, as: SelftestObject.self)
            defer { put(stdev) }
            if let idev = stdev.idev { hwptDetach(idev, pasid: .uapi(c.member(T.PasidDetach.self).pasid)) }
        case IOMMUTestOp.pasidCheckHWPT:
            let m = c.member(T.PasidCheck.self)
            let stdev = try get(c.id, .selftest, as: SelftestObject.self)
            defer { put(stdev) }
            guard let dev = stdev.mdev else { throw .noEntry }
            let attached = dev.group?.slot(.uapi(m.pasid))?.domain
            if m.hwptId == 0 {
                if attached != nil { throw .invalidArgument }
            } else {
                let hwpt = try get(m.hwptId, .any, as: HWPTObject.self)
                defer { put(hwpt) }
                guard let attached, attached === hwpt.domain else { throw .invalidArgument }
            }
        default:
            throw .notSupported
        }
        return 0
    }

    /// The selftest access behind an access fd.
    /// - Throws: `EBADFD` when `fd` is not an access fd of this context.
    func testAccess(_ fd: UInt32) throws(Errno) -> SelftestAccess {
        guard case .access(let file)? = files[Int32(bitPattern: fd)], let st = file as? SelftestAccess else {
            throw .badFileDescriptorState
        }
        return st
    }

    /// `iommufd_test_mock_domain`: a SELFTEST object, a mock device bound to the context,
    /// its RID attached to `ptID`. Returns the unfinalized object, the HWPT ID and the
    /// device ID.
    func testMockDomain(_ backend: MockSelftestBackend, ptID: UInt32,
                        flags: UInt32) throws(Errno) -> (SelftestObject, UInt32, UInt32) {
        let known = IOMMUTestOp.deviceNoDirty | IOMMUTestOp.deviceHugeIOVA | IOMMUTestOp.devicePasid
        guard flags & ~known == 0 else { throw .invalidArgument }
        let stdev = SelftestObject()
        try allocObject(stdev)
        do throws(Errno) {
            let mdev = try backend.createMockDevice(on: machine, flags: flags)
            stdev.mdev = mdev
            let idev = try deviceBind(mdev)
            stdev.idev = idev
            let hwpt = try changePT(idev, pasid: nil, ptID: ptID, mode: .attach)
            return (stdev, hwpt, idev.rawID)
        } catch {
            abortAndDestroy(stdev)
            throw error
        }
    }

    /// `iommufd_test_md_check_pa`.
    func testCheckMap(_ backend: MockSelftestBackend, _ c: IOMMUTestCmd) throws(Errno) {
        let m = c.member(IOMMUTestCmd.CheckMap.self)
        let page = backend.mockPageSize
        guard m.iova % page == 0, m.length % page == 0, m.uptr % page == 0,
              !m.uptr.addingReportingOverflow(m.length).overflow else { throw .invalidArgument }
        let hwpt = try get(c.id, .hwptPaging, as: HWPTPagingObject.self)
        defer { put(hwpt) }
        guard let d = hwpt.domain, backend.isMockPagingDomain(d) else { throw .invalidArgument }
        var off: UInt64 = 0
        while off < m.length {
            guard let pa = backend.mockTranslate(d, iova: IOVA(rawValue: m.iova + off)) else { throw .invalidArgument }
            let va = m.uptr + off
            guard let upa = current.lookupUserPage(address: va), upa == pa else { throw .invalidArgument }
            off += page
        }
    }
}
