import IOMMUCore
import IOMMUDrivers

/// An msm-like GPU driver for ``AdrenoGPU`` (`drivers/gpu/drm/msm`): the GPU's IOMMU
/// domain (`msm_iommu_gpu_new`), kernel buffers in its TTBR1 range, process contexts with
/// their address spaces (one of the three ``AdrenoAddressSpaces``), submissions written
/// into the ring with a table switch only when the context changes
/// (`a6xx_set_pagetable`), retirement by fence, and the fault handler.
///
/// Every IOMMU call the driver makes is recorded in ``calls`` by its kernel name.
/// Processes may open contexts, map buffers, submit and run from several threads: the
/// ring and the driver's state are serialised by its lock, and ``run()`` runs the GPU
/// under it (one command processor).
public final class MSMGPU: @unchecked Sendable {
    /// The GPU.
    public let gpu: AdrenoGPU
    /// How processes get their address spaces.
    public let variant: AdrenoAddressSpaces
    /// Deliberate bugs (none by default).
    public let bugs: MSMDriverBugs
    /// The IOMMU API calls the driver made, in order.
    public let calls: APICallLog
    /// The GPU's domain (`msm_iommu->domain`): UNMANAGED, its own table in TTBR1.
    public let domain: IOMMUDomain
    let machine: Machine
    var iommu: IOMMUSubsystem { machine.iommu }
    let memory: PhysicalMemory
    /// The GPU's `adreno_smmu_priv`, nil if the SMMU did not fill it.
    let adrenoSMMU: AdrenoSMMUPriv?
    /// The private-PASID registry and the backdoor (the 2017 variant).
    let privatePASIDs: ARMSMMUv2PrivatePASIDs?
    let backdoor: MSMPASIDBackdoor?

    let lock = RecursiveLock()
    /// `iommu->pagetables` (`init_lock`): live per-process tables.
    var pagetables = 0
    /// Kernel buffers: the ring and the memstore (fence, last TTBR0).
    public private(set) var ring: MSMBuffer!
    private(set) var memstore: MSMBuffer!
    var nextKernelAddress: IOVA = 0
    /// Ring state: dwords written (`wptr`), `ring->cur_ctx_seqno` (the context the ring
    /// last switched to), the next fence, the submissions not retired.
    var wptr = 0
    var currentContextSeqno = 0
    var nextContextSeqno = 1
    var nextFence: UInt32 = 1
    var inFlight: [(fence: UInt32, context: MSMContext)] = []
    var contexts: [MSMContext] = []
    private var faultLog: [MSMFault] = []

    /// Ring size in dwords.
    public static let ringDwords = 4096
    /// Memstore offsets: the fence, and the TTBR0 `a6xx_set_pagetable` records.
    static let fenceOffset: UInt64 = 0
    static let ttbr0Offset: UInt64 = 8

    /// Binds the driver to `gpu` (`adreno_gpu_init` + `msm_iommu_gpu_new`): allocates the
    /// GPU's paging domain, sets its page-table quirks, attaches it (replacing the
    /// identity default; the SMMU's Qualcomm implementation then gives it context bank 0
    /// and the TTBR1 split, and fills `adreno_smmu_priv`), installs the fault handler,
    /// enables stall-on-fault (mainline and global variants), and maps the ring and the
    /// memstore in the TTBR1 range.
    /// - Throws: the IOMMU calls' errno; `ENODEV` if the device is on no machine.
    public init(gpu: AdrenoGPU, variant: AdrenoAddressSpaces, bugs: MSMDriverBugs = [],
                calls: APICallLog = APICallLog()) throws(Errno) {
        self.gpu = gpu
        self.variant = variant
        self.bugs = bugs
        self.calls = calls
        guard let machine = gpu.device.machine else { throw .noDevice }
        self.machine = machine
        memory = machine.memory
        calls.record("iommu_paging_domain_alloc")
        domain = try machine.iommu.allocPagingDomain(for: gpu.device)
        calls.record("iommu_set_pgtable_quirks")
        try? machine.iommu.setPgtableQuirks(domain, [])
        calls.record("iommu_attach_device")
        do throws(Errno) { try machine.iommu.attachDevice(domain, to: gpu.device) } catch {
            machine.iommu.freeDomain(domain)
            throw error
        }
        let priv = AdrenoSMMUPriv.of(gpu.device)
        adrenoSMMU = priv?.cookie != nil ? priv : nil
        if variant == .privatePASID {
            privatePASIDs = ARMSMMUv2PrivatePASIDs()
            backdoor = MSMPASIDBackdoor(calls: calls)
        } else {
            privatePASIDs = nil
            backdoor = nil
        }
        calls.record("iommu_set_fault_handler")
        machine.iommu.setFaultHandler(domain) { [weak self] _, _, iova, direction throws(Errno) in
            self?.faultHandler(iova: iova, write: direction == .write)
        }
        do throws(Errno) {
            if let backdoor, let privatePASIDs {
                calls.record("register smmuv2_pasid_ops")
                try privatePASIDs.registerPasidOps(domain, backdoor)
            } else if let priv = adrenoSMMU, let cookie = priv.cookie {
                calls.record("adreno_smmu_priv.set_stall(true)")
                priv.setStall(cookie, true)
            }
            nextKernelAddress = max(domain.geometry.apertureStart, IOVA(rawValue: 16 << 20))
            ring = try allocKernelBuffer(bytes: Self.ringDwords * 4)
            memstore = try allocKernelBuffer(bytes: 4096)
            gpu.setRing(base: ring.gpuAddress, dwords: Self.ringDwords)
        } catch {
            // The domain's table goes with the domain; the ring's memory is ours.
            teardownDomain()
            if let ring { memory.free(ring.physical, bytes: Int(ring.size)) }
            throw error
        }
    }

    // MARK: kernel buffers

    /// A kernel buffer mapped into the GPU domain (`msm_gem_new` + `msm_iommu_map`:
    /// `iommu_map_sgtable` at an address of the TTBR1 range).
    private func allocKernelBuffer(bytes: Int) throws(Errno) -> MSMBuffer {
        let size = UInt64(bytes + 4095) & ~4095
        let pa = try memory.allocContiguous(bytes: Int(size))
        let va = nextKernelAddress
        calls.record("iommu_map_sgtable")
        do throws(Errno) {
            try iommu.mapSG(domain, iova: va, segments: [(pa, size)], prot: [.read, .write])
        } catch {
            memory.free(pa, bytes: Int(size))
            throw error
        }
        nextKernelAddress += size
        return MSMBuffer(gpuAddress: va, size: size, physical: pa, context: nil)
    }

    // MARK: faults

    /// The faults the fault handler reported, oldest first.
    public var faults: [MSMFault] { lock.withLock { faultLog } }

    /// `msm_gpu_fault_handler` → `adreno_fault_handler`: read the syndrome through
    /// `get_fault_info`, name the process whose table was in TTBR0, record the fault, and
    /// with stall-on-fault end the stalled transaction (`resume_translation(terminate)`).
    /// The 2017 variant has no `get_fault_info`: it names the process from the TTBR0 the
    /// ring recorded in the memstore at its last switch (`a6xx_set_pagetable`'s
    /// `CP_MEM_WRITE`).
    private func faultHandler(iova: IOVA, write: Bool) {
        var info: AdrenoSMMUFaultInfo?
        if let priv = adrenoSMMU, let cookie = priv.cookie, variant != .privatePASID {
            calls.record("adreno_smmu_priv.get_fault_info")
            info = priv.getFaultInfo(cookie)
        }
        let table = info?.ttbr0Table ?? lastRecordedTTBR0
        let name: String = lock.withLock {
            if table != 0, let c = contexts.first(where: { tableBase(of: $0) == table }) { return c.name }
            return variant == .globalTable ? "unknown (one table for every process)"
                : "unknown (TTBR0 \(table))"
        }
        let stalled = info.map { $0.fsr & SMMUv2Field.fsrSS != 0 } ?? false
        if stalled, let priv = adrenoSMMU, let cookie = priv.cookie {
            calls.record("adreno_smmu_priv.resume_translation(terminate)")
            priv.resumeTranslation(cookie, terminate: true)
        }
        let fault = MSMFault(process: name, iova: info?.far ?? iova, write: write, ttbr0: info?.ttbr0 ?? table.rawValue,
                             fsr: info?.fsr, terminated: stalled ? true : nil)
        lock.withLock { faultLog.append(fault) }
    }

    /// The table base the ring switches to for `ctx` (TTBR0 without the ASID), nil when
    /// it has none of its own.
    func tableBase(of ctx: MSMContext) -> PhysicalAddress? {
        switch ctx.space {
        case .pagetable(let pt): pt.ttbr
        case .pasid(let pasid): backdoor?.installed(pasid)?.ttbr
        case .global, .gone: nil
        }
    }

    // MARK: teardown

    /// Tears the GPU's IOMMU state down: every context closed (their tables destroyed
    /// once their work retired), the kernel buffers unmapped and freed, the domain
    /// detached and freed (`msm_iommu_detach`, `msm_iommu_destroy`).
    public func shutdown() {
        run()
        for c in lock.withLock({ contexts }) { closeContext(c) }
        run()
        for b in [ring, memstore].compactMap({ $0 }) where b.mapped {
            calls.record("iommu_unmap")
            _ = iommu.unmap(domain, iova: b.gpuAddress, size: b.size)
            b.mapped = false
            memory.free(b.physical, bytes: Int(b.size))
        }
        teardownDomain()
    }

    private func teardownDomain() {
        calls.record("iommu_detach_device")
        iommu.detachDevice(domain, from: gpu.device)
        calls.record("iommu_domain_free")
        iommu.freeDomain(domain)
    }

    // MARK: the ring

    /// Writes `dwords` into the ring at the write pointer (wrapping) and advances it;
    /// runs the GPU first if there is not room enough.
    func emit(_ dwords: [UInt32]) {
        let size = Self.ringDwords
        if (gpu.readPointer - wptr - 1 + size) % size < dwords.count { run() }
        var i = wptr
        for d in dwords {
            memory.pointer(ring.physical + UInt64(i) * 4).storeBytes(of: d, as: UInt32.self)
            i = (i + 1) % size
        }
        wptr = i
    }

    /// Kicks the GPU (`CP_RB_WPTR`), lets it run up to there, then retires what it
    /// finished: the submissions whose fence the memstore shows. Holds the driver's lock
    /// throughout, so submissions and context changes from other threads wait for the
    /// ring to drain (the fault handler, called on this thread, takes it again).
    public func run() {
        lock.withLock {
            gpu.setWritePointer(wptr)
            gpu.run()
            retire()
        }
    }

    /// `retire_submits`: drops each finished submission's reference to its context's
    /// address space; a closed context whose last submission retired is destroyed.
    private func retire() {
        let done = memory.pointer(memstore.physical + Self.fenceOffset).load(as: UInt32.self)
        let finished: [MSMContext] = lock.withLock {
            let (old, keep) = (inFlight.filter { $0.fence <= done }, inFlight.filter { $0.fence > done })
            inFlight = keep
            return old.map(\.context)
        }
        for c in finished {
            let release: Bool = lock.withLock {
                c.inFlight -= 1
                return c.closed && c.inFlight == 0
            }
            if release {
                releaseBuffers(c)
                destroySpace(c)
            }
        }
    }
}
