import IOMMUCore
import XCTest

/// A snapshot of what a scenario can leak, to compare with later: frames in use, frames
/// holding extra references (pins), global PASIDs, the hardware identifiers each unit's
/// driver holds (through ``ConformanceVendor/idsInUse(on:)``: VT-d DIDs, SMMU ASIDs and
/// VMIDs), and any counter of the caller's own (iommufd objects, pinned pages).
///
/// ```swift
/// let leaks = rig.leakCheck()
/// // ... allocate, attach, map, DMA, then undo all of it ...
/// leaks.assertNoLeaks()
/// ```
public struct LeakCheck {
    /// The counts when the check started, by name.
    public let baseline: [String: Int]
    private let count: () -> [String: Int]

    /// Starts a check over `machine` and the units registered on it; `vendor` (if
    /// given) reports their identifiers; `extra` adds named counters.
    public init(machine: Machine, vendor: (any ConformanceVendor)? = nil, extra: [String: () -> Int] = [:]) {
        count = {
            var c: [String: Int] = [
                "frames in use": machine.memory.framesInUse,
                "frames with extra references": machine.memory.framesWithExtraReferences,
                "global PASIDs": machine.iommu.globalPasidsInUse,
            ]
            if let vendor {
                for unit in machine.iommus {
                    for (kind, n) in vendor.idsInUse(on: unit) { c["\(unit.name) \(kind)"] = n }
                }
            }
            for (name, counter) in extra { c[name] = counter() }
            return c
        }
        baseline = count()
    }

    /// The counts now.
    public var current: [String: Int] { count() }

    /// The counters that differ from the baseline: name, then (before, now).
    public var differences: [(name: String, before: Int, now: Int)] {
        let now = count()
        return Set(now.keys).union(baseline.keys).sorted().compactMap { name in
            let (b, n) = (baseline[name] ?? 0, now[name] ?? 0)
            return b == n ? nil : (name, b, n)
        }
    }

    /// Asserts every counter is back to its baseline; the failure names each counter
    /// that is not, with both values.
    public func assertNoLeaks(_ message: @autoclosure () -> String = "", file: StaticString = #filePath,
                              line: UInt = #line) {
        let diff = differences
        guard !diff.isEmpty else { return }
        let note = message()
        XCTFail("leaked\(note.isEmpty ? "" : " (\(note))"): "
                + diff.map { "\($0.name) \($0.before) -> \($0.now)" }.joined(separator: ", "), file: file, line: line)
    }
}
