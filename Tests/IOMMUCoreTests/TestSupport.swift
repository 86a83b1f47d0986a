import XCTest
@testable import IOMMUCore

/// Every page-table format the engine supports; each format test runs over all of them.
let allFormats: [PageTableFormat] = [
    .x86_64(levels: 4), .x86_64(levels: 5), .vtdSecondStage(levels: 3), .vtdSecondStage(levels: 4),
]

let K4: UInt64 = 4096
let M2: UInt64 = 2 << 20
let G1: UInt64 = 1 << 30

/// Runs `body` once per format with a fresh table and memory, checks no table page leaks
/// after `destroy`, and names the format in every failure.
func forEachFormat(file: StaticString = #filePath, line: UInt = #line,
                   _ body: (PageTableFormat, IOPageTable, PhysicalMemory) throws -> Void) {
    for format in allFormats {
        do {
            let memory = PhysicalMemory(size: 8 << 30)
            let baseline = memory.framesInUse
            do {
                let table = try IOPageTable(format: format, memory: memory)
                try body(format, table, memory)
                table.destroy()
                XCTAssertEqual(memory.framesInUse, baseline, "\(format): table pages leaked", file: file, line: line)
            } catch {
                XCTFail("\(format): unexpected error \(error)", file: file, line: line)
            }
        }
    }
}

/// Deterministic xorshift64* stream for randomized tests.
struct XorShift {
    var state: UInt64
    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }
    mutating func below(_ n: UInt64) -> UInt64 { next() % n }
}

/// Maps one page of `pgsize` and returns the bytes mapped.
@discardableResult
func mapOne(_ t: IOPageTable, _ iova: UInt64, _ pa: UInt64, _ pgsize: UInt64, count: Int = 1,
            prot: IOMMUProt = [.read, .write]) throws(Errno) -> UInt64 {
    var mapped: UInt64 = 0
    try t.mapPages(iova: IOVA(rawValue: iova), paddr: PhysicalAddress(rawValue: pa), pgsize: pgsize, pgcount: count, prot: prot, mapped: &mapped)
    return mapped
}

/// Leaves (iova, size) found by walking every 4 KiB in a range.
func leafSizes(_ t: IOPageTable, _ iova: UInt64, _ size: UInt64) -> [UInt64] {
    var sizes: [UInt64] = []
    var va = iova
    while va < iova + size {
        guard case .translated(_, let s, _) = IOPageTable.walk(memory: t.memory, format: t.format, root: t.root,
                                                               iova: IOVA(rawValue: va), access: [], setAccessedDirty: false)
        else { return sizes + [0] }
        sizes.append(s)
        va = (va & ~(s - 1)) + s
    }
    return sizes
}
