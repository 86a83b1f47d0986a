/// `enum iommufd_object_type` (`include/linux/iommufd.h`): the kinds of object an
/// iommufd context holds, all sharing one ID space.
public enum IOMMUFDObjectType: UInt32, Sendable, CustomStringConvertible {
    /// `IOMMUFD_OBJ_NONE` / `IOMMUFD_OBJ_ANY`: the wildcard of a lookup.
    case any = 0
    /// `IOMMUFD_OBJ_DEVICE`: a bound device.
    case device = 1
    /// `IOMMUFD_OBJ_HWPT_PAGING`: a paging domain on an IOAS.
    case hwptPaging = 2
    /// `IOMMUFD_OBJ_HWPT_NESTED`: a user stage 1 on a nesting parent.
    case hwptNested = 3
    /// `IOMMUFD_OBJ_IOAS`: an I/O address space.
    case ioas = 4
    /// `IOMMUFD_OBJ_ACCESS`: an in-kernel (emulated device) user of an IOAS.
    case access = 5
    /// `IOMMUFD_OBJ_FAULT`: an I/O page fault queue.
    case fault = 6
    /// `IOMMUFD_OBJ_VIOMMU`.
    case viommu = 7
    /// `IOMMUFD_OBJ_VDEVICE`.
    case vdevice = 8
    /// `IOMMUFD_OBJ_VEVENTQ`.
    case veventq = 9
    /// `IOMMUFD_OBJ_HW_QUEUE`.
    case hwQueue = 10
    /// `IOMMUFD_OBJ_SELFTEST`: a selftest mock device (test kernels only).
    case selftest = 11

    /// The kernel's enumerator name.
    public var description: String {
        switch self {
        case .any: "IOMMUFD_OBJ_ANY"
        case .device: "IOMMUFD_OBJ_DEVICE"
        case .hwptPaging: "IOMMUFD_OBJ_HWPT_PAGING"
        case .hwptNested: "IOMMUFD_OBJ_HWPT_NESTED"
        case .ioas: "IOMMUFD_OBJ_IOAS"
        case .access: "IOMMUFD_OBJ_ACCESS"
        case .fault: "IOMMUFD_OBJ_FAULT"
        case .viommu: "IOMMUFD_OBJ_VIOMMU"
        case .vdevice: "IOMMUFD_OBJ_VDEVICE"
        case .veventq: "IOMMUFD_OBJ_VEVENTQ"
        case .hwQueue: "IOMMUFD_OBJ_HW_QUEUE"
        case .selftest: "IOMMUFD_OBJ_SELFTEST"
        }
    }
}

/// One object of an iommufd context (`struct iommufd_object`): its type, its ID and its
/// two counters. `users` starts at 1, the table's own reference; every long-term holder
/// (a HWPT on its IOAS, an attachment on its HWPT, an fd on its fault queue) adds one.
/// `waitCount` (`wait_cnt`, formerly `shortterm_users`) counts ioctls using the object
/// right now. Subclasses implement the per-type `destroy` of `iommufd_object_ops`.
public class IOMMUFDObject: @unchecked Sendable, CustomStringConvertible {
    /// The object type.
    public let type: IOMMUFDObjectType
    /// The ID as a number (`obj->id`), 0 until allocated. Each kind's `id` property
    /// (``IOASObject/id``, ``DeviceObject/id``, ...) is the typed form.
    public internal(set) var rawID: UInt32 = 0
    /// `obj->users`: long-term references, the table's included.
    public internal(set) var users = 1
    /// `obj->wait_cnt`: references held by ioctls in progress.
    public internal(set) var waitCount = 1

    init(type: IOMMUFDObjectType) { self.type = type }

    /// The type's `destroy` op: release everything the object holds. Called once, with
    /// the object already out of the table.
    func destroy(_ ctx: IOMMUFD) {}

    /// The type's `abort` op (`iommufd_object_abort_and_destroy`): undo a half-built
    /// object. Defaults to `destroy`.
    func abort(_ ctx: IOMMUFD) { destroy(ctx) }

    /// `TYPE#id`.
    public var description: String { "\(type)#\(rawID)" }
}
