// iommukit-bench: release-build micro-benchmarks of the model's hot paths.
//
// Every benchmark runs several times; the last line of stdout is one JSON object with,
// per key, the median of the runs (`map4k_ns`) and their spread (`map4k_ns_min`,
// `map4k_ns_max`), all plain numbers, plus the machine's core count and load average
// before and after (`cores`, `load1_start`, `load1_end`). Progress and a readable
// summary go to stderr. A new benchmark is one more entry in `benchmarks` below (see
// `Bench.swift`); a new key is one more value in an entry's dictionary.
//
// Environment: BENCH_RUNS=N overrides every benchmark's run count (at least 3 keeps a
// spread meaningful); IOAS_BENCH_ONLY=1 runs only the iommufd benchmarks;
// IOAS_BENCH_MB=N shrinks their 1 GiB; NOTLB=1 leaves the IOTLB invalidation out of
// unmap4k_ns; BENCH_FILTER=text runs only the benchmarks whose name contains it (for a
// profile of one); PASID_BENCH_COUNT and DEVICE_BENCH_COUNT shrink the scale benchmarks.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

let environment = ProcessInfo.processInfo.environment
let iommufdOnly = environment["IOAS_BENCH_ONLY"] != nil

var benchmarks: [Benchmark] = []
if !iommufdOnly {
    benchmarks += [
        Benchmark(name: "page table map/unmap 4K", runs: 5, setUp: pageTableMapUnmap),
        Benchmark(name: "page table walk", runs: 5, setUp: pageTableWalk),
        Benchmark(name: "LPAE page table map/unmap 4K", runs: 5, setUp: lpaeMapUnmap),
        Benchmark(name: "LPAE page table walk", runs: 5, setUp: lpaeWalk),
        Benchmark(name: "IOTLB lookup", runs: 5, setUp: iotlbLookup),
        Benchmark(name: "page table 1 GiB map", runs: 5, setUp: mapHuge),
        Benchmark(name: "VT-d DMA", runs: 5, setUp: dmaBenchmark),
        Benchmark(name: "Adreno GPU on SMMUv2", runs: 5, setUp: gpuBenchmark),
        Benchmark(name: "SMMUv3 DMA", runs: 5, setUp: smmuv3DMABenchmark),
        Benchmark(name: "iommu_map from 1 and 2 threads", runs: 5, setUp: mapThreadsBenchmark),
        Benchmark(name: "PASID attach/detach x 2^20-1", runs: 3, setUp: pasidScaleBenchmark),
        Benchmark(name: "4096 devices probed", runs: 3, setUp: deviceScaleBenchmark),
    ]
}
benchmarks += [
    Benchmark(name: "iommufd IOAS_MAP/UNMAP", runs: 3, setUp: iommufdBenchmark),
    Benchmark(name: "service ioctl round trip", runs: 3, setUp: serviceBenchmark),
]

if let filter = environment["BENCH_FILTER"] {
    benchmarks = benchmarks.filter { $0.name.localizedCaseInsensitiveContains(filter) }
}

let result = runAll(benchmarks, runsOverride: environment["BENCH_RUNS"].flatMap { Int($0) })
print(result.json)
if blackhole == 42 { print("") }
