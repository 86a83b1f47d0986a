#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// One benchmark: `setUp` builds what it measures (a page table, a machine, a service)
/// and returns the measurement, which is called once per run and returns that run's
/// value for each of its keys. Runs are kept apart so the result has a spread.
struct Benchmark {
    /// What the progress lines call it.
    let name: String
    /// How many runs (BENCH_RUNS overrides it).
    let runs: Int
    /// Builds the benchmark's state; throws ``Skip`` (or any error) to leave its keys out.
    let setUp: () throws -> () throws -> [String: Double]
}

/// Thrown by a benchmark that cannot run here, with the reason shown on stderr.
struct Skip: Error, CustomStringConvertible {
    let description: String
    init(_ reason: String) { description = reason }
}

/// Every key's runs, and the machine around them.
struct BenchResult {
    var samples: [String: [Double]] = [:]
    var cores = 0
    var loadStart = 0.0
    var loadEnd = 0.0

    /// `{"map4k_ns": median, "map4k_ns_min": ..., "map4k_ns_max": ..., ..., "cores": 2, ...}`,
    /// one line, sorted keys, every value a number.
    var json: String {
        var out: [String: Any] = ["cores": cores, "load1_start": rounded(loadStart), "load1_end": rounded(loadEnd)]
        for (key, values) in samples where !values.isEmpty {
            out[key] = rounded(median(values))
            out[key + "_min"] = rounded(values.min()!)
            out[key + "_max"] = rounded(values.max()!)
        }
        let data = try! JSONSerialization.data(withJSONObject: out, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}

/// Runs every benchmark, printing progress and then a summary table to stderr.
func runAll(_ benchmarks: [Benchmark], runsOverride: Int?) -> BenchResult {
    var result = BenchResult()
    result.cores = ProcessInfo.processInfo.activeProcessorCount
    result.loadStart = loadAverage()
    #if DEBUG
    note("iommukit-bench: this is a debug build; its numbers say little (swift run -c release iommukit-bench)")
    #endif
    note("iommukit-bench: \(result.cores) cores, load average \(String(format: "%.2f", result.loadStart))")
    for (i, b) in benchmarks.enumerated() {
        let runs = max(1, runsOverride ?? b.runs)
        let prefix = "[\(i + 1)/\(benchmarks.count)] \(b.name)"
        let measure: () throws -> [String: Double]
        do { measure = try b.setUp() } catch {
            note("\(prefix): skipped: \(error)")
            continue
        }
        for run in 1...runs {
            note("\(prefix): run \(run)/\(runs)")
            do {
                for (key, value) in try measure() { result.samples[key, default: []].append(value) }
            } catch {
                note("\(prefix): run \(run) failed: \(error)")
            }
        }
    }
    result.loadEnd = loadAverage()
    note("")
    note("key                       median        min        max  (runs)")
    for (key, values) in result.samples.sorted(by: { $0.key < $1.key }) where !values.isEmpty {
        note(key.padding(toLength: 22, withPad: " ", startingAt: 0)
             + String(format: " %10.2f %10.2f %10.2f  (%d)", median(values), values.min()!, values.max()!, values.count))
    }
    note("load average \(String(format: "%.2f", result.loadStart)) -> \(String(format: "%.2f", result.loadEnd)) on \(result.cores) cores")
    return result
}

func note(_ line: String) { FileHandle.standardError.write(Data((line + "\n").utf8)) }

func median(_ values: [Double]) -> Double {
    let s = values.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

func rounded(_ x: Double) -> Double { (x * 100).rounded() / 100 }

/// The 1-minute load average (`getloadavg`), 0 if unknown.
func loadAverage() -> Double {
    var load = [0.0, 0.0, 0.0]
    return getloadavg(&load, 3) > 0 ? load[0] : 0
}

/// Monotonic time in nanoseconds (CLOCK_MONOTONIC).
@inline(__always)
func now() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Values fed here are observable, so the optimiser cannot drop the work producing them.
nonisolated(unsafe) var blackhole: UInt64 = 0
@inline(never) func consume(_ x: UInt64) { blackhole &+= x }
