import IOMMUCore
import IOMMUFDSelftest

/// A fresh machine and task for one fuzz input: the mock IOMMU with the selftest backend,
/// a process with an argument window, a 16-page anonymous buffer and a 16-page memfd
/// mapped shared, and an iommufd context opened by the process. The addresses are fixed,
/// so seeds (and mutations of them) can point at real memory.
final class FuzzSandbox {
    /// Where pointer arguments are written: 64 KiB, mapped and populated.
    static let argAddress: UInt64 = 0x7000_0000
    static let argLength = 64 << 10
    /// The task's anonymous buffer (the selftest's `buffer`): 16 pages.
    static let bufferAddress: UInt64 = 0x4000_0000
    static let bufferLength = 16 * 4096
    /// The memfd's shared mapping (the selftest's `mfd_buffer`).
    static let memfdAddress: UInt64 = 0x5000_0000
    /// The descriptor of the memfd in the task.
    static let memfd: Int32 = 3

    let machine: Machine
    let process: IOMMUCore.Process
    let task: IOMMUFDTaskCredentials
    let ctx: IOMMUFD
    var child: IOMMUCore.Process?
    /// Frames in use before the context did anything: what closing it must bring back.
    let baselineFrames: Int
    /// The task gave back some of its own pages (munmap), so fewer frames than the
    /// baseline may remain.
    var taskFreedMemory = false
    /// When set, every ioctl's result is appended (`--seeds -v` prints them).
    var results: [Int32]?
    /// The task's mappings of the iommufd (start, length): unmapped by ``finish()``.
    var mappings: [(address: UInt64, length: Int)] = []

    init() throws {
        machine = Machine(memory: 1 << 30)
        process = try IOMMUCore.Process(memory: machine.memory, pid: 100)
        let backend = MockSelftestBackend(machine: machine)
        task = IOMMUFDTaskCredentials()
        ctx = IOMMUFD(machine: machine, process: process, credentials: task, testBackend: backend)
        try process.mmap(length: Self.argLength, prot: [.read, .write], at: Self.argAddress, populate: true)
        try process.mmap(length: Self.bufferLength, prot: [.read, .write], at: Self.bufferAddress, populate: true)
        let fd = try process.memfdCreate(name: "fuzz", size: UInt64(Self.bufferLength))
        precondition(fd == Self.memfd, "the sandbox's memfd is descriptor 3")
        try process.mmap(fd: fd, length: Self.bufferLength, prot: [.read, .write], at: Self.memfdAddress,
                         populate: true)
        baselineFrames = machine.memory.framesInUse
    }

    /// Runs one step. Results are what the kernel answers, so they are not checked here:
    /// what matters is that nothing traps and that ``finish()`` finds everything released.
    func run(_ step: FuzzStep, from caller: IOMMUCore.Process? = nil) {
        let p = step.payload
        switch step.operation {
        case .anyIoctl:
            let cmd = UInt32(truncatingIfNeeded: Self.word(p, 0, 4))
            _ = ioctl(cmd, Self.word(p, 4, 8), caller)
        case .readFile, .writeFile, .pollFile, .closeFile:
            let files = ctx.fileNumbers
            guard !files.isEmpty else { return }
            let fd = files[Int(p.first ?? 0) % files.count]
            let count = Int(Self.word(p, 1, 2))
            switch step.operation {
            case .readFile: _ = ctx.readFile(fd, buffer: Self.argAddress, count: count)
            case .writeFile:
                write(Array(p.dropFirst(3)))
                _ = ctx.writeFile(fd, buffer: Self.argAddress, count: count)
            case .pollFile: _ = ctx.pollFile(fd)
            default: _ = ctx.closeFile(fd)
            }
        case .capability:
            let cap: IOMMUFDCapability = (p.first ?? 0) & 1 == 0 ? .ipcLock : .sysResource
            if p.count > 1 && p[1] & 1 != 0 { task.raise(cap) } else { task.drop(cap) }
        case .memlockLimit:
            task.setMemlockLimit(pages: Self.word(p, 0, 4))
        case .munmapBufferPage:
            let page = UInt64(p.first ?? 0) % UInt64(Self.bufferLength / 4096)
            try? process.munmap(address: Self.bufferAddress + page * 4096, length: 4096)
            taskFreedMemory = true
        case .childIoctl:
            guard !p.isEmpty else { return }
            if child == nil { child = try? process.fork(pid: 101) }
            guard let child else { return }
            let op = FuzzProgram.operations[Int(p[0] & 0x3f) % FuzzProgram.operations.count]
            guard op.command != nil else { return }
            run(FuzzStep(operation: op, placement: FuzzArgumentPlacement(rawValue: p[0] >> 6) ?? .argPage,
                         payload: Array(p.dropFirst())), from: child)
        case .childExit:
            child?.exit()
        case .mmapContext:
            let flags = p.count > 12 ? p[12] : 0
            var prot: ProcessProt = [.read]
            if flags & 1 != 0 { prot.insert(.write) }
            if flags & 2 != 0 { prot.insert(.exec) }
            let length = Int(Self.word(p, 8, 4))
            if let va = try? ctx.mmap(length: length, prot: prot, shared: flags & 4 == 0, offset: Self.word(p, 0, 8)) {
                mappings.append((va, (length + 4095) & ~4095))
            }
        case .munmapMapping:
            guard !mappings.isEmpty else { return }
            let m = mappings[Int(p.first ?? 0) % mappings.count]
            let pages = UInt64(m.length / 4096)
            let first = Self.word(p, 1, 1) % pages
            let count = 1 + Self.word(p, 2, 1) % (pages - first)
            try? process.munmap(address: m.address + first * 4096, length: Int(count * 4096))
        default:
            guard let cmd = step.operation.command else { return }
            if step.operation.takesValue {
                _ = ioctl(cmd, Self.word(p, 0, 8), caller)
                return
            }
            let address: UInt64
            switch step.placement {
            case .argPage, .argPageAgain: address = Self.argAddress
            case .null: address = 0
            case .pageEnd: address = Self.argAddress + UInt64(Self.argLength) - UInt64(min(p.count, 16))
            }
            if address != 0 { write(p, at: address, caller) }
            _ = ioctl(cmd, address, caller)
        }
    }

    private func ioctl(_ cmd: UInt32, _ arg: UInt64, _ caller: IOMMUCore.Process?) -> Int32 {
        let rc = caller.map { ctx.ioctl(cmd, arg, from: $0) } ?? ctx.ioctl(cmd, arg)
        results?.append(rc)
        return rc
    }

    /// Writes what fits of `bytes` at `address` in `caller`'s (or the task's) memory.
    private func write(_ bytes: [UInt8], at address: UInt64 = argAddress, _ caller: IOMMUCore.Process? = nil) {
        let room = Int(Self.argAddress + UInt64(Self.argLength) - address)
        guard !bytes.isEmpty, room > 0 else { return }
        try? (caller ?? process).writeMemory(address: address, bytes: Array(bytes.prefix(room)))
    }

    /// The little-endian integer of `width` bytes at `offset` of `p` (missing bytes 0).
    static func word(_ p: [UInt8], _ offset: Int, _ width: Int) -> UInt64 {
        var v: UInt64 = 0
        for i in 0..<width where offset + i < p.count { v |= UInt64(p[offset + i]) << (8 * UInt64(i)) }
        return v
    }

    /// Closes the context, as the task's exit would, and checks what the kernel
    /// guarantees then: every object destroyed, no page pinned, every frame iommufd took
    /// given back, and no WARN on the way. A failure is a finding: it traps.
    func finish() {
        child?.exit()
        ctx.close()
        // A mapping of the iommufd holds the file: the context goes with the last one.
        precondition(ctx.isReleased || !mappings.isEmpty, "the context outlived its file")
        for m in mappings { try? process.munmap(address: m.address, length: m.length) }
        precondition(ctx.isReleased, "the context outlived its last mapping")
        precondition(!ctx.hasObjects, "objects left after close")
        let pinned = PagePinRegistry.shared.pinnedPages(machine.memory)
        precondition(pinned == 0, "\(pinned) pages still pinned after close")
        let frames = machine.memory.framesInUse
        precondition(frames == baselineFrames || (taskFreedMemory && frames < baselineFrames),
                     "\(frames - baselineFrames) frames leaked by the context")
        precondition(ctx.faultInjection.warnings.isEmpty, "iommufd WARN: \(ctx.faultInjection.warnings)")
        precondition(machine.warnings.isEmpty, "core WARN: \(machine.warnings)")
    }
}
