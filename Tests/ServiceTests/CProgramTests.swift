import Foundation
import XCTest

/// The project's C conformance programs (`Tests/CPrograms/*.c`), compiled with the host C
/// compiler and run unmodified through `libIOMMUFDPreload.so` against an `iommukitd`
/// started on a temporary socket. Each program prints "N passed, N failed" and exits 0
/// only when nothing failed. Local sockets only; every wait is bounded.
final class CProgramTests: XCTestCase {
    /// Package root, from this file's path.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    /// The build products directory (where the test bundle, iommukitd and the shim are).
    static var products: URL {
        var dir = Bundle.main.bundleURL
        if dir.pathExtension == "xctest" { dir.deleteLastPathComponent() }
        for candidate in [dir, root.appendingPathComponent(".build/debug")]
        where FileManager.default.fileExists(atPath: candidate.appendingPathComponent("iommukitd").path) {
            return candidate
        }
        return dir
    }

    nonisolated(unsafe) static var work: URL!
    nonisolated(unsafe) static var shim: String!
    nonisolated(unsafe) static var daemon: Foundation.Process?
    nonisolated(unsafe) static var socketPath: String!
    nonisolated(unsafe) static var logPath: String!
    nonisolated(unsafe) static var compiled: [String: String] = [:]

    /// The host C compiler: cc, gcc or clang on PATH (the Swift toolchain ships clang).
    static var compiler: String {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":")
        for name in ["cc", "gcc", "clang"] {
            for dir in path where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
                return "\(dir)/\(name)"
            }
        }
        return "/usr/bin/cc"
    }

    struct BuildFailure: Error, CustomStringConvertible {
        let description: String
    }

    /// Runs `argv` with `env` added, at most `timeout` seconds; returns (status, stdout+stderr).
    @discardableResult
    static func run(_ argv: [String], env: [String: String] = [:], timeout: Double = 30) -> (Int32, String) {
        let p = Foundation.Process()
        p.executableURL = URL(fileURLWithPath: argv[0])
        p.arguments = Array(argv.dropFirst())
        var e = ProcessInfo.processInfo.environment
        e.removeValue(forKey: "LD_PRELOAD")
        for (k, v) in env { e[k] = v }
        p.environment = e
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("ikd-out-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        let h = try! FileHandle(forWritingTo: out)
        p.standardOutput = h
        p.standardError = h
        do { try p.run() } catch { return (-1, "cannot run \(argv[0]): \(error)") }
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(5000) }
        if p.isRunning { p.terminate(); p.waitUntilExit(); try? h.close(); return (-2, "timed out") }
        p.waitUntilExit()
        try? h.close()
        let text = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(at: out)
        return (p.terminationStatus, text)
    }

    override class func setUp() {
        super.setUp()
        work = FileManager.default.temporaryDirectory.appendingPathComponent("iommukit-cprog-\(getpid())")
        try? FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        // The shim the package built, or the same source compiled here.
        let built = products.appendingPathComponent("libIOMMUFDPreload.so").path
        if FileManager.default.fileExists(atPath: built) {
            shim = built
        } else {
            shim = work.appendingPathComponent("libIOMMUFDPreload.so").path
            let src = root.appendingPathComponent("Sources/CIOMMUFD")
            run([compiler, "-shared", "-fPIC", "-D_GNU_SOURCE", "-O2", "-I", src.appendingPathComponent("include").path,
                 "-o", shim, src.appendingPathComponent("preload.c").path, "-ldl"])
        }
        socketPath = work.appendingPathComponent("iommukitd.sock").path
        logPath = work.appendingPathComponent("iommukitd.log").path
        daemon = startDaemon(socket: socketPath, log: logPath)
    }

    override class func tearDown() {
        if let d = daemon {
            d.terminate()
            d.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: work)
        super.tearDown()
    }

    /// The iommukitd the tests run (programs that start a service of their own get it as
    /// `IOMMUKIT_TEST_DAEMON`).
    static var daemonPath: String { products.appendingPathComponent("iommukitd").path }

    static func startDaemon(socket: String, log: String) -> Foundation.Process? {
        let p = Foundation.Process()
        p.executableURL = URL(fileURLWithPath: daemonPath)
        p.arguments = ["--socket", socket, "--log", log]
        do { try p.run() } catch { return nil }
        for _ in 0..<500 where !FileManager.default.fileExists(atPath: socket) { usleep(10000) }
        return p
    }

    /// `-I` for the project's own `<linux/iommufd.h>` and `"iommufd_test.h"`
    /// (`Tests/CPrograms/include`), unless the host has a real `<linux/iommufd.h>`:
    /// then the programs build against the system header, and only `iommufd_test.h`
    /// (which no system ships) comes from `Tests/CPrograms/include/selftest`.
    /// Programs that speak the wire protocol themselves (`raw_wire.h`) also get
    /// `Sources/CIOMMUFD/include` for `iommukit_wire.h`.
    static var includeFlags: [String] {
        let inc = root.appendingPathComponent("Tests/CPrograms/include").path
        let wire = ["-I", root.appendingPathComponent("Sources/CIOMMUFD/include").path]
        if FileManager.default.fileExists(atPath: "/usr/include/linux/iommufd.h") {
            return ["-I", inc + "/selftest"] + wire
        }
        return ["-I", inc, "-I", inc + "/selftest"] + wire
    }

    /// Compiles `Tests/CPrograms/<name>.c` once.
    func binary(_ name: String) throws -> String {
        if let b = Self.compiled[name] { return b }
        let out = Self.work.appendingPathComponent(name).path
        let src = Self.root.appendingPathComponent("Tests/CPrograms/\(name).c").path
        let (rc, text) = Self.run([Self.compiler, "-D_GNU_SOURCE", "-O1", "-Wall", "-Werror", "-pthread"] + Self.includeFlags
                                   + ["-o", out, src])
        guard rc == 0 else { throw BuildFailure(description: "\(Self.compiler) could not build \(name).c: \(text)") }
        Self.compiled[name] = out
        return out
    }

    /// Runs a program through the shim; asserts exit 0, no failure and at least
    /// `minimum` passed checks. Returns the passed count.
    @discardableResult
    func runProgram(_ name: String, minimum: Int, env: [String: String] = [:],
                    file: StaticString = #filePath, line: UInt = #line) throws -> Int {
        let exe = try binary(name)
        var e = ["LD_PRELOAD": Self.shim!, "IOMMUKIT_SOCKET": Self.socketPath!]
        for (k, v) in env { e[k] = v }
        let (rc, out) = Self.run([exe], env: e)
        let summary = out.split(separator: "\n").last { $0.hasSuffix(" failed") && $0.contains(" passed, ") }
        let numbers = summary.map { $0.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .punctuationCharacters)) } } ?? []
        XCTAssertEqual(rc, 0, "\(name) exited \(rc):\n\(out)", file: file, line: line)
        XCTAssertEqual(numbers.count, 2, "\(name) printed no summary:\n\(out)", file: file, line: line)
        guard numbers.count == 2 else { return 0 }
        XCTAssertEqual(numbers[1], 0, "\(name):\n\(out)", file: file, line: line)
        XCTAssertGreaterThanOrEqual(numbers[0], minimum, "\(name) ran too few checks:\n\(out)", file: file, line: line)
        print("[\(name)] \(numbers[0]) checks passed through the shim")
        return numbers[0]
    }

    func testSizeRules() throws { try runProgram("size_rules", minimum: 60) }

    /// The shim is C only: its `DT_NEEDED` list names no Swift runtime library, and a
    /// program it is preloaded into has none loaded; a failed `assert` there ends with
    /// SIGABRT and glibc's message, no crash report.
    func testShimNeedsNoSwiftRuntime() throws {
        let needed = try XCTUnwrap(elfNeededLibraries(Self.shim), "\(Self.shim!) is not an ELF64 shared object")
        XCTAssertFalse(needed.isEmpty)
        XCTAssertEqual(needed.filter { $0.hasPrefix("libswift") || $0.hasPrefix("libFoundation") || $0.hasPrefix("libdispatch") }, [],
                       "the shim needs \(needed)")
        try runProgram("shim_runtime", minimum: 8)
    }

    /// The service believes the kernel, not the packet: a request naming another
    /// process's pid, a reply channel registered for another process's thread, and a
    /// process of another user (uid 65534, through the socket or an fd it was handed)
    /// are refused; the victim's calls carry on, and the log shows each attempt.
    func testIdentityFromTheKernel() throws {
        let exe = try binary("identity")
        let (rc, out) = Self.run([exe], env: ["LD_PRELOAD": Self.shim!, "IOMMUKIT_SOCKET": Self.socketPath!])
        XCTAssertEqual(rc, 0, out)
        XCTAssertTrue(out.contains(" 0 failed"), out)
        let victim = try XCTUnwrap(out.split(separator: "\n").first { $0.hasPrefix("victim pid ") }?.split(separator: " ").last)
        let log = (try? String(contentsOfFile: Self.logPath, encoding: .utf8)) ?? ""
        XCTAssertTrue(log.contains("open claims pid \(victim), kernel says"), "no refusal of the foreign OPEN in the log")
        XCTAssertTrue(log.contains("ioctl claims pid \(victim), kernel says"), "no refusal of the foreign IOCTL in the log")
        XCTAssertTrue(log.contains("channel claims pid \(victim), kernel says"), "no refusal of the hijacked channel in the log")
        XCTAssertTrue(log.contains("tid \(victim) is not a thread of pid"), "no refusal of the foreign tid in the log")
        if geteuid() == 0 { XCTAssertTrue(log.contains("uid 65534 is not served"), "no refusal of uid 65534 in the log") }
    }

    /// The socket and log live where only their user can reach them; another user who
    /// took the socket path first gets nothing (not a byte); a symlinked directory or log
    /// is refused, never followed.
    func testSocketDirectoryAndListenerCheck() throws {
        try runProgram("squat", minimum: 25, env: ["IOMMUKIT_TEST_DAEMON": Self.daemonPath])
    }

    /// Misbehaving clients (never reads, garbage, foreign pid, an old model trap, an
    /// unanswered upcall) next to a well-behaved one, whose results and timing stay
    /// untouched; the service survives them all.
    func testMisbehavingClientsDoNotHoldUpOthers() throws { try runProgram("availability", minimum: 12) }

    /// SIGTERM ends the service within a second, even mid-request.
    func testSIGTERMEndsTheServiceMidRequest() throws {
        try runProgram("sigterm", minimum: 10, env: ["IOMMUKIT_TEST_DAEMON": Self.daemonPath])
    }

    /// Closing the last fd of an access, a fault queue or an iommufd finishes the release
    /// before close() returns; dup, dup2, fork and exit keep their meaning.
    func testReleaseOnClose() throws { try runProgram("close_release", minimum: 25) }

    /// Fault injection reached the way the kernel's selftests reach it: openat relative to
    /// a directory fd of /sys/kernel/debug/ and of /proc.
    func testFaultInjectionThroughOpenat() throws { try runProgram("debugfs_openat", minimum: 18) }

    /// One page, one frame: a memfd's MAP_FILE pages are the pages of the program's own
    /// MAP_SHARED mapping; shared anonymous memory pinned by a child that exited stays the
    /// parent's; a pin from the dead child's mm fails with EFAULT.
    func testSharedMemoryIsOneFramePerPage() throws { try runProgram("shared_memory", minimum: 25) }

    /// A map of more than 1 GiB works (and an access reaches its far end); 64 MiB pinned,
    /// unmapped and closed leaves the service's resident memory where it was.
    func testBigMapsAndMemoryGivenBack() throws { try runProgram("big_map", minimum: 18) }

    /// How many times ``testTimingSensitiveProgramsRepeatedly`` runs each program:
    /// `IOMMUKIT_SERVICE_REPEAT`, default 20 (enough for CI to catch a race that hits one
    /// run in a few; raise it when hunting one).
    static var repeatCount: Int {
        ProcessInfo.processInfo.environment["IOMMUKIT_SERVICE_REPEAT"].flatMap { Int($0) }.map { max(1, $0) } ?? 20
    }

    /// The timing-sensitive programs, many times: close then destroy (close_release runs
    /// its rounds in one process), fork then exit (shared_memory's fork rounds in one
    /// process; fork_inherit, one process per run). A race shows up as a failure here
    /// rather than as luck.
    func testTimingSensitiveProgramsRepeatedly() throws {
        let n = Self.repeatCount
        try runProgram("close_release", minimum: 25 * n, env: ["IOMMUKIT_REPEAT": "\(n)"])
        try runProgram("shared_memory", minimum: 10 * n, env: ["IOMMUKIT_REPEAT": "\(n)"])
        for _ in 0..<n { try runProgram("fork_inherit", minimum: 30) }
    }

    func testErrnoPathsAndUserMemory() throws { try runProgram("errno_paths", minimum: 60) }

    func testForkUsesInheritedIOMMUFD() throws { try runProgram("fork_inherit", minimum: 30) }

    /// Parent and child (two threads each) issue ioctls on one inherited iommufd at
    /// once; every caller gets its own result.
    func testConcurrentCallersOnSharedIOMMUFD() throws { try runProgram("concurrent", minimum: 14) }

    /// IOAS_MAP_FILE of a real memfd (errno order, device DMA visible through the
    /// program's own mapping) and CHANGE_PROCESS moving VmPin from parent to child.
    func testMapFileAndChangeProcess() throws { try runProgram("map_file", minimum: 45) }

    /// MAP_HUGETLB memory (the shim's fallback on a host without hugetlb pages) mapped
    /// into a MOCK_FLAGS_DEVICE_HUGE_IOVA domain: huge leaves (dirty bitmap), MD_CHECK_MAP,
    /// and device writes reaching the program's memory.
    func testHugePagesFromHugetlbFallback() throws { try runProgram("huge_pages", minimum: 33) }

    func testFaultQueueReadWritePoll() throws { try runProgram("fault_queue", minimum: 30) }

    /// A vEVENTQ fd through the shim: events read as header and record, poll, the
    /// LOST_EVENTS header of a full queue, dup.
    func testVEventQReadPoll() throws { try runProgram("veventq", minimum: 30) }

    /// mmap of the iommufd through the shim: the region a vIOMMU offers, its errno, the
    /// vIOMMU held while any piece is mapped (fork, partial munmap), close before munmap.
    func testVIOMMURegionMMap() throws { try runProgram("viommu_mmap", minimum: 32) }

    func testFailNthSweep() throws { try runProgram("fail_nth", minimum: 12) }

    /// The shim starts the service itself when nothing listens: in its own session,
    /// and the service leaves after being idle.
    func testShimStartsServiceThatExitsWhenIdle() throws {
        let sock = Self.work.appendingPathComponent("auto.sock").path
        let log = Self.work.appendingPathComponent("auto.log").path
        try runProgram("size_rules", minimum: 60, env: [
            "IOMMUKIT_SOCKET": sock, "IOMMUKIT_DAEMON": Self.products.appendingPathComponent("iommukitd").path,
            "IOMMUKIT_IDLE_EXIT": "1", "IOMMUKIT_LOG": log,
        ])
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        XCTAssertTrue(text.contains("open /dev/iommu"), text)
        // The service runs in a session of its own (setsid), not in ours.
        if let pid = text.split(separator: "[").dropFirst().first.flatMap({ Int32($0.prefix { $0.isNumber }) }),
           let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
           let close = stat.lastIndex(of: ")") {
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            // Fields after the name: state, ppid, pgrp, session.
            let session = fields.count > 3 ? Int32(fields[3]) : nil
            XCTAssertNotNil(session)
            XCTAssertNotEqual(session, getsid(0), "iommukitd shares the caller's session")
            XCTAssertNotEqual(fields.count > 2 ? Int32(fields[2]) : nil, getpgrp(), "iommukitd in the caller's group")
        }
        var gone = false
        for _ in 0..<500 where !gone {
            gone = !FileManager.default.fileExists(atPath: sock)
            if !gone { usleep(10000) }
        }
        XCTAssertTrue(gone, "iommukitd did not exit after 1 s idle")
    }

    /// Garbage on a connection drops that connection only; the service goes on serving.
    func testMalformedRequestDoesNotStopTheService() throws {
        let fd = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue), 0)
        XCTAssertGreaterThanOrEqual(fd, 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: Array(Self.socketPath.utf8)) }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        XCTAssertEqual(rc, 0)
        let junk: [UInt8] = [1, 2, 3, 4, 5]
        _ = junk.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var b = [UInt8](repeating: 0, count: 64)
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        XCTAssertEqual(poll(&p, 1, 5000), 1)
        XCTAssertEqual(b.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }, 0, "connection not dropped")
        close(fd)
        try runProgram("size_rules", minimum: 60)
    }
}
