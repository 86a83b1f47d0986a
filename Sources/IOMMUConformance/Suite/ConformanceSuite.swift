import Foundation
import IOMMUCore
import XCTest

/// The conformance suite: every vendor-neutral check, and the runner that runs them on
/// one vendor from an XCTest method, each reported on its own.
///
/// ```swift
/// final class ToyConformanceTests: XCTestCase {
///     func testConformance() { ConformanceSuite.run(on: ToyVendor(), in: self) }
/// }
/// ```
///
/// The run prints one XCTest case per check, named `Conformance.<vendor>.<check>`, that
/// passed, failed (with its assertion messages) or was skipped (naming the capabilities
/// the vendor lacks), then a one-line summary. The calling test fails, listing the
/// failed checks, if any check failed.
public enum ConformanceSuite {
    /// The environment variable that narrows a run to the checks whose names start with
    /// one of its comma-separated prefixes (`IOMMUKIT_CONFORMANCE_FILTER=check2,sva`).
    public static let filterVariable = "IOMMUKIT_CONFORMANCE_FILTER"

    /// Every check, in report order. Adding a check here runs it on every vendor.
    public static let checks: [ConformanceCheck] = attachChecks + ownershipChecks + mapChecks + shapeChecks
        + dmaChecks + svaChecks + pageRequestChecks

    /// Runs `checks` (default: all, narrowed by ``filterVariable``) on `vendor` as a
    /// nested XCTest suite `Conformance[<vendor>]` inside `testCase`, and returns what
    /// happened. Failed checks are recorded as one failure of `testCase` that names them;
    /// a filter that matches no check is a failure too.
    @discardableResult
    public static func run(on vendor: any ConformanceVendor, in testCase: XCTestCase,
                           checks: [ConformanceCheck] = ConformanceSuite.checks,
                           filter: String? = ProcessInfo.processInfo.environment[ConformanceSuite.filterVariable],
                           file: StaticString = #filePath, line: UInt = #line) -> ConformanceReport {
        let prefixes = (filter ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        let selected = prefixes.isEmpty ? checks : checks.filter { c in prefixes.contains { c.name.hasPrefix($0) } }
        guard !selected.isEmpty else {
            testCase.recordFailure(withDescription: "conformance filter \"\(filter ?? "")\" matches no check",
                                   inFile: "\(file)", atLine: Int(line), expected: true)
            return ConformanceReport(vendor: vendor.name, outcomes: [])
        }
        let report = self.report(on: vendor, checks: selected)
        let failed = report.failed
        if !failed.isEmpty {
            testCase.recordFailure(
                withDescription: "\(failed.count) conformance check(s) failed on \(vendor.name): "
                    + failed.map { "\($0.check): \($0.reason.prefix { $0 != "\n" })" }.joined(separator: "; ")
                    + " (each check's own failure shows the events that led to it)",
                inFile: "\(file)", atLine: Int(line), expected: true)
        }
        return report
    }

    /// Runs `checks` on `vendor` as a nested XCTest suite, prints each check's outcome
    /// and the summary, and returns the report, failing no test: for a test that shows
    /// the suite catching a deliberately buggy driver, and asserts on the report.
    /// ``run(on:in:checks:filter:file:line:)`` is the call for a vendor that must conform.
    public static func report(on vendor: any ConformanceVendor, checks: [ConformanceCheck]) -> ConformanceReport {
        let suite = XCTestSuite(name: "Conformance[\(vendor.name)]")
        let cases: [(ConformanceCheck, Conformance)] = checks.map { check in
            let body = check.body
            let missing = check.missing(on: vendor)
            let name = vendor.name
            let t = Conformance(name: "\(vendor.name).\(check.name)") { _ in
                guard missing.isEmpty else { throw XCTSkip("\(name) lacks \(missing)") }
                try body(vendor)
            }
            suite.addTest(t)
            return (check, t)
        }
        suite.run()
        let outcomes: [ConformanceReport.Outcome] = cases.map { check, t in
            let missing = check.missing(on: vendor)
            if !missing.isEmpty { return .init(check: check.name, result: .skipped(missing: missing)) }
            if let run = t.testRun, run.totalFailureCount > 0 {
                return .init(check: check.name, result: .failed(t.failures.first ?? "failed"))
            }
            if let run = t.testRun, run.hasBeenSkipped {
                return .init(check: check.name, result: .failed("skipped by its body, which a check must not do"))
            }
            return .init(check: check.name, result: .passed)
        }
        let report = ConformanceReport(vendor: vendor.name, outcomes: outcomes)
        print(report.summary)
        return report
    }
}

/// What one run of the suite on one vendor found.
public struct ConformanceReport: Sendable {
    /// How one check ended.
    public enum Result: Sendable, Hashable {
        /// The vendor conforms.
        case passed
        /// The vendor does not conform: the first failure message.
        case failed(String)
        /// Not run: the vendor lacks these capabilities.
        case skipped(missing: VendorCapabilities)
    }

    /// One check's outcome.
    public struct Outcome: Sendable, Hashable {
        /// The check's name.
        public let check: String
        /// How it ended.
        public let result: Result
    }

    /// The vendor's name.
    public let vendor: String
    /// Every check run, in order.
    public let outcomes: [Outcome]

    /// The names of the checks that passed.
    public var passed: [String] { outcomes.compactMap { $0.result == .passed ? $0.check : nil } }

    /// The checks that failed, with their first failure message.
    public var failed: [(check: String, reason: String)] {
        outcomes.compactMap { if case .failed(let r) = $0.result { ($0.check, r) } else { nil } }
    }

    /// The checks skipped, with the capabilities the vendor lacks.
    public var skipped: [(check: String, missing: VendorCapabilities)] {
        outcomes.compactMap { if case .skipped(let m) = $0.result { ($0.check, m) } else { nil } }
    }

    /// `Conformance[VTd]: 67 checks, 63 passed, 0 failed, 4 skipped (userPasidTable 3, nesting 3, anyReservedRegion 1)`:
    /// skipped checks are counted per missing capability.
    public var summary: String {
        var perCapability: [String: Int] = [:]
        for s in skipped { for name in s.missing.names { perCapability[name, default: 0] += 1 } }
        let why = VendorCapabilities.named.compactMap { _, name in perCapability[name].map { "\(name) \($0)" } }
        return "Conformance[\(vendor)]: \(outcomes.count) checks, \(passed.count) passed, \(failed.count) failed, "
            + "\(skipped.count) skipped" + (why.isEmpty ? "" : " (\(why.joined(separator: ", ")))")
    }
}

/// The XCTest case of one check: the run's test cases are instances of it, so they print
/// as `Conformance.<vendor>.<check>`. It keeps the failure messages for the report, each
/// followed by the last events of the machines the check built (``MachineWatch``), so
/// the message shows the sequence that led to the failure.
final class Conformance: XCTestCase {
    nonisolated(unsafe) private(set) var failures: [String] = []
    private let watch = MachineWatch()

    /// How many of a machine's newest events a failure message shows.
    static let traceLines = 20

    override func invokeTest() {
        watch.start()
        defer { watch.stop() }
        super.invokeTest()
    }

    override func recordFailure(withDescription description: String, inFile filePath: String, atLine lineNumber: Int,
                                expected: Bool) {
        let message = description + watch.failureContext(lines: Self.traceLines)
        failures.append(message)
        super.recordFailure(withDescription: message, inFile: filePath, atLine: lineNumber, expected: expected)
    }
}

