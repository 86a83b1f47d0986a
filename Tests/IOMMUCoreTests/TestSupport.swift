import XCTest
@testable import IOMMUCore
@testable import Platform

let K4: UInt64 = 4096
let M2: UInt64 = 2 << 20
let G1: UInt64 = 1 << 30

/// The LPAE variants the format suite runs over: stage 1 and 2, every granule, 3- and
/// 4-level tables, small roots (16K at 48 bits: 2 entries), concatenated stage-2 roots
/// (2 and 16 tables), 52-bit output with 4 TiB leaves, and stage-1 dirty tracking.
let lpaeFormats: [PageTableFormat] = {
    let sizes4K = K4 | M2 | G1, sizes16K: UInt64 = 1 << 14 | 1 << 25, sizes64K: UInt64 = 1 << 16 | 1 << 29 | 1 << 42
    return [
        try! .armLPAE(.stage1, pageSizes: sizes4K, ias: 48, oas: 48),
        try! .armLPAE(.stage1, pageSizes: sizes4K, ias: 39, oas: 44),
        try! .armLPAE(.stage1, pageSizes: sizes4K, ias: 48, oas: 48, quirks: .armHD),
        try! .armLPAE(.stage2, pageSizes: sizes4K, ias: 40, oas: 40),
        try! .armLPAE(.stage1, pageSizes: sizes16K, ias: 48, oas: 48),
        try! .armLPAE(.stage2, pageSizes: sizes16K, ias: 40, oas: 40),
        try! .armLPAE(.stage2, pageSizes: sizes16K, ias: 48, oas: 48),
        try! .armLPAE(.stage1, pageSizes: sizes64K, ias: 48, oas: 48),
        try! .armLPAE(.stage2, pageSizes: sizes64K, ias: 52, oas: 52),
    ]
}()

/// Every page-table format the engine supports; each format test runs over all of them.
let allFormats: [PageTableFormat] = [
    .x86_64(levels: 4), .x86_64(levels: 5), .vtdSecondStage(levels: 3), .vtdSecondStage(levels: 4),
] + lpaeFormats

/// The sizes a format test works in, so one test body serves every granule: the page
/// (4, 16 or 64 KiB), the first block (2 MiB, 32 MiB, 512 MiB) and the largest leaf
/// above it if the format has one (1 GiB, 4 TiB).
extension PageTableFormat {
    /// The smallest leaf: the page.
    var page: UInt64 { pageSizes & (0 &- pageSizes) }
    /// The leaf one level up: the first block size.
    var block: UInt64 { page << UInt64(bitsPerLevel) }
    /// The leaf two levels up, if the format maps it.
    var bigBlock: UInt64? { pageSizes & (block << UInt64(bitsPerLevel)) != 0 ? block << UInt64(bitsPerLevel) : nil }
    /// 4 KiB frames per table below the root.
    var framesPerTable: Int { tableBytes / PhysicalMemory.frameSize }
    /// Whether walks with dirty management mark writes, so `readAndClearDirty` reports them.
    var tracksDirty: Bool {
        switch kind {
        case .x86_64FirstStage, .vtdSecondStage: true
        case .armLPAEStage1: lpae!.quirks.contains(.armHD)
        case .armLPAEStage2: false
        }
    }
}


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

/// The physical address `iova` translates to in `t`, as a number (0 = unmapped).
func phys(_ t: IOPageTable, _ iova: UInt64) -> UInt64 { t.iovaToPhys(IOVA(rawValue: iova)).rawValue }

/// A test case whose bodies run once per CPU architecture (the format of the processes'
/// page tables); a failure names the architecture it happened on.
class ArchitectureTestCase: XCTestCase {
    /// The architecture the running body uses.
    private var currentArchitecture: CPUArchitecture?

    override func recordFailure(withDescription description: String, inFile filePath: String, atLine lineNumber: Int,
                                expected: Bool) {
        let prefix = currentArchitecture.map { "[\($0)] " } ?? ""
        super.recordFailure(withDescription: prefix + description, inFile: filePath, atLine: lineNumber,
                            expected: expected)
    }

    /// Runs `body` once for x86-64 and once for arm64.
    func forEachArchitecture(_ body: (CPUArchitecture) throws -> Void) rethrows {
        for architecture in CPUArchitecture.allCases {
            currentArchitecture = architecture
            defer { currentArchitecture = nil }
            try body(architecture)
        }
    }
}
