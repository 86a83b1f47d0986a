import IOMMUConformance
import IOMMUCore
import XCTest
@testable import IOMMUFD

/// The `TEST_FAIL_NTH` sweep of `iommufd_fail_nth.c` as an XCTest helper.
///
/// The scenario runs once with no injection and must succeed. Then it runs again on a
/// fresh machine for N = 1, 2, 3, …, with the Nth injection point (object allocation and
/// lookup, pinning, accounting, reserved regions, every frame allocation) failing. After
/// each run the context is closed and the helper checks that nothing leaked: no object
/// left, and (a ``LeakCheck``) no page pinned, the machine's frames, referenced frames
/// and global PASIDs back to what they were before the scenario; no WARN from the core
/// or from iommufd. The sweep ends with the first run in
/// which the armed point was never reached; that run must have succeeded. Every sweep
/// prints how many injection points it reached, and one that reached none fails: it
/// would pass without testing anything.
/// `memory` prepares the task's memory (what outlives the context); `setup` makes the
/// objects the body starts from, after the leak baseline, since closing releases them.
/// - Returns: the number of injection points found.
@discardableResult
func failNthSweep(_ name: String, cap: Int = 400, file: StaticString = #filePath, line: UInt = #line,
                  memory: (SelftestFD) -> Void = { _ in },
                  setup: (SelftestFD) -> Void = { _ in },
                  _ body: (SelftestFD) -> Int32) throws -> Int {
    func runOnce(_ n: Int) throws -> (rc: Int32, fired: Bool) {
        let s = try SelftestFD()
        memory(s)
        // Taken before the setup: closing the context releases what the setup made too.
        let leaks = LeakCheck(machine: s.machine,
                              extra: ["pinned pages": { PagePinRegistry.shared.pinnedPages(s.machine.memory) }])
        setup(s)
        let warnings = s.machine.warnings.count
        s.fd.faultInjection.arm(n)
        let rc = body(s)
        let fired = s.fd.faultInjection.disarm()
        let injectionWarnings = s.fd.faultInjection.warnings
        s.fd.close()
        XCTAssertFalse(s.fd.hasObjects, "\(name) n=\(n): objects left after close", file: file, line: line)
        leaks.assertNoLeaks("\(name) n=\(n)", file: file, line: line)
        XCTAssertEqual(s.machine.warnings.count, warnings,
                       "\(name) n=\(n): core WARN \(s.machine.warnings.suffix(from: warnings))", file: file, line: line)
        XCTAssertEqual(injectionWarnings, [], "\(name) n=\(n): iommufd WARN", file: file, line: line)
        s.reopen()
        XCTAssertEqual(s.checkRefs(s.buffer, BUFFER_SIZE, 0), 0, file: file, line: line)
        s.fd.close()
        return (rc, fired)
    }
    XCTAssertEqual(try runOnce(0).rc, 0, "\(name): the scenario fails without injection", file: file, line: line)
    for n in 1...cap {
        let (rc, fired) = try runOnce(n)
        if !fired {
            XCTAssertEqual(rc, 0, "\(name): the last run (no injection) must succeed", file: file, line: line)
            print("fail-nth \(name): \(n - 1) injection points")
            XCTAssertGreaterThan(n - 1, 0, "\(name): the sweep reached no injection point", file: file, line: line)
            return n - 1
        }
    }
    XCTFail("\(name): more than \(cap) injection points", file: file, line: line)
    return cap
}

/// Chains raw calls, stopping at the first failure (the fail-nth bodies ignore results
/// except the last run's).
struct Steps {
    var rc: Int32 = 0
    mutating func callAsFunction(_ r: @autoclosure () -> Int32) {
        if rc == 0 { rc = r() }
    }

    /// `IOMMU_IOAS_ALLOC` as a step; 0 when it (or an earlier step) failed.
    mutating func ioas(_ s: SelftestFD) -> UInt32 {
        guard rc == 0 else { return 0 }
        var a = IOMMUIOASAlloc()
        rc = s.call(IOMMUFDCommand.ioasAlloc, &a)
        return a.outIoasId
    }
}
