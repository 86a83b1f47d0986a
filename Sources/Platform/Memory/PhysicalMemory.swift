#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The machine's physical memory: one lazily committed host reservation.
///
/// A physical address is an offset into the reservation, so turning a PA into a pointer
/// is one addition and a table walk is pointer arithmetic. The host commits a page only
/// when it is first touched, so tens of GiB of address space cost nothing until used.
///
/// The frame allocator hands out 4 KiB frames (zeroed) and naturally aligned contiguous
/// runs, and counts frames in use, so tests can assert that nothing leaked. Frame 0 and
/// the first MiB are never handed out: PA 0 means "not mapped" in `iommu_iova_to_phys`.
///
/// Every allocated frame carries a reference count (`page->_refcount`): 1 from
/// allocation, +1 per ``getFrame(_:)`` (`get_page`, or a `pin_user_pages` pin), -1 per
/// ``putFrame(_:)`` (`put_page`); the frame goes back to the pool when it reaches 0. So a
/// page a device may still DMA into outlives the mapping that supplied it. A contiguous
/// run is one compound page: the last put of its first frame frees the whole run, as
/// `put_page` on a compound head frees the folio (a 16 or 64 KiB page table goes back
/// through a freelist of addresses that way).
///
/// Nothing here traps on bad input. An access outside the reservation throws `EFAULT`
/// with the range in its reason; a double free, a put of a free frame or a free of a run
/// still referenced is a WARN (``warnings``, and the machine's log through
/// ``warningHandler``) that leaves the allocator as it was, as the kernel complains and
/// carries on. Outside code reads and writes memory through the checked calls
/// (``read64(at:)``, ``write64(_:at:)``, ``bytes(at:count:)``, ``write(_:_:)``); the
/// unchecked pointer arithmetic the package's own hot paths use is not public.
public final class PhysicalMemory: @unchecked Sendable {
    /// The frame size of the allocator: 4 KiB, the x86-64 and VT-d base page.
    public static let frameSize = 4096
    /// First physical address the allocator hands out.
    public static let firstAllocatable: PhysicalAddress = 0x10_0000

    /// Host address of physical address 0 (unchecked: package code only).
    @usableFromInline package let base: UnsafeMutableRawPointer
    /// Size of the reservation in bytes (the highest PA is `size - 1`).
    public let size: UInt64

    private let lock = Lock()
    private var bump: UInt64 = PhysicalMemory.firstAllocatable.rawValue
    private var freeFrames: [UInt64] = []
    /// Free frames whose memory ``returnFreeFrames()`` gave back to the host: they read
    /// as zero, so handing one out needs no clearing (which would only make the host
    /// commit and clear it twice). Highest address first, so that frames go out in
    /// ascending order and the host can fault them in by huge page.
    private var zeroFrames: [UInt64] = []
    /// Freed contiguous runs, by size in bytes, reused for the same size and alignment.
    private var freeRuns: [Int: [UInt64]] = [:]
    /// Allocated contiguous runs: first frame's address → bytes.
    private var runBytes: [UInt64: Int] = [:]
    private var inUse = 0
    private var allocations = 0
    /// References beyond the allocation's own, one counter per frame, indexed by frame
    /// number: a flat array in a lazily committed reservation (like the allocated
    /// bitmap), because every pin and unpin of a page updates it. A dictionary here cost
    /// a hash and a probe (and rehashing as it grew) on each. Only the pages of frames
    /// ever referenced are committed.
    private let extraRefs: UnsafeMutablePointer<UInt32>
    private let extraRefsBytes: Int
    /// Frames whose ``extraRefs`` count is non-zero.
    private var framesReferenced = 0
    /// One bit per frame: set while the frame is allocated. Lazily committed too.
    private let allocatedBitmap: UnsafeMutablePointer<UInt64>
    private let bitmapBytes: Int

    /// When set, called with the 1-based count of allocations so far; returning true
    /// makes that allocation fail with `ENOMEM` (the model's fail-nth hook).
    public var failAllocation: (@Sendable (Int) -> Bool)? {
        get { lock.withLock { _failAllocation } }
        set { lock.withLock { _failAllocation = newValue } }
    }
    private var _failAllocation: (@Sendable (Int) -> Bool)?
    /// Threads inside ``withoutInjectedFailures(_:)``, with their nesting depth.
    private var exemptThreads: [pthread_t: Int] = [:]

    /// The owner of external frames (see ``ExternalFrameOwner``), and its flag: raised
    /// while it owns any frame, read without a lock on the DMA path.
    let externalLock = Lock()
    var _externalOwner: (any ExternalFrameOwner)?
    /// (an atomic: frames come and go while devices DMA).
    package let externalFramesActive = AtomicFlag()
    /// Free frames whose host pages may still be committed (see ``returnFreeFrames()``),
    /// recorded only once someone asked for it.
    private var freedSinceReturn: [UInt64] = []
    private var tracksFreed = false

    /// Called with each WARN as it is recorded; the machine routes it to its warnings and
    /// event log. It runs after the allocator's lock is dropped, so it may log freely.
    public var warningHandler: (@Sendable (Warning) -> Void)? {
        get { lock.withLock { _warningHandler } }
        set { lock.withLock { _warningHandler = newValue } }
    }
    private var _warningHandler: (@Sendable (Warning) -> Void)?
    /// Bounded, as misuse a caller repeats should not grow memory without end.
    private var _warnings = BoundedLog<Warning>(limit: 256)

    /// The WARNs recorded so far, oldest first (the newest 256): misuse the allocator
    /// survived (double free, put of a free frame, free of a referenced run).
    public var warnings: [Warning] { lock.withLock { _warnings.elements } }

    /// A WARN to raise once the lock is dropped, with the handler to give it to.
    private typealias PendingWarning = (warning: Warning, handler: (@Sendable (Warning) -> Void)?)

    /// Records a WARN; call with the lock held, and pass the result to
    /// ``deliver(_:)`` after dropping it.
    private func warnLocked(_ function: String, _ message: String) -> PendingWarning {
        let w = Warning(function: function, message: message)
        _warnings.append(w)
        return (w, _warningHandler)
    }

    private func deliver(_ pending: PendingWarning?) {
        if let pending { pending.handler?(pending.warning) }
    }

    /// Reserves `size` bytes of physical address space (default 64 GiB).
    public init(size: UInt64 = 64 << 30) {
        precondition(size % UInt64(Self.frameSize) == 0 && size > Self.firstAllocatable.rawValue)
        self.size = size
        base = Self.reserve(Int(size))
        bitmapBytes = Int(size / UInt64(Self.frameSize) / 8)
        allocatedBitmap = Self.reserve(bitmapBytes).bindMemory(to: UInt64.self, capacity: bitmapBytes / 8)
        let frames = Int(size / UInt64(Self.frameSize))
        extraRefsBytes = frames * MemoryLayout<UInt32>.stride
        extraRefs = Self.reserve(extraRefsBytes).bindMemory(to: UInt32.self, capacity: frames)
    }

    deinit {
        munmap(base, Int(size))
        munmap(allocatedBitmap, bitmapBytes)
        munmap(extraRefs, extraRefsBytes)
    }

    private static func reserve(_ bytes: Int) -> UnsafeMutableRawPointer {
        let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let p, p != MAP_FAILED else {
            fatalError("PhysicalMemory: could not reserve \(bytes) bytes of host address space")
        }
        return p
    }

    /// The host pointer for physical address `pa`. Unchecked: the package's hot paths
    /// (table walks, DMA) use it on addresses they have validated.
    @inlinable @inline(__always)
    package func pointer(_ pa: PhysicalAddress) -> UnsafeMutableRawPointer { base + Int(truncatingIfNeeded: pa.rawValue) }

    /// Reads a 64-bit word at `pa` (a table entry), unchecked: see ``read64(at:)``.
    @inlinable @inline(__always)
    package func load64(_ pa: PhysicalAddress) -> UInt64 { pointer(pa).load(as: UInt64.self) }

    /// Writes a 64-bit word at `pa`, unchecked: see ``write64(_:at:)``.
    @inlinable @inline(__always)
    package func store64(_ pa: PhysicalAddress, _ value: UInt64) { pointer(pa).storeBytes(of: value, as: UInt64.self) }

    /// Copies into `buffer` from `pa`, unchecked: for package code on frames it holds.
    @inlinable @inline(__always)
    package func uncheckedRead(_ pa: PhysicalAddress, into buffer: UnsafeMutableRawBufferPointer) {
        buffer.baseAddress.map { $0.copyMemory(from: pointer(pa), byteCount: buffer.count) }
    }

    /// Copies `bytes` to `pa`, unchecked: for package code on frames it holds.
    @inlinable @inline(__always)
    package func uncheckedWrite(_ pa: PhysicalAddress, from bytes: UnsafeRawBufferPointer) {
        bytes.baseAddress.map { pointer(pa).copyMemory(from: $0, byteCount: bytes.count) }
    }

    /// `count` bytes at `pa`, unchecked: for package code on frames it holds.
    package func uncheckedBytes(at pa: PhysicalAddress, count: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: count) { buf, n in
            uncheckedRead(pa, into: UnsafeMutableRawBufferPointer(buf))
            n = count
        }
    }

    /// Whether `[pa, pa+count)` lies inside the reservation.
    @inlinable @inline(__always)
    public func contains(_ pa: PhysicalAddress, count: Int) -> Bool {
        count >= 0 && pa.rawValue <= size && UInt64(count) <= size - pa.rawValue
    }

    private func checkRange(_ function: String, _ pa: PhysicalAddress, _ count: Int) throws(Errno) {
        guard contains(pa, count: count) else {
            throw Errno.badAddress.from(function, count < 0
                ? "negative count \(count)"
                : "[\(pa), \(pa) + \(count)) is outside physical memory (\(size) bytes)")
        }
    }

    /// Reads the 64-bit little-endian word at `pa` (a hardware table entry kept in model
    /// memory), at any alignment.
    /// - Throws: `EFAULT` when the 8 bytes are not all inside memory.
    public func read64(at pa: PhysicalAddress) throws(Errno) -> UInt64 {
        try checkRange("read64", pa, 8)
        return UInt64(littleEndian: pointer(pa).loadUnaligned(as: UInt64.self))
    }

    /// Writes `value` as a 64-bit little-endian word at `pa`, at any alignment.
    /// - Throws: `EFAULT` when the 8 bytes are not all inside memory; nothing is written.
    public func write64(_ value: UInt64, at pa: PhysicalAddress) throws(Errno) {
        try checkRange("write64", pa, 8)
        pointer(pa).storeBytes(of: value.littleEndian, as: UInt64.self)
    }

    /// Frames currently allocated.
    public var framesInUse: Int { lock.withLock { inUse } }

    /// Allocations made so far (for fail-nth sweeps).
    public var allocationCount: Int { lock.withLock { allocations } }

    /// Whether the frame holding `pa` is currently allocated.
    public func isAllocated(_ pa: PhysicalAddress) -> Bool {
        let f = pa.rawValue / UInt64(Self.frameSize)
        guard pa.rawValue < size else { return false }
        return lock.withLock { allocatedBitmap[Int(f / 64)] & (1 << (f % 64)) != 0 }
    }

    private func mark(_ pa: UInt64, frames: Int, allocated: Bool) {
        var f = pa / UInt64(Self.frameSize)
        for _ in 0..<frames {
            let bit: UInt64 = 1 << (f % 64)
            if allocated {
                precondition(allocatedBitmap[Int(f / 64)] & bit == 0, "PhysicalMemory: frame \(f) allocated twice")
                allocatedBitmap[Int(f / 64)] |= bit
            } else {
                precondition(allocatedBitmap[Int(f / 64)] & bit != 0, "PhysicalMemory: double free of frame \(f)")
                allocatedBitmap[Int(f / 64)] &= ~bit
            }
            f += 1
        }
    }

    private func shouldFail() -> Bool {
        if !exemptThreads.isEmpty, exemptThreads[pthread_self()] != nil { return false }
        allocations += 1
        return _failAllocation?(allocations) ?? false
    }

    /// Runs `body` with the calling thread's allocations outside fault injection: they
    /// never fail through ``failAllocation`` and do not count towards its N. For frames
    /// that stand for memory the host already provides (the service's mirrors of a
    /// client's own pages): the modelled call makes no allocation for them, so the
    /// kernel's fail-nth has no injection point there.
    public func withoutInjectedFailures<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        let me = pthread_self()
        lock.withLock { exemptThreads[me, default: 0] += 1 }
        defer {
            lock.withLock {
                let depth = exemptThreads[me, default: 1] - 1
                exemptThreads[me] = depth > 0 ? depth : nil
            }
        }
        return try body()
    }

    /// Allocates one zeroed 4 KiB frame. Models `alloc_page(GFP_KERNEL | __GFP_ZERO)`.
    /// - Throws: `ENOMEM` when the reservation is exhausted or a fail-nth hook fires.
    public func allocFrame() throws(Errno) -> PhysicalAddress {
        let (pa, fresh): (UInt64, Bool) = try lock.withLock { () throws(Errno) -> (UInt64, Bool) in
            if shouldFail() { throw .noMemory.from("alloc_page", "allocation \(allocations) failed by injection") }
            let pa: UInt64
            let fresh: Bool
            if let f = freeFrames.popLast() {
                pa = f
                fresh = false
            } else if let f = zeroFrames.popLast() {
                pa = f
                fresh = true
            } else {
                guard bump + UInt64(Self.frameSize) <= size else {
                    throw .noMemory.from("alloc_page", "all \(size) bytes of physical memory are in use")
                }
                pa = bump
                bump += UInt64(Self.frameSize)
                fresh = true
            }
            mark(pa, frames: 1, allocated: true)
            inUse += 1
            return (pa, fresh)
        }
        // A frame never handed out before, or given back to the host since, is still the
        // host's zero page: zeroing it would only make the host commit and clear it now
        // rather than at its first real use.
        if !fresh { memset(base + Int(pa), 0, Self.frameSize) }
        return PhysicalAddress(rawValue: pa)
    }

    /// Drops the allocation's reference to a frame from ``allocFrame()``
    /// (`__free_page`): the same as ``putFrame(_:)``, so a frame someone still holds a
    /// reference to (a pinned page) stays allocated until that reference goes. A free
    /// frame, or an address outside memory, is a WARN and changes nothing.
    public func freeFrame(_ pa: PhysicalAddress) { putFrame(pa) }

    /// `get_page` / the reference `pin_user_pages` takes: one more reference to the frame
    /// holding `pa`, which then stays allocated until a matching ``putFrame(_:)``.
    /// - Throws: `EFAULT` if `pa` is outside the reservation or its frame is not
    ///   allocated (`try_get_page` on a free page fails); nothing changes.
    public func getFrame(_ pa: PhysicalAddress) throws(Errno) {
        guard pa.rawValue < size else {
            throw Errno.badAddress.from("get_page", "\(pa) is outside physical memory (\(size) bytes)")
        }
        let f = Int(truncatingIfNeeded: pa.rawValue / UInt64(Self.frameSize))
        try lock.withLock { () throws(Errno) in
            guard allocatedBitmap[f / 64] & (1 << (f % 64)) != 0 else {
                throw Errno.badAddress.from("get_page", "the frame at \(pa) is free")
            }
            if extraRefs[f] == 0 { framesReferenced += 1 }
            extraRefs[f] += 1
        }
    }

    /// `put_page` / `unpin_user_page`: drops one reference to the frame holding `pa`; the
    /// last one frees it. Dropping a reference to a free frame (a double free) or to an
    /// address outside memory is a bug in the caller: recorded as a WARN (the kernel's
    /// `VM_BUG_ON_PAGE` on a zero refcount) and ignored, so the allocator stays consistent.
    public func putFrame(_ pa: PhysicalAddress) {
        let f = pa.rawValue & ~UInt64(Self.frameSize - 1)
        // The frames this put frees: none while references remain, a whole run for a
        // compound head.
        var freed = 0
        let warned = lock.withLock { () -> PendingWarning? in
            guard f < size else { return warnLocked("put_page", "\(pa) is outside physical memory (\(size) bytes)") }
            let i = Int(truncatingIfNeeded: f / UInt64(Self.frameSize))
            let n = extraRefs[i]
            if n > 0 {
                extraRefs[i] = n - 1
                if n == 1 { framesReferenced -= 1 }
                return nil
            }
            guard isAllocatedLocked(f) else {
                return warnLocked("put_page", "the frame at \(PhysicalAddress(rawValue: f)) is already free (double free)")
            }
            if !runBytes.isEmpty, let bytes = runBytes[f] {
                let w = releaseRunLocked(f, bytes: bytes, function: "put_page")
                if w == nil { freed = bytes / Self.frameSize }
                return w
            }
            mark(f, frames: 1, allocated: false)
            inUse -= 1
            freeFrames.append(f)
            if tracksFreed { freedSinceReturn.append(f) }
            freed = 1
            return nil
        }
        deliver(warned)
        if freed > 0 { noteReleased(f, frames: freed) }
    }

    /// Asks the host to back this memory with transparent huge pages where it can
    /// (`MADV_HUGEPAGE`, honoured when the host's THP mode is `always` or `madvise`). A
    /// process that fills many frames at once, as the service does when it mirrors a
    /// client's gigabyte, then takes one host fault per 2 MiB instead of one per frame;
    /// ``returnFreeFrames()`` still gives memory back a frame at a time (the host splits
    /// the huge page). Returns false when the host refused the advice.
    @discardableResult
    package func preferHugePages() -> Bool {
        madvise(base, Int(size), MADV_HUGEPAGE) == 0
    }

    /// Gives the host back the memory behind frames freed since the last call
    /// (`MADV_DONTNEED` on each run of them): the reservation is committed lazily, and a
    /// frame once touched stays committed. The first call starts the bookkeeping (a
    /// process that never calls it pays nothing). The frames stay free and come back
    /// zeroed, as every allocation does. Returns the bytes given back.
    @discardableResult
    public func returnFreeFrames() -> Int {
        lock.withLock {
            tracksFreed = true
            let freed = freedSinceReturn.filter { !isAllocatedLocked($0) }.sorted()
            freedSinceReturn = []
            var returned: [UInt64] = []
            var i = 0
            while i < freed.count {
                var j = i + 1
                while j < freed.count && freed[j] == freed[j - 1] + UInt64(Self.frameSize) { j += 1 }
                let bytes = (j - i) * Self.frameSize
                // Under the allocator lock: none of these frames can be handed out meanwhile.
                if madvise(base + Int(freed[i]), bytes, MADV_DONTNEED) == 0 { returned += freed[i..<j] }
                i = j
            }
            // The single frames among them now read as zero (the frames of freed runs
            // stay in their runs, and a frame freed twice since the last call counts once).
            let zeroed = Set(returned)
            if !zeroed.isEmpty {
                var stillDirty: [UInt64] = []
                for f in freeFrames {
                    if zeroed.contains(f) { zeroFrames.append(f) } else { stillDirty.append(f) }
                }
                freeFrames = stillDirty
                zeroFrames.sort(by: >)
            }
            return zeroed.count * Self.frameSize
        }
    }

    /// The reference count of the frame holding `pa` (`page_ref_count`): 0 for a free
    /// frame, 1 for an allocated frame nobody else holds.
    public func frameRefCount(_ pa: PhysicalAddress) -> Int {
        guard pa.rawValue < size else { return 0 }
        let f = pa.rawValue & ~UInt64(Self.frameSize - 1)
        return lock.withLock { isAllocatedLocked(f) ? 1 + Int(extraRefs[Int(f / UInt64(Self.frameSize))]) : 0 }
    }

    /// Frames holding references beyond their allocation's (pinned or otherwise shared).
    public var framesWithExtraReferences: Int { lock.withLock { framesReferenced } }

    private func isAllocatedLocked(_ pa: UInt64) -> Bool {
        let f = pa / UInt64(Self.frameSize)
        return allocatedBitmap[Int(f / 64)] & (1 << (f % 64)) != 0
    }

    /// Allocates `bytes` (a multiple of 4 KiB) of physically contiguous, zeroed memory
    /// aligned to `alignment` (a power of two, at least 4 KiB). Used for DMA buffers,
    /// huge pages and multi-page hardware tables (`alloc_pages` of an order, or
    /// `dma_alloc_coherent`).
    /// - Throws: `EINVAL` for a bad size or alignment; `ENOMEM` when exhausted.
    public func allocContiguous(bytes: Int, alignment: Int = PhysicalMemory.frameSize) throws(Errno) -> PhysicalAddress {
        guard bytes > 0, bytes % Self.frameSize == 0 else {
            throw Errno.invalidArgument.from("allocContiguous", "size \(bytes) is not a multiple of \(Self.frameSize)")
        }
        guard alignment >= Self.frameSize, alignment & (alignment - 1) == 0 else {
            throw Errno.invalidArgument.from("allocContiguous",
                                             "alignment \(alignment) is not a power of two of at least \(Self.frameSize)")
        }
        if bytes == Self.frameSize && alignment == Self.frameSize { return try allocFrame() }
        let pa: UInt64 = try lock.withLock { () throws(Errno) -> UInt64 in
            if shouldFail() { throw .noMemory.from("allocContiguous", "allocation \(allocations) failed by injection") }
            if var runs = freeRuns[bytes], let i = runs.firstIndex(where: { $0 % UInt64(alignment) == 0 }) {
                let pa = runs.remove(at: i)
                freeRuns[bytes] = runs
                mark(pa, frames: bytes / Self.frameSize, allocated: true)
                inUse += bytes / Self.frameSize
                runBytes[pa] = bytes
                return pa
            }
            let start = (bump + UInt64(alignment) - 1) & ~(UInt64(alignment) - 1)
            guard start + UInt64(bytes) <= size else {
                throw .noMemory.from("allocContiguous", "no \(bytes) contiguous bytes aligned to \(alignment) are left")
            }
            // The alignment gap becomes ordinary free frames rather than being lost.
            var gap = bump
            while gap < start { freeFrames.append(gap); gap += UInt64(Self.frameSize) }
            bump = start + UInt64(bytes)
            mark(start, frames: bytes / Self.frameSize, allocated: true)
            inUse += bytes / Self.frameSize
            runBytes[start] = bytes
            return start
        }
        memset(base + Int(pa), 0, bytes)
        return PhysicalAddress(rawValue: pa)
    }

    /// Frees a run from ``allocContiguous(bytes:alignment:)`` (`__free_pages`). Runs are
    /// freed whole (a compound page has one count, on its head); ``freeFrame(_:)`` on the
    /// run's first frame does the same. A size other than the run's, an address that is
    /// not the start of an allocated run (a double free), or a run with a frame still
    /// referenced through ``getFrame(_:)`` is a bug in the caller: recorded as a WARN and
    /// ignored (a referenced run stays allocated, as the kernel leaks a page it cannot free).
    public func free(_ address: PhysicalAddress, bytes: Int) {
        if bytes == Self.frameSize { return putFrame(address) }
        let pa = address.rawValue
        let warned = lock.withLock { () -> PendingWarning? in
            guard bytes > 0, bytes % Self.frameSize == 0 else {
                return warnLocked("__free_pages", "size \(bytes) at \(address) is not a multiple of \(Self.frameSize)")
            }
            guard let runSize = runBytes[pa] else {
                let state = pa < size && isAllocatedLocked(pa) ? "is not the start of a contiguous run"
                                                               : "is not allocated (double free)"
                return warnLocked("__free_pages", "the \(bytes)-byte run at \(address) \(state)")
            }
            guard runSize == bytes else {
                return warnLocked("__free_pages", "the run at \(address) is \(runSize) bytes, not \(bytes)")
            }
            return releaseRunLocked(pa, bytes: bytes, function: "__free_pages")
        }
        deliver(warned)
        if warned == nil { noteReleased(pa, frames: bytes / Self.frameSize) }
    }

    /// Returns a whole run to the pool, or, when a frame of it is still referenced, keeps
    /// it and returns the WARN. Lock held.
    private func releaseRunLocked(_ pa: UInt64, bytes: Int, function: String) -> PendingWarning? {
        if framesReferenced > 0 {
            let first = Int(truncatingIfNeeded: pa / UInt64(Self.frameSize))
            if (first..<first + bytes / Self.frameSize).contains(where: { extraRefs[$0] != 0 }) {
                return warnLocked(function, "run at \(PhysicalAddress(rawValue: pa)) freed while a frame of it is referenced")
            }
        }
        runBytes.removeValue(forKey: pa)
        mark(pa, frames: bytes / Self.frameSize, allocated: false)
        inUse -= bytes / Self.frameSize
        freeRuns[bytes, default: []].append(pa)
        if tracksFreed {
            for k in 0..<bytes / Self.frameSize { freedSinceReturn.append(pa + UInt64(k * Self.frameSize)) }
        }
        return nil
    }

    /// Copies `buffer.count` bytes from physical memory at `pa` into `buffer`.
    /// - Throws: `EFAULT` when the range is not inside memory; nothing is copied.
    public func read(_ pa: PhysicalAddress, into buffer: UnsafeMutableRawBufferPointer) throws(Errno) {
        try checkRange("read", pa, buffer.count)
        buffer.baseAddress.map { $0.copyMemory(from: pointer(pa), byteCount: buffer.count) }
    }

    /// Copies `bytes` into physical memory at `pa`.
    /// - Throws: `EFAULT` when the range is not inside memory; nothing is written.
    public func write(_ pa: PhysicalAddress, from bytes: UnsafeRawBufferPointer) throws(Errno) {
        try checkRange("write", pa, bytes.count)
        bytes.baseAddress.map { pointer(pa).copyMemory(from: $0, byteCount: bytes.count) }
    }

    /// Returns `count` bytes of physical memory at `pa`.
    /// - Throws: `EFAULT` when the range is not inside memory.
    public func bytes(at pa: PhysicalAddress, count: Int) throws(Errno) -> [UInt8] {
        try checkRange("bytes(at:)", pa, count)
        return [UInt8](unsafeUninitializedCapacity: count) { buf, n in
            buf.baseAddress.map { UnsafeMutableRawPointer($0).copyMemory(from: pointer(pa), byteCount: count) }
            n = count
        }
    }

    /// Writes `data` to physical memory at `pa`.
    /// - Throws: `EFAULT` when the range is not inside memory; nothing is written.
    public func write(_ pa: PhysicalAddress, _ data: [UInt8]) throws(Errno) {
        try checkRange("write", pa, data.count)
        data.withUnsafeBytes { pointer(pa).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    }
}
