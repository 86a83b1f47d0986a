import IOMMUCore

/// One open of `/dev/iommu`: an iommufd context (`struct iommufd_ctx`).
///
/// It owns the object table, the compat IOAS pointer, the per-group attach state and the
/// files it handed out (fault queues, selftest accesses). Every ioctl goes through
/// ``ioctl(_:_:)`` with the exact bytes a C caller passes; the typed Swift API
/// (``allocIOAS()``, ``map(ioas:userVA:length:iova:flags:)``…) encodes a structure,
/// calls the same dispatcher and decodes the answer.
///
/// Thread-safe: one recursive lock serialises the ioctls of a context (the kernel's
/// per-object locks folded together); access unmap callbacks run on the calling thread.
public final class IOMMUFD: @unchecked Sendable {
    /// The machine whose IOMMU core this context drives.
    public let machine: Machine
    /// The process that opened the context: `current->mm`, where pinned pages come from.
    public let process: Process
    /// The opener's memory for ioctl arguments (`copy_from_user` / `copy_to_user`).
    public let openerMemory: any UserMemory
    /// The memory of the task issuing the ioctl in progress (the opener's, or another
    /// process sharing the fd, see ``ioctl(_:_:from:)``).
    var callerMemory: any UserMemory { callerOverride?.memory ?? openerMemory }
    /// `current->mm` of the ioctl in progress: pages mapped now are pinned from it.
    package var current: Process { callerOverride?.process ?? process }
    /// The credentials of the task issuing the call in progress (`current`'s): the ones
    /// given to ``withCaller(_:memory:credentials:_:)``, else the context's own
    /// ``credentials``. Asked every time the kernel would check `current`.
    package var currentCredentials: any IOMMUFDCredentialSource { callerOverride?.credentials ?? credentials }
    var callerOverride: (process: Process, memory: any UserMemory, credentials: (any IOMMUFDCredentialSource)?)?
    /// The memory the ioctl in progress reads and writes: the caller's, overlaid with the
    /// typed API's argument window while a typed call runs.
    package var user: any UserMemory { overlay ?? callerMemory }
    /// Set by the typed API for the duration of one dispatch (under ``lock``).
    var overlay: ArgumentOverlay?
    /// The argument window of the last typed call, reused by the next one.
    var spareOverlay: ArgumentOverlay?
    /// The dispatcher's buffer for the kernel copy of a command structure, reused from
    /// one ioctl to the next (see `ioctlLocked`).
    var argumentBuffer: [UInt8] = []
    /// Where the context learns the capabilities, `RLIMIT_MEMLOCK` and user of the task
    /// that calls it, asked at each check (see ``IOMMUFDCredentialSource``): the opener's
    /// task, unless a call brings its own (``withCaller(_:memory:credentials:_:)``).
    public let credentials: any IOMMUFDCredentialSource
    /// The pinned-page counters charged by this context.
    public let accounting: PinAccounting
    /// The `IOMMU_TEST_CMD` handler; with it, the command is in the ioctl table
    /// (`CONFIG_IOMMUFD_TEST`).
    package let testBackend: (any IOMMUFDTestCommandHandler)?
    /// The fail-nth fault injection knob of this context.
    public let faultInjection: FaultInjection

    let lock = RecursiveLock()
    #if ENABLE_MOCKING
    /// The ioctl trace and forced-errno hooks (debug builds only).
    public let mocking = IOMMUFDMocking()
    #endif
    var table = ObjectTable()
    /// `ictx->account_mode`.
    var accountMode: IOPTAccountMode
    /// `ictx->vfio_ioas` (no reference held).
    weak var vfioIOAS: IOASObject?
    /// `ictx->groups`: per iommu_group attach state.
    var groups: [ObjectIdentifier: IOMMUFDGroup] = [:]
    /// Files handed out by this context (fault queue fds, selftest access fds).
    package var files: [Int32: IOMMUFDFile] = [:]
    /// How files get their fd numbers (see ``IOMMUFDFileInstaller``); nil numbers them
    /// from 1000 inside the model. Set before the first ioctl.
    public var fileInstaller: IOMMUFDFileInstaller? {
        get { lock.withLock { _fileInstaller } }
        set { lock.withLock { _fileInstaller = newValue } }
    }
    var _fileInstaller: IOMMUFDFileInstaller?
    /// The selftest's temporary batch memory limit (`IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT`).
    package var tempMemoryLimit: UInt32 = 65536
    /// `ictx->mt_mmap`: the regions user space may `mmap`, by offset.
    var mmapRegions: [IOMMUFDMMapRegion] = []
    /// Mappings of this fd that exist (each holds the file, as a VMA's `vm_file` does).
    var liveMappings = 0
    /// Set once ``close()`` ran: the fd is closed and takes no more calls.
    public private(set) var isClosed = false
    /// Set once the context was released (`iommufd_fops_release`): at ``close()``, or
    /// when the last mapping of the closed fd went.
    public private(set) var isReleased = false

    /// Opens a context (`iommufd_fops_open`).
    /// - Parameters:
    ///   - machine: the machine.
    ///   - process: the opening process (pins come from its mm).
    ///   - user: how ioctl arguments are read and written; defaults to `process`'s memory.
    ///   - credentials: the opener's task, asked for its capabilities and limits at every
    ///     check (``IOMMUFDCredentialSource``); a fixed root by default. Pass an
    ///     ``IOMMUFDTaskCredentials`` to change them after opening, as `capset` would.
    ///   - accounting: counters to charge; fresh by default.
    ///   - vfioContainer: opened as `/dev/vfio/vfio`, which starts in MM accounting mode.
    public convenience init(machine: Machine, process: Process, user: (any UserMemory)? = nil,
                            credentials: any IOMMUFDCredentialSource = IOMMUFDCredentials.root,
                            accounting: PinAccounting = PinAccounting(), vfioContainer: Bool = false) {
        self.init(machine: machine, process: process, user: user, credentials: credentials, accounting: accounting,
                  testBackend: nil, vfioContainer: vfioContainer)
    }

    /// Opens a context with `IOMMU_TEST_CMD` handled by `testBackend` (nil: as the public
    /// initializer). The parameters are those of the public initializer.
    package init(machine: Machine, process: Process, user: (any UserMemory)? = nil,
                 credentials: any IOMMUFDCredentialSource = IOMMUFDCredentials.root,
                 accounting: PinAccounting = PinAccounting(), testBackend: (any IOMMUFDTestCommandHandler)?, vfioContainer: Bool = false) {
        self.machine = machine
        self.process = process
        openerMemory = user ?? ProcessUserMemory(process)
        self.credentials = credentials
        self.accounting = accounting
        self.testBackend = testBackend
        accountMode = vfioContainer ? .mm : .user
        faultInjection = FaultInjection(memory: machine.memory)
        machine.addGraphContributor(self)
    }

    /// A context dropped without ``close()`` is closed here, as the kernel releases an
    /// fd on process exit. Objects refer back to their context `unowned(unsafe)` so that
    /// this teardown may run while the context itself is being deinitialised.
    deinit {
        if !isClosed { close() }
    }

    /// `iommufd_should_fail()`: an injection point; true when fail-nth picks it.
    func shouldFail() -> Bool { faultInjection.shouldFail() }

    func warn(_ function: String, _ message: String) {
        machine.events.record(.model("warn", [.init("function", function), .init("message", message)]))
        faultInjection.noteWarning("\(function): \(message)")
    }

    /// Objects of the context right now (tombstones excluded), in ID order.
    public var objectSnapshot: [(id: AnyIOMMUFDObjectID, type: IOMMUFDObjectType, users: Int)] {
        lock.withLock { table.liveObjects.map { (AnyIOMMUFDObjectID(rawValue: $0.rawID), $0.type, $0.users) } }
    }

    /// Whether the object table holds anything (live, reserved or tombstoned).
    public var hasObjects: Bool { lock.withLock { !table.isEmpty } }

    /// `close(fd)`: the fd takes no more calls; the context is released
    /// (`iommufd_fops_release`) now, or, while `mmap`s of the fd exist (they hold the
    /// file), when the last of them goes.
    public func close() {
        lock.withLock {
            guard !isClosed else { return }
            isClosed = true
            if liveMappings == 0 { releaseLocked() }
        }
    }

    /// `iommufd_fops_release`: closes every file of the context, then destroys objects
    /// whose only reference is the table's, leaves first, round after round. A round
    /// that destroys nothing while objects remain is a reference-count bug: it is
    /// recorded as a WARN and the remaining objects are destroyed anyway.
    func releaseLocked() {
        do {
            guard !isReleased else { return }
            isReleased = true
            for fd in files.keys.sorted() { _ = closeFileLocked(fd) }
            while table.hasObjects {
                let leaves = table.liveObjects.filter { $0.users == 1 }
                if leaves.isEmpty {
                    warn("iommufd_fops_release", "no progress: \(table.liveObjects) still referenced")
                    for o in table.liveObjects.reversed() {
                        table.release(o.rawID)
                        o.destroy(self)
                    }
                    break
                }
                for o in leaves where table.live(o.rawID) === o && o.users == 1 {
                    table.release(o.rawID)
                    if vfioIOAS === o { vfioIOAS = nil }
                    o.destroy(self)
                }
            }
            table = ObjectTable()
            mmapRegions = []
        }
    }
}
