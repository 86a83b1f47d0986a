import IOMMUCore
import IOMMUDrivers

/// What the command processor did, in order: the GPU's side of a run, for tests and the
/// comparison.
public enum AdrenoCPEvent: Hashable, Sendable, CustomStringConvertible {
    /// `CP_SMMU_TABLE_UPDATE`: the CP wrote TTBR0 (with its ASID) and CONTEXTIDR of a
    /// context bank and invalidated the ASID's TLB entries.
    case tableUpdate(ttbr0: PhysicalAddress, asid: UInt16, contextBank: Int)
    /// `CP_MEM_WRITE` of `dwords` dwords at `address`.
    case memWrite(address: IOVA, dwords: Int)
    /// `CP_EVENT_WRITE` of an event without a fence (the UCHE flush).
    case event(UInt32)
    /// `CP_EVENT_WRITE CACHE_FLUSH_TS`: the fence `value` written at `address`.
    case fence(address: IOVA, value: UInt32)
    /// A model DMA work packet that completed.
    case work(PM4.Opcode, source: IOVA?, destination: IOVA, length: Int)
    /// A GPU access that did not complete: the SMMU refused it; with stall-on-fault
    /// enabled it waited for RESUME, and `resumed` says how it ended (nil: still waiting).
    case fault(address: IOVA, write: Bool, reason: FaultReason, resumed: SMMUv2ResumeOutcome?)
    /// A dword that is not a type-7 header, or a packet the CP does not know: it stops.
    case badPacket(UInt32)

    /// One line for logs.
    public var description: String {
        switch self {
        case .tableUpdate(let t, let a, let cb): "CP_SMMU_TABLE_UPDATE ttbr0=\(t) asid=\(a) cb=\(cb)"
        case .memWrite(let a, let n): "CP_MEM_WRITE \(a) ×\(n)"
        case .event(let e): "CP_EVENT_WRITE 0x\(String(e, radix: 16))"
        case .fence(let a, let v): "fence \(v) at \(a)"
        case .work(let op, let s, let d, let n): "\(op) " + (s.map { "\($0) -> " } ?? "") + "\(d) \(n) bytes"
        case .fault(let a, let w, let r, let res):
            "fault \(w ? "write" : "read") \(a): \(r)" + (res.map { " (\($0))" } ?? " (still stalled)")
        case .badPacket(let d): "bad packet 0x\(String(d, radix: 16))"
        }
    }
}

/// An Adreno-like GPU (a6xx): a bus master behind the SMMU with stream ID 0, and a command
/// processor that executes a ring buffer of PM4 packets it fetches from GPU memory.
///
/// The CP runs packets to reprogram the SMMU's context bank (`CP_SMMU_TABLE_UPDATE`: it
/// has its own path to the bank's registers, as the Adreno does), to write memory
/// (`CP_MEM_WRITE`), to signal events (`CP_EVENT_WRITE`: the UCHE flush and the fence),
/// and the model's DMA work packets (copy, fill, read-back), so that surfaces are really
/// read and written through the SMMU. When the SMMU refuses an access it raises its
/// fault interrupt, which the model delivers to the CPU at once
/// (``/IOMMUDrivers/ARMSMMUv2/handleInterrupts()``); with stall-on-fault the access waits for the
/// handler's RESUME and is retried or aborted as the handler decided. An aborted access
/// ends its work packet; the CP goes on with the next packet (SCTLR.HUPCF keeps the
/// SMMU serving).
///
/// The driver side (`msm`) is ``MSMGPU``, which serialises every ``run()``: the model
/// has one command processor, so one thread runs the ring at a time.
public final class AdrenoGPU: @unchecked Sendable {
    /// The GPU's bus master (stream ID 0: RID 00:00.0).
    public let device: PCIDevice
    /// The SMMU in front of it.
    public let smmu: ARMSMMUv2
    private let lock = Lock()
    private var ringBase: IOVA = 0
    private var ringDwords = 0
    private var rptr = 0
    private var wptr = 0
    private var cpLog = BoundedLog<AdrenoCPEvent>(limit: 8192)

    /// The RID that gives the GPU stream ID 0 (`QCOM_ADRENO_SMMU_GPU_SID`).
    public static let rid = RID(bus: 0, device: 0, function: 0)
    /// The compatible string firmware gives the GPU (`qcom,adreno`).
    public static let compatible = "qcom,adreno"
    /// The largest transfer one work packet may ask for (16 MiB); a packet asking for
    /// more is a bad packet and stops the CP.
    public static let maxWorkBytes = 16 << 20

    /// Adds an Adreno GPU behind `unit` on `machine`: firmware describes it to the SMMU
    /// (stream ID 0, `qcom,adreno`), then the device is added and probed (with the
    /// Qualcomm implementation its default domain is identity).
    /// - Throws: `EEXIST` when RID 00:00.0 is taken; the probe's errno.
    public init(on machine: Machine, behind unit: ARMSMMUv2) throws(Errno) {
        smmu = unit
        unit.describeMaster(Self.rid, ARMSMMUv2FirmwareMaster(streamIDs: [ARMSMMUv2StreamID(0)],
                                                              compatible: Self.compatible))
        device = try machine.addDevice(PCIDevice(rid: Self.rid, name: "adreno"), behind: unit)
    }

    // MARK: registers

    /// `CP_RB_BASE` / `CP_RB_CNTL`: the ring's GPU address and size in dwords; resets both
    /// pointers.
    public func setRing(base: IOVA, dwords: Int) {
        lock.withLock {
            ringBase = base
            ringDwords = dwords
            rptr = 0
            wptr = 0
        }
    }

    /// `CP_RB_WPTR`: where the driver stopped writing (the CP runs up to it).
    public func setWritePointer(_ value: Int) { lock.withLock { wptr = value } }
    /// `CP_RB_RPTR`: where the CP is.
    public var readPointer: Int { lock.withLock { rptr } }

    /// What the CP did, oldest first (the newest 8192 events).
    public var events: [AdrenoCPEvent] { lock.withLock { cpLog.elements } }
    /// Forgets the CP's event log.
    public func clearEvents() { lock.withLock { cpLog.removeAll() } }

    // MARK: memory port

    /// A GPU read of `buffer.count` bytes at GPU address `address`, through the SMMU
    /// (the path every CP fetch and work packet takes). Allocation-free.
    /// - Throws: ``/IOMMUCore/DMAFault`` when the SMMU refuses it.
    @inlinable
    public func dmaRead(at address: IOVA, into buffer: UnsafeMutableRawBufferPointer) throws(DMAFault) {
        try device.dmaRead(at: address, into: buffer)
    }

    /// A GPU write of `buffer` at GPU address `address`, through the SMMU.
    /// - Throws: ``/IOMMUCore/DMAFault`` when the SMMU refuses it.
    @inlinable
    public func dmaWrite(at address: IOVA, from buffer: UnsafeRawBufferPointer) throws(DMAFault) {
        try device.dmaWrite(at: address, from: buffer)
    }

    // MARK: the command processor

    /// Runs the CP until its read pointer reaches the write pointer (or it stops at a bad
    /// packet or a ring fetch the SMMU refuses). Returns the packets executed.
    @discardableResult
    public func run() -> Int {
        var executed = 0
        while true {
            let (base, size, r, w) = lock.withLock { (ringBase, ringDwords, rptr, wptr) }
            guard size > 0, r != w else { return executed }
            guard let header = fetch(base, size, r, count: 1)?.first else { return executed }
            guard let (opcode, count) = PM4.decode(header) else {
                note(.badPacket(header))
                return executed
            }
            guard let payload = fetch(base, size, (r + 1) % size, count: count) else { return executed }
            lock.withLock { rptr = (r + 1 + count) % size }
            guard execute(opcode, payload) else {
                note(.badPacket(header))
                return executed
            }
            executed += 1
        }
    }

    private func note(_ e: AdrenoCPEvent) { lock.withLock { cpLog.append(e) } }

    /// Reads `count` dwords of the ring from dword `index`, wrapping; nil (and a fault
    /// event) when the SMMU refuses the fetch.
    private func fetch(_ base: IOVA, _ size: Int, _ index: Int, count: Int) -> [UInt32]? {
        var out = [UInt32](repeating: 0, count: count)
        var done = 0
        while done < count {
            let i = (index + done) % size
            let n = min(count - done, size - i)
            let ok = out.withUnsafeMutableBytes { buf in
                access(base + UInt64(i) * 4, write: false) { va throws(DMAFault) in
                    try dmaRead(at: va, into: UnsafeMutableRawBufferPointer(rebasing: buf[done * 4 ..< (done + n) * 4]))
                }
            }
            guard ok else { return nil }
            done += n
        }
        return out
    }

    /// One GPU access through the SMMU. When it faults the SMMU's interrupt is taken;
    /// if the access stalled and the handler had it retried, it is issued again (at most
    /// four times); otherwise the fault is logged and the access has failed.
    private func access(_ address: IOVA, write: Bool, _ body: (IOVA) throws(DMAFault) -> Void) -> Bool {
        var attempts = 0
        while true {
            do throws(DMAFault) {
                try body(address)
                return true
            } catch {
                smmu.handleInterrupts()
                var outcome: SMMUv2ResumeOutcome?
                if SMMUv2Fault.isStalled(error.reason) {
                    outcome = smmu.hardwareLock.withLock { smmu.smmu.takeResumeOutcome(streamID: 0)?.1 }
                    if outcome == .retried && attempts < 4 {
                        attempts += 1
                        continue
                    }
                } else {
                    outcome = .terminated
                }
                note(.fault(address: error.address, write: write, reason: error.reason, resumed: outcome))
                return false
            }
        }
    }

    private static func address(_ lo: UInt32, _ hi: UInt32) -> IOVA { IOVA(rawValue: UInt64(hi) << 32 | UInt64(lo)) }

    /// Executes one packet; false for an opcode the CP does not know or a short payload.
    private func execute(_ opcode: PM4.Opcode, _ p: [UInt32]) -> Bool {
        switch opcode {
        case .nop:
            return true
        case .smmuTableUpdate:
            guard p.count == 4 else { return false }
            let ttbr = PhysicalAddress(rawValue: UInt64(p[1] & 0xFFFF) << 32 | UInt64(p[0]))
            let asid = UInt16(truncatingIfNeeded: p[1] >> 16)
            let cb = Int(p[3])
            let page = SMMUv2Page.contextBank(cb)
            smmu.hardwareLock.withLock {
                let hw = smmu.smmu
                hw.write64(page, SMMUv2Reg.ttbr0, ttbr.rawValue | UInt64(asid) << 48, by: .client)
                hw.write32(page, SMMUv2Reg.contextIDR, p[2], by: .client)
                hw.write32(page, SMMUv2Reg.tlbiASID, UInt32(asid), by: .client)
                hw.write32(page, SMMUv2Reg.tlbSync, 0, by: .client)
            }
            note(.tableUpdate(ttbr0: ttbr, asid: asid, contextBank: cb))
            return true
        case .memWrite:
            guard p.count >= 2 else { return false }
            let va = Self.address(p[0], p[1])
            let data = Array(p[2...])
            let ok = data.withUnsafeBytes { buf in
                access(va, write: true) { a throws(DMAFault) in try dmaWrite(at: a, from: buf) }
            }
            if ok { note(.memWrite(address: va, dwords: data.count)) }
            return true
        case .eventWrite:
            guard let event = p.first else { return false }
            guard p.count == 4 else {
                note(.event(event & 0xFF))
                return true
            }
            let va = Self.address(p[1], p[2])
            let value = p[3]
            let ok = withUnsafeBytes(of: value) { buf in
                access(va, write: true) { a throws(DMAFault) in try dmaWrite(at: a, from: buf) }
            }
            if ok { note(.fence(address: va, value: value)) }
            return true
        case .modelCopy, .modelReadBack:
            guard p.count == 5 else { return false }
            let (src, dst, n) = (Self.address(p[0], p[1]), Self.address(p[2], p[3]), Int(p[4]))
            guard n <= Self.maxWorkBytes else { return false }
            var bytes = [UInt8](repeating: 0, count: n)
            let read = bytes.withUnsafeMutableBytes { buf in
                access(src, write: false) { a throws(DMAFault) in try dmaRead(at: a, into: buf) }
            }
            guard read else { return true }
            let wrote = bytes.withUnsafeBytes { buf in
                access(dst, write: true) { a throws(DMAFault) in try dmaWrite(at: a, from: buf) }
            }
            if wrote { note(.work(opcode, source: src, destination: dst, length: n)) }
            return true
        case .modelFill:
            guard p.count == 4 else { return false }
            let (dst, n) = (Self.address(p[0], p[1]), Int(p[2]))
            guard n <= Self.maxWorkBytes else { return false }
            let bytes = [UInt8](repeating: UInt8(truncatingIfNeeded: p[3]), count: n)
            let wrote = bytes.withUnsafeBytes { buf in
                access(dst, write: true) { a throws(DMAFault) in try dmaWrite(at: a, from: buf) }
            }
            if wrote { note(.work(opcode, source: nil, destination: dst, length: n)) }
            return true
        default:
            return false
        }
    }
}
