import IOMMUConformance
import XCTest

/// The whole conformance suite on the toy IOMMU, one line. Each check prints as
/// `Conformance.Toy.<check>` (passed, failed with its message, or skipped naming the
/// capability the toy lacks), then a summary line.
final class ToyConformanceTests: XCTestCase {
    func testConformance() {
        ConformanceSuite.run(on: ToyVendor(), in: self)
    }
}
