import IOMMUConformance
import VendorFixtures
import XCTest

/// The conformance suite on each in-tree vendor: one call each. Every check is reported
/// on its own as `Conformance.<vendor>.<check>`; set IOMMUKIT_CONFORMANCE_FILTER to a
/// comma-separated list of name prefixes to run a subset.
final class ConformanceRunTests: XCTestCase {
    func testMockConformance() { ConformanceSuite.run(on: MockVendor(), in: self) }

    func testVTdConformance() { ConformanceSuite.run(on: VTdVendor(), in: self) }

    func testSMMUv2Conformance() { ConformanceSuite.run(on: SMMUv2Vendor(), in: self) }
    func testSMMUv3Conformance() { ConformanceSuite.run(on: SMMUv3Vendor(), in: self) }
}
