import XCTest
import IOMMUCore
import IOMMUDrivers
@testable import IOMMUFD
import IOMMUFDSelftest

let PAGE: UInt64 = 4096
let MOCK_PAGE: UInt64 = 2048
let BUFFER_SIZE: UInt64 = 16 * PAGE
let APERTURE_START = IOMMUTestOp.mockApertureStart
let APERTURE_LAST = IOMMUTestOp.mockApertureLast

/// One "open of /dev/iommu" as the kernel selftest sees it: a machine with the mock IOMMU,
/// a process, an iommufd context built with the selftest backend, a scratch page for
/// ioctl arguments and `buffer` (BUFFER_SIZE bytes at a huge-page aligned address).
/// Every call goes through the raw dispatcher with the exact struct bytes.
final class SelftestFD {
    let machine: Machine
    let process: IOMMUCore.Process
    let backend: MockSelftestBackend
    var fd: IOMMUFD
    let arg: UInt64
    let buffer: UInt64

    init(credentials: any IOMMUFDCredentialSource = IOMMUFDCredentials.root) throws {
        machine = Machine(memory: 8 << 30)
        process = try IOMMUCore.Process(memory: machine.memory, pid: 100)
        backend = MockSelftestBackend(machine: machine)
        fd = IOMMUFD(machine: machine, process: process, credentials: credentials, testBackend: backend)
        arg = try process.mmap(length: 1 << 20, prot: [.read, .write], at: 0x7000_0000, populate: true)
        buffer = try process.mmap(length: Int(BUFFER_SIZE), prot: [.read, .write], at: 0x4000_0000)
        // Touch the buffer like the selftest's memset, so every page exists.
        try process.writeMemory(address: buffer, bytes: [UInt8](repeating: 0, count: Int(BUFFER_SIZE)))
    }

    /// Reopen after close (`teardown_iommufd`).
    func reopen() {
        fd = IOMMUFD(machine: machine, process: process, testBackend: backend)
    }

    /// ioctl with raw bytes placed at the scratch page; returns rc and the bytes after.
    func raw(_ cmd: UInt32, _ bytes: [UInt8], at address: UInt64? = nil) -> (Int32, [UInt8]) {
        let a = address ?? arg
        try! process.writeMemory(address: a, bytes: bytes)
        let rc = fd.ioctl(cmd, a)
        return (rc, bytes.isEmpty ? [] : try! process.readMemory(address: a, count: bytes.count))
    }

    /// ioctl with a struct; the struct is updated from what the kernel wrote back.
    @discardableResult
    func call<T: UAPIStruct>(_ cmd: UInt32, _ s: inout T) -> Int32 {
        let (rc, out) = raw(cmd, s.bytes)
        s = T(bytes: out)
        return rc
    }

    /// IOMMU_TEST_CMD with a union member; the member is updated.
    @discardableResult
    func test<P: IOMMUTestPayload>(_ op: UInt32, id: UInt32 = 0, _ p: inout P) -> Int32 {
        var c = IOMMUTestCmd(op: op, id: id, p)
        let rc = call(IOMMUFDCommand.testCmd, &c)
        p = c.member(P.self)
        return rc
    }

    @discardableResult
    func test<P: IOMMUTestPayload>(_ op: UInt32, id: UInt32 = 0, _ p: P) -> Int32 {
        var q = p
        return test(op, id: id, &q)
    }

    // MARK: helpers (the selftest's iommufd_utils.h, through the raw path)

    func ioasAlloc() -> UInt32 {
        var c = IOMMUIOASAlloc()
        let rc = call(IOMMUFDCommand.ioasAlloc, &c)
        precondition(rc == 0, "IOAS_ALLOC failed: \(rc)")
        return c.outIoasId
    }

    func mapFixed(_ ioas: UInt32, _ va: UInt64, _ length: UInt64, iova: UInt64,
                  flags: UInt32 = IOMMUFDConstant.mapWriteable | IOMMUFDConstant.mapReadable) -> Int32 {
        var c = IOMMUIOASMap(flags: flags | IOMMUFDConstant.mapFixedIOVA, ioasId: ioas, userVa: va, length: length, iova: iova)
        return call(IOMMUFDCommand.ioasMap, &c)
    }

    func mapAuto(_ ioas: UInt32, _ va: UInt64, _ length: UInt64,
                 flags: UInt32 = IOMMUFDConstant.mapWriteable | IOMMUFDConstant.mapReadable) -> (Int32, UInt64) {
        var c = IOMMUIOASMap(flags: flags, ioasId: ioas, userVa: va, length: length)
        let rc = call(IOMMUFDCommand.ioasMap, &c)
        return (rc, c.iova)
    }

    func unmap(_ ioas: UInt32, _ iova: UInt64, _ length: UInt64) -> (Int32, UInt64) {
        var c = IOMMUIOASUnmap(ioasId: ioas, iova: iova, length: length)
        let rc = call(IOMMUFDCommand.ioasUnmap, &c)
        return (rc, c.length)
    }

    func destroy(_ id: UInt32) -> Int32 {
        var c = IOMMUDestroy(id: id)
        return call(IOMMUFDCommand.destroy, &c)
    }

    /// `test_cmd_mock_domain`: (stdev, hwpt, idev).
    func mockDomain(_ id: UInt32, flags: UInt32 = 0) -> (Int32, UInt32, UInt32, UInt32) {
        var m = IOMMUTestCmd.MockDomainFlags(devFlags: flags)
        let rc = test(IOMMUTestOp.mockDomainFlags, id: id, &m)
        return (rc, m.outStdevId, m.outHwptId, m.outIdevId)
    }

    func replace(_ stdev: UInt32, _ pt: UInt32) -> (Int32, UInt32) {
        var m = IOMMUTestCmd.MockDomainReplace(ptId: pt)
        let rc = test(IOMMUTestOp.mockDomainReplace, id: stdev, &m)
        return (rc, m.ptId)
    }

    func checkMap(_ hwpt: UInt32, _ iova: UInt64, _ length: UInt64, _ va: UInt64) -> Int32 {
        test(IOMMUTestOp.mdCheckMap, id: hwpt, IOMMUTestCmd.CheckMap(iova: iova, length: length, uptr: va))
    }

    func checkRefs(_ va: UInt64, _ length: UInt64, _ refs: UInt32) -> Int32 {
        test(IOMMUTestOp.mdCheckRefs, IOMMUTestCmd.CheckRefs(length: length, uptr: va, refs: refs))
    }

    func addReserved(_ ioas: UInt32, _ start: UInt64, _ length: UInt64) -> Int32 {
        test(IOMMUTestOp.addReserved, id: ioas, IOMMUTestCmd.AddReserved(start: start, length: length))
    }

    func allow(_ ioas: UInt32, _ ranges: [IOMMUIOVARange]) -> Int32 {
        let at = arg + 0x8000
        try! process.writeMemory(address: at, bytes: ranges.flatMap { $0.bytes } + [0])
        var c = IOMMUIOASAllowIOVAs(ioasId: ioas, numIovas: UInt32(ranges.count), allowedIovas: at)
        return call(IOMMUFDCommand.ioasAllowIOVAs, &c)
    }

    func hwptAlloc(dev: UInt32, pt: UInt32, flags: UInt32 = 0, dataType: UInt32 = 0, data: [UInt8]? = nil,
                   dataLen: UInt32? = nil, dataPtr: UInt64? = nil, faultID: UInt32 = 0) -> (Int32, UInt32) {
        let at = arg + 0x9000
        if let data { try! process.writeMemory(address: at, bytes: data) }
        var c = IOMMUHWPTAlloc(flags: flags, devId: dev, ptId: pt, dataType: dataType,
                               dataLen: dataLen ?? UInt32(data?.count ?? 0), dataUptr: dataPtr ?? (data == nil ? 0 : at),
                               faultId: faultID)
        let rc = call(IOMMUFDCommand.hwptAlloc, &c)
        return (rc, c.outHwptId)
    }

    func nestedAlloc(dev: UInt32, parent: UInt32, flags: UInt32 = 0, iotlb: UInt32 = IOMMUTestOp.iotlbDefault,
                     faultID: UInt32 = 0) -> (Int32, UInt32) {
        hwptAlloc(dev: dev, pt: parent, flags: flags, dataType: IOMMUTestOp.hwptDataSelftest,
                  data: IOMMUHWPTSelftest(iotlb: iotlb).bytes, faultID: faultID)
    }

    func faultAlloc() -> (Int32, UInt32, Int32) {
        var c = IOMMUFaultAlloc()
        let rc = call(IOMMUFDCommand.faultQueueAlloc, &c)
        return (rc, c.outFaultId, Int32(bitPattern: c.outFaultFd))
    }

    func createAccess(_ ioas: UInt32, flags: UInt32 = IOMMUTestOp.createAccessNeedsPinPages) -> (Int32, UInt32) {
        var m = IOMMUTestCmd.CreateAccess(flags: flags)
        let rc = test(IOMMUTestOp.createAccess, id: ioas, &m)
        return (rc, m.outAccessFd)
    }

    func accessPages(_ accessFD: UInt32, iova: UInt64, length: UInt64, uptr: UInt64, flags: UInt32 = 0) -> (Int32, UInt32) {
        var m = IOMMUTestCmd.AccessPages(flags: flags, iova: iova, length: length, uptr: uptr)
        let rc = test(IOMMUTestOp.accessPages, id: accessFD, &m)
        return (rc, m.outAccessPagesId)
    }

    func destroyAccessPages(_ accessFD: UInt32, _ item: UInt32) -> Int32 {
        test(IOMMUTestOp.destroyAccessPages, id: accessFD, IOMMUTestCmd.DestroyAccessPages(accessPagesId: item))
    }

    func pasidAttach(_ stdev: UInt32, _ pasid: UInt32, _ pt: UInt32) -> Int32 {
        test(IOMMUTestOp.pasidAttach, id: stdev, IOMMUTestCmd.PasidAttach(pasid: pasid, ptId: pt))
    }

    func pasidReplace(_ stdev: UInt32, _ pasid: UInt32, _ pt: UInt32) -> Int32 {
        test(IOMMUTestOp.pasidReplace, id: stdev, IOMMUTestCmd.PasidReplace(pasid: pasid, ptId: pt))
    }

    func pasidDetach(_ stdev: UInt32, _ pasid: UInt32) -> Int32 {
        test(IOMMUTestOp.pasidDetach, id: stdev, IOMMUTestCmd.PasidDetach(pasid: pasid))
    }

    func pasidCheck(_ stdev: UInt32, _ pasid: UInt32, _ hwpt: UInt32) -> Int32 {
        test(IOMMUTestOp.pasidCheckHWPT, id: stdev, IOMMUTestCmd.PasidCheck(pasid: pasid, hwptId: hwpt))
    }

    func checkIOTLB(_ hwpt: UInt32, _ id: UInt32, _ value: UInt32) -> Int32 {
        test(IOMMUTestOp.mdCheckIOTLB, id: hwpt, IOMMUTestCmd.CheckIOTLB(id: id, iotlb: value))
    }

    /// `teardown_iommufd`: close, reopen, and every buffer page must have pin count 0.
    func teardownCheck(file: StaticString = #filePath, line: UInt = #line) {
        fd.close()
        reopen()
        XCTAssertEqual(checkRefs(buffer, BUFFER_SIZE, 0), 0, "pages still pinned after close", file: file, line: line)
        XCTAssertEqual(PagePinRegistry.shared.pinnedPages(machine.memory), 0, file: file, line: line)
        fd.close()
    }
}

/// `-errno` for an `Errno`.
func neg(_ e: Errno) -> Int32 { -e.rawValue }

let ENOENT = neg(.noEntry), EINVAL = neg(.invalidArgument), EBUSY = neg(.busy), EEXIST = neg(.exists)
let EFAULT = neg(.badAddress), ENOTTY = neg(.notTTY), E2BIG = neg(.tooBig), EOPNOTSUPP = neg(.notSupported)
let ENODEV = neg(.noDevice), EADDRINUSE = neg(.addressInUse), ENOSPC = neg(.noSpace), EOVERFLOW = neg(.overflow)
let EMSGSIZE = neg(.messageTooLong), EPERM = neg(.notPermitted), ENOMEM = neg(.noMemory), EIO = neg(.ioError)
let EBADFD = neg(.badFileDescriptorState), EDEADLOCK = neg(.deadlock), ESPIPE = neg(.illegalSeek)
