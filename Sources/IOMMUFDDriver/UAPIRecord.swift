// uAPI structures, each declared once.
//
// Every C structure that crosses the model's uAPI (the `struct iommu_*` of
// `include/uapi/linux/iommufd.h`, the selftest's `iommufd_test.h`, the VFIO structures of
// `include/uapi/linux/vfio.h`, vendor data) is a Swift value type whose layout is one
// table: its `fields(_:_:)` function, one line per C field with the kernel's field name,
// the byte offset and the Swift property that holds it (the property's type is the
// width). Decoding, encoding, `offsetof`, `min_size` and the layout tests all read that
// table; nothing else states an offset. How to add a structure: the doc comment of
// `UAPIRecord` below.

/// A C structure of the uAPI with a fixed layout, described once by its field table
/// (``fields(_:_:)``).
///
/// The byte image is little-endian at the kernel's offsets. Decoding reads missing bytes
/// as zero (a short image is zero-extended, as `copy_struct_from_user` does); encoding
/// writes every field and leaves padding as it was.
///
/// ## Adding a structure
///
/// For example `struct iommu_vdevice_alloc`:
///
///     /// `struct iommu_vdevice_alloc`: argument of `IOMMU_VDEVICE_ALLOC`
///     /// (`iommufd_vdevice_alloc_ioctl`).
///     public struct IOMMUVDeviceAlloc: UAPIStruct, Hashable {
///         public static let cName = "iommu_vdevice_alloc"
///         public static let size = 24
///         @inlinable public static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self) {
///             f.field("size", 0, &v.size)
///             f.field("viommu_id", 4, &v.viommuId)
///             f.field("dev_id", 8, &v.devId)
///             f.field("out_vdevice_id", 12, &v.outVdeviceId)
///             f.field("virt_id", 16, &v.virtId)
///         }
///
///         public var size: UInt32 = UInt32(Self.size)
///         public var viommuId: UInt32 = 0
///         public var devId: UInt32 = 0
///         public var outVdeviceId: UInt32 = 0
///         public var virtId: UInt64 = 0
///         public init() {}
///     }
///
/// 1. Conform to `UAPIStruct` for an ioctl argument (it has a `min_size`), to `UAPIRecord`
///    for anything else: a record read from or written to an fd, vendor data, an array
///    element, a member of a union.
/// 2. `cName` is the kernel's name of the structure, `size` its `sizeof`. `fields` is
///    `@inlinable` so that a module using the structure decodes it with plain loads.
/// 3. One `f.field` line per C field, in the header's order: the kernel's field name (so a
///    grep for it finds the line), its offset, the property. A property is `UInt8`,
///    `UInt16`, `UInt32`, `UInt64`, `Int32`… (`UAPIScalar`) for `__u8`… `__aligned_u64`,
///    `__s32`…; a small fixed array is `f.array("idr", 8, count: 6, &v.idr)` over a
///    `[UInt32]` property of that length; a nested structure is a property of its own
///    `UAPIRecord` type; an anonymous union of structures is `f.union` over bytes, with its
///    members' types; a flexible array member is `f.flexibleArray`.
/// 4. `init()` gives every field its default (`size`/`argsz` = `sizeof`); add a memberwise
///    `init` with defaults when callers build values.
/// 5. When the kernel's ioctl table names a `last` field before the end of the structure
///    (`IOCTL_OP(IOMMU_HWPT_ALLOC, …, struct iommu_hwpt_alloc, __reserved)`), say so:
///    `public static let minSize = offsetOfEnd("__reserved")`. The command's row in the
///    dispatcher's table (`IOMMUFD.ioctlOp`) is `IOCtlOp(command, Type.self) { … }`: the
///    size rules (`EINVAL` below `min_size`, `E2BIG` for non-zero bytes past `sizeof`) read
///    `minSize` and `size` from the type.
/// 6. Give the kernel's layout in the layout tests (`Tests/IOMMUFDTests/UAPIKernelLayoutTests.swift`;
///    for DriverShims, `Tests/DriverShimsTests/VFIOUAPILayoutTests.swift`): they fail for a
///    structure declared in `Sources` that they do not list, and check every table for
///    overlaps, alignment, `sizeof` and a byte round trip. Structures of the project's C
///    headers (`Tests/CPrograms/include`) are also compiled against the tables.
public protocol UAPIRecord: Sendable {
    /// The kernel's name of the structure (`iommu_ioas_map`); for a member of an anonymous
    /// union, the member's name (`dirty` of `struct iommu_test_cmd`).
    static var cName: String { get }
    /// `sizeof` in the kernel this model follows.
    static var size: Int { get }
    /// Every field at its default.
    init()
    /// The field table: calls `f` once per C field, in the header's order, with the
    /// kernel's field name, the byte offset and the property that holds the field.
    static func fields(_ f: inout some UAPIFieldVisitor, _ v: inout Self)
}

/// An iommufd or VFIO ioctl argument: a ``UAPIRecord`` that starts with its caller's size
/// (`size` or `argsz`) and has a `min_size`.
public protocol UAPIStruct: UAPIRecord {
    /// `offsetofend(struct, last)` of the kernel's ioctl table: a shorter caller size is
    /// `EINVAL`. By default the whole structure; a structure whose `last` field comes
    /// earlier declares it with ``UAPIRecord/offsetOfEnd(_:)``.
    static var minSize: Int { get }
}

extension UAPIStruct {
    /// The whole structure is mandatory.
    @inlinable public static var minSize: Int { size }
}

/// The C integer types a field may have: `__u8`, `__u16`, `__u32`, `__u64` and
/// `__aligned_u64` (naturally aligned on every ABI the model follows), and the signed
/// `__s8`… `__s64`.
public protocol UAPIScalar: FixedWidthInteger, Sendable {}
extension UInt8: UAPIScalar {}
extension UInt16: UAPIScalar {}
extension UInt32: UAPIScalar {}
extension UInt64: UAPIScalar {}
extension Int8: UAPIScalar {}
extension Int16: UAPIScalar {}
extension Int32: UAPIScalar {}
extension Int64: UAPIScalar {}

/// What a field table is read by: the decoder, the encoder, `offsetof` and the layout
/// description. A table only calls these; it never implements one.
public protocol UAPIFieldVisitor {
    /// A scalar field: `name` at `offset`, as wide as `T`.
    mutating func field<T: UAPIScalar>(_ name: StaticString, _ offset: Int, _ value: inout T)
    /// A nested structure (`struct vfio_info_cap_header header;`).
    mutating func field<R: UAPIRecord>(_ name: StaticString, _ offset: Int, _ value: inout R)
    /// A fixed array of scalars (`__u32 idr[6];`): `count` elements from `offset`.
    mutating func array<T: UAPIScalar>(_ name: StaticString, _ offset: Int, count: Int, _ values: inout [T])
    /// An anonymous union of structures, kept as its bytes (`bytes.count` is its size);
    /// `members` are the structures it can hold, each laid at `offset`.
    mutating func union(_ offset: Int, _ bytes: inout UAPIBytes, members: [any UAPIRecord.Type])
    /// A flexible array member (`struct vfio_iova_range iova_ranges[];`): declared for
    /// the layout, not stored; its elements follow the structure.
    mutating func flexibleArray<E: UAPIRecord>(_ name: StaticString, _ offset: Int, of element: E.Type)
    /// A flexible array of scalars (`__u8 data[];`).
    mutating func flexibleArray<T: UAPIScalar>(_ name: StaticString, _ offset: Int, of element: T.Type)
}

// MARK: decoding and encoding

extension UAPIRecord {
    /// Decodes from a byte image (shorter images read as zero-extended).
    @inlinable public init(_ b: UAPIBytes) { self.init(b, at: 0) }

    /// Decodes the structure that starts `offset` bytes into `b` (an element of an array,
    /// a member of a union).
    @inlinable public init(_ b: UAPIBytes, at offset: Int) {
        var v = Self()
        b.bytes.withUnsafeBytes { raw in
            var d = UAPIDecoder(raw, base: offset)
            Self.fields(&d, &v)
        }
        self = v
    }

    /// Decodes from raw bytes.
    @inlinable public init(bytes: [UInt8]) { self.init(UAPIBytes(bytes)) }

    /// Writes every field at its offset.
    @inlinable public func encode(into b: inout UAPIBytes) { encode(into: &b, at: 0) }

    /// Writes every field at its offset from `offset` (an element of an array, a member
    /// of a union).
    @inlinable public func encode(into b: inout UAPIBytes, at offset: Int) {
        var v = self
        b.bytes.withUnsafeMutableBytes { raw in
            var e = UAPIEncoder(raw, base: offset)
            Self.fields(&e, &v)
        }
    }

    /// The `sizeof`-long byte image of this value.
    @inlinable public var bytes: [UInt8] {
        var b = UAPIBytes(count: Self.size)
        encode(into: &b)
        return b.bytes
    }

    /// `offsetof(struct, name)` for a field of this structure's table.
    public static func offset(of name: StaticString) -> Int { find(name).offset }

    /// `offsetofend(struct, name)`: the offset just past the field.
    public static func offsetOfEnd(_ name: StaticString) -> Int {
        let f = find(name)
        return f.offset + f.size
    }

    private static func find(_ name: StaticString) -> (offset: Int, size: Int) {
        var finder = UAPIFieldFinder(name)
        var v = Self()
        fields(&finder, &v)
        // Only IOMMUKit's own code names fields here, with names from its tables.
        guard let found = finder.found else { preconditionFailure("struct \(cName) has no field \(name)") }
        return found
    }
}

/// Reads each field from a little-endian image at `base + offset`.
@usableFromInline struct UAPIDecoder: UAPIFieldVisitor {
    @usableFromInline let raw: UnsafeRawBufferPointer
    @usableFromInline let base: Int

    @inlinable init(_ raw: UnsafeRawBufferPointer, base: Int) {
        self.raw = raw
        self.base = base
    }

    @inlinable mutating func field<T: UAPIScalar>(_ name: StaticString, _ offset: Int, _ value: inout T) {
        value = raw.uapiLoad(base + offset)
    }

    @inlinable mutating func field<R: UAPIRecord>(_ name: StaticString, _ offset: Int, _ value: inout R) {
        var d = UAPIDecoder(raw, base: base + offset)
        R.fields(&d, &value)
    }

    @inlinable mutating func array<T: UAPIScalar>(_ name: StaticString, _ offset: Int, count: Int, _ values: inout [T]) {
        let width = MemoryLayout<T>.size
        values = (0..<count).map { raw.uapiLoad(base + offset + $0 * width) }
    }

    @inlinable mutating func union(_ offset: Int, _ bytes: inout UAPIBytes, members: [any UAPIRecord.Type]) {
        let start = base + offset
        bytes.bytes.withUnsafeMutableBytes { out in
            for i in out.indices { out[i] = start + i >= 0 && start + i < raw.count ? raw[start + i] : 0 }
        }
    }

    @inlinable mutating func flexibleArray<E: UAPIRecord>(_ name: StaticString, _ offset: Int, of element: E.Type) {}
    @inlinable mutating func flexibleArray<T: UAPIScalar>(_ name: StaticString, _ offset: Int, of element: T.Type) {}
}

/// Writes each field into a little-endian image at `base + offset`.
@usableFromInline struct UAPIEncoder: UAPIFieldVisitor {
    @usableFromInline let raw: UnsafeMutableRawBufferPointer
    @usableFromInline let base: Int

    @inlinable init(_ raw: UnsafeMutableRawBufferPointer, base: Int) {
        self.raw = raw
        self.base = base
    }

    @inlinable mutating func field<T: UAPIScalar>(_ name: StaticString, _ offset: Int, _ value: inout T) {
        raw.uapiStore(value, at: base + offset)
    }

    @inlinable mutating func field<R: UAPIRecord>(_ name: StaticString, _ offset: Int, _ value: inout R) {
        var e = UAPIEncoder(raw, base: base + offset)
        R.fields(&e, &value)
    }

    @inlinable mutating func array<T: UAPIScalar>(_ name: StaticString, _ offset: Int, count: Int, _ values: inout [T]) {
        let width = MemoryLayout<T>.size
        for i in 0..<count { raw.uapiStore(i < values.count ? values[i] : 0, at: base + offset + i * width) }
    }

    @inlinable mutating func union(_ offset: Int, _ bytes: inout UAPIBytes, members: [any UAPIRecord.Type]) {
        let start = base + offset
        for (i, byte) in bytes.bytes.enumerated() where start + i >= 0 && start + i < raw.count { raw[start + i] = byte }
    }

    @inlinable mutating func flexibleArray<E: UAPIRecord>(_ name: StaticString, _ offset: Int, of element: E.Type) {}
    @inlinable mutating func flexibleArray<T: UAPIScalar>(_ name: StaticString, _ offset: Int, of element: T.Type) {}
}

extension UnsafeRawBufferPointer {
    /// The little-endian `T` at `offset`; bytes outside the buffer read as zero.
    @inlinable func uapiLoad<T: UAPIScalar>(_ offset: Int) -> T {
        // Every field of every decode comes here: a field wholly inside the image (the
        // usual case) is one unaligned load.
        if offset >= 0, offset <= count - MemoryLayout<T>.size {
            return T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
        }
        var v: UInt64 = 0
        for i in 0..<MemoryLayout<T>.size where offset + i >= 0 && offset + i < count {
            v |= UInt64(self[offset + i]) << (8 * UInt64(i))
        }
        return T(truncatingIfNeeded: v)
    }
}

extension UnsafeMutableRawBufferPointer {
    /// Stores `value` little-endian at `offset`; bytes outside the buffer are dropped.
    @inlinable func uapiStore<T: UAPIScalar>(_ value: T, at offset: Int) {
        if offset >= 0, offset <= count - MemoryLayout<T>.size {
            storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self)
            return
        }
        let v = UInt64(truncatingIfNeeded: value)
        for i in 0..<MemoryLayout<T>.size where offset + i >= 0 && offset + i < count {
            self[offset + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))
        }
    }
}

/// Finds one field of a table by its kernel name, for `offsetof`/`offsetofend`.
private struct UAPIFieldFinder: UAPIFieldVisitor {
    let name: StaticString
    var found: (offset: Int, size: Int)?

    init(_ name: StaticString) { self.name = name }

    private mutating func visit(_ candidate: StaticString, _ offset: Int, _ size: Int) {
        if found == nil, candidate.utf8Equals(name) { found = (offset, size) }
    }

    mutating func field<T: UAPIScalar>(_ name: StaticString, _ offset: Int, _ value: inout T) {
        visit(name, offset, MemoryLayout<T>.size)
    }
    mutating func field<R: UAPIRecord>(_ name: StaticString, _ offset: Int, _ value: inout R) {
        visit(name, offset, R.size)
    }
    mutating func array<T: UAPIScalar>(_ name: StaticString, _ offset: Int, count: Int, _ values: inout [T]) {
        visit(name, offset, count * MemoryLayout<T>.size)
    }
    mutating func union(_ offset: Int, _ bytes: inout UAPIBytes, members: [any UAPIRecord.Type]) {}
    mutating func flexibleArray<E: UAPIRecord>(_ name: StaticString, _ offset: Int, of element: E.Type) {
        visit(name, offset, 0)
    }
    mutating func flexibleArray<T: UAPIScalar>(_ name: StaticString, _ offset: Int, of element: T.Type) {
        visit(name, offset, 0)
    }
}

extension StaticString {
    /// Same UTF-8 text.
    func utf8Equals(_ other: StaticString) -> Bool {
        withUTF8Buffer { a in other.withUTF8Buffer { b in a.elementsEqual(b) } }
    }
}
