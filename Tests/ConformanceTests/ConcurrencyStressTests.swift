import Foundation
import IOMMUConformance
import VendorFixtures
import XCTest

/// The kernel's concurrency contract on every in-tree vendor: eight threads map, unmap
/// and DMA on disjoint ranges of one domain (see ``ConcurrencyStress``), and every DMA
/// result is checked against what was mapped at that moment, then leaks are checked.
/// A vendor joins with one line here. CI also runs this class under ThreadSanitizer.
///
/// `IOMMUKIT_STRESS_OPERATIONS` sets the operations per thread (default 3000) for a
/// longer run.
final class ConcurrencyStressTests: XCTestCase {
    func testMock() throws { try assertContractHolds(MockVendor()) }

    func testVTd() throws { try assertContractHolds(VTdVendor()) }

    func testSMMUv2() throws { try assertContractHolds(SMMUv2Vendor()) }

    func testSMMUv3() throws { try assertContractHolds(SMMUv3Vendor()) }

    /// Runs the stress on `vendor` and fails with its report unless it found nothing.
    private func assertContractHolds(_ vendor: any ConformanceVendor, file: StaticString = #filePath,
                                     line: UInt = #line) throws {
        let operations = ProcessInfo.processInfo.environment["IOMMUKIT_STRESS_OPERATIONS"].flatMap { Int($0) } ?? 3000
        let report = try ConcurrencyStress(operationsPerThread: operations).run(on: vendor)
        print(report)
        XCTAssertTrue(report.isClean, "\(report)", file: file, line: line)
        XCTAssertGreaterThan(report.observations, 0, "no DMA checked another thread's range", file: file, line: line)
    }
}
