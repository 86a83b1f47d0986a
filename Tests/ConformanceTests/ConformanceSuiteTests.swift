import IOMMUConformance
import IOMMUCore
import IOMMUDrivers
import VendorFixtures
import XCTest

/// The suite itself: it catches buggy drivers, reports skips with the missing
/// capability, refuses an empty selection, and names its checks uniquely.
final class ConformanceSuiteTests: XCTestCase {
    /// A test case that is never run, to receive the runner's summary failure.
    private final class Receiver: XCTestCase {
        nonisolated(unsafe) var failures: [String] = []
        override func recordFailure(withDescription description: String, inFile filePath: String, atLine lineNumber: Int,
                                    expected: Bool) {
            failures.append(description)
        }
    }

    private func receiver() -> Receiver { Receiver(name: "receiver") { _ in } }

    /// Each deliberate VT-d driver bug fails exactly the checks that should catch it, out
    /// of the whole suite. (The nested runs print those checks as failed, under a vendor
    /// named after the bug.)
    func testEachDeliberateVTdBugFailsTheChecksThatCatchIt() {
        let cases: [(VTdDriverBugs, String, Set<String>)] = [
            (.skipIOTLBFlushOnUnmap, "skipIOTLBFlushOnUnmap",
             ["check32DMAFaultsAfterUnmapAndStaleWindowIsTracked", "dmaDomainSharedByTwoDevicesSurvivesOneDetach",
              "dmaAPIStrictMapUnmap"]),
            (.freeDIDWhileReferenced, "freeDIDWhileReferenced", ["dmaDomainSharedByTwoDevicesSurvivesOneDetach"]),
            (.skipPRQDrainOnTeardown, "skipPRQDrainOnTeardown",
             ["check46DetachAnswersPendingRequestsBeforeTheHandleGoes"]),
        ]
        for (bug, label, expected) in cases {
            var vendor = VTdVendor(bugs: bug)
            vendor.name = "VTdWithBug_\(label)"
            let report = ConformanceSuite.report(on: vendor, checks: ConformanceSuite.checks)
            XCTAssertEqual(Set(report.failed.map(\.check)), expected, label)
        }
    }

    /// `run(on:in:)` turns failed checks into one failure of the calling test that names
    /// each of them.
    func testFailedChecksFailTheCallingTestByName() {
        var vendor = VTdVendor(bugs: .skipIOTLBFlushOnUnmap)
        vendor.name = "VTdWithBug_skipIOTLBFlushOnUnmap"
        let into = receiver()
        let report = ConformanceSuite.run(on: vendor, in: into, filter: "check32,dmaAPIStrict")
        XCTAssertEqual(report.failed.map(\.check),
                       ["check32DMAFaultsAfterUnmapAndStaleWindowIsTracked", "dmaAPIStrictMapUnmap"])
        XCTAssertEqual(into.failures.count, 1)
        XCTAssertTrue(into.failures.first?.hasPrefix("2 conformance check(s) failed on VTdWithBug_skipIOTLBFlushOnUnmap: "
                                                     + "check32DMAFaultsAfterUnmapAndStaleWindowIsTracked: ") == true,
                      into.failures.first ?? "")
        XCTAssertTrue(into.failures.first?.contains("; dmaAPIStrictMapUnmap: ") == true)
    }

    /// A failed check's message ends with the last events of the machine it built, as
    /// trace lines: here the unmap whose IOTLB flush the buggy driver skipped.
    func testFailureMessageCarriesTheMachinesLastEvents() throws {
        var vendor = VTdVendor(bugs: .skipIOTLBFlushOnUnmap)
        vendor.name = "VTdWithBug_skipIOTLBFlushOnUnmap"
        let report = ConformanceSuite.report(on: vendor, checks: ConformanceSuite.checks.filter { $0.name.hasPrefix("check32") })
        let reason = try XCTUnwrap(report.failed.first?.reason)
        let lines = reason.split(separator: "\n").map(String.init)
        let heading = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("last ") && $0.hasSuffix(" events of machine:") }, reason)
        let trace = lines[(heading + 1)...]
        XCTAssertLessThanOrEqual(trace.count, 20)
        XCTAssertTrue(trace.allSatisfy { $0.contains(" [000] .....") }, reason)
        XCTAssertTrue(trace.contains { $0.contains(" iommu:unmap: ") }, reason)
        XCTAssertFalse(trace.contains { $0.contains("intel_iommu:qi_submit: p_iotlb_inv") }, "the bug skips the flush")
    }

    /// A check a vendor lacks a capability for is skipped, naming the capability, and
    /// counted in the summary by capability.
    func testSkipsNameTheMissingCapability() {
        let into = receiver()
        let report = ConformanceSuite.run(on: VTdVendor(), in: into, filter: "shapeAllPasids,check07")
        XCTAssertEqual(report.passed, [])
        XCTAssertEqual(report.skipped.map(\.check),
                       ["check07FailedSetDevPasidRollsBackTheGroup", "shapeAllPasidsErrors",
                        "shapeAllPasidsNeedsUserPasidTable"])
        XCTAssertEqual(report.skipped.map(\.missing.description),
                       ["failureInjection", "userPasidTable, nesting", "userPasidTable, nesting, driverVariants"])
        XCTAssertEqual(report.summary, "Conformance[VTd]: 3 checks, 0 passed, 0 failed, 3 skipped "
                       + "(userPasidTable 2, nesting 2, driverVariants 1, failureInjection 1)")
        XCTAssertEqual(into.failures, [], "skips are not failures")
    }

    /// A filter that selects nothing fails the calling test rather than passing empty.
    func testFilterMatchingNothingFails() {
        let into = receiver()
        let report = ConformanceSuite.run(on: MockVendor(), in: into, filter: "noSuchCheck")
        XCTAssertTrue(report.outcomes.isEmpty)
        XCTAssertEqual(into.failures, ["conformance filter \"noSuchCheck\" matches no check"])
    }

    /// Every check has its own name.
    func testCheckNamesAreUnique() {
        let names = ConformanceSuite.checks.map(\.name)
        XCTAssertEqual(Set(names).count, names.count)
        XCTAssertTrue(names.allSatisfy { $0.first!.isLowercase && $0.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" } })
    }

    /// A vendor that declares a capability without implementing its hook fails the
    /// checks that need it, with a message naming the hook, instead of passing them.
    func testDeclaredCapabilityWithoutItsHookFails() {
        struct Boasting: ConformanceVendor {
            let name = "Boasting"
            let capabilities: VendorCapabilities = [.pasid, .failureInjection]
            func makeUnit(on machine: Machine, sharingDriverWith sibling: IOMMUDevice?) throws -> IOMMUDevice {
                try MockVendor().makeUnit(on: machine, sharingDriverWith: sibling)
            }
        }
        let into = receiver()
        let report = ConformanceSuite.run(on: Boasting(), in: into, filter: "check26")
        XCTAssertEqual(report.failed.map(\.check), ["check26FailedMapLeavesNothingMapped"])
        XCTAssertTrue(report.failed.first?.reason.contains("failMapPages(after:in:)") == true,
                      report.failed.first?.reason ?? "")
    }
}
