import IOMMUCore

/// One vendor-neutral check of the conformance suite: a stable name (carrying the
/// check's number where the project numbers it, e.g. `check23MapRejectsMisalignedSize`),
/// the capabilities it needs, and its body, which builds its own rigs from the vendor and
/// asserts with XCTest.
///
/// The suite's checks are the static properties of this type listed in
/// ``ConformanceSuite/checks``; each one's doc comment says which kernel behaviour it
/// checks. A vendor author may build extra checks of their own with
/// ``init(name:requires:_:)`` and run them the same way.
public struct ConformanceCheck: Sendable {
    /// The check's name, used in test names and reports.
    public let name: String
    /// The capabilities the check needs; on a vendor without them it is skipped.
    public let requires: VendorCapabilities
    /// The body: throws (or records an XCTest failure) when the vendor does not conform.
    public let body: @Sendable (any ConformanceVendor) throws -> Void

    /// A check named `name` (by default the name of the static property that builds it).
    public init(name: String = #function, requires: VendorCapabilities = [],
                _ body: @escaping @Sendable (any ConformanceVendor) throws -> Void) {
        self.name = name
        self.requires = requires
        self.body = body
    }

    /// The capabilities in ``requires`` that `vendor` lacks.
    public func missing(on vendor: any ConformanceVendor) -> VendorCapabilities {
        requires.subtracting(vendor.capabilities)
    }
}
