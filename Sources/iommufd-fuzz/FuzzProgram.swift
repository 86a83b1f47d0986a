import IOMMUFDSelftest

/// One thing a fuzz input makes the sandboxed task do. Most are ioctls on the iommufd with
/// the argument bytes the input supplies; a few use the files the context hands out, or
/// change the task itself (its capabilities, its memory), as a program could between two
/// ioctls.
enum FuzzOperation: CaseIterable, Hashable {
    // The iommufd ioctl table (`iommufd_ioctl_ops[]`), with a pointer argument.
    case destroy, ioasAlloc, ioasAllowIOVAs, ioasCopy, ioasIOVARanges, ioasMap, ioasUnmap, option, vfioIOAS
    case hwptAlloc, getHWInfo, hwptSetDirtyTracking, hwptGetDirtyBitmap, hwptInvalidate, faultQueueAlloc
    case ioasMapFile, viommuAlloc, vdeviceAlloc, ioasChangeProcess, veventqAlloc, hwQueueAlloc, testCmd
    // The VFIO type1 compatibility ioctls (`iommufd_vfio_ioctl`); the value ones take the
    // first 8 payload bytes as their argument.
    case vfioGetAPIVersion, vfioCheckExtension, vfioSetIOMMU, vfioIOMMUGetInfo, vfioIOMMUMapDMA, vfioIOMMUUnmapDMA
    /// Any command number: `cmd` (u32) then `arg` (u64) from the payload.
    case anyIoctl
    /// `read`, `write`, `poll` and `close` on a file the context handed out; the first
    /// payload byte picks it among the open ones, the next two give the count.
    case readFile, writeFile, pollFile, closeFile
    /// The task drops or regains `CAP_IPC_LOCK` / `CAP_SYS_RESOURCE` (payload byte 0:
    /// which, byte 1: bit 0 set = raise), or sets `RLIMIT_MEMLOCK` (u32 pages).
    case capability, memlockLimit
    /// The task unmaps one page of its buffer (payload byte 0 picks which).
    case munmapBufferPage
    /// The same ioctl as the next operation, issued by a forked child sharing the fd
    /// (made on first use); payload: the ioctl's operation byte and argument bytes.
    case childIoctl
    /// The forked child exits.
    case childExit
    /// `mmap` of the iommufd (a region a vIOMMU offers): u64 offset, u32 length, then a
    /// flags byte (bit 0 `PROT_WRITE`, bit 1 `PROT_EXEC`, bit 2 `MAP_PRIVATE`).
    case mmapContext
    /// `munmap` of part of such a mapping: byte 0 picks the mapping, bytes 1 and 2 the
    /// first page and the page count (modulo what the mapping has).
    case munmapMapping

    /// The ioctl number of a pointer-argument or value-argument ioctl operation.
    var command: UInt32? {
        switch self {
        case .destroy: IOMMUFDCommand.destroy
        case .ioasAlloc: IOMMUFDCommand.ioasAlloc
        case .ioasAllowIOVAs: IOMMUFDCommand.ioasAllowIOVAs
        case .ioasCopy: IOMMUFDCommand.ioasCopy
        case .ioasIOVARanges: IOMMUFDCommand.ioasIOVARanges
        case .ioasMap: IOMMUFDCommand.ioasMap
        case .ioasUnmap: IOMMUFDCommand.ioasUnmap
        case .option: IOMMUFDCommand.option
        case .vfioIOAS: IOMMUFDCommand.vfioIOAS
        case .hwptAlloc: IOMMUFDCommand.hwptAlloc
        case .getHWInfo: IOMMUFDCommand.getHWInfo
        case .hwptSetDirtyTracking: IOMMUFDCommand.hwptSetDirtyTracking
        case .hwptGetDirtyBitmap: IOMMUFDCommand.hwptGetDirtyBitmap
        case .hwptInvalidate: IOMMUFDCommand.hwptInvalidate
        case .faultQueueAlloc: IOMMUFDCommand.faultQueueAlloc
        case .ioasMapFile: IOMMUFDCommand.ioasMapFile
        case .viommuAlloc: IOMMUFDCommand.viommuAlloc
        case .vdeviceAlloc: IOMMUFDCommand.vdeviceAlloc
        case .ioasChangeProcess: IOMMUFDCommand.ioasChangeProcess
        case .veventqAlloc: IOMMUFDCommand.veventqAlloc
        case .hwQueueAlloc: IOMMUFDCommand.hwQueueAlloc
        case .testCmd: IOMMUFDCommand.testCmd
        case .vfioGetAPIVersion: IOMMUFDCommand.vfioGetAPIVersion
        case .vfioCheckExtension: IOMMUFDCommand.vfioCheckExtension
        case .vfioSetIOMMU: IOMMUFDCommand.vfioSetIOMMU
        case .vfioIOMMUGetInfo: IOMMUFDCommand.vfioIOMMUGetInfo
        case .vfioIOMMUMapDMA: IOMMUFDCommand.vfioIOMMUMapDMA
        case .vfioIOMMUUnmapDMA: IOMMUFDCommand.vfioIOMMUUnmapDMA
        default: nil
        }
    }

    /// Whether the ioctl's argument is a value rather than a pointer.
    var takesValue: Bool { self == .vfioGetAPIVersion || self == .vfioCheckExtension || self == .vfioSetIOMMU }
}

/// Where a pointer-argument ioctl's argument goes: the arg page, `NULL`, or so close to
/// the end of the mapped arg window that the structure runs into unmapped memory.
enum FuzzArgumentPlacement: UInt8, CaseIterable {
    case argPage = 0, null = 1, pageEnd = 2, argPageAgain = 3
}

/// One step of a fuzz program.
struct FuzzStep: Hashable {
    var operation: FuzzOperation
    var placement: FuzzArgumentPlacement
    var payload: [UInt8]
}

/// The byte format of a fuzz input: steps one after another, each
///
///     u8  operation: low 6 bits index FuzzOperation.allCases (modulo its count),
///         high 2 bits the argument placement
///     u16 payload length, little endian (cut to what is left of the input)
///     ... payload
///
/// so that any byte string decodes to some program, and a program encodes to bytes a
/// mutator can work on field by field.
enum FuzzProgram {
    static let operations = FuzzOperation.allCases

    /// The steps of `input`.
    static func decode(_ input: UnsafeRawBufferPointer) -> [FuzzStep] {
        var steps: [FuzzStep] = []
        var at = 0
        while at < input.count {
            let op = input[at]
            at += 1
            var length = 0
            if at < input.count { length = Int(input[at]); at += 1 }
            if at < input.count { length |= Int(input[at]) << 8; at += 1 }
            length = min(length, input.count - at)
            let operation = operations[Int(op & 0x3f) % operations.count]
            let placement = FuzzArgumentPlacement(rawValue: op >> 6) ?? .argPage
            steps.append(FuzzStep(operation: operation, placement: placement,
                                  payload: Array(input[at..<(at + length)])))
            at += length
        }
        return steps
    }

    /// The bytes of `steps` (the inverse of ``decode(_:)``).
    static func encode(_ steps: [FuzzStep]) -> [UInt8] {
        var out: [UInt8] = []
        for s in steps {
            let index = operations.firstIndex(of: s.operation)!
            out.append(UInt8(index) | s.placement.rawValue << 6)
            let n = min(s.payload.count, 0xffff)
            out.append(UInt8(n & 0xff))
            out.append(UInt8(n >> 8))
            out += s.payload.prefix(n)
        }
        return out
    }
}
