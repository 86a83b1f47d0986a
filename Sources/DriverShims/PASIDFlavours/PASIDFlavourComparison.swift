import IOMMUCore

/// The four ways a driver can give a device a PASID, compared on one workload.
public enum PASIDFlavour: String, CaseIterable, Sendable, Codable {
    /// (a) today: the default DMA domain attached to a global PASID.
    case kernelPASID = "kernel PASID"
    /// (b) 2021, rejected: a PASID bound to the kernel address space with SRE.
    case supervisorSVA = "supervisor SVA"
    /// (c) 2017, Adreno: private PASIDs with their own io-pgtable.
    case privatePASID = "private PASID"
    /// (d) user SVA: a process's mm bound to the device.
    case userSVA = "user SVA"

    /// Where the flavour comes from.
    public var origin: String {
        switch self {
        case .kernelPASID: "mainline since v6.4 (idxd_enable_system_pasid)"
        case .supervisorSVA: "2021 SVM_FLAG_SUPERVISOR_MODE, removed"
        case .privatePASID: "2017 iommu_sva_alloc_pasid proposal"
        case .userSVA: "mainline (iommu_sva_bind_device)"
        }
    }
}

/// A machine to run a flavour on, built by the caller (who picks the IOMMU vendor), and
/// the unit the accelerator is placed behind.
public struct FlavourRig: Sendable {
    /// The machine.
    public let machine: Machine
    /// The IOMMU unit the idxd function goes behind.
    public let unit: IOMMUDevice
    /// A rig.
    public init(machine: Machine, unit: IOMMUDevice) {
        self.machine = machine
        self.unit = unit
    }
}

/// What one flavour cost and what the invariant checker saw.
public struct PASIDFlavourResult: Sendable, Encodable {
    /// The flavour.
    public let flavour: PASIDFlavour
    /// The IOMMU API calls the driver made, with their counts, in first-use order.
    public let calls: [APICallCount]
    /// Total calls.
    public let callCount: Int
    /// Invalidation descriptors the IOMMU executed, by kind.
    public let invalidationsByKind: [String: Int]
    /// Total invalidations.
    public let invalidations: Int
    /// Page-table walks the IOMMU made.
    public let walks: Int
    /// Violations the invariant checker reported.
    public let violations: [Violation]
    /// Whether the copy after the destination was moved to a new frame reached the new
    /// frame (what the CPU reads).
    public let copyAfterRemapVisible: Bool
    /// Why the IOMMU did not offer the flavour (its driver refused the setup with
    /// `EOPNOTSUPP`, e.g. supervisor SVA on an SMMUv3); nil when the workload ran.
    public let unsupported: String?
}

/// Runs each PASID flavour on the same workload, on a fresh machine from `makeRig`, with
/// an idxd-like device (a kernel shared WQ and a user shared WQ) doing the DMA:
/// 1. the flavour's setup; a 4 KiB source, destination and completion record;
/// 2. two MEMMOVEs source → destination;
/// 3. the destination moves to a new frame the way the flavour's owner does it (DMA-API
///    unmap/map, a vmalloc page remapped, `iommu_sva_unmap`/`map`, `munmap`/`mmap`);
/// 4. a third MEMMOVE and a COMPARE; then teardown.
/// Counters and checker violations are taken over steps 1–4. A flavour whose setup the
/// IOMMU driver refuses with `EOPNOTSUPP` is reported as unsupported, not run.
public enum PASIDFlavourComparison {
    /// The pattern the workload copies.
    public static let pattern: [UInt8] = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }

    /// Runs every flavour.
    /// - Throws: an errno from machine construction or from a flavour's calls.
    public static func runAll(makeRig: () throws -> FlavourRig) throws -> [PASIDFlavourResult] {
        try PASIDFlavour.allCases.map { try run($0, makeRig: makeRig) }
    }

    /// Runs one flavour.
    /// - Throws: an errno from machine construction or from the flavour's calls.
    public static func run(_ flavour: PASIDFlavour, makeRig: () throws -> FlavourRig) throws -> PASIDFlavourResult {
        let rig = try makeRig()
        let machine = rig.machine
        machine.checker.isEnabled = true
        let pci = try machine.addDevice(IDXDDevice.makeFunction(rid: RID(bus: 0, device: 4, function: 0)), behind: rig.unit)
        let idxd = try IDXDDevice.probe(pci)
        try idxd.configureWQ(0, mode: .shared, size: 8)
        try idxd.enableWQ(0, type: .kernel)
        try idxd.configureWQ(1, mode: .shared, size: 8)
        try idxd.enableWQ(1, type: .user)
        idxd.clearTrace()
        machine.checker.clear()
        let before = machine.counters
        let log = APICallLog()
        var visible = false
        var unsupported: String?
        do {
            switch flavour {
            case .kernelPASID: visible = try kernelPASID(machine, idxd, log)
            case .supervisorSVA: visible = try supervisorSVA(machine, idxd, log)
            case .privatePASID: visible = try privatePASID(machine, idxd, log)
            case .userSVA: visible = try userSVA(machine, idxd, log)
            }
        } catch let e as Errno where e == .notSupported {
            unsupported = "\(rig.unit.driver.name) returned EOPNOTSUPP"
        }
        let after = machine.counters
        var kinds: [String: Int] = [:]
        for (k, v) in after.hardware.invalidations where v - (before.hardware.invalidations[k] ?? 0) > 0 {
            kinds[k] = v - (before.hardware.invalidations[k] ?? 0)
        }
        let violations = machine.checker.violations
        idxd.remove()
        return PASIDFlavourResult(flavour: flavour, calls: log.counts, callCount: log.calls.count,
                                  invalidationsByKind: kinds, invalidations: kinds.values.reduce(0, +),
                                  walks: after.hardware.walks - before.hardware.walks,
                                  violations: violations, copyAfterRemapVisible: visible, unsupported: unsupported)
    }

    private static func frame(_ machine: Machine, _ bytes: [UInt8] = []) throws -> PhysicalAddress {
        let pa = try machine.memory.allocContiguous(bytes: 4096)
        if !bytes.isEmpty { try machine.memory.write(pa, bytes) }
        return pa
    }

    /// Submits a MEMMOVE and a COMPARE-free copy through `submit`; checks the completion.
    private static func move(_ src: IOVA, _ dst: IOVA, _ cr: IOVA, pasid: PASID?, priv: Bool,
                             _ submit: (IDXDDescriptor) throws(Errno) -> Void) throws(Errno) {
        var d = IDXDDescriptor.memmove(from: src, to: dst, count: 4096, completion: cr)
        d.pasid = pasid
        d.priv = priv
        try submit(d)
    }

    private static func compare(_ a: IOVA, _ b: IOVA, _ cr: IOVA, pasid: PASID?, priv: Bool,
                                _ submit: (IDXDDescriptor) throws(Errno) -> Void) throws(Errno) {
        var d = IDXDDescriptor.compare(a, b, count: 4096, completion: cr)
        d.pasid = pasid
        d.priv = priv
        try submit(d)
    }

    private static func kernelPASID(_ machine: Machine, _ idxd: IDXDDevice, _ log: APICallLog) throws -> Bool {
        let iommu = machine.iommu
        let dev = idxd.pci
        let kp = try KernelPASID.attach(dev, log: log)
        let src = try frame(machine, pattern), dst = try frame(machine), cr = try frame(machine)
        func map(_ pa: PhysicalAddress) throws(Errno) -> IOVA {
            log.record("dma_map_page")
            return try iommu.dmaMapPage(dev, paddr: pa, size: 4096)
        }
        let iSrc = try map(src), iDst = try map(dst), iCR = try map(cr)
        let submit: (IDXDDescriptor) throws(Errno) -> Void = { d throws(Errno) in try idxd.enqcmds(d, wq: 0) }
        for _ in 0..<2 { try move(iSrc, iDst, iCR, pasid: kp.pasid, priv: false, submit) }
        log.record("dma_unmap_page")
        try iommu.dmaUnmapPage(dev, dmaAddress: iDst, size: 4096)
        machine.memory.free(dst, bytes: 4096)
        let dst2 = try frame(machine)
        let iDst2 = try map(dst2)
        try move(iSrc, iDst2, iCR, pasid: kp.pasid, priv: false, submit)
        try compare(iSrc, iDst2, iCR, pasid: kp.pasid, priv: false, submit)
        machine.step("\(PASIDFlavour.kernelPASID.rawValue): copied after the remap")
        let visible = try machine.memory.bytes(at: dst2, count: 4096) == pattern
        for (iova, pa) in [(iSrc, src), (iDst2, dst2), (iCR, cr)] {
            log.record("dma_unmap_page")
            try iommu.dmaUnmapPage(dev, dmaAddress: iova, size: 4096)
            machine.memory.free(pa, bytes: 4096)
        }
        kp.detach(log: log)
        return visible
    }

    private static func supervisorSVA(_ machine: Machine, _ idxd: IDXDDevice, _ log: APICallLog) throws -> Bool {
        let kernel = try KernelAddressSpace(memory: machine.memory)
        let sv = try SupervisorSVA.bind(idxd.pci, kernel: kernel, log: log)
        let buf = try kernel.vmalloc(pages: 3)
        let src = buf, dst = buf + 4096, cr = buf + 8192
        // Under supervisor SVA the device's IOVAs are the kernel's virtual addresses.
        let iSrc = IOVA(sva: src), iDst = IOVA(sva: dst), iCR = IOVA(sva: cr)
        try kernel.write(src, pattern)
        let submit: (IDXDDescriptor) throws(Errno) -> Void = { d throws(Errno) in try idxd.enqcmds(d, wq: 0) }
        for _ in 0..<2 { try move(iSrc, iDst, iCR, pasid: sv.pasid, priv: true, submit) }
        // vfree + vmalloc landing at the same address: flush_tlb_kernel_range, CPU only.
        try kernel.remapVmallocPage(dst)
        try move(iSrc, iDst, iCR, pasid: sv.pasid, priv: true, submit)
        try compare(iSrc, iDst, iCR, pasid: sv.pasid, priv: true, submit)
        machine.step("\(PASIDFlavour.supervisorSVA.rawValue): copied after the remap")
        let visible = try kernel.read(dst, count: 4096) == pattern
        sv.unbind(log: log)
        try kernel.vfree(buf)
        return visible
    }

    private static func privatePASID(_ machine: Machine, _ idxd: IDXDDevice, _ log: APICallLog) throws -> Bool {
        let iommu = machine.iommu
        let dev = idxd.pci
        log.record("iommu_paging_domain_alloc")
        let domain = try iommu.allocPagingDomain(for: dev, flags: [.pasid])
        let pp = PrivatePASIDs(log: log)
        let pasid = try pp.allocPrivatePasid(domain: domain, dev: dev)
        let src = try frame(machine, pattern), dst = try frame(machine), cr = try frame(machine)
        let iSrc: IOVA = 0x10_0000, iDst: IOVA = 0x10_1000, iCR: IOVA = 0x10_2000
        try pp.map(pasid: pasid, iova: iSrc, paddr: src, size: 4096)
        try pp.map(pasid: pasid, iova: iDst, paddr: dst, size: 4096)
        try pp.map(pasid: pasid, iova: iCR, paddr: cr, size: 4096)
        let submit: (IDXDDescriptor) throws(Errno) -> Void = { d throws(Errno) in try idxd.enqcmds(d, wq: 0) }
        for _ in 0..<2 { try move(iSrc, iDst, iCR, pasid: pasid, priv: false, submit) }
        try pp.unmap(pasid: pasid, iova: iDst, size: 4096)
        machine.memory.free(dst, bytes: 4096)
        let dst2 = try frame(machine)
        try pp.map(pasid: pasid, iova: iDst, paddr: dst2, size: 4096)
        try move(iSrc, iDst, iCR, pasid: pasid, priv: false, submit)
        try compare(iSrc, iDst, iCR, pasid: pasid, priv: false, submit)
        machine.step("\(PASIDFlavour.privatePASID.rawValue): copied after the remap")
        let visible = try machine.memory.bytes(at: dst2, count: 4096) == pattern
        for iova in [iSrc, iDst, iCR] { try pp.unmap(pasid: pasid, iova: iova, size: 4096) }
        try pp.freePrivatePasid(domain: domain, pasid: pasid)
        log.record("iommu_domain_free")
        iommu.freeDomain(domain)
        for pa in [src, dst2, cr] { machine.memory.free(pa, bytes: 4096) }
        return visible
    }

    private static func userSVA(_ machine: Machine, _ idxd: IDXDDevice, _ log: APICallLog) throws -> Bool {
        let process = try machine.makeProcess(pid: 100)
        let base = try process.mmap(length: 3 * 4096, prot: [.read, .write], populate: true)
        let src = base, dst = base + 4096, cr = base + 8192
        // Under user SVA the device's IOVAs are the process's virtual addresses.
        let iSrc = IOVA(sva: src), iDst = IOVA(sva: dst), iCR = IOVA(sva: cr)
        try process.writeMemory(address: src, bytes: pattern)
        let ctx = try idxd.open(wq: 1, process: process)
        let portal = try ctx.mmap(from: process)
        let submit: (IDXDDescriptor) throws(Errno) -> Void = { d throws(Errno) in
            guard portal.enqcmd(d) == .accepted else { throw .tryAgain }
        }
        for _ in 0..<2 { try move(iSrc, iDst, iCR, pasid: nil, priv: false, submit) }
        // The process replaces the page: munmap fires the mm notifier (IOTLB + ATC flush).
        try process.munmap(address: dst, length: 4096)
        try process.mmap(length: 4096, prot: [.read, .write], at: dst, populate: true)
        try move(iSrc, iDst, iCR, pasid: nil, priv: false, submit)
        try compare(iSrc, iDst, iCR, pasid: nil, priv: false, submit)
        machine.step("\(PASIDFlavour.userSVA.rawValue): copied after the remap")
        let visible = try process.readMemory(address: dst, count: 4096) == pattern
        ctx.close()
        // The calls the driver made for the user: from its own trace.
        for e in idxd.trace {
            if let call = e.iommuCall { log.record(call) }
            if case .command(.drainPASID) = e { log.record("IDXD_CMD_DRAIN_PASID") }
        }
        process.exit()
        return visible
    }
}
