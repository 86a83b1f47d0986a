import XCTest
import IOMMUCore
import IOMMUDrivers
@testable import IOMMUFD
import IOMMUFDSelftest

let ENXIO = neg(.noSuchDeviceOrAddress), EIONeg = neg(.ioError), ERANGE = neg(.outOfRange)

/// The selftest helpers of `iommufd_utils.h` for the vIOMMU family, through the raw path.
extension SelftestFD {
    /// `test_cmd_viommu_alloc` (with `data`, the mock's `struct iommu_viommu_selftest`,
    /// read back after the call).
    func viommuAlloc(dev: UInt32, hwpt: UInt32, type: UInt32 = IOMMUVIOMMUType.selftest,
                     data: inout IOMMUVIOMMUSelftest?) -> (Int32, UInt32) {
        let at = arg + 0xA000
        if let data { try! process.writeMemory(address: at, bytes: data.bytes) }
        var c = IOMMUVIOMMUAlloc(type: type, devId: dev, hwptId: hwpt, dataLen: data == nil ? 0 : UInt32(IOMMUVIOMMUSelftest.size),
                                 dataUptr: data == nil ? 0 : at)
        let rc = call(IOMMUFDCommand.viommuAlloc, &c)
        if data != nil { data = IOMMUVIOMMUSelftest(bytes: try! process.readMemory(address: at, count: IOMMUVIOMMUSelftest.size)) }
        return (rc, c.outViommuId)
    }

    func viommuAlloc(dev: UInt32, hwpt: UInt32, type: UInt32 = IOMMUVIOMMUType.selftest) -> (Int32, UInt32) {
        var none: IOMMUVIOMMUSelftest?
        return viommuAlloc(dev: dev, hwpt: hwpt, type: type, data: &none)
    }

    /// `test_cmd_vdevice_alloc`.
    func vdeviceAlloc(viommu: UInt32, dev: UInt32, virtID: UInt64) -> (Int32, UInt32) {
        var c = IOMMUVDeviceAlloc(viommuId: viommu, devId: dev, virtId: virtID)
        let rc = call(IOMMUFDCommand.vdeviceAlloc, &c)
        return (rc, c.outVdeviceId)
    }

    /// `test_cmd_veventq_alloc` (depth 2, as the selftest's).
    func veventqAlloc(viommu: UInt32, type: UInt32 = IOMMUVEventQType.selftest, depth: UInt32 = 2) -> (Int32, UInt32, Int32) {
        var c = IOMMUVEventQAlloc(viommuId: viommu, type: type, veventqDepth: depth)
        let rc = call(IOMMUFDCommand.veventqAlloc, &c)
        return (rc, c.outVeventqId, Int32(bitPattern: c.outVeventqFd))
    }

    /// `test_cmd_hw_queue_alloc`.
    func hwQueueAlloc(viommu: UInt32, type: UInt32 = IOMMUHWQueueType.selftest, index: UInt32, iova: UInt64,
                      length: UInt64) -> (Int32, UInt32) {
        var c = IOMMUHWQueueAlloc(viommuId: viommu, type: type, index: index, nestingParentIova: iova, length: length)
        let rc = call(IOMMUFDCommand.hwQueueAlloc, &c)
        return (rc, c.outHwQueueId)
    }

    /// `test_cmd_viommu_invalidate` / `test_err_viommu_invalidate`: the entries are written
    /// to the scratch page; `uptr` 0 passes NULL. Returns the rc and `entry_num` out.
    func viommuInvalidate(_ viommu: UInt32, _ entries: [IOMMUVIOMMUInvalidateSelftest],
                          dataType: UInt32 = IOMMUHWPTInvalidateDataType.viommuSelftest,
                          entryLen: UInt32 = UInt32(IOMMUVIOMMUInvalidateSelftest.size),
                          num: UInt32, nullData: Bool = false) -> (Int32, UInt32) {
        let at = arg + 0xB000
        try! process.writeMemory(address: at, bytes: entries.flatMap(\.bytes) + [UInt8](repeating: 0, count: 16))
        var c = IOMMUHWPTInvalidate(hwptId: viommu, dataUptr: nullData ? 0 : at, dataType: dataType, entryLen: entryLen,
                                    entryNum: num)
        let rc = call(IOMMUFDCommand.hwptInvalidate, &c)
        return (rc, c.entryNum)
    }

    /// `test_cmd_dev_check_cache`.
    func devCheckCache(_ dev: UInt32, _ id: UInt32, _ value: UInt32) -> Int32 {
        test(IOMMUTestOp.devCheckCache, id: dev, IOMMUTestCmd.CheckDevCache(id: id, cache: value))
    }

    /// `test_cmd_dev_check_cache_all`.
    func devCheckCacheAll(_ dev: UInt32, _ value: UInt32, file: StaticString = #filePath, line: UInt = #line) {
        for id in 0...Mock.devCacheIDMax {
            XCTAssertEqual(devCheckCache(dev, id, value), 0, "cache[\(id)]", file: file, line: line)
        }
    }

    /// `test_cmd_trigger_vevents`.
    func triggerVEvents(_ dev: UInt32, _ n: Int) -> Int32 {
        for _ in 0..<n {
            let rc = test(IOMMUTestOp.triggerVEvent, IOMMUTestCmd.TriggerVEvent(devId: dev))
            if rc != 0 { return rc }
        }
        return 0
    }

    /// `_test_cmd_read_vevents`: poll, read `n` events of header + `virt_id`, and check
    /// each: a LOST_EVENTS header or a gap in the sequence is `EOVERFLOW` (the helper's
    /// own convention, not a kernel errno), another virtual ID `EINVAL`, an empty read
    /// `EFAULT`.
    func readVEvents(_ fd: Int32, _ n: Int, virtID: UInt32, prevSeq: inout Int) -> Int32 {
        let record = IOMMUFDVEventHeader.size + IOMMUVIOMMUEventSelftest.size
        let at = arg + 0xC000
        _ = self.fd.pollFile(fd)
        let got = self.fd.readFile(fd, buffer: at, count: n * record)
        guard got > 0 else { return EFAULT }
        let bytes = try! process.readMemory(address: at, count: n * record)
        for i in 0..<n {
            let hdr = IOMMUFDVEventHeader(bytes: Array(bytes[(i * record)...]))
            if hdr.flags & IOMMUFDConstant.veventqFlagLostEvents != 0 || Int(hdr.sequence) - prevSeq > 1 {
                prevSeq = Int(hdr.sequence)
                return EOVERFLOW
            }
            prevSeq = Int(hdr.sequence)
            let event = IOMMUVIOMMUEventSelftest(bytes: Array(bytes[(i * record + IOMMUFDVEventHeader.size)...]))
            if event.virtId != virtID { return EINVAL }
        }
        return 0
    }
}

/// The `iommufd_viommu` fixture: an IOAS; for `mock_viommu`, a mock device on it, a
/// NEST_PARENT HWPT, a vIOMMU of type SELFTEST over it and a nested HWPT on the vIOMMU
/// (data SELFTEST, iotlb default). `no_viommu` leaves every ID 0.
struct VIOMMUFixture {
    let s: SelftestFD
    let ioas: UInt32
    var stdev: UInt32 = 0
    var hwpt: UInt32 = 0
    var nested: UInt32 = 0
    var device: UInt32 = 0
    var viommu: UInt32 = 0

    init(viommu hasVIOMMU: Bool) throws {
        s = try SelftestFD()
        ioas = s.ioasAlloc()
        precondition(s.test(IOMMUTestOp.setTempMemoryLimit, IOMMUTestCmd.MemoryLimit(limit: 65536)) == 0)
        guard hasVIOMMU else { return }
        let (rc, st, _, dev) = s.mockDomain(ioas)
        precondition(rc == 0)
        (stdev, device) = (st, dev)
        let (hrc, parent) = s.hwptAlloc(dev: device, pt: ioas, flags: IOMMUFDConstant.hwptAllocNestParent)
        precondition(hrc == 0)
        hwpt = parent
        let (vrc, v) = s.viommuAlloc(dev: device, hwpt: hwpt)
        precondition(vrc == 0, "VIOMMU_ALLOC: \(vrc)")
        viommu = v
        let (nrc, n) = s.nestedAlloc(dev: device, parent: viommu)
        precondition(nrc == 0, "nested on the vIOMMU: \(nrc)")
        nested = n
    }
}

extension XCTestCase {
    /// Runs `body` for the `iommufd_viommu` variants `no_viommu` and `mock_viommu`, each on
    /// a fresh context, then the teardown check (no page pinned after close).
    func forEachVIOMMUVariant(_ body: (inout VIOMMUFixture, Bool) throws -> Void) throws {
        for hasVIOMMU in [false, true] {
            var f = try VIOMMUFixture(viommu: hasVIOMMU)
            do { try body(&f, hasVIOMMU) } catch { XCTFail("\(hasVIOMMU ? "mock_viommu" : "no_viommu"): \(error)") }
            f.s.teardownCheck()
        }
    }

    /// The `mock_viommu` variant only (the cases the selftest skips for `no_viommu`).
    func withMockVIOMMU(_ body: (inout VIOMMUFixture) throws -> Void) throws {
        var f = try VIOMMUFixture(viommu: true)
        try body(&f)
        f.s.teardownCheck()
    }
}
