import Foundation

/// The `DT_NEEDED` entries of an ELF64 little-endian shared object: the libraries
/// `readelf -d` lists as NEEDED, read from the file itself (no binutils needed).
/// nil when the file is not such an object or has no dynamic section.
func elfNeededLibraries(_ path: String) -> [String]? {
    guard let data = FileManager.default.contents(atPath: path) else { return nil }
    let b = [UInt8](data)
    func u(_ o: Int, _ n: Int) -> Int? {
        guard o >= 0, o + n <= b.count else { return nil }
        return (0..<n).reduce(0) { $0 | Int(b[o + $1]) << (8 * $1) }
    }
    // e_ident: magic, ELFCLASS64 (2), ELFDATA2LSB (1).
    guard b.count > 64, b[0] == 0x7F, b[1] == 0x45, b[2] == 0x4C, b[3] == 0x46, b[4] == 2, b[5] == 1,
          let shoff = u(0x28, 8), let shentsize = u(0x3A, 2), let shnum = u(0x3C, 2) else { return nil }
    for i in 0..<shnum {
        let sh = shoff + i * shentsize
        guard let type = u(sh + 4, 4), type == 6,                                 // SHT_DYNAMIC
              let offset = u(sh + 0x18, 8), let size = u(sh + 0x20, 8), let link = u(sh + 0x28, 4),
              let strtab = u(shoff + link * shentsize + 0x18, 8) else { continue }
        var needed: [String] = []
        var entry = offset
        while entry + 16 <= offset + size, let tag = u(entry, 8), tag != 0 {
            if tag == 1, let name = u(entry + 8, 8) {                            // DT_NEEDED
                let start = strtab + name
                guard start < b.count else { return nil }
                let end = b[start...].firstIndex(of: 0) ?? b.count
                needed.append(String(decoding: b[start..<end], as: UTF8.self))
            }
            entry += 16
        }
        return needed
    }
    return nil
}
