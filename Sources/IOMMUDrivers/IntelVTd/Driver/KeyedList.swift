/// A list kept in insertion order whose elements are also found, replaced and removed by
/// key in constant time: what the kernel keeps as a linked list (`cache_tags`,
/// `dev_pasids`) when the order matters (invalidations are issued in attach order) but a
/// domain can be attached to a million PASIDs, where an array's linear search and
/// `remove(at:)` made attaching them all quadratic.
///
/// Removal leaves a hole that iteration skips; the holes are squeezed out once they
/// outnumber the elements, so the storage stays within twice the element count.
struct KeyedList<Key: Hashable, Element>: Sequence {
    private var slots: [Slot?] = []
    private var positions: [Key: Int] = [:]

    /// Elements in the list.
    var count: Int { positions.count }
    /// Whether the list is empty.
    var isEmpty: Bool { positions.isEmpty }

    /// The element stored under `key`. Setting a new key appends; setting nil removes.
    subscript(key: Key) -> Element? {
        get { positions[key].flatMap { slots[$0]?.element } }
        set {
            if let newValue {
                if let i = positions[key] {
                    slots[i] = Slot(key: key, element: newValue)
                } else {
                    positions[key] = slots.count
                    slots.append(Slot(key: key, element: newValue))
                }
            } else {
                removeValue(forKey: key)
            }
        }
    }

    /// Removes the element stored under `key` and returns it (nil if there was none).
    @discardableResult
    mutating func removeValue(forKey key: Key) -> Element? {
        guard let i = positions.removeValue(forKey: key) else { return nil }
        let element = slots[i]?.element
        slots[i] = nil
        if i == slots.count - 1 {
            while let last = slots.last, last == nil { slots.removeLast() }
        } else if slots.count > 32 && slots.count > 2 * positions.count {
            compact()
        }
        return element
    }

    private mutating func compact() {
        slots.removeAll { $0 == nil }
        for (i, slot) in slots.enumerated() { positions[slot!.key] = i }
    }

    /// An element and the key it is stored under.
    struct Slot {
        let key: Key
        let element: Element
    }

    /// The elements in insertion order.
    func makeIterator() -> Iterator { Iterator(slots: slots) }

    /// Walks the slots, skipping holes. Allocates nothing.
    struct Iterator: IteratorProtocol {
        let slots: [Slot?]
        var index = 0

        mutating func next() -> Element? {
            while index < slots.count {
                defer { index += 1 }
                if let slot = slots[index] { return slot.element }
            }
            return nil
        }
    }
}
