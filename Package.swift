// swift-tools-version:6.0
import PackageDescription

// IOMMUKit: a model of the Linux IOMMU subsystem. Zero package dependencies by design:
// the toolchain (Foundation, Synchronization, XCTest) is all it needs.
let package = Package(
    name: "IOMMUKit",
    platforms: [.macOS(.v15)],
    products: [
        // IOMMUCore brings Platform (re-exported), so Platform needs no product of its own.
        .library(name: "IOMMUCore", targets: ["IOMMUCore"]),
        .library(name: "IOMMUDrivers", targets: ["IOMMUDrivers"]),
        // What a vendor of the user's own depends on instead of all of IOMMUFD.
        .library(name: "IOMMUFDDriver", targets: ["IOMMUFDDriver"]),
        .library(name: "IOMMUFD", targets: ["IOMMUFD"]),
        .library(name: "DriverShims", targets: ["DriverShims"]),
        // The conformance suite, its vendor protocol and test helpers, for users' own test targets.
        .library(name: "IOMMUConformance", targets: ["IOMMUConformance"]),
        .executable(name: "iommukit", targets: ["iommukit"]),
        .executable(name: "iommukitd", targets: ["iommukitd"]),
        // LD_PRELOAD=libIOMMUFDPreload.so: /dev/iommu fds become connections to iommukitd.
        .library(name: "IOMMUFDPreload", type: .dynamic, targets: ["CIOMMUFD"]),
        .executable(name: "iommukit-bench", targets: ["iommukit-bench"]),
        // Fuzzes the raw dispatcher: a libFuzzer target when built with -sanitize=fuzzer
        // and -DIOMMUKIT_LIBFUZZER (README, "Fuzzing"), a replayer otherwise.
        .executable(name: "iommufd-fuzz", targets: ["iommufd-fuzz"]),
        .executable(name: "IDXDMixedPASID", targets: ["IDXDMixedPASID"]),
        .executable(name: "PASIDFlavours", targets: ["PASIDFlavours"]),
        .executable(name: "VMMGuestMemory", targets: ["VMMGuestMemory"]),
        .executable(name: "SMMUv3EntryWriter", targets: ["SMMUv3EntryWriter"]),
        .executable(name: "AdrenoPerProcess", targets: ["AdrenoPerProcess"]),
    ],
    targets: [
        // The simulated machine below the IOMMU: errno, locks, physical memory, the
        // page-table engine and formats, processes, PCI topology. Imports nothing of the IOMMU.
        .target(name: "Platform", exclude: ["PageTable/README.md"]),
        // Re-exports Platform (`@_exported import`), so users write `import IOMMUCore` only.
        .target(name: "IOMMUCore", dependencies: ["Platform"]),
        // The driver-facing part of iommufd (`drivers/iommu/iommufd/driver.c`,
        // `include/linux/iommufd.h`): what a vendor implements or calls, and the vendor uAPI
        // data it decodes. A vendor depends on this, never on all of IOMMUFD.
        .target(name: "IOMMUFDDriver", dependencies: ["IOMMUCore"]),
        // The conformance suite: vendor-neutral, the core and XCTest only, never a vendor.
        .target(name: "IOMMUConformance", dependencies: ["IOMMUCore"], exclude: ["README.md"]),
        // ENABLE_MOCKING (debug builds only) compiles the ioctl trace and forced-errno hooks.
        // Re-exports IOMMUFDDriver; never imports a vendor.
        .target(name: "IOMMUFD", dependencies: ["IOMMUCore", "IOMMUFDDriver"], exclude: ["README.md"],
                swiftSettings: [.define("ENABLE_MOCKING", .when(configuration: .debug))]),
        // Vendors (IntelVTd/, ARMSMMUv3/, Mock/): the core and the driver-facing part of iommufd only.
        .target(name: "IOMMUDrivers", dependencies: ["IOMMUCore", "IOMMUFDDriver"], exclude: ["ARMSMMUv3/README.md"]),
        // `IOMMU_TEST_CMD` (`CONFIG_IOMMUFD_TEST`): the selftest ops over the mock vendor. A
        // context gets them through IOMMUFD's package-level test-command hook; for tests
        // and the service, not a product.
        .target(name: "IOMMUFDSelftest", dependencies: ["IOMMUFD", "IOMMUDrivers"]),
        // Device drivers that use the core and iommufd APIs (IDXD/, PASIDFlavours/, VFIO/,
        // VFIOPCI/, Mdev/); the vendor is chosen by whoever builds the machine. AdrenoGPU/
        // also uses the arm-smmu driver's private interface (`adreno_smmu_priv`), as msm
        // includes `adreno-smmu-priv.h`.
        .target(name: "DriverShims", dependencies: ["IOMMUCore", "IOMMUFD", "IOMMUDrivers"]),
        .executableTarget(name: "iommukit", dependencies: ["IOMMUCore", "IOMMUDrivers"]),
        .executableTarget(name: "iommufd-fuzz", dependencies: ["IOMMUCore", "IOMMUFDSelftest"]),
        // The model as a service: plays the kernel for C programs run through the shim.
        .executableTarget(name: "iommukitd", dependencies: ["IOMMUCore", "IOMMUDrivers", "IOMMUFD", "IOMMUFDSelftest", "CIOMMUKitd"]),
        // iommukitd's host calls in C: socket credentials, pidfds, trap containment.
        .target(name: "CIOMMUKitd", cSettings: [.define("_GNU_SOURCE")]),
        // The LD_PRELOAD shim. Only the dynamic product links it: it interposes open,
        // ioctl, read, write, poll and close, so nothing else may depend on it. It is C
        // only and must not load the Swift runtime into the programs it is preloaded
        // into: SwiftPM links every product with swiftc, which adds the Swift start-up
        // object (swiftrt.o, -nostartfiles drops it) and libswiftCore.so
        // (-static-stdlib turns that into the static archive, from which nothing is
        // pulled, since the shim references no Swift symbol). `readelf -d` then lists
        // libc, libm and libstdc++ only (ServiceTests.testShimNeedsNoSwiftRuntime).
        .target(name: "CIOMMUFD", cSettings: [.define("_GNU_SOURCE")],
                linkerSettings: [.linkedLibrary("dl"), .unsafeFlags(["-nostartfiles", "-static-stdlib"])]),
        .executableTarget(
            name: "VMMGuestMemory",
            dependencies: ["IOMMUCore", "IOMMUDrivers", "IOMMUFD", "DriverShims"],
            path: "Examples/VMMGuestMemory",
            exclude: ["README.md", "graph.svg"]),
        .executableTarget(
            name: "iommukit-bench",
            dependencies: ["IOMMUCore", "IOMMUDrivers", "IOMMUFD", "DriverShims"],
            path: "Benchmarks/iommukit-bench"),
        .executableTarget(
            name: "IDXDMixedPASID",
            dependencies: ["IOMMUCore", "IOMMUDrivers", "DriverShims"],
            path: "Examples/IDXDMixedPASID",
            exclude: ["README.md", "graph.svg"]),
        .executableTarget(
            name: "PASIDFlavours",
            dependencies: ["IOMMUCore", "IOMMUDrivers", "DriverShims"],
            path: "Examples/PASIDFlavours",
            exclude: ["README.md", "graph.svg"]),
        .executableTarget(
            name: "SMMUv3EntryWriter",
            dependencies: ["Platform", "IOMMUDrivers"],
            path: "Examples/SMMUv3EntryWriter",
            exclude: ["README.md"]),
        .executableTarget(
            name: "AdrenoPerProcess",
            dependencies: ["IOMMUCore", "DriverShims"],
            path: "Examples/AdrenoPerProcess",
            exclude: ["README.md"]),
        // The Mock and VT-d vendors as the conformance suite sees them, for every test target.
        .target(name: "VendorFixtures", dependencies: ["IOMMUConformance", "IOMMUDrivers"], path: "Tests/VendorFixtures"),
        .testTarget(name: "IOMMUCoreTests", dependencies: ["IOMMUCore", "IOMMUConformance"]),
        .testTarget(name: "IOMMUDriversTests", dependencies: ["IOMMUCore", "IOMMUDrivers", "IOMMUConformance"]),
        .testTarget(name: "IOMMUFDTests",
                    dependencies: ["IOMMUFD", "IOMMUCore", "IOMMUDrivers", "IOMMUFDSelftest", "IOMMUConformance"]),
        .testTarget(name: "DriverShimsTests", dependencies: ["DriverShims", "IOMMUFD", "IOMMUCore", "IOMMUDrivers",
                                                             "IOMMUFDSelftest", "IOMMUConformance", "VendorFixtures"]),
        .testTarget(name: "ConformanceTests",
                    dependencies: ["IOMMUCore", "IOMMUDrivers", "IOMMUConformance", "VendorFixtures"]),
        .testTarget(name: "SVATests", dependencies: ["IOMMUCore", "IOMMUDrivers", "IOMMUConformance", "VendorFixtures"]),
        // Runs Tests/CPrograms through the shim against iommukitd (built as a dependency).
        .testTarget(name: "ServiceTests", dependencies: ["iommukitd"]),
        // Runs the built iommukit (and an example it traces) as a user would.
        .testTarget(name: "CLITests", dependencies: ["iommukit", "VMMGuestMemory"]),
    ],
    swiftLanguageModes: [.v6]
)
