import IOMMUCore

/// The object table of a context (`ictx->objects`, an xarray with `XA_FLAGS_ALLOC1`):
/// IDs from 1 to `INT_MAX`, the lowest free one first, one space for every type.
///
/// A slot is reserved at allocation (`XA_ZERO_ENTRY`) and holds the object only after
/// finalize, so a half-built object is invisible to lookups. A tombstone keeps an ID
/// reserved forever (until close) after a forced destroy.
struct ObjectTable {
    enum Slot {
        case reserved(IOMMUFDObject)
        case live(IOMMUFDObject)
        case tombstone
    }

    private(set) var slots: [UInt32: Slot] = [:]

    /// `xa_alloc(..., xa_limit_31b)`: the lowest free ID >= 1.
    mutating func reserve(_ obj: IOMMUFDObject) throws(Errno) -> UInt32 {
        var id: UInt32 = 1
        while slots[id] != nil {
            guard id < UInt32(Int32.max) else { throw .busy.from("iommufd_object_alloc", "no free ID below INT_MAX") }
            id += 1
        }
        slots[id] = .reserved(obj)
        return id
    }

    mutating func publish(_ obj: IOMMUFDObject) { slots[obj.rawID] = .live(obj) }
    mutating func release(_ id: UInt32) { slots[id] = nil }
    mutating func tombstone(_ id: UInt32) { slots[id] = .tombstone }

    /// The live object at `id`, if any.
    func live(_ id: UInt32) -> IOMMUFDObject? {
        if case .live(let o)? = slots[id] { return o }
        return nil
    }

    /// Every live object, in ID order.
    var liveObjects: [IOMMUFDObject] {
        slots.keys.sorted().compactMap { live($0) }
    }

    /// Whether any slot (live, reserved or tombstone) exists.
    var isEmpty: Bool { slots.isEmpty }
    /// Whether any live or reserved object exists (tombstones excluded).
    var hasObjects: Bool {
        slots.values.contains { if case .tombstone = $0 { return false } else { return true } }
    }
}
