import IOMMUCore
import IOMMUDrivers
import XCTest

/// Check 60: the hitless entry writer's transitions, as the kernel's KUnit suite
/// (`arm-smmu-v3-test.c`) pins them. A recording writer stands for the SMMU: at every
/// sync the entry must be invalid (word 0 zero, counted as a breaking update) or equal the
/// initial or the target entry on every bit the entry then in memory makes the SMMU read
/// (update-safe bits excepted). After the write the entry must equal the target byte for
/// byte, the number of syncs must be exactly the expected one, and an invalid entry may
/// appear only in a breaking update.
final class SMMUv3EntryWriterTests: XCTestCase {
    // MARK: check 60, STE transitions

    func testCheck60BypassToAbort() {
        // Bypass uses words 0 and 1, abort only word 0: switch word 0, then clean word 1.
        expectTransition(.ste, from: Fixture.bypass, to: Fixture.abort, syncs: 2, hitless: true)
    }

    func testCheck60AbortToBypass() {
        // Set word 1 while abort ignores it, then switch word 0.
        expectTransition(.ste, from: Fixture.abort, to: Fixture.bypass, syncs: 2, hitless: true)
    }

    func testCheck60CDTableToAbort() {
        expectTransition(.ste, from: Fixture.cdTable(.ssid0, ats: true), to: Fixture.abort, syncs: 2, hitless: true)
    }

    func testCheck60AbortToCDTable() {
        expectTransition(.ste, from: Fixture.abort, to: Fixture.cdTable(.ssid0, ats: true), syncs: 2, hitless: true)
    }

    func testCheck60CDTableToBypass() {
        expectTransition(.ste, from: Fixture.cdTable(.ssid0, ats: true), to: Fixture.bypass, syncs: 3, hitless: true)
    }

    func testCheck60BypassToCDTable() {
        expectTransition(.ste, from: Fixture.bypass, to: Fixture.cdTable(.ssid0, ats: true), syncs: 3, hitless: true)
    }

    func testCheck60CDTableS1DSSSSID0ToBypass() {
        // Only word 1 changes: one write, one sync.
        expectTransition(.ste, from: Fixture.cdTable(.ssid0, ats: true), to: Fixture.cdTable(.bypass, ats: true),
                         syncs: 1, hitless: true)
    }

    func testCheck60CDTableS1DSSBypassToSSID0() {
        expectTransition(.ste, from: Fixture.cdTable(.bypass, ats: true), to: Fixture.cdTable(.ssid0, ats: true),
                         syncs: 1, hitless: true)
    }

    func testCheck60S1DSSBypassToSTEBypass() {
        expectTransition(.ste, from: Fixture.cdTable(.bypass, ats: true), to: Fixture.bypass, syncs: 2, hitless: true)
    }

    func testCheck60STEBypassToS1DSSBypass() {
        expectTransition(.ste, from: Fixture.bypass, to: Fixture.cdTable(.bypass, ats: true), syncs: 2, hitless: true)
    }

    func testCheck60S2ToAbort() {
        expectTransition(.ste, from: Fixture.stage2(ats: true), to: Fixture.abort, syncs: 2, hitless: true)
    }

    func testCheck60AbortToS2() {
        expectTransition(.ste, from: Fixture.abort, to: Fixture.stage2(ats: true), syncs: 2, hitless: true)
    }

    func testCheck60S2ToBypass() {
        expectTransition(.ste, from: Fixture.stage2(ats: true), to: Fixture.bypass, syncs: 2, hitless: true)
    }

    func testCheck60BypassToS2() {
        expectTransition(.ste, from: Fixture.bypass, to: Fixture.stage2(ats: true), syncs: 2, hitless: true)
    }

    func testCheck60S1ToS2() {
        expectTransition(.ste, from: Fixture.cdTable(.ssid0, ats: true), to: Fixture.stage2(ats: true), syncs: 3,
                         hitless: true)
    }

    func testCheck60S2ToS1() {
        expectTransition(.ste, from: Fixture.stage2(ats: true), to: Fixture.cdTable(.ssid0, ats: true), syncs: 3,
                         hitless: true)
    }

    func testCheck60NonHitlessCDTablePointerAndS1DSS() {
        // Changing the CD table pointer (word 0) and S1DSS (word 1) at once cannot be
        // hitless: V=0, words 1-7, word 0.
        let from = Fixture.cdTable(.ssid0, ats: true)
        let to = Fixture.cdTable(.bypass, ats: true, pointer: 0x4B_4B4B_4B4B)
        expectTransition(.ste, from: from, to: to, syncs: 3, hitless: false)
    }

    func testCheck60S1ToS2WithStall() {
        // With stall, S2S is set in the stage-2 STE, so EATS is no longer update-safe.
        expectTransition(.ste, from: Fixture.cdTable(.ssid0, stall: true), to: Fixture.stage2(stall: true),
                         syncs: 3, hitless: true)
    }

    func testCheck60S2ToS1WithStall() {
        expectTransition(.ste, from: Fixture.stage2(stall: true), to: Fixture.cdTable(.ssid0, stall: true),
                         syncs: 3, hitless: true)
    }

    func testCheck60NestedS1DSSBypassToS2() {
        // One extra sync clears the bits the stage-2 STE ignores (EATS, MEV).
        expectTransition(.ste, from: Fixture.nested(.bypass, ats: true), to: Fixture.stage2(), syncs: 3,
                         hitless: true)
    }

    func testCheck60S2ToNestedS1DSSBypass() {
        expectTransition(.ste, from: Fixture.stage2(), to: Fixture.nested(.bypass, ats: true), syncs: 2,
                         hitless: true)
    }

    // MARK: check 60, CD transitions

    func testCheck60CDClearToS1() {
        // Words 0, 1 and 3 change: breaking (words 1-7, then word 0 with V).
        expectTransition(.cd, from: SMMUv3Words(), to: Fixture.stage1CD(asid: 1997), syncs: 2, hitless: false)
    }

    func testCheck60CDS1ToClear() {
        expectTransition(.cd, from: Fixture.stage1CD(asid: 1997), to: SMMUv3Words(), syncs: 2, hitless: false)
    }

    func testCheck60CDChangeASID778To1997() {
        // The ASID lives in word 0 with V: one store flips it.
        expectTransition(.cd, from: Fixture.stage1CD(asid: 778), to: Fixture.stage1CD(asid: 1997), syncs: 1,
                         hitless: true)
    }

    func testCheck60CDChangeASID1997To778() {
        expectTransition(.cd, from: Fixture.stage1CD(asid: 1997), to: Fixture.stage1CD(asid: 778), syncs: 1,
                         hitless: true)
    }

    func testCheck60SVACDClearToSVA() {
        expectTransition(.cd, from: SMMUv3Words(), to: Fixture.svaCD(asid: 1997, released: false), syncs: 2,
                         hitless: false)
    }

    func testCheck60SVACDToClear() {
        expectTransition(.cd, from: Fixture.svaCD(asid: 1997, released: false), to: SMMUv3Words(), syncs: 2,
                         hitless: false)
    }

    func testCheck60SVACDToReleased() {
        // EPD0 makes TTB0 ignored, so the descriptor moves between the live and the
        // "fault everything" forms hitlessly.
        expectTransition(.cd, from: Fixture.svaCD(asid: 1997, released: false),
                         to: Fixture.svaCD(asid: 1997, released: true), syncs: 2, hitless: true)
    }

    func testCheck60SVACDReleasedToLive() {
        expectTransition(.cd, from: Fixture.svaCD(asid: 1997, released: true),
                         to: Fixture.svaCD(asid: 1997, released: false), syncs: 2, hitless: true)
    }

    // MARK: check 60, invalidation arrays

    func testCheck60InvalidationArrayMergeUnrefPurge() {
        func inv(_ type: SMMUv3InvType, _ id: UInt32, ssid: UInt32 = 0) -> SMMUv3Inv { SMMUv3Inv(unit: 0, type: type, id: id, ssid: ssid) }
        func verify(_ invs: SMMUv3Invs, trash: Int, _ ids: [UInt32], _ users: [Int], _ ssids: [UInt32],
                    line: UInt = #line) {
            let live = Array(invs.entries.prefix(invs.count))
            XCTAssertEqual(invs.count, ids.count, "num_invs", line: line)
            XCTAssertEqual(invs.trashCount, trash, "num_trashes", line: line)
            XCTAssertEqual(live.map(\.id), ids, "ids", line: line)
            XCTAssertEqual(live.map(\.users), users, "users", line: line)
            XCTAssertEqual(live.map(\.ssid), ssids, "ssids", line: line)
        }
        var invs1 = SMMUv3Invs([inv(.s2VMID, 1), inv(.s2VMIDS1Clear, 1), inv(.ats, 3)])
        var invs2 = SMMUv3Invs([inv(.s2VMID, 1), inv(.ats, 4), inv(.ats, 5)])
        var invs3 = SMMUv3Invs([inv(.s2VMID, 1), inv(.ats, 5), inv(.ats, 6)])
        let invs4 = SMMUv3Invs([inv(.ats, 10, ssid: 1), inv(.ats, 10, ssid: 3), inv(.ats, 12, ssid: 1)])
        var invs5 = SMMUv3Invs([inv(.ats, 10, ssid: 2), inv(.ats, 10, ssid: 3), inv(.ats, 12, ssid: 2)])

        let empty = SMMUv3Invs()
        XCTAssertEqual(empty.count, 0)
        XCTAssertFalse(empty.hasATS)
        var a = empty.merging(invs1)
        verify(a, trash: 0, [1, 1, 3], [1, 1, 1], [0, 0, 0])
        XCTAssertTrue(a.hasATS)
        a = a.merging(invs2)
        verify(a, trash: 0, [1, 1, 3, 4, 5], [2, 1, 1, 1, 1], [0, 0, 0, 0, 0])
        a.unref(&invs2)
        verify(a, trash: 0, [1, 1, 3], [1, 1, 1], [0, 0, 0])
        a = a.merging(invs3)
        verify(a, trash: 0, [1, 1, 3, 5, 6], [2, 1, 1, 1, 1], [0, 0, 0, 0, 0])
        a.unref(&invs1)
        verify(a, trash: 2, [1, 1, 3, 5, 6], [1, 0, 0, 1, 1], [0, 0, 0, 0, 0])
        XCTAssertEqual(invs1.entries.map(\.users), [1, 0, 0], "unref tells which entries became trash")
        a = a.purged()!
        verify(a, trash: 0, [1, 5, 6], [1, 1, 1], [0, 0, 0])
        a.unref(&invs3)
        XCTAssertEqual(a.count, 0)
        XCTAssertEqual(a.trashCount, 0)
        a = a.merging(invs4)
        verify(a, trash: 0, [10, 10, 12], [1, 1, 1], [1, 3, 1])
        a = a.merging(invs5)
        verify(a, trash: 0, [10, 10, 10, 12, 12], [1, 1, 2, 1, 1], [1, 2, 3, 1, 2])
        a.unref(&invs5)
        verify(a, trash: 1, [10, 10, 10, 12], [1, 0, 1, 1], [1, 2, 3, 1])
        a = a.purged()!
        verify(a, trash: 0, [10, 10, 12], [1, 1, 1], [1, 3, 1])
        XCTAssertNil(a.purged(), "nothing to purge")
    }

    // MARK: the writer itself

    func testWriterStoresNothingAndSyncsNeverForAnUnchangedEntry() {
        let ste = Fixture.cdTable(.ssid0, ats: true)
        var syncs = 0
        let update = SMMUv3EntryWriter(kind: .ste).write(current: ste, target: ste) { _ in syncs += 1 }
        XCTAssertEqual(update, .direct)
        XCTAssertEqual(syncs, 0)
    }

    func testEATSChangeAloneIsUpdateSafe() {
        // ATS off -> on on a CD-table STE changes only EATS, which is update-safe: one
        // direct write.
        let writer = SMMUv3EntryWriter(kind: .ste)
        XCTAssertEqual(writer.classify(current: Fixture.cdTable(.ssid0, ats: false),
                                       target: Fixture.cdTable(.ssid0, ats: true)), .direct)
    }

    func testEATSIsNotUpdateSafeWhenS2SIsInvolved() {
        let writer = SMMUv3EntryWriter(kind: .ste)
        XCTAssertEqual(writer.classify(current: Fixture.stage2(ats: false, stall: true),
                                       target: Fixture.stage2(ats: true, stall: true)),
                       .hitless(criticalWord: 1))
    }

    // MARK: helpers

    /// Runs the writer from `from` to `to` against a recording SMMU and checks every
    /// sync, the final bytes, the sync count and whether an invalid entry was written.
    private func expectTransition(_ kind: SMMUv3EntryKind, from: SMMUv3Words, to: SMMUv3Words, syncs expected: Int,
                                  hitless: Bool, file: StaticString = #filePath, line: UInt = #line) {
        var memory = from
        var syncs = 0
        var invalidWritten = false
        SMMUv3EntryWriter(kind: kind).write(current: from, target: to) { step in
            // The SMMU only sees what was stored: copy the step's words, then "sync".
            for i in step.changedWords { memory[i] = step.entry[i] }
            syncs += 1
            if memory[0] == 0 {
                invalidWritten = true
                return
            }
            let used = kind.usedBits(memory)
            let matchesFrom = !differs(memory, used: used, from: from, safe: kind.updateSafeBits(current: memory, target: from))
            let matchesTo = !differs(memory, used: used, from: to, safe: kind.updateSafeBits(current: memory, target: to))
            XCTAssertTrue(matchesFrom || matchesTo,
                          "sync \(syncs): the entry is neither the old nor the new one on the bits in use", file: file,
                          line: line)
        }
        XCTAssertEqual(syncs, expected, "sync count", file: file, line: line)
        XCTAssertEqual(invalidWritten, !hitless, hitless ? "an invalid entry was written" : "no invalid step",
                       file: file, line: line)
        XCTAssertEqual(memory, to, "final entry", file: file, line: line)
    }

    private func differs(_ entry: SMMUv3Words, used: SMMUv3Words, from other: SMMUv3Words, safe: SMMUv3Words) -> Bool {
        let mask = used & ~safe
        return (entry & mask) != (other & mask)
    }

    /// The entries of the kernel's KUnit suite: an SMMU with stalls, attribute override and
    /// range invalidation; a CD table at 0xF0F0F0F0F0F0 in the two-level format with
    /// S1CDMax all ones; a stage 2 and a stage 1 with odd TCR values and the table base
    /// 0xdaedbeefdeadbeef.
    private enum Fixture {
        static let features: SMMUv3Features = [.stalls, .attrTypesOverride, .rangeInvalidation]
        static let fakeTable: PhysicalAddress = 0xdaed_beef_dead_beef

        static var bypass: SMMUv3Words { SMMUv3STE.bypass(features: features).words }
        static var abort: SMMUv3Words { SMMUv3STE.abort.words }

        static func cdTable(_ s1dss: SMMUv3STE.S1DSS, ats: Bool = false, stall: Bool = false,
                            pointer: UInt64 = 0xF0F0_F0F0_F0F0) -> SMMUv3Words {
            let table = SMMUv3CDTableConfig(pointer: pointer, format: SMMUv3CDTableConfig.twoLevel, cdMax: 0xFF)
            return SMMUv3STE.cdTable(table, s1dss: s1dss, ats: ats, stallEnabled: stall, features: features).words
        }

        static func stage2(ats: Bool = false, stall: Bool = false) -> SMMUv3Words {
            let vtcr = SMMUv3STE.VTCR(t0sz: 4, sl0: 3, irgn0: 2, orgn0: 1, sh0: 3, tg: 2, ps: 1)
            return SMMUv3STE.stage2(vmid: 0, vtcr: vtcr, tableBase: fakeTable, ats: ats, stallEnabled: stall,
                                    features: features).words
        }

        /// `ARM_SMMU_MASTER_TEST_NESTED`: a CD-table STE turned NESTED on the stage 2.
        static func nested(_ s1dss: SMMUv3STE.S1DSS, ats: Bool) -> SMMUv3Words {
            var w = cdTable(s1dss, ats: ats)
            let s2 = stage2(ats: ats)
            w[0] |= SMMUv3STE.Config.nested.rawValue << 1
            w[1] |= SMMUv3STE.mev
            for i in 2..<8 { w[i] = s2[i] }
            return w
        }

        static func stage1CD(asid: UInt16) -> SMMUv3Words {
            let tcr = SMMUv3TCR(t0sz: 4, tg: 2, irgn: 2, orgn: 1, sh: 3, ips: 1)
            return SMMUv3CD.stage1(asid: asid, tcr: tcr, ttbr: fakeTable, mair: 0xabc_def0_1234_5678,
                                   stallEnabled: false).words
        }

        static func svaCD(asid: UInt16, released: Bool) -> SMMUv3Words {
            SMMUv3CD.sva(asid: asid, pgd: released ? nil : fakeTable, vaBits: 48, ips: 5, mair: 0x0400_FF44_0C00_0000,
                         stallEnabled: false, features: features).words
        }
    }
}
