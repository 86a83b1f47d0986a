import IOMMUCore

/// The kernel's copy of one command's argument (`struct iommufd_ucmd`): the structure
/// zero-extended to the kernel `sizeof`, the caller's pointer and size.
package struct UCmd {
    /// `unowned(unsafe)`: a UCmd is made by the context's own dispatcher (`ioctlLocked`)
    /// and lives only for that call, so the context outlives it. Read on every respond;
    /// a checked `unowned` load there costs an unowned-to-strong retain of the context
    /// (slow-path refcounting, since the context is also weakly referenced).
    unowned(unsafe) let ctx: IOMMUFD
    /// `ucmd->ubuffer`.
    let ubuffer: UInt64
    /// `ucmd->user_size`.
    let userSize: Int
    /// `ucmd->cmd`: `sizeof` bytes.
    var cmd: UAPIBytes

    /// Decodes the command as `T`.
    package func decode<T: UAPIStruct>(_: T.Type) -> T { T(cmd) }

    /// `iommufd_ucmd_respond(ucmd, sizeof)`: copy back `min(user size, sizeof)` bytes of
    /// `value`.
    /// - Throws: `EFAULT`.
    package mutating func respond<T: UAPIStruct>(_ value: T) throws(Errno) {
        // The answer is encoded over the command's own (kernel-sized) buffer, zeroed
        // first exactly as a fresh one would be, so answering allocates nothing.
        if cmd.count == T.size {
            _ = cmd.bytes.withUnsafeMutableBytes { $0.initializeMemory(as: UInt8.self, repeating: 0) }
        } else {
            cmd = UAPIBytes(count: T.size)
        }
        value.encode(into: &cmd)
        // `min(user size, sizeof)` bytes: the whole structure when the caller's is at
        // least as large.
        let n = min(userSize, T.size)
        let ubuffer = ubuffer
        // Read through a guaranteed reference: the context is running this dispatch (see
        // `ctx`), and a plain load would retain it on the slow side-table path.
        let user = Unmanaged.passUnretained(ctx)._withUnsafeGuaranteedRef { $0.user }
        // (withUnsafeBytes rethrows untyped: the errno is carried out by hand.)
        var failure: Errno?
        cmd.bytes.withUnsafeBytes { raw in
            do throws(Errno) { try user.copyToUser(ubuffer, from: UnsafeRawBufferPointer(rebasing: raw[0..<n])) } catch {
                failure = error
            }
        }
        if let failure { throw failure }
    }
}

/// One row of the ioctl table (`struct iommufd_ioctl_op`, `IOCTL_OP(ioctl, fn, struct,
/// last)`): the exact command, the kernel `sizeof`, `min_size`, and the handler. A
/// handler returns the ioctl's non-negative return value. `sizeof` and `min_size` are the
/// argument structure's own (``UAPIRecord/size``, ``UAPIStruct/minSize``: `offsetofend`
/// of the `last` field its field table names), so the size rules and the codec read one
/// declaration.
struct IOCtlOp {
    let cmd: UInt32
    let size: Int
    let minSize: Int
    let handler: (IOMMUFD, inout UCmd) throws(Errno) -> Int32

    init<T: UAPIStruct>(_ cmd: UInt32, _: T.Type, _ handler: @escaping (IOMMUFD, inout UCmd) throws(Errno) -> Int32) {
        self.cmd = cmd
        size = T.size
        minSize = T.minSize
        self.handler = handler
    }

    init(_ cmd: UInt32, size: Int, minSize: Int, _ handler: @escaping (IOMMUFD, inout UCmd) throws(Errno) -> Int32) {
        self.cmd = cmd
        self.size = size
        self.minSize = minSize
        self.handler = handler
    }
}

extension IOMMUFD {
    /// The ioctl table (`iommufd_ioctl_ops[]`), indexed by `nr - IOMMUFD_CMD_BASE`.
    /// `IOMMU_TEST_CMD` is present only with a test-command handler.
    func ioctlOp(_ nr: UInt32) -> IOCtlOp? {
        switch nr {
        case 0x80: IOCtlOp(IOMMUFDCommand.destroy, IOMMUDestroy.self) { c, u throws(Errno) in try c.ioctlDestroy(&u) }
        case 0x81: IOCtlOp(IOMMUFDCommand.ioasAlloc, IOMMUIOASAlloc.self) { c, u throws(Errno) in try c.ioctlIOASAlloc(&u) }
        case 0x82: IOCtlOp(IOMMUFDCommand.ioasAllowIOVAs, IOMMUIOASAllowIOVAs.self) { c, u throws(Errno) in try c.ioctlIOASAllowIOVAs(&u) }
        case 0x83: IOCtlOp(IOMMUFDCommand.ioasCopy, IOMMUIOASCopy.self) { c, u throws(Errno) in try c.ioctlIOASCopy(&u) }
        case 0x84: IOCtlOp(IOMMUFDCommand.ioasIOVARanges, IOMMUIOASIOVARanges.self) { c, u throws(Errno) in try c.ioctlIOASIOVARanges(&u) }
        case 0x85: IOCtlOp(IOMMUFDCommand.ioasMap, IOMMUIOASMap.self) { c, u throws(Errno) in try c.ioctlIOASMap(&u) }
        case 0x86: IOCtlOp(IOMMUFDCommand.ioasUnmap, IOMMUIOASUnmap.self) { c, u throws(Errno) in try c.ioctlIOASUnmap(&u) }
        case 0x87: IOCtlOp(IOMMUFDCommand.option, IOMMUOption.self) { c, u throws(Errno) in try c.ioctlOption(&u) }
        case 0x88: IOCtlOp(IOMMUFDCommand.vfioIOAS, IOMMUVFIOIOAS.self) { c, u throws(Errno) in try c.ioctlVFIOIOAS(&u) }
        case 0x89: IOCtlOp(IOMMUFDCommand.hwptAlloc, IOMMUHWPTAlloc.self) { c, u throws(Errno) in try c.ioctlHWPTAlloc(&u) }
        case 0x8A: IOCtlOp(IOMMUFDCommand.getHWInfo, IOMMUHWInfo.self) { c, u throws(Errno) in try c.ioctlGetHWInfo(&u) }
        case 0x8B: IOCtlOp(IOMMUFDCommand.hwptSetDirtyTracking, IOMMUHWPTSetDirtyTracking.self) { c, u throws(Errno) in try c.ioctlHWPTSetDirtyTracking(&u) }
        case 0x8C: IOCtlOp(IOMMUFDCommand.hwptGetDirtyBitmap, IOMMUHWPTGetDirtyBitmap.self) { c, u throws(Errno) in try c.ioctlHWPTGetDirtyBitmap(&u) }
        case 0x8D: IOCtlOp(IOMMUFDCommand.hwptInvalidate, IOMMUHWPTInvalidate.self) { c, u throws(Errno) in try c.ioctlHWPTInvalidate(&u) }
        case 0x8E: IOCtlOp(IOMMUFDCommand.faultQueueAlloc, IOMMUFaultAlloc.self) { c, u throws(Errno) in try c.ioctlFaultQueueAlloc(&u) }
        case 0x8F: IOCtlOp(IOMMUFDCommand.ioasMapFile, IOMMUIOASMapFile.self) { c, u throws(Errno) in try c.ioctlIOASMapFile(&u) }
        case 0x90: IOCtlOp(IOMMUFDCommand.viommuAlloc, IOMMUVIOMMUAlloc.self) { c, u throws(Errno) in try c.ioctlVIOMMUAlloc(&u) }
        case 0x91: IOCtlOp(IOMMUFDCommand.vdeviceAlloc, IOMMUVDeviceAlloc.self) { c, u throws(Errno) in try c.ioctlVDeviceAlloc(&u) }
        case 0x92: IOCtlOp(IOMMUFDCommand.ioasChangeProcess, IOMMUIOASChangeProcess.self) { c, u throws(Errno) in try c.ioctlIOASChangeProcess(&u) }
        case 0x93: IOCtlOp(IOMMUFDCommand.veventqAlloc, IOMMUVEventQAlloc.self) { c, u throws(Errno) in try c.ioctlVEventQAlloc(&u) }
        case 0x94: IOCtlOp(IOMMUFDCommand.hwQueueAlloc, IOMMUHWQueueAlloc.self) { c, u throws(Errno) in try c.ioctlHWQueueAlloc(&u) }
        case 0xA0:
            testBackend.map { h in
                IOCtlOp(IOMMUFDCommand.testCmd, size: h.commandSize, minSize: h.commandMinSize) { c, u throws(Errno) in
                    try h.testCommand(c, &u)
                }
            }
        default: nil
        }
    }

    /// The last table index (`ARRAY_SIZE(iommufd_ioctl_ops)`): with the test op built
    /// the table reaches 0xA0, without it 0x94.
    var ioctlTableLast: UInt32 { testBackend != nil ? 0xA0 : 0x94 }

    /// `ioctl(iommufd, cmd, arg)`: `iommufd_fops_ioctl`, byte for byte.
    ///
    /// `arg` is a pointer into the caller's memory (read through `user`), except for
    /// the VFIO commands that take a value. The size rules run in the kernel's order:
    /// 1. `nr` below `IOMMUFD_CMD_BASE` or past the table → the VFIO compatibility
    ///    handler, which answers `ENOTTY` for anything it does not know;
    /// 2. the leading `u32 size` cannot be read → `EFAULT`;
    /// 3. an empty table slot or a command that is not bit-identical → `ENOTTY`;
    /// 4. `size < min_size` → `EINVAL`;
    /// 5. non-zero bytes past the kernel `sizeof` → `E2BIG` (a short struct is
    ///    zero-extended);
    /// 6. the handler, whose errno is returned; its output is copied back truncated to
    ///    the caller's size.
    /// - Returns: the ioctl's return value (0, or a positive value for some VFIO
    ///   commands) or the kernel's negative errno (`-22` for `EINVAL`).
    public func ioctl(_ cmd: UInt32, _ arg: UInt64) -> Int32 {
        switch ioctlResult(cmd, arg) {
        case .success(let v): v
        case .failure(let e): -e.rawValue
        }
    }

    /// ``ioctl(_:_:)`` with the errno whole: what refused and why (the typed API throws
    /// it). A failure is recorded as an `iommukit:error` event; an errno that does not
    /// say where it came from is marked with the command's name.
    func ioctlResult(_ cmd: UInt32, _ arg: UInt64) -> Result<Int32, Errno> {
        lock.withLock {
            let r = ioctlLocked(cmd, arg)
            guard case .failure(var e) = r else { return r }
            let name = IOMMUFDCommand.name(cmd)
            if e.function == nil { e = e.from(name, "") }
            noteFailure(name, e)
            return .failure(e)
        }
    }

    /// Records that entry point `call` failed with `error` (`iommukit:error`: the call,
    /// the errno's C name and the error's text).
    func noteFailure(_ call: String, _ error: Errno) {
        machine.events.record(.model("error", [.init("call", call), .init("errno", error.cName), .init("text", "\(error)")]))
    }

    /// Runs an entry point of the in-kernel iommufd API (`iommufd_device_bind`,
    /// `iommufd_access_attach`, ...) under the context lock, recording a failure as
    /// ``noteFailure(_:_:)`` does.
    func entry<T>(_ call: String, _ body: () throws(Errno) -> T) throws(Errno) -> T {
        do {
            return try lock.withLock(body)
        } catch {
            noteFailure(call, error)
            throw error
        }
    }

    /// `ioctl(iommufd, cmd, arg)` issued by another process sharing the fd (a child after
    /// `fork()`): `arg` is read from `caller`'s memory and pages mapped by this call are
    /// pinned from `caller`'s mm, as the kernel uses `current->mm`.
    /// - Returns: as ``ioctl(_:_:)``.
    public func ioctl(_ cmd: UInt32, _ arg: UInt64, from caller: Process) -> Int32 {
        lock.withLock {
            let saved = callerOverride
            callerOverride = (caller, ProcessUserMemory(caller), saved?.credentials)
            defer { callerOverride = saved }
            return ioctl(cmd, arg)
        }
    }

    /// Runs `body` (``ioctl(_:_:)``, ``readFile(_:buffer:count:)``,
    /// ``writeFile(_:buffer:count:)``…) as the task of another process: `current->mm` is
    /// `caller` (pages mapped are pinned from it; selftest checks look there) and
    /// `copy_from_user`/`copy_to_user` go to `memory`. Used by a host that serves real
    /// processes, where `memory` reaches the caller's own address space.
    /// - Parameters:
    ///   - caller: the calling task's mm.
    ///   - memory: the calling task's user memory.
    ///   - credentials: the caller's capabilities, `RLIMIT_MEMLOCK` and user, as the host
    ///     learned them for this request; every check the call makes asks them instead of
    ///     the context's own ``credentials``. Nil keeps the context's own.
    ///   - body: the calls to make as the caller.
    /// - Returns: what `body` returns.
    public func withCaller<R>(_ caller: Process, memory: any UserMemory,
                              credentials: (any IOMMUFDCredentialSource)? = nil, _ body: () -> R) -> R {
        lock.withLock {
            let saved = callerOverride
            callerOverride = (caller, memory, credentials)
            defer { callerOverride = saved }
            return body()
        }
    }

    private func ioctlLocked(_ cmd: UInt32, _ arg: UInt64) -> Result<Int32, Errno> {
        guard !isClosed else { return .failure(.badFileDescriptor.from("iommufd_fops_ioctl", "the context is closed")) }
        let nr = IOMMUFDCommand.nr(cmd)
        if nr < IOMMUFDCommand.base || nr > ioctlTableLast { return vfioIoctl(cmd, arg) }
        let memory = user
        // The size word is read into a local, not an array.
        var sizeWord: UInt32 = 0
        let readable = withUnsafeMutableBytes(of: &sizeWord) { b in
            do throws(Errno) { try memory.copyFromUser(arg, into: b) } catch { return false }
            return true
        }
        let f = "iommufd_fops_ioctl"
        guard readable else { return .failure(.badAddress.from(f, "the size word at 0x\(String(arg, radix: 16)) cannot be read")) }
        let userSize = Int(UInt32(littleEndian: sizeWord))
        guard let op = ioctlOp(nr), op.cmd == cmd else {
            return .failure(.notTTY.from(f, "no command 0x\(String(cmd, radix: 16)) in the ioctl table"))
        }
        guard userSize >= op.minSize else {
            return .failure(.invalidArgument.from(f, "size \(userSize) is below the command's minimum \(op.minSize)"))
        }
        // The kernel's copy of the structure, `sizeof` bytes zero-extended, in the
        // context's reusable buffer (taken out while in use, so a nested ioctl gets a
        // fresh one): the common path allocates nothing here.
        var buffer = argumentBuffer
        argumentBuffer = []
        if buffer.count == op.size {
            // The usual case (the same command as last time): zeroed in place.
            _ = buffer.withUnsafeMutableBytes { $0.initializeMemory(as: UInt8.self, repeating: 0) }
        } else {
            buffer.removeAll(keepingCapacity: true)
            buffer.append(contentsOf: repeatElement(0, count: op.size))
        }
        do {
            if userSize > op.size {
                let tail = try memory.copyFromUser(arg + UInt64(op.size), count: userSize - op.size)
                if tail.contains(where: { $0 != 0 }) {
                    return .failure(.tooBig.from(f, "bytes past the kernel's \(op.size) (of \(userSize)) are not zero"))
                }
            }
            let n = min(userSize, op.size)
            let copied = buffer.withUnsafeMutableBytes { raw in
                do throws(Errno) {
                    try memory.copyFromUser(arg, into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<n]))
                } catch { return false }
                return true
            }
            if !copied { return .failure(.badAddress.from(f, "the argument at 0x\(String(arg, radix: 16)) cannot be read")) }
        } catch {
            return .failure(.badAddress.from(f, "the argument's tail at 0x\(String(arg + UInt64(op.size), radix: 16)) cannot be read"))
        }
        let kbuf = UAPIBytes(buffer)
        buffer = []
        var ucmd = UCmd(ctx: self, ubuffer: arg, userSize: userSize, cmd: kbuf)
        // The buffer goes back for the next ioctl once the handler is done with it.
        defer { argumentBuffer = ucmd.cmd.bytes }
        #if ENABLE_MOCKING
        if let e = mocking.forcedErrno(cmd) {
            mocking.record(cmd, kbuf.bytes, -e.rawValue)
            return .failure(e)
        }
        let result: Result<Int32, Errno>
        do { result = .success(try op.handler(self, &ucmd)) } catch { result = .failure(error) }
        switch result {
        case .success(let v): mocking.record(cmd, kbuf.bytes, v)
        case .failure(let e): mocking.record(cmd, kbuf.bytes, -e.rawValue)
        }
        return result
        #else
        do { return .success(try op.handler(self, &ucmd)) } catch { return .failure(error) }
        #endif
    }
}
