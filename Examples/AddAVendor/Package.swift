// swift-tools-version:6.0
import PackageDescription

// A vendor IOMMU written outside IOMMUKit, against its public API only: the "toy IOMMU"
// (hardware model and driver), a small device driver that uses it, and the conformance
// suite run on it. See README.md, the guide to adding a vendor.
let package = Package(
    name: "AddAVendor",
    platforms: [.macOS(.v15)],
    dependencies: [
        // IOMMUKit itself, two directories up. A package of your own would use a URL.
        .package(name: "IOMMUKit", path: "../.."),
    ],
    targets: [
        // The vendor: hardware model (Hardware/) and IOMMU driver (Driver/).
        .target(name: "ToyIOMMU", dependencies: [.product(name: "IOMMUCore", package: "IOMMUKit")]),
        // A device and its driver that moves bytes by DMA through whatever IOMMU it sits behind.
        .target(name: "CopyEngine", dependencies: [.product(name: "IOMMUCore", package: "IOMMUKit")]),
        .executableTarget(name: "ToyDemo", dependencies: ["ToyIOMMU", "CopyEngine"]),
        .testTarget(name: "ToyIOMMUTests", dependencies: [
            "ToyIOMMU", "CopyEngine",
            .product(name: "IOMMUConformance", package: "IOMMUKit"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
