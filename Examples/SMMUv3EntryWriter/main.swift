import Foundation
import IOMMUDrivers
import Platform

// Every transition of the SMMUv3 hitless entry writer (check 60), step by step: which
// 64-bit words each step stores, the sync after it, and what the SMMU would make of the
// entry at that moment. `swift run SMMUv3EntryWriter` prints them; `--json` prints the
// same as JSON.

/// One transition: an entry of `kind` from `from` to `to`.
struct Transition {
    let title: String
    let kind: SMMUv3EntryKind
    let from: SMMUv3Words
    let to: SMMUv3Words
}

/// One step as printed.
struct Step: Encodable {
    let sync: Int
    let words: [Int]
    let values: [String]
    let smmuSees: String
}

/// One transition as printed.
struct Report: Encodable {
    let transition: String
    let entry: String
    let update: String
    let hitless: Bool
    let syncs: Int
    let before: String
    let after: String
    let steps: [Step]
}

/// The entries of the kernel's KUnit suite (`arm-smmu-v3-test.c`): an SMMU with stalls and
/// attribute override, a CD table at 0xF0F0F0F0F0F0 in the two-level format, stage-2 and
/// stage-1 tables at 0xdaedbeefdeadbeef with odd TCR values.
enum Fixture {
    static let features: SMMUv3Features = [.stalls, .attrTypesOverride, .rangeInvalidation]
    static let table: PhysicalAddress = 0xdaed_beef_dead_beef
    static var bypass: SMMUv3Words { SMMUv3STE.bypass(features: features).words }
    static var abort: SMMUv3Words { SMMUv3STE.abort.words }
    static func cdTable(_ dss: SMMUv3STE.S1DSS, ats: Bool = true, stall: Bool = false,
                        pointer: UInt64 = 0xF0F0_F0F0_F0F0) -> SMMUv3Words {
        let t = SMMUv3CDTableConfig(pointer: pointer, format: SMMUv3CDTableConfig.twoLevel, cdMax: 0xFF)
        return SMMUv3STE.cdTable(t, s1dss: dss, ats: ats, stallEnabled: stall, features: features).words
    }
    static func stage2(ats: Bool = true, stall: Bool = false) -> SMMUv3Words {
        let vtcr = SMMUv3STE.VTCR(t0sz: 4, sl0: 3, irgn0: 2, orgn0: 1, sh0: 3, tg: 2, ps: 1)
        return SMMUv3STE.stage2(vmid: 0, vtcr: vtcr, tableBase: table, ats: ats, stallEnabled: stall,
                                features: features).words
    }
    static var nested: SMMUv3Words {
        var w = cdTable(.bypass)
        let s2 = stage2()
        w[0] |= SMMUv3STE.Config.nested.rawValue << 1
        w[1] |= SMMUv3STE.mev
        for i in 2..<8 { w[i] = s2[i] }
        return w
    }
    static func s1CD(asid: UInt16) -> SMMUv3Words {
        SMMUv3CD.stage1(asid: asid, tcr: SMMUv3TCR(t0sz: 4, tg: 2, irgn: 2, orgn: 1, sh: 3, ips: 1), ttbr: table,
                        mair: 0xabc_def0_1234_5678, stallEnabled: false).words
    }
    static func svaCD(released: Bool) -> SMMUv3Words {
        SMMUv3CD.sva(asid: 1997, pgd: released ? nil : table, vaBits: 48, ips: 5, mair: 0x0400_FF44_0C00_0000,
                     stallEnabled: false, features: features).words
    }

    static let transitions: [Transition] = [
        Transition(title: "bypass -> abort", kind: .ste, from: bypass, to: abort),
        Transition(title: "abort -> bypass", kind: .ste, from: abort, to: bypass),
        Transition(title: "CD table (S1DSS=SSID0) -> abort", kind: .ste, from: cdTable(.ssid0), to: abort),
        Transition(title: "abort -> CD table (S1DSS=SSID0)", kind: .ste, from: abort, to: cdTable(.ssid0)),
        Transition(title: "CD table -> bypass", kind: .ste, from: cdTable(.ssid0), to: bypass),
        Transition(title: "bypass -> CD table", kind: .ste, from: bypass, to: cdTable(.ssid0)),
        Transition(title: "CD table S1DSS SSID0 -> BYPASS", kind: .ste, from: cdTable(.ssid0), to: cdTable(.bypass)),
        Transition(title: "CD table S1DSS BYPASS -> SSID0", kind: .ste, from: cdTable(.bypass), to: cdTable(.ssid0)),
        Transition(title: "CD table (S1DSS=BYPASS) -> STE bypass", kind: .ste, from: cdTable(.bypass), to: bypass),
        Transition(title: "STE bypass -> CD table (S1DSS=BYPASS)", kind: .ste, from: bypass, to: cdTable(.bypass)),
        Transition(title: "S2 -> abort", kind: .ste, from: stage2(), to: abort),
        Transition(title: "abort -> S2", kind: .ste, from: abort, to: stage2()),
        Transition(title: "S2 -> bypass", kind: .ste, from: stage2(), to: bypass),
        Transition(title: "bypass -> S2", kind: .ste, from: bypass, to: stage2()),
        Transition(title: "S1 (CD table) -> S2", kind: .ste, from: cdTable(.ssid0), to: stage2()),
        Transition(title: "S2 -> S1 (CD table)", kind: .ste, from: stage2(), to: cdTable(.ssid0)),
        Transition(title: "CD table pointer and S1DSS together (no flow does this)", kind: .ste, from: cdTable(.ssid0),
                   to: cdTable(.bypass, pointer: 0x4B_4B4B_4B4B)),
        Transition(title: "S1 -> S2 with stall (S2S: EATS no longer update-safe)", kind: .ste,
                   from: cdTable(.ssid0, ats: false, stall: true), to: stage2(ats: false, stall: true)),
        Transition(title: "S2 -> S1 with stall", kind: .ste, from: stage2(ats: false, stall: true),
                   to: cdTable(.ssid0, ats: false, stall: true)),
        Transition(title: "nested (S1DSS=BYPASS, ATS) -> S2 (no ATS)", kind: .ste, from: nested, to: stage2(ats: false)),
        Transition(title: "S2 (no ATS) -> nested (S1DSS=BYPASS, ATS)", kind: .ste, from: stage2(ats: false), to: nested),
        Transition(title: "CD: clear -> S1 (ASID 1997)", kind: .cd, from: SMMUv3Words(), to: s1CD(asid: 1997)),
        Transition(title: "CD: S1 (ASID 1997) -> clear", kind: .cd, from: s1CD(asid: 1997), to: SMMUv3Words()),
        Transition(title: "CD: ASID 778 -> 1997", kind: .cd, from: s1CD(asid: 778), to: s1CD(asid: 1997)),
        Transition(title: "CD: ASID 1997 -> 778", kind: .cd, from: s1CD(asid: 1997), to: s1CD(asid: 778)),
        Transition(title: "CD: clear -> SVA", kind: .cd, from: SMMUv3Words(), to: svaCD(released: false)),
        Transition(title: "CD: SVA -> clear", kind: .cd, from: svaCD(released: false), to: SMMUv3Words()),
        Transition(title: "CD: SVA -> released (EPD0, mm exit)", kind: .cd, from: svaCD(released: false),
                   to: svaCD(released: true)),
        Transition(title: "CD: released -> SVA", kind: .cd, from: svaCD(released: true), to: svaCD(released: false)),
    ]
}

/// What the SMMU makes of `entry`: the configuration a transaction meets.
func smmuSees(_ kind: SMMUv3EntryKind, _ entry: SMMUv3Words) -> String {
    if kind == .cd {
        let cd = SMMUv3CD(words: entry)
        guard cd.isValid else { return "invalid CD: a transaction of this PASID is C_BAD_CD" }
        if cd.ttb0Disabled { return "ASID \(cd.asid), TTB0 walks disabled: every access faults (F_TRANSLATION)" }
        return "ASID \(cd.asid), stage-1 table at \(cd.ttb0)"
    }
    let ste = SMMUv3STE(words: entry)
    guard ste.isValid else { return "invalid STE: every transaction is C_BAD_STE" }
    guard let config = ste.config else { return "illegal STE (Config \(ste.rawConfig)): C_BAD_STE" }
    let ats = ste.rawEATS == SMMUv3STE.EATS.translate.rawValue ? ", ATS allowed" : ""
    switch config {
    case .abort: return "abort: every transaction is terminated"
    case .bypass: return "bypass: transactions pass untranslated"
    case .stage2: return "stage 2 only, VMID \(ste.vmid), table at \(ste.s2TableBase)" + ats
    case .stage1, .nested:
        let rid: String = switch ste.s1dss {
        case .ssid0?: "RID through CD 0"
        case .bypass?: "RID bypasses stage 1"
        default: "RID terminated"
        }
        let s2 = config == .nested ? " on stage 2 VMID \(ste.vmid)" : ""
        return "stage 1 through the CD table at 0x" + String(ste.s1ContextPointer, radix: 16) + s2 + ", " + rid + ats
    }
}

func hex(_ v: UInt64) -> String { String(format: "0x%016llx", v) }

func run(_ t: Transition) -> Report {
    let writer = SMMUv3EntryWriter(kind: t.kind)
    var memory = t.from
    var steps: [Step] = []
    let update = writer.write(current: t.from, target: t.to) { step in
        for i in step.changedWords { memory[i] = step.entry[i] }
        steps.append(Step(sync: steps.count + 1, words: step.changedWords,
                          values: step.changedWords.map { hex(step.entry[$0]) }, smmuSees: smmuSees(t.kind, memory)))
    }
    precondition(memory == t.to, "the writer must end on the target")
    return Report(transition: t.title, entry: t.kind == .ste ? "STE" : "CD", update: "\(update)",
                  hitless: update != .breaking, syncs: steps.count, before: smmuSees(t.kind, t.from),
                  after: smmuSees(t.kind, t.to), steps: steps)
}

let reports = Fixture.transitions.map(run)
if CommandLine.arguments.contains("--json") {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
    print(String(decoding: try encoder.encode(reports), as: UTF8.self))
} else {
    print("The SMMUv3 hitless entry writer (arm_smmu_write_entry) on every transition of check 60.")
    print("Each step stores the listed 64-bit words, then syncs (CFGI_STE or CFGI_CD, then CMD_SYNC);")
    print("\"SMMU sees\" is the configuration a transaction meets from that sync until the next.")
    for (n, r) in reports.enumerated() {
        print("")
        print("\(n + 1). \(r.entry) \(r.transition): \(r.update), \(r.syncs) sync\(r.syncs == 1 ? "" : "s")")
        print("   before: \(r.before)")
        for s in r.steps {
            let words = zip(s.words, s.values).map { "w\($0)=\($1)" }.joined(separator: " ")
            print("   sync \(s.sync): \(words)")
            print("           SMMU sees: \(s.smmuSees)")
        }
        if r.steps.isEmpty { print("   nothing to write") }
    }
    let breaking = reports.filter { !$0.hitless }.map(\.transition)
    print("")
    print("\(reports.count) transitions, \(reports.count - breaking.count) hitless; breaking (the entry is invalid for a while): "
          + breaking.joined(separator: "; "))
}
