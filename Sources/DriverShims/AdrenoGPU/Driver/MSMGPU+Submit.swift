import IOMMUCore
import IOMMUDrivers

extension MSMGPU {
    /// Submits `work` for `ctx` (`msm_ioctl_gem_submit` → `a6xx_submit`): writes into the
    /// ring the table switch if the context changes (`a6xx_set_pagetable`), the work
    /// packets, and the fence (`CP_EVENT_WRITE CACHE_FLUSH_TS`); the submission holds a
    /// reference to the context's address space until it retires. The GPU runs it at
    /// the next ``run()``.
    /// - Returns: the submission's fence.
    /// - Throws: `EINVAL` for a closed context or a work length outside
    ///   0...``AdrenoGPU/maxWorkBytes``; nothing is queued then.
    @discardableResult
    public func submit(_ ctx: MSMContext, _ work: [AdrenoWork]) throws(Errno) -> UInt32 {
        for w in work {
            let n: Int = switch w {
            case .copy(_, _, let n), .fill(_, let n, _), .readBack(_, _, let n): n
            }
            guard (0...AdrenoGPU.maxWorkBytes).contains(n) else { throw .invalidArgument }
        }
        return try lock.withLock { () throws(Errno) -> UInt32 in
            guard !ctx.closed else { throw .invalidArgument }
            setPagetable(ctx)
            for w in work { emit(Self.packet(w)) }
            let fence = nextFence
            nextFence &+= 1
            let at = (memstore.gpuAddress + Self.fenceOffset).rawValue
            emit([PM4.header(.eventWrite, count: 4), PM4.Event.cacheFlushTS,
                  UInt32(truncatingIfNeeded: at), UInt32(truncatingIfNeeded: at >> 32), fence])
            ctx.inFlight += 1
            inFlight.append((fence, ctx))
            return fence
        }
    }

    /// `a6xx_set_pagetable`: nothing if `ctx` is the ring's current context
    /// (`cur_ctx_seqno`) or has no table of its own (`msm_iommu_pagetable_params` fails:
    /// one global table); otherwise `CP_SMMU_TABLE_UPDATE` with the table's base, its
    /// ASID, CONTEXTIDR 0 and context bank 0, `CP_MEM_WRITE` of the new TTBR0 to the
    /// memstore, and `CP_EVENT_WRITE` of the UCHE flush. The caller holds the lock.
    func setPagetable(_ ctx: MSMContext) {
        guard ctx.seqno != currentContextSeqno else { return }
        let target: (ttbr: PhysicalAddress, asid: UInt16)?
        switch ctx.space {
        case .pagetable(let pt): target = (pt.ttbr, pt.asid)
        case .pasid(let pasid): target = backdoor?.installed(pasid)
        case .global, .gone: target = nil
        }
        guard let (ttbr, asid) = target else { return }
        let mem = (memstore.gpuAddress + Self.ttbr0Offset).rawValue
        let t = ttbr.rawValue
        emit([PM4.header(.smmuTableUpdate, count: 4),
              UInt32(truncatingIfNeeded: t), UInt32(truncatingIfNeeded: t >> 32) & 0xFFFF | UInt32(asid) << 16, 0, 0])
        emit([PM4.header(.memWrite, count: 4), UInt32(truncatingIfNeeded: mem), UInt32(truncatingIfNeeded: mem >> 32),
              UInt32(truncatingIfNeeded: t), UInt32(truncatingIfNeeded: t >> 32)])
        emit([PM4.header(.eventWrite, count: 1), PM4.Event.ucheFlush])
        currentContextSeqno = ctx.seqno
    }

    /// The model's packet for one unit of work.
    static func packet(_ w: AdrenoWork) -> [UInt32] {
        func lo(_ a: IOVA) -> UInt32 { UInt32(truncatingIfNeeded: a.rawValue) }
        func hi(_ a: IOVA) -> UInt32 { UInt32(truncatingIfNeeded: a.rawValue >> 32) }
        switch w {
        case .copy(let from, let to, let n):
            return [PM4.header(.modelCopy, count: 5), lo(from), hi(from), lo(to), hi(to), UInt32(truncatingIfNeeded: n)]
        case .fill(let at, let n, let byte):
            return [PM4.header(.modelFill, count: 4), lo(at), hi(at), UInt32(truncatingIfNeeded: n), UInt32(byte)]
        case .readBack(let from, let into, let n):
            return [PM4.header(.modelReadBack, count: 5), lo(from), hi(from), lo(into), hi(into),
                    UInt32(truncatingIfNeeded: n)]
        }
    }

    /// The TTBR0 the ring last recorded in the memstore (`rbmemptr(ring, ttbr0)`).
    public var lastRecordedTTBR0: PhysicalAddress {
        PhysicalAddress(rawValue: memory.pointer(memstore.physical + Self.ttbr0Offset).load(as: UInt64.self))
    }

    /// The context the ring last switched to, nil if none (or it is gone).
    public var ringCurrentContext: MSMContext? {
        lock.withLock { contexts.first { $0.seqno == currentContextSeqno } }
    }
}

/// The GPU driver's side of the 2017 backdoor (``SMMUv2PASIDOps``): the SMMUv2 driver
/// installs each private PASID here, and the ring switches to the table and ASID it was
/// given.
final class MSMPASIDBackdoor: SMMUv2PASIDOps, @unchecked Sendable {
    private let lock = Lock()
    private var tables: [PASID: (ttbr: PhysicalAddress, asid: UInt16)] = [:]
    private let calls: APICallLog

    init(calls: APICallLog) { self.calls = calls }

    /// `install_pasid`: remember the PASID's table and ASID.
    func installPasid(_ domain: IOMMUDomain, pasid: PASID, ttbr: PhysicalAddress, asid: UInt16) throws(Errno) {
        calls.record("(callback) install_pasid")
        lock.withLock { tables[pasid] = (ttbr, asid) }
    }

    /// `remove_pasid`: forget it.
    func removePasid(_ domain: IOMMUDomain, pasid: PASID) {
        calls.record("(callback) remove_pasid")
        lock.withLock { _ = tables.removeValue(forKey: pasid) }
    }

    /// The table and ASID installed for `pasid`.
    func installed(_ pasid: PASID) -> (ttbr: PhysicalAddress, asid: UInt16)? { lock.withLock { tables[pasid] } }
}
