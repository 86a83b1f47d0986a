import XCTest
import IOMMUCore
@testable import IOMMUFD

/// The kernel iommufd selftest's generic ABI cases (fixture `iommufd`).
final class Selftest01GenericABITests: XCTestCase {
    var s: SelftestFD!
    override func setUpWithError() throws { s = try SelftestFD() }
    override func tearDown() { s?.teardownCheck(); s = nil }

    func testSelftest01DestroyIDZeroIsENOENT() {
        XCTAssertEqual(s.destroy(0), ENOENT)
    }

    func testSelftest02NullPointerIsEFAULT() {
        XCTAssertEqual(s.fd.ioctl(IOMMUFDCommand.destroy, 0), EFAULT)
    }

    func testSelftest03UnknownIoctlIsENOTTY() {
        XCTAssertEqual(s.raw(IOMMUFDCommand.io(0x7F), IOMMUDestroy().bytes).0, ENOTTY)
        // Empty table slots and wrong direction/size bits are ENOTTY too.
        XCTAssertEqual(s.raw(IOMMUFDCommand.io(0x95), IOMMUDestroy().bytes).0, ENOTTY)
        XCTAssertEqual(s.raw(IOMMUFDCommand.destroy | (1 << 30), IOMMUDestroy().bytes).0, ENOTTY)
    }

    /// IOMMU_TEST_CMD exists only with a test backend (`CONFIG_IOMMUFD_TEST`).
    func testTestCmdNeedsATestBackend() throws {
        let plain = IOMMUFD(machine: s.machine, process: s.process)
        var t = UAPIBytes(count: 72)
        t.setU32(0, 72)
        try s.process.writeMemory(address: s.arg, bytes: t.bytes)
        XCTAssertEqual(plain.ioctl(IOMMUFDCommand.testCmd, s.arg), ENOTTY)
        plain.close()
    }

    /// `cmd_length`: min_size-1 → EINVAL; sizeof+1 with 0xFF → E2BIG; sizeof → R;
    /// sizeof+1 with 0 → R.
    func testSelftest04CmdLength() {
        func check<T: UAPIStruct>(_ cmd: UInt32, _: T.Type, file: StaticString = #filePath, line: UInt = #line) {
            var short = UAPIBytes(count: T.size + 1)
            short.setU32(0, UInt32(T.minSize - 1))
            XCTAssertEqual(s.raw(cmd, short.bytes).0, EINVAL, "\(T.self) short", file: file, line: line)
            var big = UAPIBytes(count: T.size + 1)
            big.setU32(0, UInt32(T.size + 1))
            big.bytes[T.size] = 0xFF
            XCTAssertEqual(s.raw(cmd, big.bytes).0, E2BIG, "\(T.self) big", file: file, line: line)
            var exact = UAPIBytes(count: T.size + 1)
            exact.setU32(0, UInt32(T.size))
            let r = s.raw(cmd, exact.bytes).0
            var zero = UAPIBytes(count: T.size + 1)
            zero.setU32(0, UInt32(T.size + 1))
            XCTAssertEqual(s.raw(cmd, zero.bytes).0, r, "\(T.self) zero tail", file: file, line: line)
        }
        check(IOMMUFDCommand.destroy, IOMMUDestroy.self)
        check(IOMMUFDCommand.getHWInfo, IOMMUHWInfo.self)
        check(IOMMUFDCommand.hwptAlloc, IOMMUHWPTAlloc.self)
        check(IOMMUFDCommand.hwptInvalidate, IOMMUHWPTInvalidate.self)
        check(IOMMUFDCommand.ioasAlloc, IOMMUIOASAlloc.self)
        check(IOMMUFDCommand.ioasIOVARanges, IOMMUIOASIOVARanges.self)
        check(IOMMUFDCommand.ioasAllowIOVAs, IOMMUIOASAllowIOVAs.self)
        check(IOMMUFDCommand.ioasMap, IOMMUIOASMap.self)
        check(IOMMUFDCommand.ioasCopy, IOMMUIOASCopy.self)
        check(IOMMUFDCommand.ioasUnmap, IOMMUIOASUnmap.self)
        check(IOMMUFDCommand.option, IOMMUOption.self)
        check(IOMMUFDCommand.vfioIOAS, IOMMUVFIOIOAS.self)
        check(IOMMUFDCommand.ioasMapFile, IOMMUIOASMapFile.self)
        check(IOMMUFDCommand.ioasChangeProcess, IOMMUIOASChangeProcess.self)
        check(IOMMUFDCommand.viommuAlloc, IOMMUVIOMMUAlloc.self)
        check(IOMMUFDCommand.vdeviceAlloc, IOMMUVDeviceAlloc.self)
        check(IOMMUFDCommand.veventqAlloc, IOMMUVEventQAlloc.self)
        check(IOMMUFDCommand.hwQueueAlloc, IOMMUHWQueueAlloc.self)
    }

    func testSelftest05CmdExFail() {
        var b = UAPIBytes(count: 16)
        b.setU32(0, 16)
        XCTAssertEqual(s.raw(IOMMUFDCommand.destroy, b.bytes).0, ENOENT)
        b.setU64(8, 1)
        XCTAssertEqual(s.raw(IOMMUFDCommand.destroy, b.bytes).0, E2BIG)
        b.setU32(0, 8)
        XCTAssertEqual(s.raw(IOMMUFDCommand.destroy, b.bytes).0, ENOENT)
        b.setU32(0, 7)
        XCTAssertEqual(s.raw(IOMMUFDCommand.destroy, b.bytes).0, EINVAL)
    }

    func testSelftest06GlobalOptionsGetDefault() {
        var o = IOMMUOption(optionId: IOMMUFDConstant.optionRlimitMode, op: IOMMUFDConstant.optionOpGet)
        XCTAssertEqual(s.call(IOMMUFDCommand.option, &o), 0)
        XCTAssertEqual(o.val64, 0)
    }

    func testSelftest07GlobalOptionsSet() {
        var o = IOMMUOption(optionId: IOMMUFDConstant.optionRlimitMode, op: IOMMUFDConstant.optionOpSet, val64: 1)
        XCTAssertEqual(s.call(IOMMUFDCommand.option, &o), 0)
        o.val64 = 2
        XCTAssertEqual(s.call(IOMMUFDCommand.option, &o), EINVAL)
        o = IOMMUOption(optionId: IOMMUFDConstant.optionRlimitMode, op: IOMMUFDConstant.optionOpGet)
        XCTAssertEqual(s.call(IOMMUFDCommand.option, &o), 0)
        XCTAssertEqual(o.val64, 1)
        o = IOMMUOption(optionId: IOMMUFDConstant.optionRlimitMode, op: IOMMUFDConstant.optionOpSet, val64: 0)
        XCTAssertEqual(s.call(IOMMUFDCommand.option, &o), 0)
        // With an object in the context the mode cannot change.
        _ = s.ioasAlloc()
        o.val64 = 1
        XCTAssertEqual(s.call(IOMMUFDCommand.option, &o), EBUSY)
    }

    func testSelftest08HugePagesWithoutObjectIsENOENT() {
        var o = IOMMUOption(optionId: IOMMUFDConstant.optionHugePages, op: IOMMUFDConstant.optionOpGet)
        XCTAssertEqual(s.call(IOMMUFDCommand.option, &o), ENOENT)
        o.op = IOMMUFDConstant.optionOpSet
        XCTAssertEqual(s.call(IOMMUFDCommand.option, &o), ENOENT)
    }

    func testSelftest09SimpleClose() {
        let ioas = s.ioasAlloc()
        XCTAssertEqual(s.mapFixed(ioas, s.buffer, BUFFER_SIZE, iova: 0x100000), 0)
        // teardownCheck (tearDown) closes, reopens and checks every page has 0 pins.
    }
}
