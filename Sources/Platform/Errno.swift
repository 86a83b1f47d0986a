/// A Linux kernel errno, as returned by the IOMMU core, its drivers and the iommufd uAPI.
///
/// The set is open (a struct, not an enum) because the kernel keeps adding values. Each
/// member's documentation names the C constant and what it means in the IOMMU code; the
/// C spelling (`Errno.EINVAL`) is accepted with a fix-it to the Swift name. `description`
/// prints the C name, since that is what a kernel developer greps for.
///
/// An errno a call throws usually also says where it came from: the ``function`` that
/// refused and the ``reason`` (the rule the arguments broke), so `description` reads
/// `EINVAL from allocContiguous: size 2048 is not a multiple of 4096`. The site that
/// throws attaches them with ``from(_:_:)``. They are not part of the value: equality and
/// hashing compare the number only, so `XCTAssertEqual(error, .invalidArgument)`,
/// `catch .busy` and `switch` keep working, and the raw uAPI still returns just the
/// negative number. An errno without them costs nothing extra; the context is one
/// allocation, made only when an error is thrown with a reason.
@frozen
public struct Errno: Error, RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The positive errno value (`EINVAL` is 22).
    public let rawValue: Int32
    /// Where the error came from and why; nil for a bare number.
    @usableFromInline let context: ErrnoContext?

    /// Wraps a raw errno value.
    @inlinable public init(rawValue: Int32) {
        self.rawValue = rawValue
        context = nil
    }

    @inlinable init(rawValue: Int32, context: ErrnoContext?) {
        self.rawValue = rawValue
        self.context = context
    }

    /// The same errno, saying that `function` refused the call because of `reason` (the
    /// rule the arguments broke, in words: "size 2048 is not a multiple of 4096").
    /// `function` is the kernel's name for the call where there is one (`iommu_map`,
    /// `iopt_map_pages`), else the Swift name (`allocContiguous`).
    @inlinable
    public func from(_ function: String, _ reason: String) -> Errno {
        Errno(rawValue: rawValue, context: ErrnoContext(function: function, reason: reason))
    }

    /// The function that refused, when the error says (see ``from(_:_:)``).
    public var function: String? { context?.function }
    /// Why it refused, when the error says.
    public var reason: String? { context?.reason }

    /// Equal when the numbers are: where the error came from is not part of its value.
    @inlinable
    public static func == (lhs: Errno, rhs: Errno) -> Bool { lhs.rawValue == rhs.rawValue }

    /// Hashes the number only, as equality compares.
    @inlinable
    public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }

    /// `EPERM` (1): not the owner (`iommu_device_claim_dma_owner` with another owner, a WP/priv mismatch).
    public static let notPermitted = Errno(rawValue: 1)
    /// `ENOENT` (2): no such object, or nothing attached (`iommu_attach_handle_get`, iommufd lookups).
    public static let noEntry = Errno(rawValue: 2)
    /// `EIO` (5): an I/O or hardware error.
    public static let ioError = Errno(rawValue: 5)
    /// `ENXIO` (6): no such device or address (idxd: submission to a WQ that is not enabled).
    public static let noSuchDeviceOrAddress = Errno(rawValue: 6)
    /// `E2BIG` (7): iommufd: unknown non-zero trailing bytes in a struct.
    public static let tooBig = Errno(rawValue: 7)
    /// `EBADF` (9): bad file descriptor.
    public static let badFileDescriptor = Errno(rawValue: 9)
    /// `EAGAIN` (11): try again (idxd: a shared WQ still full after `enqcmds_retries`).
    public static let tryAgain = Errno(rawValue: 11)
    /// `ENOMEM` (12): an allocation failed.
    public static let noMemory = Errno(rawValue: 12)
    /// `EACCES` (13): permission denied (sysfs group type store without capabilities).
    public static let accessDenied = Errno(rawValue: 13)
    /// `EFAULT` (14): a user pointer could not be read or written.
    public static let badAddress = Errno(rawValue: 14)
    /// `EBUSY` (16): already attached / in use / under reset recovery.
    public static let busy = Errno(rawValue: 16)
    /// `EEXIST` (17): a mapping already exists at that IOVA (io-pgtable).
    public static let exists = Errno(rawValue: 17)
    /// `ENODEV` (19): no IOMMU group, or a device-specific failure.
    public static let noDevice = Errno(rawValue: 19)
    /// `EINVAL` (22): invalid argument, or a device/domain incompatibility ("soft" attach failure).
    public static let invalidArgument = Errno(rawValue: 22)
    /// `ENOTTY` (25): iommufd: unknown ioctl command.
    public static let notTTY = Errno(rawValue: 25)
    /// `ENOSYS` (38): no handler (`report_iommu_fault` on a domain without a fault handler).
    public static let noFunction = Errno(rawValue: 38)
    /// `ENOSPC` (28): a non-memory resource ran out (no free DID, ASID or PASID).
    public static let noSpace = Errno(rawValue: 28)
    /// `ERANGE` (34): IOVA or address outside the table's input range (io-pgtable-arm).
    public static let outOfRange = Errno(rawValue: 34)
    /// `EDEADLK`/`EDEADLOCK` (35): iommufd unmap gave up after 100 access-unmap retries.
    public static let deadlock = Errno(rawValue: 35)
    /// `EOVERFLOW` (75): a value does not fit (mm PASID beyond the device's PASID width).
    public static let overflow = Errno(rawValue: 75)
    /// `EBADFD` (77): file descriptor in bad state (selftest access fds).
    public static let badFileDescriptorState = Errno(rawValue: 77)
    /// `EOPNOTSUPP` (95): the driver or the domain lacks the operation.
    public static let notSupported = Errno(rawValue: 95)
    /// `EADDRINUSE` (98): iommufd: the IOVA range overlaps a reserved or allowed range.
    public static let addressInUse = Errno(rawValue: 98)
    /// `EPROBE_DEFER` (517, kernel-internal): the default domain does not exist yet.
    public static let probeDefer = Errno(rawValue: 517)

    /// The C name of the value (`"EINVAL"`), or `"errno N"` for values this file does not name.
    public var cName: String {
        switch rawValue {
        case 1: "EPERM"
        case 2: "ENOENT"
        case 5: "EIO"
        case 6: "ENXIO"
        case 7: "E2BIG"
        case 9: "EBADF"
        case 11: "EAGAIN"
        case 12: "ENOMEM"
        case 13: "EACCES"
        case 14: "EFAULT"
        case 16: "EBUSY"
        case 17: "EEXIST"
        case 19: "ENODEV"
        case 22: "EINVAL"
        case 24: "EMFILE"
        case 25: "ENOTTY"
        case 28: "ENOSPC"
        case 29: "ESPIPE"
        case 34: "ERANGE"
        case 35: "EDEADLOCK"
        case 38: "ENOSYS"
        case 52: "EBADE"
        case 75: "EOVERFLOW"
        case 77: "EBADFD"
        case 90: "EMSGSIZE"
        case 95: "EOPNOTSUPP"
        case 98: "EADDRINUSE"
        case 517: "EPROBE_DEFER"
        default: "errno \(rawValue)"
        }
    }

    /// The C name, followed by where the error came from when it says:
    /// `EINVAL from allocContiguous: size 2048 is not a multiple of 4096`.
    public var description: String {
        guard let context else { return cName }
        if context.reason.isEmpty { return "\(cName) from \(context.function)" }
        return "\(cName) from \(context.function): \(context.reason)"
    }
}

/// Where an ``Errno`` came from: one immutable allocation, made only when an error is
/// thrown with a reason.
@usableFromInline
final class ErrnoContext: Sendable {
    @usableFromInline let function: String
    @usableFromInline let reason: String

    @usableFromInline
    init(function: String, reason: String) {
        self.function = function
        self.reason = reason
    }
}

// The C spellings, so that writing the kernel name gives a fix-it rather than a miss.
extension Errno {
    /// C spelling of ``notPermitted``.
    @available(*, unavailable, renamed: "notPermitted") public static var EPERM: Errno { .notPermitted }
    /// C spelling of ``noEntry``.
    @available(*, unavailable, renamed: "noEntry") public static var ENOENT: Errno { .noEntry }
    /// C spelling of ``ioError``.
    @available(*, unavailable, renamed: "ioError") public static var EIO: Errno { .ioError }
    /// C spelling of ``noSuchDeviceOrAddress``.
    @available(*, unavailable, renamed: "noSuchDeviceOrAddress") public static var ENXIO: Errno { .noSuchDeviceOrAddress }
    /// C spelling of ``tryAgain``.
    @available(*, unavailable, renamed: "tryAgain") public static var EAGAIN: Errno { .tryAgain }
    /// C spelling of ``tooBig``.
    @available(*, unavailable, renamed: "tooBig") public static var E2BIG: Errno { .tooBig }
    /// C spelling of ``noMemory``.
    @available(*, unavailable, renamed: "noMemory") public static var ENOMEM: Errno { .noMemory }
    /// C spelling of ``badAddress``.
    @available(*, unavailable, renamed: "badAddress") public static var EFAULT: Errno { .badAddress }
    /// C spelling of ``busy``.
    @available(*, unavailable, renamed: "busy") public static var EBUSY: Errno { .busy }
    /// C spelling of ``exists``.
    @available(*, unavailable, renamed: "exists") public static var EEXIST: Errno { .exists }
    /// C spelling of ``noDevice``.
    @available(*, unavailable, renamed: "noDevice") public static var ENODEV: Errno { .noDevice }
    /// C spelling of ``invalidArgument``.
    @available(*, unavailable, renamed: "invalidArgument") public static var EINVAL: Errno { .invalidArgument }
    /// C spelling of ``noSpace``.
    @available(*, unavailable, renamed: "noSpace") public static var ENOSPC: Errno { .noSpace }
    /// C spelling of ``noFunction``.
    @available(*, unavailable, renamed: "noFunction") public static var ENOSYS: Errno { .noFunction }
    /// C spelling of ``outOfRange``.
    @available(*, unavailable, renamed: "outOfRange") public static var ERANGE: Errno { .outOfRange }
    /// C spelling of ``overflow``.
    @available(*, unavailable, renamed: "overflow") public static var EOVERFLOW: Errno { .overflow }
    /// C spelling of ``notSupported``.
    @available(*, unavailable, renamed: "notSupported") public static var EOPNOTSUPP: Errno { .notSupported }
    /// C spelling of ``probeDefer``.
    @available(*, unavailable, renamed: "probeDefer") public static var EPROBE_DEFER: Errno { .probeDefer }
}
