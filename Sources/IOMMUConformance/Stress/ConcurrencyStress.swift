import Foundation
import IOMMUCore
import Synchronization

/// The kernel's concurrency contract for one paging domain, run as a stress on a vendor:
/// `iommu_map`, `iommu_unmap`, `iommu_unmap_fast` and `iommu_iotlb_sync` called from many
/// threads at once on disjoint IOVA ranges of one domain, while devices attached to it
/// DMA. The DMA API does exactly this from every CPU; io-pgtable and generic_pt allow it
/// without a domain-wide lock (new table levels are installed with a compare-and-swap).
///
/// Every thread owns its ranges and does three things in a random order:
/// - **slots**: single pages, interleaved with every other thread's so that they share
///   leaf tables. Each map uses a fresh frame holding a pattern that names the slot and
///   the map's generation; the unmap is strict (`iommu_unmap`) or `iommu_unmap_fast`
///   followed later by `iommu_iotlb_sync`. After a map returns, a DMA read must return
///   the pattern and a DMA write must land in the frame; after the unmap (or the sync)
///   returns, a DMA must fault. Only then is the frame poisoned and freed.
/// - **windows**: a whole leaf table's span of its own (512 pages), mapped in runs of
///   pages (or as one block when the domain has that page size) and then unmapped with
///   one call that covers the table, so the table page goes through the gather while
///   neighbouring windows of other threads install theirs in the same parent table.
/// - **observations**: a DMA read of another thread's slot or window page while that
///   thread may be changing it, bracketed by reads of the range's published state. The
///   result must be the pattern of a generation mapped during the DMA, or a fault; it
///   must be a fault when the range stayed unmapped, and the pattern when it stayed
///   mapped. Never a poisoned (freed) frame or another range's data.
///
/// Afterwards every range is unmapped, the devices are detached and the domain freed,
/// and the frames, page references and the driver's hardware identifiers must be back
/// where they were (``LeakCheck``).
///
/// A test runs it on a vendor in one line:
///
/// ```swift
/// func testToyConcurrency() throws {
///     let report = try ConcurrencyStress().run(on: ToyVendor())
///     XCTAssertTrue(report.isClean, "\(report)")
/// }
/// ```
///
/// The invariant checker stays off: it compares a DMA's translation with the domain's
/// table at a later instant, which another thread may have changed legitimately in
/// between; the stress checks every DMA against the ranges' published states instead.
public struct ConcurrencyStress: Sendable {
    /// Threads mapping, unmapping and issuing DMA at once.
    public var threads: Int
    /// Operations (a slot map or unmap, a window cycle, an observation) per thread.
    public var operationsPerThread: Int
    /// Single-page slots per thread, interleaved with the other threads' slots.
    public var slotsPerThread: Int
    /// Table-sized windows per thread (reused round-robin).
    public var windowsPerThread: Int
    /// Seed of the threads' random choices (thread `t` uses `seed + t`).
    public var seed: UInt64

    /// A stress of `threads` threads doing `operationsPerThread` operations each.
    public init(threads: Int = 8, operationsPerThread: Int = 3000, slotsPerThread: Int = 2, windowsPerThread: Int = 2,
                seed: UInt64 = 0x5EED_1E55_0000_0001) {
        self.threads = threads
        self.operationsPerThread = operationsPerThread
        self.slotsPerThread = slotsPerThread
        self.windowsPerThread = windowsPerThread
        self.seed = seed
    }

    /// Runs the stress on a rig of `vendor` (one device without ATS, one with, both
    /// attached to one new paging domain) and reports what it saw.
    /// - Throws: what the vendor's builders, the domain allocation or the attach throw,
    ///   or `ERANGE` when the domain's aperture cannot hold the threads' ranges. A map
    ///   or unmap that fails during the run is a finding in the report, not an error.
    public func run(on vendor: any ConformanceVendor) throws -> ConcurrencyStressReport {
        let rig = try vendor.makeRig([.noPasid, DeviceSpec(pasidWidth: nil, ats: true)])
        let leaks = rig.leakCheck()
        let domain = try rig.pagingDomain()
        for dev in rig.devices { try rig.iommu.attachDevice(domain, to: dev) }
        let layout = try StressLayout(domain: domain, rig: rig, stress: self)
        let shared = StressShared(rig: rig, domain: domain, layout: layout)
        let started = ContinuousClock.now

        let ready = Atomic<Int>(0)
        let done = DispatchGroup()
        for t in 0..<threads {
            done.enter()
            let worker = StressWorker(thread: t, shared: shared, seed: seed &+ UInt64(t), operations: operationsPerThread)
            let thread = Thread {
                // Start together, so the first maps race to install the upper tables.
                ready.add(1, ordering: .acquiringAndReleasing)
                while ready.load(ordering: .acquiring) < layout.threads { sched_yield() }
                worker.run()
                worker.finish()
                done.leave()
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        done.wait()
        let elapsed = ContinuousClock.now - started

        for dev in rig.devices { rig.iommu.detachDevice(domain, from: dev) }
        rig.iommu.freeDomain(domain)
        var report = shared.report()
        report.vendor = vendor.name
        report.threads = threads
        report.seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        report.leaks = leaks.differences.map { "\($0.name) \($0.before) -> \($0.now)" }
        return report
    }
}

/// What a ``ConcurrencyStress`` run saw: counts of what it did, and every finding.
public struct ConcurrencyStressReport: Sendable, CustomStringConvertible {
    /// The vendor's name.
    public var vendor = ""
    /// Threads that ran.
    public var threads = 0
    /// Wall time of the threaded part, in seconds.
    public var seconds = 0.0
    /// Successful `iommu_map` calls.
    public var maps = 0
    /// `iommu_unmap` and `iommu_unmap_fast` calls.
    public var unmaps = 0
    /// DMAs whose result was checked.
    public var dmas = 0
    /// Of those, observations of another thread's range.
    public var observations = 0
    /// DMA results that broke the contract, and failed calls, each as a sentence (the
    /// first 20; ``findingCount`` counts them all).
    public var findings: [String] = []
    /// All findings, including those not kept in ``findings``.
    public var findingCount = 0
    /// Counters not back at their baseline after the teardown: `name before -> now`.
    public var leaks: [String] = []

    /// Whether the run found nothing wrong.
    public var isClean: Bool { findingCount == 0 && leaks.isEmpty }

    /// `VTd, 8 threads, 0.84 s: 5210 maps, 5190 unmaps, 20893 DMAs checked (…); clean`,
    /// then the findings and leaks one per line.
    public var description: String {
        var s = "\(vendor), \(threads) threads, \(String(format: "%.2f", seconds)) s: \(maps) maps, \(unmaps) unmaps, "
            + "\(dmas) DMAs checked (\(observations) of another thread's range)"
        if isClean { return s + "; clean" }
        s += "; \(findingCount) finding(s), \(leaks.count) leak(s)"
        for f in findings { s += "\n  " + f }
        if findingCount > findings.count { s += "\n  … \(findingCount - findings.count) more" }
        for l in leaks { s += "\n  leaked: " + l }
        return s
    }
}

/// Where each thread's ranges are, and the page sizes used.
struct StressLayout: Sendable {
    let threads: Int
    let slotsPerThread: Int
    let windowsPerThread: Int
    /// The page size of a slot: 4 KiB, or the domain's smallest page if larger.
    let page: UInt64
    /// A window: 512 pages, the span of one leaf table in the radix formats.
    let window: UInt64
    /// Whether the domain maps a window as one block.
    let windowBlock: Bool
    let slotBase: IOVA
    let windowBase: IOVA

    init(domain: IOMMUDomain, rig: Rig, stress: ConcurrencyStress) throws {
        threads = max(1, stress.threads)
        slotsPerThread = max(1, stress.slotsPerThread)
        windowsPerThread = max(1, stress.windowsPerThread)
        let minPage = domain.pgsizeBitmap & (~domain.pgsizeBitmap &+ 1)
        page = max(4096, minPage)
        window = page * 512
        windowBlock = domain.pgsizeBitmap & window != 0
        // Slots fill whole windows from the first window-aligned IOVA of the aperture;
        // the windows follow them.
        let start = (rig.iova(domain) + (window - 1)).alignedDown(to: window)
        slotBase = start
        let slotBytes = UInt64(threads * slotsPerThread) * page
        windowBase = start + (slotBytes + window - 1) / window * window
        let end = windowBase + (UInt64(threads * windowsPerThread) * window - 1)
        guard end <= domain.geometry.apertureEnd else { throw Errno.outOfRange }
    }

    /// The IOVA of slot `s` of thread `t`: the threads' slots alternate page by page.
    func slotIOVA(thread t: Int, slot s: Int) -> IOVA { slotBase + UInt64(s * threads + t) * page }
    /// The IOVA of window `w` of thread `t`.
    func windowIOVA(thread t: Int, window w: Int) -> IOVA { windowBase + UInt64(w * threads + t) * window }
    /// A global id of slot `s` of thread `t`; windows follow every slot.
    func slotID(thread t: Int, slot s: Int) -> Int { t * slotsPerThread + s }
    func windowID(thread t: Int, window w: Int) -> Int { threads * slotsPerThread + t * windowsPerThread + w }
    var rangeCount: Int { threads * (slotsPerThread + windowsPerThread) }
}

/// The published state of one range (slot or window): its generation and phase, which
/// the owner stores before and after each change so an observer can bracket its DMA.
/// While a map or an unmap of generation `gen` runs, the phase is `changing`: a DMA may
/// then fault or reach that generation's frames.
enum RangePhase: UInt64 {
    case unmapped = 0, mapped = 1, changing = 2

    static func word(_ phase: RangePhase, gen: UInt64) -> UInt64 { gen << 2 | phase.rawValue }
    static func phase(_ word: UInt64) -> RangePhase { RangePhase(rawValue: word & 3) ?? .unmapped }
    static func gen(_ word: UInt64) -> UInt64 { word >> 2 }
}

/// The word at offset 0 of page `page` of range `id` while generation `gen` maps it.
func stressPattern(id: Int, gen: UInt64, page: Int) -> UInt64 {
    0x5A00_0000_0000_0000 | UInt64(id & 0xFFFFF) << 32 | (gen & 0xFFFFF) << 12 | UInt64(page & 0xFFF)
}
/// What a frame holds between its unmap and its free: reading it by DMA is reading a
/// freed frame.
let stressPoison: UInt64 = 0xDEAD_F4EE_DEAD_F4EE

/// What every worker shares: the rig, the domain, the ranges' states, the findings.
final class StressShared: @unchecked Sendable {
    let rig: Rig
    let domain: IOMMUDomain
    let layout: StressLayout
    let states: UnsafeMutablePointer<Atomic<UInt64>>
    private let lock = Lock()
    private var totals = ConcurrencyStressReport()

    init(rig: Rig, domain: IOMMUDomain, layout: StressLayout) {
        self.rig = rig
        self.domain = domain
        self.layout = layout
        states = .allocate(capacity: layout.rangeCount)
        for i in 0..<layout.rangeCount { (states + i).initialize(to: Atomic(0)) }
    }

    deinit {
        states.deinitialize(count: layout.rangeCount)
        states.deallocate()
    }

    func publish(_ id: Int, _ phase: RangePhase, gen: UInt64) {
        states[id].store(RangePhase.word(phase, gen: gen), ordering: .releasing)
    }

    func state(_ id: Int) -> UInt64 { states[id].load(ordering: .acquiring) }

    func add(_ counts: ConcurrencyStressReport) {
        lock.withLock {
            totals.maps += counts.maps
            totals.unmaps += counts.unmaps
            totals.dmas += counts.dmas
            totals.observations += counts.observations
            totals.findingCount += counts.findingCount
            for f in counts.findings where totals.findings.count < 20 { totals.findings.append(f) }
        }
    }

    func report() -> ConcurrencyStressReport { lock.withLock { totals } }
}

/// One thread of the stress.
final class StressWorker: @unchecked Sendable {
    let t: Int
    let shared: StressShared
    let operations: Int
    var rng: StressRandom
    var counts = ConcurrencyStressReport()
    /// Per slot: the frame mapped there (nil when unmapped) and its generation.
    var slotFrame: [PhysicalAddress?]
    var slotGen: [UInt64]
    var windowGen: [UInt64]
    var nextWindow = 0

    var rig: Rig { shared.rig }
    var layout: StressLayout { shared.layout }
    var iommu: IOMMUSubsystem { shared.rig.iommu }
    var memory: PhysicalMemory { shared.rig.memory }

    init(thread: Int, shared: StressShared, seed: UInt64, operations: Int) {
        t = thread
        self.shared = shared
        self.operations = operations
        rng = StressRandom(seed: seed)
        slotFrame = Array(repeating: nil, count: shared.layout.slotsPerThread)
        slotGen = Array(repeating: 0, count: shared.layout.slotsPerThread)
        windowGen = Array(repeating: 0, count: shared.layout.windowsPerThread)
    }

    func finding(_ what: String) {
        counts.findingCount += 1
        if counts.findings.count < 20 { counts.findings.append("thread \(t): " + what) }
    }

    func run() {
        for _ in 0..<operations {
            let r = rng.next() % 100
            if r < 55 {
                toggleSlot(Int(truncatingIfNeeded: rng.next() % UInt64(layout.slotsPerThread)))
            } else if r < 62 {
                cycleWindow()
            } else {
                observe()
            }
        }
    }

    /// Unmaps every slot still mapped and hands the counts in.
    func finish() {
        for s in 0..<layout.slotsPerThread where slotFrame[s] != nil { toggleSlot(s) }
        shared.add(counts)
    }

    // MARK: DMA

    /// The word a device reads at `iova` (through a device chosen at random), nil on a fault.
    func dmaRead(_ iova: IOVA) -> UInt64? {
        let dev = rig.devices[Int(truncatingIfNeeded: rng.next() % UInt64(rig.devices.count))]
        var word: UInt64 = 0
        let ok = withUnsafeMutableBytes(of: &word) { buf in (try? dev.dmaRead(at: iova, into: buf)) != nil }
        counts.dmas += 1
        return ok ? word : nil
    }

    func describe(_ word: UInt64?) -> String {
        guard let word else { return "a fault" }
        if word == stressPoison { return "0x\(String(word, radix: 16)) (a freed frame)" }
        return "0x\(String(word, radix: 16))"
    }

    // MARK: slots

    /// Maps slot `s` with a fresh frame if it is unmapped, unmaps it otherwise.
    func toggleSlot(_ s: Int) {
        if let frame = slotFrame[s] { unmapSlot(s, frame: frame) } else { mapSlot(s) }
    }

    /// Maps slot `s` with a fresh frame holding the next generation's pattern; then a
    /// DMA read must return the pattern and a DMA write must land in the frame.
    func mapSlot(_ s: Int) {
        let id = layout.slotID(thread: t, slot: s)
        let iova = layout.slotIOVA(thread: t, slot: s)
        let gen = slotGen[s] + 1
        guard let frame = try? memory.allocContiguous(bytes: Int(layout.page)) else {
            return finding("no frame for slot \(iova)")
        }
        let pattern = stressPattern(id: id, gen: gen, page: 0)
        memory.store64(frame, pattern)
        shared.publish(id, .changing, gen: gen)
        do {
            try iommu.map(shared.domain, iova: iova, paddr: frame, size: layout.page, prot: [.read, .write])
        } catch {
            memory.free(frame, bytes: Int(layout.page))
            shared.publish(id, .unmapped, gen: gen)
            return finding("iommu_map of slot \(iova) failed with \(error)")
        }
        counts.maps += 1
        slotFrame[s] = frame
        slotGen[s] = gen
        shared.publish(id, .mapped, gen: gen)
        let seen = dmaRead(iova)
        if seen != pattern {
            finding("DMA read of slot \(iova) right after its map returned \(describe(seen)), expected \(hex(pattern))")
        }
        let dev = rig.devices[Int(truncatingIfNeeded: rng.next() % UInt64(rig.devices.count))]
        let marker = pattern ^ 0xFF
        do {
            try withUnsafeBytes(of: marker) { try dev.dmaWrite(at: iova + 8, from: $0) }
            counts.dmas += 1
            if memory.load64(frame + 8) != marker { finding("DMA write to slot \(iova) did not reach its frame") }
        } catch {
            finding("DMA write to mapped slot \(iova) faulted: \(error)")
        }
    }

    /// Unmaps slot `s`, strictly or with `iommu_unmap_fast` and a later
    /// `iommu_iotlb_sync`; afterwards a DMA must fault. Only then is the frame poisoned
    /// and freed.
    func unmapSlot(_ s: Int, frame: PhysicalAddress) {
        let id = layout.slotID(thread: t, slot: s)
        let iova = layout.slotIOVA(thread: t, slot: s)
        let gen = slotGen[s]
        let pattern = stressPattern(id: id, gen: gen, page: 0)
        shared.publish(id, .changing, gen: gen)
        let unmapped: UInt64
        if rng.next() & 1 == 0 {
            unmapped = iommu.unmap(shared.domain, iova: iova, size: layout.page)
        } else {
            var gather = IOTLBGather()
            unmapped = iommu.unmapFast(shared.domain, iova: iova, size: layout.page, gather: &gather)
            // Before the sync a cached translation may still serve the old frame, which
            // is still allocated and holds the pattern.
            let seen = dmaRead(iova)
            if seen != nil && seen != pattern {
                finding("DMA read of slot \(iova) between unmap_fast and iotlb_sync returned \(describe(seen))")
            }
            iommu.iotlbSync(shared.domain, gather: &gather)
        }
        counts.unmaps += 1
        if unmapped != layout.page {
            finding("iommu_unmap of slot \(iova) returned \(unmapped) bytes, expected \(layout.page)")
        }
        shared.publish(id, .unmapped, gen: gen)
        if let seen = dmaRead(iova) {
            finding("DMA read of slot \(iova) after its unmap returned \(describe(seen)) instead of faulting")
        }
        memory.store64(frame, stressPoison)
        memory.store64(frame + 8, stressPoison)
        memory.free(frame, bytes: Int(layout.page))
        slotFrame[s] = nil
    }

    // MARK: windows

    /// Maps one of the thread's windows whole (runs of pages, or one block), checks a
    /// few pages by DMA, unmaps it with one covering call and checks that they fault.
    func cycleWindow() {
        let w = nextWindow
        nextWindow = (nextWindow + 1) % layout.windowsPerThread
        let id = layout.windowID(thread: t, window: w)
        let iova = layout.windowIOVA(thread: t, window: w)
        let gen = windowGen[w] + 1
        windowGen[w] = gen
        let pages = 512
        let asBlock = layout.windowBlock && rng.next() % 3 == 0
        // Runs of contiguous frames: one block-aligned run, or runs of 64 pages whose
        // physical alignment never allows a block.
        let runPages = asBlock ? pages : 64
        var runs: [PhysicalAddress] = []
        defer { for r in runs { memory.free(r, bytes: runPages * Int(layout.page)) } }
        for _ in 0..<(pages / runPages) {
            guard let run = try? memory.allocContiguous(bytes: runPages * Int(layout.page),
                                                        alignment: asBlock ? Int(layout.window) : Int(layout.page)) else {
                return finding("no frames for window \(iova)")
            }
            runs.append(run)
        }
        for (r, run) in runs.enumerated() {
            for p in 0..<runPages {
                memory.store64(run + UInt64(p) * layout.page, stressPattern(id: id, gen: gen, page: r * runPages + p))
            }
        }
        var mapped: UInt64 = 0
        shared.publish(id, .changing, gen: gen)
        for (r, run) in runs.enumerated() {
            let at = iova + UInt64(r * runPages) * layout.page
            do {
                try iommu.map(shared.domain, iova: at, paddr: run, size: UInt64(runPages) * layout.page, prot: [.read])
                counts.maps += 1
                mapped += UInt64(runPages) * layout.page
            } catch {
                finding("iommu_map of window run \(at) failed with \(error)")
                break
            }
        }
        shared.publish(id, .mapped, gen: gen)
        if mapped == layout.window {
            for _ in 0..<4 {
                let p = Int(truncatingIfNeeded: rng.next() % UInt64(pages))
                let seen = dmaRead(iova + UInt64(p) * layout.page)
                let expected = stressPattern(id: id, gen: gen, page: p)
                if seen != expected {
                    finding("DMA read of window page \(iova + UInt64(p) * layout.page) returned \(describe(seen)), expected \(hex(expected))")
                }
            }
        }
        shared.publish(id, .changing, gen: gen)
        let unmapped = mapped == 0 ? 0 : iommu.unmap(shared.domain, iova: iova, size: mapped)
        counts.unmaps += 1
        if unmapped != mapped {
            finding("iommu_unmap of window \(iova) returned \(hex(unmapped)) bytes, expected \(hex(mapped))")
        }
        shared.publish(id, .unmapped, gen: gen)
        for _ in 0..<2 {
            let p = Int(truncatingIfNeeded: rng.next() % UInt64(pages))
            if let seen = dmaRead(iova + UInt64(p) * layout.page) {
                finding("DMA read of window page \(iova + UInt64(p) * layout.page) after its unmap returned \(describe(seen))")
            }
        }
        for run in runs {
            for p in 0..<runPages { memory.store64(run + UInt64(p) * layout.page, stressPoison) }
        }
    }

    // MARK: observations

    /// A DMA read of another thread's slot or window page, bracketed by its state.
    func observe() {
        guard layout.threads > 1 else { return }
        var other = Int(truncatingIfNeeded: rng.next() % UInt64(layout.threads - 1))
        if other >= t { other += 1 }
        let id: Int, iova: IOVA, page: Int
        if rng.next() % 4 != 0 {
            let s = Int(truncatingIfNeeded: rng.next() % UInt64(layout.slotsPerThread))
            (id, iova, page) = (layout.slotID(thread: other, slot: s), layout.slotIOVA(thread: other, slot: s), 0)
        } else {
            let w = Int(truncatingIfNeeded: rng.next() % UInt64(layout.windowsPerThread))
            let p = Int(truncatingIfNeeded: rng.next() % 512)
            (id, iova, page) = (layout.windowID(thread: other, window: w),
                                layout.windowIOVA(thread: other, window: w) + UInt64(p) * layout.page, p)
        }
        let before = shared.state(id)
        let seen = dmaRead(iova)
        atomicMemoryFence(ordering: .acquiring)
        let after = shared.state(id)
        counts.observations += 1
        let (g1, g2) = (RangePhase.gen(before), RangePhase.gen(after))
        if before == after {
            switch RangePhase.phase(before) {
            case .mapped:
                let expected = stressPattern(id: id, gen: g1, page: page)
                if seen != expected {
                    finding("DMA read of \(iova) (another thread's, mapped throughout) returned \(describe(seen)), expected \(hex(expected))")
                }
            case .unmapped:
                if let seen {
                    finding("DMA read of \(iova) (another thread's, unmapped throughout) returned \(describe(seen)) instead of faulting")
                }
            case .changing:
                if let seen, seen != stressPattern(id: id, gen: g1, page: page) {
                    finding("DMA read of \(iova) (another thread's, being mapped or unmapped) returned \(describe(seen))")
                }
            }
            return
        }
        guard let seen else { return }
        if !(g1...max(g1, g2)).contains(where: { seen == stressPattern(id: id, gen: $0, page: page) }) {
            finding("DMA read of \(iova) (another thread's, changing) returned \(describe(seen)), no generation from \(g1) to \(g2) mapped that")
        }
    }
}

func hex(_ x: UInt64) -> String { "0x" + String(x, radix: 16) }

/// SplitMix64: the threads' deterministic random choices.
struct StressRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
