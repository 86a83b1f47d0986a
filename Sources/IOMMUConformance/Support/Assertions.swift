import IOMMUCore
import XCTest

/// Asserts that `body` throws exactly `expected`: success, another errno or an error
/// that is not an ``/Platform/Errno`` each fail, naming what happened instead.
///
/// ```swift
/// assertErrno(.busy) { try machine.iommu.attachGroup(b, to: group) }
/// ```
public func assertErrno<T, E: Error>(_ expected: Errno, _ message: @autoclosure () -> String = "",
                                     file: StaticString = #filePath, line: UInt = #line,
                                     _ body: () throws(E) -> T) {
    let note = message()
    let suffix = note.isEmpty ? "" : " (\(note))"
    do {
        _ = try body()
        XCTFail("expected \(expected), the call succeeded\(suffix)", file: file, line: line)
    } catch let error as Errno {
        XCTAssertEqual(error, expected, "wrong errno\(suffix)", file: file, line: line)
    } catch {
        XCTFail("expected \(expected), got \(error)\(suffix)", file: file, line: line)
    }
}

/// Asserts that the invariant checker of `machine` reported nothing; on failure the
/// message lists every violation (invariant, device, PASID, address, event). The checker
/// must be on (`machine.checker.isEnabled`) for there to be anything to report.
public func assertNoViolations(_ machine: Machine, _ message: @autoclosure () -> String = "",
                               file: StaticString = #filePath, line: UInt = #line) {
    let violations = machine.checker.violations
    guard !violations.isEmpty else { return }
    let note = message()
    XCTFail("\(violations.count) invariant violation(s)\(note.isEmpty ? "" : " (\(note))"):\n"
            + violations.map { "  \($0)" }.joined(separator: "\n"), file: file, line: line)
}

/// Asserts that the model recorded no kernel WARN on `machine`; on failure the message
/// lists them (function and message).
public func assertNoWarnings(_ machine: Machine, _ message: @autoclosure () -> String = "",
                             file: StaticString = #filePath, line: UInt = #line) {
    let warnings = machine.warnings
    guard !warnings.isEmpty else { return }
    let note = message()
    XCTFail("\(warnings.count) WARN(s)\(note.isEmpty ? "" : " (\(note))"):\n"
            + warnings.map { "  \($0.function): \($0.message)" }.joined(separator: "\n"), file: file, line: line)
}
