import IOMMUConformance
import XCTest
@testable import IOMMUCore
@testable import Platform

/// The ARM LPAE formats beyond the shared suite: io-pgtable-arm's configuration rules
/// (granules, IAS/OAS, levels, concatenated stage-2 roots, TTBR1), its errno rules and
/// WARNs, exact entry bits, and the hardware walk's LPAE decoding.
final class LPAEFormatTests: XCTestCase {
    let sizes4K: UInt64 = K4 | M2 | G1
    let sizes16K: UInt64 = 1 << 14 | 1 << 25
    let sizes64K: UInt64 = 1 << 16 | 1 << 29
    let memory = PhysicalMemory(size: 8 << 30)

    func s1(_ pageSizes: UInt64? = nil, ias: Int = 48, oas: Int = 48, quirks: IOPageTableQuirks = []) throws -> IOPageTable {
        try IOPageTable(format: .armLPAE(.stage1, pageSizes: pageSizes ?? sizes4K, ias: ias, oas: oas, quirks: quirks),
                        memory: memory)
    }

    func s2(_ pageSizes: UInt64? = nil, ias: Int = 48, oas: Int = 48, quirks: IOPageTableQuirks = []) throws -> IOPageTable {
        try IOPageTable(format: .armLPAE(.stage2, pageSizes: pageSizes ?? sizes4K, ias: ias, oas: oas, quirks: quirks),
                        memory: memory)
    }

    func walk(_ t: IOPageTable, _ iova: UInt64, _ access: WalkAccess, ad: Bool = false) -> PageWalkResult {
        IOPageTable.walk(memory: memory, format: t.format, root: t.root, iova: IOVA(rawValue: iova), access: access, setAccessedDirty: ad)
    }

    /// The leaf entry mapping `iova`, read back from the table.
    func leaf(_ t: IOPageTable, _ iova: UInt64) -> UInt64 { t.findLeaf(iova).pte }

    // MARK: - Check 74

    /// Check 74, io-pgtable-arm's map rules: an IOVA at or above 2^IAS in a TTBR0 table
    /// is `ERANGE`, a protection with neither read nor write is `EINVAL`, and a 16K
    /// granule restricts the page-size bitmap to {16K, 32M}.
    func testCheck74IOVABeyondIASIsERANGEProtWithoutAccessIsEINVALAnd16KBitmapIsRestricted() throws {
        for t in [try s1(ias: 40, oas: 48), try s2(ias: 40, oas: 40)] {
            assertErrno(.outOfRange, "\(t.format)") { () throws(Errno) in try mapOne(t, 1 << 40, 0x10_0000, K4) }
            assertErrno(.outOfRange, "\(t.format): the last page may not run over") { () throws(Errno) in
                try mapOne(t, (1 << 40) - K4, 0x10_0000, K4, count: 2)
            }
            XCTAssertEqual(try mapOne(t, (1 << 40) - K4, 0x10_0000, K4), K4, "\(t.format): the last page inside")
            assertErrno(.invalidArgument, "\(t.format)") { () throws(Errno) in
                try mapOne(t, 0, 0x10_0000, K4, prot: [.noexec, .cache])
            }
            XCTAssertEqual(phys(t, 0), 0, "\(t.format): nothing mapped by the refused calls")
        }
        let mixed = try PageTableFormat.armLPAE(.stage1, pageSizes: K4 << 2 | M2 | 1 << 25 | 1 << 16 | G1 | K4, ias: 48, oas: 48,
                                              quirks: [])
        XCTAssertEqual(mixed.lpae?.granule, .size4K, "4K is the machine's PAGE_SIZE, so it wins when offered")
        let only16 = try PageTableFormat.armLPAE(.stage1, pageSizes: 1 << 14 | M2 | 1 << 25 | G1 | 1 << 16, ias: 48,
                                                 oas: 48)
        XCTAssertEqual(only16.lpae?.granule, .size16K)
        XCTAssertEqual(only16.pageSizes, 1 << 14 | 1 << 25, "16K granule: 16 KiB pages and 32 MiB blocks only")
    }

    // MARK: - Errno rules and WARNs

    /// io-pgtable-arm checks the ranges before the protection (and WARNs on them);
    /// generic_pt (x86-64, VT-d) checks the protection first.
    func testRangeIsCheckedBeforeProtection() throws {
        let lpae = try s1(ias: 40)
        assertErrno(.outOfRange) { () throws(Errno) in try mapOne(lpae, 1 << 40, 0, K4, prot: .noexec) }
        XCTAssertEqual(lpae.warnings.map(\.function), ["arm_lpae_map_pages"])
        let x86 = try IOPageTable(format: .x86_64(levels: 4), memory: memory)
        assertErrno(.invalidArgument) { () throws(Errno) in try mapOne(x86, 1 << 48, 0, K4, prot: .noexec) }
        XCTAssertTrue(x86.warnings.isEmpty, "generic_pt formats never WARN")
    }

    func testPhysicalAddressBeyondOASIsERANGE() throws {
        let t = try s2(ias: 40, oas: 40)
        assertErrno(.outOfRange) { () throws(Errno) in try mapOne(t, 0, 1 << 40, K4) }
        assertErrno(.outOfRange, "the whole range must fit") { () throws(Errno) in
            try mapOne(t, 0, (1 << 40) - M2, M2, count: 2)
        }
        XCTAssertEqual(try mapOne(t, 0, (1 << 40) - M2, M2), M2)
        XCTAssertEqual(phys(t, 0x1234), (1 << 40) - M2 + 0x1234)
        XCTAssertEqual(t.warnings.count, 2, "each ERANGE WARNs")
    }

    func testExistingLeafIsEEXISTWithAWarnUnlessNoWarn() throws {
        let loud = try s1()
        try mapOne(loud, 0, 0x10_0000, K4)
        assertErrno(.exists) { () throws(Errno) in try mapOne(loud, 0, 0x20_0000, K4) }
        assertErrno(.exists, "a block over a block") { () throws(Errno) in
            try mapOne(loud, M2, 0x40_0000, M2)
            try mapOne(loud, M2, 0x40_0000, M2)
        }
        assertErrno(.exists, "a page under a block") { () throws(Errno) in try mapOne(loud, M2 + K4, 0x30_0000, K4) }
        XCTAssertEqual(loud.warnings.map(\.function), ["arm_lpae_init_pte", "arm_lpae_init_pte", "__arm_lpae_map"])
        XCTAssertEqual(phys(loud, 0), 0x10_0000)

        let quiet = try s1(quirks: .noWarn)
        try mapOne(quiet, 0, 0x10_0000, K4)
        assertErrno(.exists) { () throws(Errno) in try mapOne(quiet, 0, 0x20_0000, K4) }
        XCTAssertTrue(quiet.warnings.isEmpty, "IO_PGTABLE_QUIRK_NO_WARN: EEXIST without a WARN")
    }

    /// Unmapping part of a larger leaf is refused: 0 bytes, the block stays, and a WARN
    /// (which NO_WARN does not silence), handed to the table's owner too.
    func testPartialBlockUnmapReturnsZeroAndWarns() throws {
        let seen = WarningBox()
        let t = try IOPageTable(format: .armLPAE(.stage1, pageSizes: sizes4K, ias: 48, oas: 48, quirks: .noWarn),
                                memory: memory, warn: { seen.append($0) })
        try mapOne(t, M2, 0x40_0000, M2)
        var g = IOTLBGather()
        XCTAssertEqual(t.unmapPages(iova: IOVA(rawValue: M2 + K4), pgsize: K4, pgcount: 1, gather: &g), 0)
        XCTAssertEqual(t.unmap(iova: IOVA(rawValue: M2), size: K4, gather: &g), 0)
        XCTAssertTrue(g.isEmpty)
        XCTAssertEqual(phys(t, M2 + K4), 0x40_1000, "the block is still mapped")
        XCTAssertEqual(t.warnings.count, 2)
        XCTAssertEqual(t.warnings.first?.function, "__arm_lpae_unmap")
        XCTAssertTrue(t.warnings.first?.message.contains("part of the 0x200000-byte block at iova 0x200000") ?? false,
                      "\(t.warnings)")
        XCTAssertEqual(seen.all, t.warnings, "the owner's handler hears every WARN")
        XCTAssertEqual(t.unmapPages(iova: IOVA(rawValue: M2), pgsize: M2, pgcount: 1, gather: &g), M2)
    }

    func testUnmapOfAHoleWarnsUnlessNoWarn() throws {
        let loud = try s2()
        var g = IOTLBGather()
        XCTAssertEqual(loud.unmapPages(iova: IOVA(rawValue: 0), pgsize: K4, pgcount: 1, gather: &g), 0)
        XCTAssertEqual(loud.warnings.map(\.function), ["__arm_lpae_unmap"])
        let quiet = try s2(quirks: .noWarn)
        XCTAssertEqual(quiet.unmapPages(iova: IOVA(rawValue: 0), pgsize: K4, pgcount: 1, gather: &g), 0)
        XCTAssertTrue(quiet.warnings.isEmpty)
    }

    func testUnmapWithBadSizeOrRangeWarnsAndUnmapsNothing() throws {
        let t = try s1(ias: 40)
        try mapOne(t, 0, 0x10_0000, K4)
        var g = IOTLBGather()
        XCTAssertEqual(t.unmapPages(iova: IOVA(rawValue: 0), pgsize: 8192, pgcount: 1, gather: &g), 0)
        XCTAssertEqual(t.unmapPages(iova: IOVA(rawValue: 0), pgsize: K4, pgcount: 0, gather: &g), 0)
        XCTAssertEqual(t.unmapPages(iova: IOVA(rawValue: 1 << 40), pgsize: K4, pgcount: 1, gather: &g), 0)
        XCTAssertEqual(t.warnings.map(\.function), Array(repeating: "arm_lpae_unmap_pages", count: 3))
        XCTAssertEqual(phys(t, 0), 0x10_0000)
    }

    // MARK: - Configuration

    /// `arm_lpae_restrict_pgsizes` and `arm_lpae_alloc_pgtable`: the granule, its leaf
    /// sizes, the clamped IAS/OAS, the levels and the root size, for every granule.
    func testEveryGranulesLeafSizesLevelsAndRoot() throws {
        struct Case { let sizes: UInt64; let ias, oas: Int; let granule: LPAEGranule; let leaves: UInt64
            let levels, rootEntries: Int }
        let cases = [
            Case(sizes: sizes4K, ias: 48, oas: 48, granule: .size4K, leaves: sizes4K, levels: 4, rootEntries: 512),
            Case(sizes: sizes4K, ias: 39, oas: 40, granule: .size4K, leaves: sizes4K, levels: 3, rootEntries: 512),
            Case(sizes: sizes4K, ias: 32, oas: 32, granule: .size4K, leaves: sizes4K, levels: 3, rootEntries: 4),
            Case(sizes: sizes4K, ias: 52, oas: 52, granule: .size4K, leaves: sizes4K, levels: 4, rootEntries: 512),
            Case(sizes: sizes16K | sizes64K, ias: 48, oas: 48, granule: .size16K, leaves: sizes16K, levels: 4,
                 rootEntries: 2),
            Case(sizes: sizes16K, ias: 36, oas: 48, granule: .size16K, leaves: sizes16K, levels: 2, rootEntries: 2048),
            Case(sizes: sizes64K, ias: 48, oas: 48, granule: .size64K, leaves: sizes64K, levels: 3, rootEntries: 64),
            Case(sizes: sizes64K | 1 << 42, ias: 52, oas: 52, granule: .size64K, leaves: sizes64K | 1 << 42, levels: 3,
                 rootEntries: 1024),
            Case(sizes: sizes64K | 1 << 42, ias: 48, oas: 48, granule: .size64K, leaves: sizes64K, levels: 3,
                 rootEntries: 64),
        ]
        for c in cases {
            let f = try PageTableFormat.armLPAE(.stage1, pageSizes: c.sizes, ias: c.ias, oas: c.oas)
            let name = "\(f) from ias \(c.ias) oas \(c.oas)"
            XCTAssertEqual(f.lpae?.granule, c.granule, name)
            XCTAssertEqual(f.pageSizes, c.leaves, name)
            XCTAssertEqual(f.levels, c.levels, name)
            XCTAssertEqual(f.rootEntries, c.rootEntries, name)
            XCTAssertEqual(f.vaBits, min(c.ias, c.granule == .size64K ? 52 : 48), "\(name): IAS clamped")
            XCTAssertEqual(f.outputBits, min(c.oas, c.granule == .size64K ? 52 : 48), "\(name): OAS clamped")
            XCTAssertEqual(f.lpae?.concatenatedTables, 1, "\(name): stage 1 never concatenates")
        }
    }

    /// Each leaf size of each granule maps at its own level and walks back as that size.
    func testEveryLeafSizeMapsAndWalksAtItsLevel() throws {
        for (sizes, oas) in [(sizes4K, 48), (sizes16K, 48), (sizes64K | 1 << 42, 52)] {
            let t = try s2(sizes, ias: 48, oas: oas)
            var level = 1
            for shift in 0..<64 where t.format.pageSizes & (1 << UInt64(shift)) != 0 {
                let size = UInt64(1) << UInt64(shift)
                let iova = 3 * size, pa = 5 * size
                XCTAssertEqual(try mapOne(t, iova, pa, size), size, "\(t.format) \(size)")
                XCTAssertEqual(walk(t, iova + size - 8, .read),
                               .translated(pa: PhysicalAddress(rawValue: pa + size - 8), pageSize: size, perms: [.read, .write]),
                               "\(t.format) \(size)")
                XCTAssertEqual(t.findLeaf(iova).level, level, "\(t.format): \(size) leaves sit at level \(level)")
                level += 1
            }
            XCTAssertEqual(level - 1, t.format.pageSizes.nonzeroBitCount)
        }
    }

    func testRefusedConfigurationsAreEINVAL() {
        let bad: [(String, () throws(Errno) -> PageTableFormat)] = [
            ("no granule", { () throws(Errno) in try .armLPAE(.stage1, pageSizes: M2 | G1, ias: 48, oas: 48) }),
            ("a sub-page size only", { () throws(Errno) in try .armLPAE(.stage1, pageSizes: 512, ias: 48, oas: 48) }),
            ("OAS 41", { () throws(Errno) in try .armLPAE(.stage1, pageSizes: K4, ias: 48, oas: 41) }),
            ("TTBR1 on stage 2", { () throws(Errno) in
                try .armLPAE(.stage2, pageSizes: K4, ias: 48, oas: 48, quirks: .armTTBR1) }),
            ("S2FWB on stage 1", { () throws(Errno) in
                try .armLPAE(.stage1, pageSizes: K4, ias: 48, oas: 48, quirks: .armS2FWB) }),
            ("HD on stage 2", { () throws(Errno) in try .armLPAE(.stage2, pageSizes: K4, ias: 48, oas: 48, quirks: .armHD) }),
            ("4K IPA 48 bits, PA 40: a 512-table concatenation", { () throws(Errno) in
                try .armLPAE(.stage2, pageSizes: K4, ias: 48, oas: 40) }),
            ("IAS not above the page", { () throws(Errno) in try .armLPAE(.stage1, pageSizes: K4, ias: 12, oas: 48) }),
            ("hardware: a stage-1 root wider than a page", { () throws(Errno) in
                try .armLPAE(.stage1, granule: .size4K, ias: 48, oas: 48, startLevel: 1) }),
            ("hardware: 32 concatenated tables", { () throws(Errno) in
                try .armLPAE(.stage2, granule: .size4K, ias: 44, oas: 44, startLevel: 1) }),
            ("hardware: IAS 49 with 4K", { () throws(Errno) in try .armLPAE(.stage1, granule: .size4K, ias: 49, oas: 48) }),
        ]
        for (name, make) in bad { assertErrno(.invalidArgument, name) { () throws(Errno) in try make() } }
    }

    // MARK: - Concatenated stage-2 root

    /// `arm_lpae_concat_mandatory`: 4K with a 40/42-bit PA starting at level 0, 16K with
    /// 48 bits at level 0 or a 40-bit PA at level 1 start one level down on 2 to 16
    /// tables side by side; elsewhere nothing is concatenated.
    func testConcatenatedStage2RootWhereMandatory() throws {
        struct Case { let sizes: UInt64; let ias, oas: Int; let start, tables, levels: Int; let sl0: UInt64 }
        let cases = [
            Case(sizes: sizes4K, ias: 40, oas: 40, start: 1, tables: 2, levels: 3, sl0: 1),
            Case(sizes: sizes4K, ias: 42, oas: 42, start: 1, tables: 8, levels: 3, sl0: 1),
            Case(sizes: sizes4K, ias: 48, oas: 48, start: 0, tables: 1, levels: 4, sl0: 2),
            Case(sizes: sizes4K, ias: 40, oas: 44, start: 0, tables: 1, levels: 4, sl0: 2),
            Case(sizes: sizes16K, ias: 48, oas: 48, start: 1, tables: 2, levels: 3, sl0: 2),
            Case(sizes: sizes16K, ias: 40, oas: 40, start: 2, tables: 16, levels: 2, sl0: 1),
            Case(sizes: sizes16K, ias: 40, oas: 44, start: 1, tables: 1, levels: 3, sl0: 2),
            Case(sizes: sizes64K, ias: 48, oas: 48, start: 1, tables: 1, levels: 3, sl0: 2),
        ]
        for c in cases {
            let f = try PageTableFormat.armLPAE(.stage2, pageSizes: c.sizes, ias: c.ias, oas: c.oas)
            let name = "\(f) from ias \(c.ias) oas \(c.oas)"
            XCTAssertEqual(f.lpae?.startLevel, c.start, name)
            XCTAssertEqual(f.lpae?.concatenatedTables, c.tables, name)
            XCTAssertEqual(f.levels, c.levels, name)
            if c.tables > 1 { XCTAssertEqual(f.rootTableBytes, c.tables * f.tableBytes, "\(name): one contiguous root") }
            XCTAssertEqual(f.lpae?.sl0, c.sl0, "\(name): VTCR.SL0")
            let hardware = try PageTableFormat.armLPAE(.stage2, granule: f.lpae!.granule, ias: f.vaBits, oas: f.outputBits,
                                                       startLevel: c.start)
            XCTAssertEqual(hardware, f, "\(name): what the hardware decodes from S2T0SZ/S2SL0/S2TG/S2PS")
        }
    }

    /// The last largest page of the IAS lands in the last concatenated table, entries
    /// past the first table's end are reached by the walk, and the root is freed whole.
    func testConcatenatedRootUsesEveryTable() throws {
        let before = memory.framesInUse
        let t = try s2(ias: 40, oas: 40)
        XCTAssertEqual(memory.framesInUse, before + 2, "two 4 KiB tables, contiguous")
        let top: UInt64 = 1 << 40
        try mapOne(t, top - G1, 0x4000_0000, G1)
        try mapOne(t, 512 * G1 + K4, 0x9000, K4)
        XCTAssertEqual(memory.load64(t.root + 1023 * 8) & 0x3, 0x1, "a block in the last entry of the second table")
        XCTAssertEqual(memory.load64(t.root + 512 * 8) & 0x3, 0x3, "a table in the first entry of the second table")
        XCTAssertEqual(phys(t, top - 1), 0x4000_0000 + G1 - 1)
        XCTAssertEqual(phys(t, 512 * G1 + K4 + 5), 0x9005)
        var g = IOTLBGather()
        XCTAssertEqual(t.unmapPages(iova: IOVA(rawValue: top - G1), pgsize: G1, pgcount: 1, gather: &g), G1)
        XCTAssertEqual(t.unmapPages(iova: IOVA(rawValue: 512 * G1 + K4), pgsize: K4, pgcount: 1, gather: &g), K4)
        g.releaseFreelist(to: memory)
        t.destroy()
        XCTAssertEqual(memory.framesInUse, before)

        let sixteen = try s2(sizes16K, ias: 40, oas: 40)
        XCTAssertEqual(sixteen.format.rootEntries, 16 * 2048)
        try mapOne(sixteen, top - (1 << 25), 0x200_0000, 1 << 25)
        XCTAssertEqual(phys(sixteen, top - 1), 0x200_0000 + (1 << 25) - 1)
        XCTAssertEqual(sixteen.tablePages, 1, "a 32 MiB block sits in the 16-table root")
    }

    // MARK: - TTBR1

    /// `IO_PGTABLE_QUIRK_ARM_TTBR1`: the table serves [2^64 - 2^IAS, 2^64); addresses
    /// below are ERANGE, the top page maps and unmaps without wrapping, the root index
    /// drops the sign-extension bits, and TCR.TG takes TG1's encoding.
    func testTTBR1TableServesTheSignExtendedUpperRange() throws {
        let t = try s1(ias: 48, quirks: .armTTBR1)
        let low: UInt64 = 0xFFFF_0000_0000_0000
        XCTAssertEqual(t.format.inputStart.rawValue, low)
        XCTAssertEqual(t.format.lpae?.tg, 2, "TG1 encoding of 4K")
        XCTAssertEqual(t.format.lpae?.tsz, 16, "T1SZ = 64 - 48")
        assertErrno(.outOfRange, "a TTBR0 address") { () throws(Errno) in try mapOne(t, 0x1000, 0x10_0000, K4) }
        assertErrno(.outOfRange, "just below the range") { () throws(Errno) in
            try mapOne(t, low - K4, 0x10_0000, K4)
        }
        let last = UInt64.max - K4 + 1
        XCTAssertEqual(try mapOne(t, last, 0x10_0000, K4), K4)
        XCTAssertEqual(try mapOne(t, low, 0x20_0000, K4), K4)
        try t.map(iova: IOVA(rawValue: low + 8 * M2), paddr: PhysicalAddress(rawValue: 0x80_0000), size: 2 * M2, prot: [.read, .write])
        XCTAssertEqual(leafSizes(t, low + 8 * M2, 2 * M2), [M2, M2])
        XCTAssertNotEqual(memory.load64(t.root + 511 * 8), 0, "the top page is in the last root entry")
        XCTAssertNotEqual(memory.load64(t.root), 0, "the bottom of the range is in the first")
        XCTAssertEqual(walk(t, last + 0x123, .read), .translated(pa: 0x10_0123, pageSize: K4, perms: [.read, .write]))
        XCTAssertEqual(walk(t, 0x123, .read), .notPresent(level: 4), "a TTBR0 address never walks this table")
        XCTAssertEqual(phys(t, low + 5), 0x20_0005)
        var dirtyLeaves = 0
        t.readAndClearDirty(iova: IOVA(rawValue: low), size: 1 << 48, clear: false) { _, _ in dirtyLeaves += 1 }
        XCTAssertEqual(dirtyLeaves, 0, "no HD: nothing dirty-tracked, and no wrap at 2^64")
        var g = IOTLBGather()
        XCTAssertEqual(t.unmap(iova: IOVA(rawValue: last), size: K4, gather: &g), K4)
        XCTAssertEqual(g.end, IOVA.max)
        XCTAssertEqual(t.unmapPages(iova: IOVA(rawValue: low), pgsize: K4, pgcount: 1, gather: &g), K4)
        XCTAssertEqual(phys(t, last), 0)
        XCTAssertTrue(t.warnings.allSatisfy { $0.function == "arm_lpae_map_pages" }, "only the two refused maps WARN")
    }

    func testTTBR1ReadAndClearDirtyReachesTheTopPage() throws {
        let t = try s1(ias: 39, quirks: [.armTTBR1, .armHD])
        let last = UInt64.max - K4 + 1
        try mapOne(t, last, 0x10_0000, K4)
        var seen: [UInt64] = []
        t.readAndClearDirty(iova: t.format.inputStart, size: 1 << 39, clear: true) { iova, _ in seen.append(iova.rawValue) }
        XCTAssertEqual(seen, [last], "a writable HD leaf starts dirty")
    }

    // MARK: - Exact entry bits

    /// `arm_lpae_prot_to_pte`: a few leaves, bit for bit.
    func testExactLeafBits() throws {
        let pa: UInt64 = 0x8000_0000
        let cases: [(PageTableFormat, IOMMUProt, UInt64, UInt64, String)] = [
            (try .armLPAE(.stage1, pageSizes: sizes4K, ias: 48, oas: 48), [.read, .write, .noexec], K4,
             0x0060_0000_8000_0E43, "S1 4K page RW non-exec: XN|AF|SH outer|nG|AP[1]|page"),
            (try .armLPAE(.stage1, pageSizes: sizes4K, ias: 48, oas: 48), [.read, .write, .cache], K4,
             0x0000_0000_8000_0F47, "S1 cacheable: MAIR index 1, SH inner"),
            (try .armLPAE(.stage1, pageSizes: sizes4K, ias: 48, oas: 48), [.read, .write, .mmio], K4,
             0x0000_0000_8000_0E4B, "S1 MMIO: MAIR index 2 (device)"),
            (try .armLPAE(.stage1, pageSizes: sizes4K, ias: 48, oas: 48), [.read, .priv], M2,
             0x0000_0000_8000_0E81, "S1 2 MiB block, read-only, privileged: AP[2], no AP[1], block type"),
            (try .armLPAE(.stage1, pageSizes: sizes4K, ias: 48, oas: 48, quirks: .armNS), [.read, .write], K4,
             0x0000_0000_8000_0E63, "S1 with NS: bit 5"),
            (try .armLPAE(.stage1, pageSizes: sizes4K, ias: 48, oas: 48, quirks: .armHD), [.read, .write], K4,
             0x0008_0000_8000_0E43, "S1 with HD: DBM on a writable leaf"),
            (try .armLPAE(.stage1, pageSizes: sizes4K, ias: 48, oas: 48, quirks: .armHD), [.read], K4,
             0x0000_0000_8000_0EC3, "S1 with HD, read-only: AP[2], no DBM"),
            (try .armLPAE(.stage2, pageSizes: sizes4K, ias: 48, oas: 48), [.read, .write, .cache], K4,
             0x0000_0000_8000_07FF, "S2 page RW cacheable: S2AP RW, MemAttr 0xF, SH inner"),
            (try .armLPAE(.stage2, pageSizes: sizes4K, ias: 48, oas: 48), [.read, .write, .mmio], K4,
             0x0000_0000_8000_06C7, "S2 MMIO: MemAttr device"),
            (try .armLPAE(.stage2, pageSizes: sizes4K, ias: 48, oas: 48), [.write, .noexec], M2,
             0x0060_0000_8000_0695, "S2 2 MiB block write-only non-exec: S2AP W, MemAttr NC, XN"),
            (try .armLPAE(.stage2, pageSizes: sizes4K, ias: 48, oas: 48, quirks: .armS2FWB), [.read, .write, .cache], K4,
             0x0000_0000_8000_07DB, "S2 with FWB: MemAttr 0b0110"),
        ]
        for (format, prot, size, expected, name) in cases {
            let t = try IOPageTable(format: format, memory: memory)
            try mapOne(t, 0x4000_0000, pa, size, prot: prot)
            XCTAssertEqual(leaf(t, 0x4000_0000), expected,
                           "\(name): got 0x\(String(leaf(t, 0x4000_0000), radix: 16))")
        }
    }

    func testTableEntriesAndNSTable() throws {
        let t = try s1(quirks: .armNS)
        try mapOne(t, 0, 0x10_0000, K4)
        let top = memory.load64(t.root)
        XCTAssertEqual(top & ~0x0000_FFFF_FFFF_F000, 1 << 63 | 0x3, "NSTable and the table type, nothing else")
    }

    /// With a 64K granule and a 52-bit OAS, PA bits 51:48 live in entry bits 15:12.
    func testFiftyTwoBitOutputAddressIsPackedIntoBits15To12() throws {
        let t = try s2(sizes64K, ias: 48, oas: 52)
        let pa: UInt64 = 0x000F_0000_0001_0000
        try mapOne(t, 1 << 16, pa, 1 << 16)
        XCTAssertEqual(leaf(t, 1 << 16), 0x0000_0000_0001_F6D7)
        XCTAssertEqual(walk(t, (1 << 16) + 0x42, .write),
                       .translated(pa: PhysicalAddress(rawValue: pa + 0x42), pageSize: 1 << 16, perms: [.read, .write]))
    }

    // MARK: - Hardware walk

    func testStage1PermissionChecks() throws {
        let t = try s1()
        try mapOne(t, 0, 0x10_0000, K4, prot: .read)
        try mapOne(t, K4, 0x20_0000, K4, prot: [.read, .write, .priv])
        try mapOne(t, 2 * K4, 0x30_0000, K4, prot: [.read, .noexec])
        try mapOne(t, 3 * K4, 0x40_0000, K4, prot: [.read, .write])
        try mapOne(t, 4 * K4, 0x50_0000, K4, prot: [.read])
        XCTAssertEqual(walk(t, 0, [.write, .user]), .permission(level: 1), "AP[2]: read-only")
        XCTAssertEqual(walk(t, 0, .write), .permission(level: 1), "read-only for privileged requests too")
        XCTAssertEqual(walk(t, 0x10, [.read, .user]), .translated(pa: 0x10_0010, pageSize: K4, perms: [.read]))
        XCTAssertEqual(walk(t, K4, [.read, .user]), .permission(level: 1), "no AP[1]: privileged only")
        XCTAssertEqual(walk(t, K4, [.read, .write]),
                       .translated(pa: 0x20_0000, pageSize: K4, perms: [.read, .write, .priv]))
        XCTAssertEqual(walk(t, 2 * K4, [.execute, .user]), .permission(level: 1), "UXN")
        XCTAssertEqual(walk(t, 2 * K4, .execute), .permission(level: 1), "PXN")
        XCTAssertEqual(walk(t, 3 * K4, [.execute, .user]),
                       .translated(pa: 0x40_0000, pageSize: K4, perms: [.read, .write]))
        XCTAssertEqual(walk(t, 3 * K4, .execute), .permission(level: 1),
                       "a privileged fetch from memory unprivileged code can write is never allowed")
        XCTAssertEqual(walk(t, 4 * K4, .execute), .translated(pa: 0x50_0000, pageSize: K4, perms: [.read]))
    }

    func testStage2PermissionChecks() throws {
        let t = try s2()
        try mapOne(t, 0, 0x10_0000, K4, prot: .write)
        try mapOne(t, K4, 0x20_0000, K4, prot: [.read, .noexec])
        XCTAssertEqual(walk(t, 0, .read), .permission(level: 1), "S2AP without read")
        XCTAssertEqual(walk(t, 0, [.write, .user]), .translated(pa: 0x10_0000, pageSize: K4, perms: [.write]))
        XCTAssertEqual(walk(t, K4, .write), .permission(level: 1))
        XCTAssertEqual(walk(t, K4, .execute), .permission(level: 1), "XN")
        XCTAssertEqual(walk(t, K4, [.read, .user]), .translated(pa: 0x20_0000, pageSize: K4, perms: [.read, .noexec]))
    }

    /// AF clear: an access flag fault, unless the walker manages the flag (HA), which
    /// then sets it.
    func testAccessFlagFaultOrHardwareUpdate() throws {
        let t = try s1()
        try mapOne(t, 0, 0x10_0000, K4)
        let (slot, pte, _) = t.findLeaf(0)
        slot!.store(pte & ~(1 << 10))
        XCTAssertEqual(walk(t, 0, .read), .accessFlag(level: 1))
        XCTAssertEqual(leaf(t, 0) & 1 << 10, 0, "a faulting walk changes nothing")
        XCTAssertEqual(walk(t, 0, .read, ad: true), .translated(pa: 0x10_0000, pageSize: K4, perms: [.read, .write]))
        XCTAssertEqual(leaf(t, 0), pte, "HA set AF back")
    }

    /// HD: a write to a DBM leaf that the harvest made writable-clean (AP[2] set) is
    /// allowed and clears AP[2]; without dirty management it is a permission fault.
    func testHardwareDirtyManagementClearsAP2() throws {
        let t = try s1(quirks: .armHD)
        try mapOne(t, 0, 0x10_0000, K4)
        t.readAndClearDirty(iova: IOVA(rawValue: 0), size: K4, clear: true) { _, _ in }
        XCTAssertEqual(leaf(t, 0) & (1 << 7 | 1 << 51), 1 << 7 | 1 << 51, "writable-clean")
        XCTAssertEqual(walk(t, 0, .write), .permission(level: 1), "no HD in the walker: AP[2] holds")
        XCTAssertEqual(walk(t, 0, .write, ad: true), .translated(pa: 0x10_0000, pageSize: K4, perms: [.read, .write]))
        XCTAssertEqual(leaf(t, 0) & (1 << 7 | 1 << 51), 1 << 51, "writable-dirty")
    }

    /// A guest-written table may use the hierarchical limits io-pgtable never sets.
    func testTableAttributesLimitEverythingBelow() throws {
        let t = try s1()
        try mapOne(t, 0, 0x10_0000, K4)
        let rootEntry = memory.load64(t.root)
        memory.store64(t.root, rootEntry | 1 << 62)
        XCTAssertEqual(walk(t, 0, .write), .permission(level: 1), "APTable[1]: no writes below")
        XCTAssertEqual(walk(t, 0, .read), .translated(pa: 0x10_0000, pageSize: K4, perms: [.read]))
        memory.store64(t.root, rootEntry | 1 << 61 | 1 << 60)
        XCTAssertEqual(walk(t, 0, [.read, .user]), .permission(level: 1), "APTable[0]: no unprivileged access")
        XCTAssertEqual(walk(t, 0, .read), .translated(pa: 0x10_0000, pageSize: K4, perms: [.read, .write, .priv, .noexec]))
        memory.store64(t.root, rootEntry)
    }

    /// Descriptors the format does not allow where they are, and tables outside memory,
    /// fault as translation faults.
    func testInvalidDescriptorsFault() throws {
        let t = try s1(sizes16K)
        try mapOne(t, 0, 0x10_0000, 1 << 14)
        let (slot, pte, _) = t.findLeaf(0)
        slot!.store(pte & ~0x2)
        XCTAssertEqual(walk(t, 0, .read), .notPresent(level: 1), "0b01 at the last level is reserved")
        slot!.store(pte)
        // A 16K table has blocks at level 2 only: make the level-3 entry a block.
        let table = PhysicalAddress(rawValue: memory.load64(t.root) & 0x0000_FFFF_FFFF_C000)
        let level3 = memory.load64(table)
        memory.store64(table, level3 & ~0x2)
        XCTAssertEqual(walk(t, 0, .read), .notPresent(level: 3), "no 64 GiB blocks with a 16K granule")
        memory.store64(table, (level3 & 0xFFF) | 0x0000_F000_0000_0000)
        XCTAssertEqual(walk(t, 0, .read), .notPresent(level: 2), "a table beyond physical memory")
        memory.store64(table, level3)
        XCTAssertEqual(walk(t, 0, .read), .translated(pa: 0x10_0000, pageSize: 1 << 14, perms: [.read, .write]))
    }

    // MARK: - Registers

    func testRegisterEncodings() throws {
        let s1 = try PageTableFormat.armLPAE(.stage1, pageSizes: sizes64K, ias: 48, oas: 44).lpae!
        XCTAssertEqual(s1.tsz, 16)
        XCTAssertEqual(s1.tg, 1, "TG0 64K")
        XCTAssertEqual(s1.ps, 4, "44-bit IPS")
        let s1t = try PageTableFormat.armLPAE(.stage1, pageSizes: sizes16K, ias: 39, oas: 48, quirks: .armTTBR1).lpae!
        XCTAssertEqual(s1t.tsz, 25)
        XCTAssertEqual(s1t.tg, 1, "TG1 16K")
        XCTAssertEqual(LPAEConfig.mair, 0xF4_04_FF_44)
        XCTAssertEqual(LPAEGranule(tg0: 2), .size16K)
        XCTAssertEqual(LPAEGranule(tg1: 3), .size64K)
        XCTAssertNil(LPAEGranule(tg0: 3))
        XCTAssertEqual(LPAEConfig.physicalSize(field: 6), 52)
        // The hardware constructor decodes what the driver programs.
        let hw = try PageTableFormat.armLPAE(.stage1, granule: LPAEGranule(tg0: 1)!, ias: 64 - Int(s1.tsz),
                                             oas: LPAEConfig.physicalSize(field: s1.ps)!)
        XCTAssertEqual(hw, try PageTableFormat.armLPAE(.stage1, pageSizes: sizes64K, ias: 48, oas: 44))
    }

    /// Hardware models copy a format into every walk; it stays one cache line.
    func testFormatValueIsSmall() {
        XCTAssertLessThanOrEqual(MemoryLayout<PageTableFormat>.size, 64)
    }

    /// Each format takes the layout whose loops fit it: the x86 family, the common LPAE
    /// 4K tables, or the general LPAE loop for everything else.
    func testLayoutChoice() throws {
        XCTAssertEqual(PageTableFormat.x86_64(levels: 5).layout, .x86)
        XCTAssertEqual(PageTableFormat.vtdSecondStage(levels: 3).layout, .x86)
        XCTAssertEqual(PageTableFormat.arm64CPU.layout, .lpae4K)
        XCTAssertEqual(try PageTableFormat.armLPAE(.stage2, pageSizes: sizes4K, ias: 40, oas: 44).layout, .lpae4K)
        XCTAssertEqual(try PageTableFormat.armLPAE(.stage2, pageSizes: sizes4K, ias: 40, oas: 40).layout, .lpae,
                       "a concatenated root")
        XCTAssertEqual(try PageTableFormat.armLPAE(.stage1, pageSizes: sizes4K, ias: 48, oas: 48, quirks: .armTTBR1)
            .layout, .lpae, "a TTBR1 range")
        XCTAssertEqual(try PageTableFormat.armLPAE(.stage1, pageSizes: sizes16K, ias: 48, oas: 48).layout, .lpae)
    }

    func testDescriptions() throws {
        XCTAssertEqual(try PageTableFormat.armLPAE(.stage2, pageSizes: sizes16K, ias: 40, oas: 40).description,
                       "lpae-s2/16K/40x16")
        XCTAssertEqual(try PageTableFormat.armLPAE(.stage1, pageSizes: sizes4K, ias: 48, oas: 48, quirks: .armTTBR1)
            .description, "lpae-s1/4K/48/ttbr1")
        XCTAssertEqual(PageTableFormat.arm64CPU.description, "lpae-s1/4K/48")
    }
}

/// Collects warnings handed to a table's `warn` handler.
final class WarningBox: @unchecked Sendable {
    private let lock = Lock()
    private var warnings: [Warning] = []
    func append(_ w: Warning) { lock.withLock { warnings.append(w) } }
    var all: [Warning] { lock.withLock { warnings } }
}
