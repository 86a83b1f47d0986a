/// The ID of an iommufd object whose kind is `Kind`: the `u32` the uAPI calls `ioas_id`,
/// `hwpt_id`, `dev_id`, `fault_id`, `viommu_id`, ... All kinds share one ID space in a
/// context (`ictx->objects`), so in the kernel any of them fits any `u32` field; here each
/// kind is its own type, and passing a HWPT ID where an IOAS ID is required does not
/// compile. Write them through the typealiases: ``IOASObjectID``, ``HWPTObjectID``,
/// ``DeviceObjectID``, ``AccessObjectID``, ``FaultObjectID``, ``VIOMMUObjectID``,
/// ``VDeviceObjectID``, ``VEventQueueObjectID``, ``HWQueueObjectID``; the kernel's `pt_id`
/// (an IOAS or a HWPT) is ``PageTableObjectID``, and an ID of any kind (`IOMMU_DESTROY`'s
/// `id`, `out_devid` of a vfio bind) is ``AnyIOMMUFDObjectID``.
///
/// An `@frozen` wrapper around the number, as swift-system's `FileDescriptor` wraps a
/// `CInt`. `rawValue` is what a uAPI structure holds; `init(rawValue:)` takes a number
/// on trust (the raw uAPI keeps integers: it is the byte image). The typed API of
/// ``IOMMUFD`` takes and returns these, and an object's `id` (``IOASObject/id``,
/// ``DeviceObject/id``, ...) has its kind's type.
@frozen
public struct IOMMUFDObjectID<Kind: IOMMUFDObjectKind>: RawRepresentable, Hashable, Comparable, Sendable,
    CustomStringConvertible, ExpressibleByIntegerLiteral {
    /// The number, as `struct iommufd_object`'s `id` and the uAPI fields hold it.
    public var rawValue: UInt32

    /// The ID whose number is `rawValue` (unchecked: nothing looks at the table).
    @inlinable @inline(__always)
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// An ID written as an integer literal (tests: `let bogus: IOASObjectID = 99`).
    @inlinable @inline(__always)
    public init(integerLiteral value: UInt32) { rawValue = value }

    /// Orders IDs by number (the table hands out the lowest free one first).
    @inlinable @inline(__always)
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    /// `KIND#n`, e.g. `IOAS#2`.
    public var description: String { "\(Kind.name)#\(rawValue)" }
}

/// A kind of iommufd object, as the type parameter of ``IOMMUFDObjectID``. The kinds are
/// the caseless enums of ``IOMMUFDKind``.
public protocol IOMMUFDObjectKind: Sendable {
    /// The short name an ID's description uses (`IOAS`, `HWPT`, `DEVICE`, ...).
    static var name: String { get }
    /// The object types (`enum iommufd_object_type`) an ID of this kind may name.
    static var objectTypes: [IOMMUFDObjectType] { get }
}

/// A kind that may be the parent of a new HWPT (`IOMMU_HWPT_ALLOC`'s `pt_id`): an IOAS
/// (a paging HWPT on it), a paging HWPT that is a nesting parent (a nested HWPT on it),
/// or a vIOMMU.
public protocol IOMMUFDHWPTParentKind: IOMMUFDObjectKind {}

/// A kind that a device or PASID may be attached to (the kernel's `pt_id` of
/// `iommufd_device_attach`, `VFIO_DEVICE_ATTACH_IOMMUFD_PT`): an IOAS (through an
/// automatic domain) or a HWPT.
public protocol IOMMUFDPageTableKind: IOMMUFDHWPTParentKind {}

/// The kinds of iommufd object, one caseless enum each: only types, never values.
public enum IOMMUFDKind {
    /// `IOMMUFD_OBJ_IOAS`.
    public enum IOAS: IOMMUFDPageTableKind {
        /// The name in an ID's description.
        public static let name = "IOAS"
        /// The object types an ID of this kind may name.
        public static let objectTypes: [IOMMUFDObjectType] = [.ioas]
    }
    /// `IOMMUFD_OBJ_HWPT_PAGING` or `IOMMUFD_OBJ_HWPT_NESTED`.
    public enum HWPT: IOMMUFDPageTableKind {
        /// The name in an ID's description.
        public static let name = "HWPT"
        /// The object types an ID of this kind may name.
        public static let objectTypes: [IOMMUFDObjectType] = [.hwptPaging, .hwptNested]
    }
    /// An IOAS or a HWPT: the kernel's `pt_id` when the caller's kind is not known (the
    /// raw uAPI, a vfio driver's `attach_ioas`).
    public enum PageTable: IOMMUFDPageTableKind {
        /// The name in an ID's description.
        public static let name = "PT"
        /// The object types an ID of this kind may name.
        public static let objectTypes: [IOMMUFDObjectType] = [.ioas, .hwptPaging, .hwptNested]
    }
    /// `IOMMUFD_OBJ_DEVICE`.
    public enum Device: IOMMUFDObjectKind {
        /// The name in an ID's description.
        public static let name = "DEVICE"
        /// The object types an ID of this kind may name.
        public static let objectTypes: [IOMMUFDObjectType] = [.device]
    }
    /// `IOMMUFD_OBJ_ACCESS`.
    public enum Access: IOMMUFDObjectKind {
        /// The name in an ID's description.
        public static let name = "ACCESS"
        /// The object types an ID of this kind may name.
        public static let objectTypes: [IOMMUFDObjectType] = [.access]
    }
    /// `IOMMUFD_OBJ_FAULT`.
    public enum Fault: IOMMUFDObjectKind {
        /// The name in an ID's description.
        public static let name = "FAULT"
        /// The object types an ID of this kind may name.
        public static let objectTypes: [IOMMUFDObjectType] = [.fault]
    }
    /// `IOMMUFD_OBJ_VIOMMU`.
    public enum VIOMMU: IOMMUFDHWPTParentKind {
        /// The name in an ID's description.
        public static let name = "VIOMMU"
        /// The object types an ID of this kind may name.
        public static let objectTypes: [IOMMUFDObjectType] = [.viommu]
    }
    /// `IOMMUFD_OBJ_VDEVICE`.
    public enum VDevice: IOMMUFDObjectKind {
        /// The name in an ID's description.
        public static let name = "VDEVICE"
        /// The object types an ID of this kind may name.
        public static let objectTypes: [IOMMUFDObjectType] = [.vdevice]
    }
    /// `IOMMUFD_OBJ_VEVENTQ`.
    public enum VEventQueue: IOMMUFDObjectKind {
        /// The name in an ID's description.
        public static let name = "VEVENTQ"
        /// The object types an ID of this kind may name.
        public static let objectTypes: [IOMMUFDObjectType] = [.veventq]
    }
    /// `IOMMUFD_OBJ_HW_QUEUE`.
    public enum HWQueue: IOMMUFDObjectKind {
        /// The name in an ID's description.
        public static let name = "HW_QUEUE"
        /// The object types an ID of this kind may name.
        public static let objectTypes: [IOMMUFDObjectType] = [.hwQueue]
    }
    /// Any kind (`IOMMUFD_OBJ_ANY`): `IOMMU_DESTROY`'s `id`, a listing, or a vfio bind's
    /// `out_devid` (a DEVICE for vfio-pci, an ACCESS for an mdev).
    public enum Object: IOMMUFDObjectKind {
        /// The name in an ID's description.
        public static let name = "OBJ"
        /// The object types an ID of this kind may name.
        public static let objectTypes: [IOMMUFDObjectType] = [
            .device, .hwptPaging, .hwptNested, .ioas, .access, .fault, .viommu, .vdevice, .veventq, .hwQueue, .selftest,
        ]
    }
}

/// `ioas_id`: an I/O address space.
public typealias IOASObjectID = IOMMUFDObjectID<IOMMUFDKind.IOAS>
/// `hwpt_id`: a paging or nested HWPT.
public typealias HWPTObjectID = IOMMUFDObjectID<IOMMUFDKind.HWPT>
/// `pt_id`: an IOAS or a HWPT, when which one is not known statically. Made from either
/// with `PageTableObjectID(ioas)` or `PageTableObjectID(hwpt)`.
public typealias PageTableObjectID = IOMMUFDObjectID<IOMMUFDKind.PageTable>
/// `dev_id`: a bound device.
public typealias DeviceObjectID = IOMMUFDObjectID<IOMMUFDKind.Device>
/// The ID of an ACCESS (an emulated device's user of an IOAS).
public typealias AccessObjectID = IOMMUFDObjectID<IOMMUFDKind.Access>
/// `fault_id`: an I/O page fault queue.
public typealias FaultObjectID = IOMMUFDObjectID<IOMMUFDKind.Fault>
/// `viommu_id`.
public typealias VIOMMUObjectID = IOMMUFDObjectID<IOMMUFDKind.VIOMMU>
/// `vdevice_id`.
public typealias VDeviceObjectID = IOMMUFDObjectID<IOMMUFDKind.VDevice>
/// `veventq_id`.
public typealias VEventQueueObjectID = IOMMUFDObjectID<IOMMUFDKind.VEventQueue>
/// `hw_queue_id`.
public typealias HWQueueObjectID = IOMMUFDObjectID<IOMMUFDKind.HWQueue>
/// An ID of any kind.
public typealias AnyIOMMUFDObjectID = IOMMUFDObjectID<IOMMUFDKind.Object>

extension IOMMUFDObjectID where Kind == IOMMUFDKind.PageTable {
    /// The `pt_id` naming IOAS or HWPT `id` (widening; always valid).
    @inlinable @inline(__always)
    public init<K: IOMMUFDPageTableKind>(_ id: IOMMUFDObjectID<K>) { rawValue = id.rawValue }
}

extension IOMMUFDObjectID where Kind == IOMMUFDKind.Object {
    /// The same ID as one of any kind (widening; always valid).
    @inlinable @inline(__always)
    public init<K: IOMMUFDObjectKind>(_ id: IOMMUFDObjectID<K>) { rawValue = id.rawValue }
}

extension IOMMUFD {
    /// Narrows `id` to `kind` when the context holds a live object of one of the kind's
    /// types under it right now (`nil` otherwise): how a number read from a uAPI
    /// structure, or a vfio bind's `out_devid`, becomes a typed ID with a check.
    public func objectID<K: IOMMUFDObjectKind, From: IOMMUFDObjectKind>(
        _ id: IOMMUFDObjectID<From>, as kind: K.Type) -> IOMMUFDObjectID<K>? {
        let type = lock.withLock { table.live(id.rawValue)?.type }
        guard let type, K.objectTypes.contains(type) else { return nil }
        return IOMMUFDObjectID<K>(rawValue: id.rawValue)
    }
}
