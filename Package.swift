// swift-tools-version:6.0
import PackageDescription

// IOMMUKit: a model of the Linux IOMMU subsystem. Zero package dependencies by design:
// the toolchain (Foundation, Synchronization, XCTest) is all it needs.
let package = Package(
    name: "IOMMUKit",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "IOMMUCore", targets: ["IOMMUCore"]),
        .library(name: "IOMMUDrivers", targets: ["IOMMUDrivers"]),
        .library(name: "DriverShims", targets: ["DriverShims"]),
        .executable(name: "iommukit", targets: ["iommukit"]),
        .executable(name: "iommukit-bench", targets: ["iommukit-bench"]),
        .executable(name: "IDXDMixedPASID", targets: ["IDXDMixedPASID"]),
        .executable(name: "PASIDFlavours", targets: ["PASIDFlavours"]),
    ],
    targets: [
        .target(name: "IOMMUCore"),
        .target(name: "IOMMUDrivers", dependencies: ["IOMMUCore"]),
        // Device drivers that use the core API; the vendor is chosen by whoever builds the machine.
        .target(name: "DriverShims", dependencies: ["IOMMUCore"]),
        .executableTarget(name: "iommukit", dependencies: ["IOMMUCore", "IOMMUDrivers"]),
        .executableTarget(
            name: "iommukit-bench",
            dependencies: ["IOMMUCore", "IOMMUDrivers"],
            path: "Benchmarks/iommukit-bench"),
        .executableTarget(
            name: "IDXDMixedPASID",
            dependencies: ["IOMMUCore", "IOMMUDrivers", "DriverShims"],
            path: "Examples/IDXDMixedPASID",
            exclude: ["README.md"]),
        .executableTarget(
            name: "PASIDFlavours",
            dependencies: ["IOMMUCore", "IOMMUDrivers", "DriverShims"],
            path: "Examples/PASIDFlavours",
            exclude: ["README.md"]),
        .testTarget(name: "IOMMUCoreTests", dependencies: ["IOMMUCore"]),
        .testTarget(name: "IOMMUDriversTests", dependencies: ["IOMMUCore", "IOMMUDrivers"]),
        .testTarget(name: "ConformanceTests", dependencies: ["IOMMUCore", "IOMMUDrivers"]),
        .testTarget(name: "SVATests", dependencies: ["IOMMUCore", "IOMMUDrivers"]),
        .testTarget(name: "DriverShimsTests", dependencies: ["IOMMUCore", "IOMMUDrivers", "DriverShims"]),
    ],
    swiftLanguageModes: [.v6]
)
