import IOMMUCore
import IOMMUFD

/// The memory behind a typed call: the typed Swift API encodes its structure here and
/// runs the very same raw ioctl path over it, so the typed and raw paths cannot differ.
/// Addresses are offsets from ``base``; anything outside the buffer is `EFAULT`, as a
/// bad user pointer is.
final class ArgumentBuffer: UserMemory, @unchecked Sendable {
    /// Where the structure sits.
    static let base: UInt64 = 0x1000
    private var bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// The structure as the ioctl left it.
    var contents: [UInt8] { bytes }

    func copyFromUser(_ address: UInt64, count: Int) throws(Errno) -> [UInt8] {
        guard count > 0 else { return [] }
        let r = try range(address, count)
        return Array(bytes[r])
    }

    func copyToUser(_ address: UInt64, _ data: [UInt8]) throws(Errno) {
        guard !data.isEmpty else { return }
        let r = try range(address, data.count)
        bytes.replaceSubrange(r, with: data)
    }

    private func range(_ address: UInt64, _ count: Int) throws(Errno) -> Range<Int> {
        guard address >= Self.base, address - Self.base <= UInt64(bytes.count),
              UInt64(count) <= UInt64(bytes.count) - (address - Self.base) else { throw .badAddress }
        let start = Int(address - Self.base)
        return start..<start + count
    }
}
