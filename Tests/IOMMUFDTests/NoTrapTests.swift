import XCTest
import IOMMUCore
import IOMMUDrivers
@testable import IOMMUFD

/// What used to trap on bad input now returns an errno that says where it came from, or
/// records a WARN and leaves the state as it was.
final class NoTrapTests: XCTestCase {
    func machine(memory: UInt64 = 1 << 30) throws -> (Machine, PCIDevice) {
        let machine = Machine(memory: memory)
        let unit = MockIOMMU(driver: MockIOMMUDriver())
        machine.addIOMMU(unit)
        let dev = try machine.addDevice(PCIDevice(rid: RID(bus: 0, device: 4, function: 0),
                                                  caps: PCICapabilities(pasid: PASIDCapability(width: 8))),
                                        behind: unit)
        return (machine, dev)
    }

    func assertErrno<T>(_ expected: Errno, _ text: String, _ body: () throws -> T,
                        file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try body()
            XCTFail("no error, expected \(expected)", file: file, line: line)
        } catch {
            XCTAssertEqual(error as? Errno, expected, file: file, line: line)
            XCTAssertEqual("\(error)", text, file: file, line: line)
        }
    }

    func testAllocContiguousSaysWhyIn2KiB() {
        let memory = PhysicalMemory(size: 1 << 30)
        assertErrno(.invalidArgument, "EINVAL from allocContiguous: size 2048 is not a multiple of 4096") {
            try memory.allocContiguous(bytes: 2048)
        }
        do {
            _ = try memory.allocContiguous(bytes: 2048)
        } catch {
            XCTAssertEqual(error, .invalidArgument, "equality is by the number only")
            XCTAssertEqual(error.function, "allocContiguous")
            XCTAssertEqual(error.reason, "size 2048 is not a multiple of 4096")
            XCTAssertEqual(Set([error, Errno.invalidArgument]).count, 1, "hashing is by the number only")
            XCTAssertEqual(error.cName, "EINVAL")
        }
        XCTAssertEqual("\(Errno.invalidArgument)", "EINVAL", "a bare errno prints its C name")
    }

    func testMemoryAccessOutsideMemoryIsEFAULT() throws {
        let (machine, _) = try machine()
        let memory = machine.memory
        let end = PhysicalAddress(rawValue: memory.size)
        assertErrno(.badAddress, "EFAULT from bytes(at:): [0x3ffffffc, 0x3ffffffc + 8) is outside physical memory (1073741824 bytes)") {
            try memory.bytes(at: end - 4, count: 8)
        }
        assertErrno(.badAddress, "EFAULT from write: [0x40000000, 0x40000000 + 1) is outside physical memory (1073741824 bytes)") {
            try memory.write(end, [1])
        }
        var buffer = [UInt8](repeating: 0, count: 16)
        XCTAssertThrowsError(try buffer.withUnsafeMutableBytes { b in try memory.read(end - 8, into: b) })
        XCTAssertEqual(try memory.bytes(at: end - 4, count: 4), [0, 0, 0, 0], "the last bytes are readable")
        XCTAssertEqual(try memory.bytes(at: end, count: 0), [], "an empty range at the end is inside")
        // A load64-style access at 8 GiB on a 1 GiB machine.
        assertErrno(.badAddress, "EFAULT from read64: [0x200000000, 0x200000000 + 8) is outside physical memory (1073741824 bytes)") {
            try memory.read64(at: 0x2_0000_0000)
        }
        assertErrno(.badAddress, "EFAULT from write64: [0x200000000, 0x200000000 + 8) is outside physical memory (1073741824 bytes)") {
            try memory.write64(1, at: 0x2_0000_0000)
        }
        XCTAssertThrowsError(try memory.read64(at: end - 7), "a word straddling the end")
        let pa = try memory.allocFrame()
        try memory.write64(0x1122_3344_5566_7788, at: pa + 3)
        XCTAssertEqual(try memory.read64(at: pa + 3), 0x1122_3344_5566_7788, "any alignment, little-endian")
        XCTAssertEqual(try memory.bytes(at: pa + 3, count: 2), [0x88, 0x77])
        assertErrno(.badAddress, "EFAULT from get_page: 0x200000000 is outside physical memory (1073741824 bytes)") {
            try memory.getFrame(0x2_0000_0000)
        }
    }

    func testDoubleFreesAreWarningsAndChangeNothing() throws {
        let (machine, _) = try machine()
        let memory = machine.memory
        let before = memory.framesInUse
        let frame = try memory.allocFrame()
        memory.freeFrame(frame)
        memory.freeFrame(frame)
        XCTAssertEqual(memory.framesInUse, before, "the second free changed nothing")
        memory.putFrame(0x2_0000_0000)
        let run = try memory.allocContiguous(bytes: 4 * 4096, alignment: 4 * 4096)
        memory.free(run, bytes: 4 * 4096)
        memory.free(run, bytes: 4 * 4096)
        XCTAssertEqual(memory.framesInUse, before)
        let pinned = try memory.allocContiguous(bytes: 2 * 4096)
        try memory.getFrame(pinned + 4096)
        memory.free(pinned, bytes: 2 * 4096)
        XCTAssertTrue(memory.isAllocated(pinned), "a referenced run stays allocated")
        XCTAssertEqual(machine.warnings.map(\.function), ["put_page", "put_page", "__free_pages", "__free_pages"])
        XCTAssertEqual(machine.warnings.first?.message, "the frame at \(frame) is already free (double free)")
        XCTAssertEqual(memory.warnings.count, 4)
        XCTAssertNotNil(try memory.allocFrame(), "the allocator still works")
    }

    func testDMAFromADeviceOnNoMachineIsENODEV() throws {
        let dev = PCIDevice(rid: RID(bus: 0, device: 9, function: 0))
        XCTAssertThrowsError(try dev.dmaRead(at: 0x1000, count: 8)) { error in
            let fault = error as? DMAFault
            XCTAssertEqual(fault?.reason, .noMachine)
            XCTAssertEqual(fault?.errno, .noDevice)
            XCTAssertEqual(fault?.errno.function, "dmaRead")
        }
        var machine: Machine? = Machine(memory: 1 << 30)
        try machine!.addDevice(dev, behind: nil)
        XCTAssertEqual(try dev.dmaRead(at: 0x1000, count: 2), [0, 0], "on a machine without IOMMU it works")
        machine = nil
        XCTAssertThrowsError(try dev.dmaWrite(at: 0x1000, bytes: [1])) {
            XCTAssertEqual(($0 as? DMAFault)?.errno, .noDevice, "its machine is gone")
        }
    }

    func testCallsOnAFreedDomainAreRefused() throws {
        let (machine, dev) = try machine()
        let iommu = machine.iommu
        let domain = try iommu.allocPagingDomain(for: dev)
        iommu.freeDomain(domain)
        assertErrno(.invalidArgument, "EINVAL from iommu_map: \(domain) was freed") {
            try iommu.map(domain, iova: 0x10_0000, paddr: 0x20_0000, size: 4096, prot: [.read])
        }
        XCTAssertEqual(iommu.unmap(domain, iova: 0x10_0000, size: 4096), 0)
        XCTAssertEqual(iommu.iovaToPhys(domain, iova: 0x10_0000), 0)
        assertErrno(.invalidArgument, "EINVAL from __iommu_attach_group: \(domain) was freed") {
            try iommu.attachDevice(domain, to: dev)
        }
        iommu.freeDomain(domain)
        XCTAssertEqual(machine.warnings.map(\.function),
                       ["iommu_map", "__iommu_unmap", "iommu_iova_to_phys", "__iommu_attach_group", "iommu_domain_free"])
        XCTAssertTrue(dev.group?.domain === dev.group?.defaultDomain, "the device stayed on its default domain")
    }

    func testCallsOnUnboundOrDestroyedIOMMUFDObjectsAreRefused() throws {
        let (machine, dev) = try machine()
        let fd = IOMMUFD(machine: machine, process: try IOMMUCore.Process(memory: machine.memory, pid: 5))
        let idev = try fd.deviceBind(dev)
        let ioas = try fd.allocIOAS()
        fd.deviceUnbind(idev)
        assertErrno(.noEntry, "ENOENT from iommufd_device_attach: \(idev) was destroyed") {
            try fd.deviceAttach(idev, ptID: ioas)
        }
        let access = try fd.accessCreate(ops: IOMMUFDAccessOps(needsPinPages: true, unmap: { _, _ in }))
        fd.accessDestroy(access)
        assertErrno(.noEntry, "ENOENT from iommufd_access_attach: \(access) was destroyed") {
            try fd.accessAttach(access, ioasID: ioas)
        }
        XCTAssertThrowsError(try fd.accessPinPages(access, iova: 0, length: 4096, write: false))
        XCTAssertThrowsError(try fd.accessRW(access, iova: 0, count: 4, write: nil))
        fd.close()
        assertErrno(.badFileDescriptor, "EBADF from iommufd_device_bind: the context is closed") { try fd.deviceBind(dev) }
        assertErrno(.badFileDescriptor, "EBADF from iommufd_fops_ioctl: the context is closed") { try fd.allocIOAS() }
    }

    /// The typed iommufd API throws the errno the handler refused with, reason and all;
    /// the raw ioctl returns just the number; and the log records the same text.
    func testTypedIOMMUFDErrorsSayWhereAndAreLogged() throws {
        let (machine, _) = try machine()
        machine.events.isEnabled = true
        let fd = IOMMUFD(machine: machine, process: try IOMMUCore.Process(memory: machine.memory, pid: 6))
        let ioas = try fd.allocIOAS()
        assertErrno(.invalidArgument, "EINVAL from iommufd_ioas_map: neither IOMMU_IOAS_MAP_READABLE nor IOMMU_IOAS_MAP_WRITEABLE") {
            try fd.map(ioas: ioas, userVA: 0x1000, length: 4096, iova: 0x1000, flags: [])
        }
        assertErrno(.noEntry, "ENOENT from iommufd_get_object: no IOMMUFD_OBJ_IOAS 9") {
            try fd.unmap(ioas: 9, iova: 0, length: 4096)
        }
        assertErrno(.busy, "EBUSY from iommufd_destroy: IOMMUFD_OBJ_IOAS#1 is still referenced (1 reference(s) besides the table's)") {
            let access = try fd.accessCreate(ops: IOMMUFDAccessOps(needsPinPages: false, unmap: nil))
            try fd.accessAttach(access, ioasID: ioas)
            try fd.destroy(ioas)
        }
        let failures = machine.events.named("iommukit:error")
        XCTAssertEqual(failures.map { $0["call"] }, ["IOMMU_IOAS_MAP", "IOMMU_IOAS_UNMAP", "IOMMU_DESTROY"])
        XCTAssertEqual(failures.first?["errno"], "EINVAL")
        XCTAssertEqual(failures.first?["text"],
                       "EINVAL from iommufd_ioas_map: neither IOMMU_IOAS_MAP_READABLE nor IOMMU_IOAS_MAP_WRITEABLE")
        XCTAssertEqual(fd.ioctl(IOMMUFDCommand.destroy, 0x1), -Errno.badAddress.rawValue, "the raw uAPI: the number only")
    }

    /// A core entry point's failure is logged once, by the outermost call.
    func testCoreErrorsAreLoggedByTheEntryPoint() throws {
        let (machine, dev) = try machine()
        machine.events.isEnabled = true
        let iommu = machine.iommu
        let domain = try iommu.allocPagingDomain(for: dev)
        XCTAssertThrowsError(try iommu.map(domain, iova: 0x1001, paddr: 0x20_0000, size: 4096, prot: [.read]))
        XCTAssertThrowsError(try iommu.attachDevicePasid(domain, to: dev, pasid: 0))
        let failures = machine.events.named("iommukit:error")
        XCTAssertEqual(failures.map { $0["call"] }, ["iommu_map", "iommu_attach_device_pasid"])
        XCTAssertEqual(failures.last?["text"], "EINVAL from iommu_attach_device_pasid: PASID 0 is the RID's (IOMMU_NO_PASID)")
    }
}
