/// The layout a ``UAPIRecord``'s field table declares, as data: what the layout tests
/// compare with the kernel's numbers and compile against the project's C headers, and what
/// ``description`` prints (in the manner of `pahole`).
public struct UAPILayout: Sendable, Hashable, CustomStringConvertible {
    /// One entry of a field table.
    public struct Field: Sendable, Hashable {
        /// What the entry declares.
        public enum Kind: Sendable, Hashable {
            /// An integer (`__u32`, `__s32`, …).
            case scalar
            /// A fixed array of integers (`__u32 idr[6]`).
            case array
            /// A nested structure (`struct vfio_info_cap_header header`).
            case structure
            /// An anonymous union of structures.
            case union
            /// A flexible array member (`struct vfio_iova_range iova_ranges[]`).
            case flexibleArray
        }

        /// What the entry declares.
        public var kind: Kind
        /// The kernel's field name; `""` for an anonymous union; `name[]` for a flexible
        /// array member.
        public var name: String
        /// Byte offset in the structure.
        public var offset: Int
        /// Bytes it occupies (0 for a flexible array member).
        public var size: Int
        /// Its C alignment: an integer's width, a structure's or union's largest member's.
        public var alignment: Int
        /// The C type: `__u32`, `__s32`, `__u32[6]`, `struct vfio_info_cap_header`, `union`.
        public var type: String
        /// The layouts inside it: a nested structure's, a union's members', a flexible
        /// array's element (for a structure element).
        public var members: [UAPILayout]
    }

    /// The kernel's name of the structure.
    public var name: String
    /// `sizeof`, as declared.
    public var size: Int
    /// The fields, in table order.
    public var fields: [Field]
    /// Fixed arrays whose property does not hold as many elements as the table says.
    var arrayLengthProblems: [String] = []

    /// The structure's C alignment: its largest field alignment.
    public var alignment: Int { fields.map(\.alignment).max() ?? 1 }

    /// `sizeof` as a C compiler derives it from the fields: the end of the last one,
    /// rounded up to the structure's alignment.
    public var naturalSize: Int {
        let end = fields.map { $0.offset + $0.size }.max() ?? 0
        return (end + alignment - 1) / alignment * alignment
    }

    /// One line: the name, `sizeof`, and each field as `name@offset+size`
    /// (`iommu_destroy 8: size@0+4 id@4+4`); an anonymous union prints as `union`.
    public var summary: String {
        "\(name) \(size): " + fields.map { "\($0.name.isEmpty ? "union" : $0.name)@\($0.offset)+\($0.size)" }
            .joined(separator: " ")
    }

    /// What is wrong with the table, if anything: fields out of order or overlapping, a
    /// field not naturally aligned or past `sizeof`, a declared `sizeof` that is not what
    /// the fields give, a union whose size is not its largest member's, a fixed array of the
    /// wrong length, a repeated name; and the same for every nested layout.
    public var problems: [String] {
        var out = arrayLengthProblems
        var end = 0
        var names: Set<String> = []
        for f in fields {
            let label = "\(name).\(f.name.isEmpty ? "union" : f.name)"
            if !f.name.isEmpty, !names.insert(f.name).inserted { out.append("\(label) is declared twice") }
            if f.offset < end { out.append("\(label) at \(f.offset) overlaps the field before it (ends at \(end))") }
            if f.offset % f.alignment != 0 { out.append("\(label) at \(f.offset) is not \(f.alignment)-byte aligned") }
            if f.offset + f.size > size { out.append("\(label) ends at \(f.offset + f.size), past sizeof \(size)") }
            if f.kind == .union {
                let largest = f.members.map(\.size).max() ?? 0
                let natural = (largest + f.alignment - 1) / f.alignment * f.alignment
                if f.size != natural { out.append("\(label) is \(f.size) bytes; its members make it \(natural)") }
            }
            for m in f.members { out += m.problems }
            end = max(end, f.offset + f.size)
        }
        if size != naturalSize { out.append("\(name): sizeof is declared \(size); the fields make it \(naturalSize)") }
        return out
    }

    /// The structure as C declares it, one field a line with its offset and size.
    public var description: String {
        var lines = ["struct \(name) {"]
        func column(_ text: String, _ comment: String) -> String {
            text + String(repeating: " ", count: max(1, 48 - text.count)) + "/* \(comment) */"
        }
        for f in fields {
            let decl = f.kind == .union
                ? "union { " + f.members.map(\.name).joined(separator: ", ") + " };"
                : f.type.firstIndex(of: "[").map { "\(f.type[..<$0]) \(f.name)\(f.type[$0...]);" } ?? "\(f.type) \(f.name);"
            lines.append(column("    " + decl, "\(f.offset) \(f.size)"))
        }
        lines.append(column("};", "sizeof \(size)"))
        return lines.joined(separator: "\n")
    }
}

extension UAPIRecord {
    /// The layout this structure's field table declares.
    public static var layout: UAPILayout {
        var collector = UAPILayoutCollector()
        var v = Self()
        fields(&collector, &v)
        return UAPILayout(name: cName, size: size, fields: collector.fields,
                          arrayLengthProblems: collector.arrayLengthProblems)
    }
}

/// Builds a ``UAPILayout`` from a field table.
private struct UAPILayoutCollector: UAPIFieldVisitor {
    var fields: [UAPILayout.Field] = []
    var arrayLengthProblems: [String] = []

    private static func cType<T: UAPIScalar>(_: T.Type) -> String { "\(T.isSigned ? "__s" : "__u")\(T.bitWidth)" }

    mutating func field<T: UAPIScalar>(_ name: StaticString, _ offset: Int, _ value: inout T) {
        let width = MemoryLayout<T>.size
        fields.append(.init(kind: .scalar, name: "\(name)", offset: offset, size: width, alignment: width,
                            type: Self.cType(T.self), members: []))
    }

    mutating func field<R: UAPIRecord>(_ name: StaticString, _ offset: Int, _ value: inout R) {
        let l = R.layout
        fields.append(.init(kind: .structure, name: "\(name)", offset: offset, size: l.size, alignment: l.alignment,
                            type: "struct \(R.cName)", members: [l]))
    }

    mutating func array<T: UAPIScalar>(_ name: StaticString, _ offset: Int, count: Int, _ values: inout [T]) {
        let width = MemoryLayout<T>.size
        if values.count != count {
            arrayLengthProblems.append("\(name) holds \(values.count) elements by default; the table says \(count)")
        }
        fields.append(.init(kind: .array, name: "\(name)", offset: offset, size: count * width, alignment: width,
                            type: "\(Self.cType(T.self))[\(count)]", members: []))
    }

    mutating func union(_ offset: Int, _ bytes: inout UAPIBytes, members: [any UAPIRecord.Type]) {
        let ls = members.map { $0.layout }
        fields.append(.init(kind: .union, name: "", offset: offset, size: bytes.count,
                            alignment: ls.map(\.alignment).max() ?? 1, type: "union", members: ls))
    }

    mutating func flexibleArray<E: UAPIRecord>(_ name: StaticString, _ offset: Int, of element: E.Type) {
        let l = E.layout
        fields.append(.init(kind: .flexibleArray, name: "\(name)[]", offset: offset, size: 0, alignment: l.alignment,
                            type: "struct \(E.cName)", members: [l]))
    }

    mutating func flexibleArray<T: UAPIScalar>(_ name: StaticString, _ offset: Int, of element: T.Type) {
        let width = MemoryLayout<T>.size
        fields.append(.init(kind: .flexibleArray, name: "\(name)[]", offset: offset, size: 0, alignment: width,
                            type: Self.cType(T.self), members: []))
    }
}

extension UAPILayout {
    /// Marks the bytes the fields hold, from `base`: a scalar's or array's bytes, a nested
    /// structure's fields, a union's bytes; padding stays unmarked.
    fileprivate func markFields(from base: Int, in held: inout [Bool]) {
        for f in fields {
            if f.kind == .structure, let nested = f.members.first {
                nested.markFields(from: base + f.offset, in: &held)
            } else {
                for i in base + f.offset ..< base + f.offset + f.size where held.indices.contains(i) { held[i] = true }
            }
        }
    }
}

extension UAPIRecord {
    /// A round trip through the field table: an image in which every byte differs is
    /// decoded and encoded again. Reports each byte a field holds that does not come
    /// back, and each padding byte the encoder writes. For the layout tests.
    package static var roundTripProblems: [String] {
        var pattern = UAPIBytes(count: size)
        for i in 0..<size { pattern.bytes[i] = UInt8(truncatingIfNeeded: i + 1) }
        let image = Self(pattern).bytes
        var held = [Bool](repeating: false, count: size)
        layout.markFields(from: 0, in: &held)
        var out: [String] = []
        for i in 0..<size {
            if held[i], image[i] != pattern.bytes[i] { out.append("\(cName): byte \(i) does not come back") }
            if !held[i], image[i] != 0 { out.append("\(cName): padding byte \(i) is written") }
        }
        return out
    }
}
