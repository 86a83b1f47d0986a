import XCTest
import IOMMUCore
@testable import IOMMUFD
import IOMMUFDSelftest

extension SelftestFD {
    /// The selftest's `mfd`/`mfd_buffer` (`memfd_mmap(BUFFER_SIZE, PROT_READ | PROT_WRITE,
    /// MAP_SHARED)`): a memfd of `size` bytes mapped shared and touched, so its pages
    /// exist in the page cache and in this process's page table.
    func memfdMmap(_ size: UInt64 = BUFFER_SIZE, at address: UInt64? = nil) throws -> (fd: Int32, va: UInt64) {
        let fd = try process.memfdCreate(name: "buffer", size: size)
        let va = try process.mmap(fd: fd, length: Int(size), prot: [.read, .write], at: address, populate: true)
        return (fd, va)
    }

    /// `test_ioctl_ioas_map_file` / `_test_ioctl_ioas_map_file` (auto IOVA unless `iova`).
    func mapFile(_ ioas: UInt32, _ fd: Int32, _ start: UInt64, _ length: UInt64, iova: UInt64? = nil,
                 flags: UInt32 = IOMMUFDConstant.mapWriteable | IOMMUFDConstant.mapReadable) -> (Int32, UInt64) {
        var c = IOMMUIOASMapFile(flags: flags | (iova == nil ? 0 : IOMMUFDConstant.mapFixedIOVA), ioasId: ioas,
                                 fd: fd, start: start, length: length, iova: iova ?? 0)
        let rc = call(IOMMUFDCommand.ioasMapFile, &c)
        return (rc, c.iova)
    }

    /// Bytes mapped in `ioas` right now (what an unmap-all would report).
    func mappedBytes(_ ioas: UInt32) -> UInt64 {
        fd.lock.withLock {
            (fd.table.live(ioas) as? IOASObject)?.iopt.areas.reduce(0) { $0 + $1.length } ?? 0
        }
    }
}

/// `IOMMU_IOAS_MAP_FILE` and `IOMMU_IOAS_CHANGE_PROCESS`: the kernel iommufd selftest's
/// `change_process` cases (17–18), case 93 and the `_file` / `_file_hugepage` variants of
/// the `iommufd_mock_domain` cases 95–97.
final class Selftest13MapFileTests: XCTestCase {
    // MARK: change_process (fixture: CAP_IPC_LOCK dropped, RLIMIT_MODE per variant, IOAS + mock device)

    enum Accounting: CaseIterable { case none, user, mm }

    /// The `change_process` fixture: the fd is opened by root, then the task drops
    /// `CAP_IPC_LOCK` (`drop_cap_ipc_lock`) before it maps anything, so its mappings are
    /// charged (USER, or MM after RLIMIT_MODE) although the context was opened with the
    /// capability: the context asks at map time.
    private func changeProcessFixture(_ v: Accounting, limit: UInt64 = .max) throws -> (SelftestFD, UInt32) {
        let task = IOMMUFDTaskCredentials(IOMMUFDCredentials(memlockLimitPages: limit))
        let s = try SelftestFD(credentials: task)
        task.drop(.ipcLock)
        if v != .none {
            var o = IOMMUOption(optionId: IOMMUFDConstant.optionRlimitMode, op: IOMMUFDConstant.optionOpSet,
                                val64: v == .mm ? 1 : 0)
            XCTAssertEqual(s.call(IOMMUFDCommand.option, &o), 0)
        }
        let ioas = s.ioasAlloc()
        XCTAssertEqual(s.mockDomain(ioas).0, 0)
        return (s, ioas)
    }

    private func changeProcess(_ s: SelftestFD, from caller: IOMMUCore.Process? = nil) -> Int32 {
        let c = IOMMUIOASChangeProcess()
        guard let caller else { var d = c; return s.call(IOMMUFDCommand.ioasChangeProcess, &d) }
        try! caller.writeMemory(address: s.arg, bytes: c.bytes)
        return s.fd.ioctl(IOMMUFDCommand.ioasChangeProcess, s.arg, from: caller)
    }

    func testSelftest17ChangeProcessSameProcess() throws {
        for v in Accounting.allCases {
            let (s, ioas) = try changeProcessFixture(v)
            let (mfd, _) = try s.memfdMmap()
            let (rc, iova) = s.mapAuto(ioas, s.buffer, PAGE)
            XCTAssertEqual(rc, 0)
            XCTAssertEqual(changeProcess(s), EINVAL, "\(v): a user-VA area cannot move")
            XCTAssertEqual(s.unmap(ioas, iova, PAGE).0, 0)
            let (frc, _) = s.mapFile(ioas, mfd, 0, PAGE)
            XCTAssertEqual(frc, 0)
            XCTAssertEqual(s.fd.accounting.pinnedPages(pid: s.process.pid), 1)
            XCTAssertEqual(changeProcess(s), 0, "\(v)")
            XCTAssertEqual(s.fd.accounting.pinnedPages(pid: s.process.pid), 1, "\(v): nothing moves to itself")
            XCTAssertEqual(s.fd.accounting.mmLockedPages(pid: s.process.pid), v == .mm ? 1 : 0)
            s.teardownCheck()
            XCTAssertEqual(s.fd.accounting.pinnedPages, 0)
        }
    }

    func testSelftest18ChangeProcessChildTakesOver() throws {
        for v in Accounting.allCases {
            let (s, ioas) = try changeProcessFixture(v)
            let (mfd, mfdBuffer) = try s.memfdMmap()
            XCTAssertEqual(s.mapFile(ioas, mfd, 0, PAGE).0, 0)
            let parent = s.process.pid
            let child = try s.process.fork(pid: 200)
            let acct = s.fd.accounting
            // In the child: the parent accounts for the pinned page before.
            XCTAssertEqual(acct.pinnedPages(pid: parent), 1, "\(v)")
            XCTAssertEqual(acct.mmLockedPages(pid: parent), v == .mm ? 1 : 0, "\(v)")
            XCTAssertEqual(acct.pinnedPages(pid: child.pid), 0)
            XCTAssertEqual(acct.mmLockedPages(pid: child.pid), 0)
            let userLocked = acct.userLockedPages
            XCTAssertEqual(userLocked, v == .mm ? 0 : 1,
                           "\(v): CAP_IPC_LOCK was dropped after open, so the map is charged to the user (or the mm)")

            XCTAssertEqual(changeProcess(s, from: child), 0, "\(v)")

            XCTAssertEqual(acct.pinnedPages(pid: parent), 0, "\(v)")
            XCTAssertEqual(acct.mmLockedPages(pid: parent), 0, "\(v)")
            XCTAssertEqual(acct.pinnedPages(pid: child.pid), 1, "\(v)")
            XCTAssertEqual(acct.mmLockedPages(pid: child.pid), v == .mm ? 1 : 0, "\(v)")
            XCTAssertEqual(acct.userLockedPages, userLocked, "\(v): the same user is charged once")
            // The child shares the file and sees the pinned page through its mapping.
            let pa = try XCTUnwrap(s.process.physicalAddress(of: mfdBuffer))
            XCTAssertEqual(try child.readMemory(address: mfdBuffer, count: 1), [0])
            XCTAssertEqual(child.physicalAddress(of: mfdBuffer), pa)
            child.exit()
            s.teardownCheck()
            XCTAssertEqual(acct.pinnedPages, 0, "\(v): the unpin uncharges the new owner")
            XCTAssertEqual(acct.mmLockedPages, 0)
            XCTAssertEqual(acct.userLockedPages, 0)
        }
    }

    /// charge_current runs before the old charge is dropped, so a user at its
    /// `RLIMIT_MEMLOCK` cannot hand its pins to a child: `ENOMEM`, and nothing moves.
    func testChangeProcessOverLimitIsENOMEMAndChangesNothing() throws {
        let (s, ioas) = try changeProcessFixture(.user, limit: 1)
        let (mfd, _) = try s.memfdMmap()
        XCTAssertEqual(s.mapFile(ioas, mfd, 0, PAGE).0, 0)
        let child = try s.process.fork(pid: 201)
        XCTAssertEqual(changeProcess(s, from: child), ENOMEM)
        XCTAssertEqual(s.fd.accounting.pinnedPages(pid: s.process.pid), 1)
        XCTAssertEqual(s.fd.accounting.pinnedPages(pid: child.pid), 0)
        XCTAssertEqual(s.fd.accounting.userLockedPages, 1)
        child.exit()
        s.teardownCheck()
        XCTAssertEqual(s.fd.accounting.pinnedPages, 0)
    }

    /// A COPY of a file-backed area is file-backed too, and the pages shared by the two
    /// IOASes are counted once.
    func testChangeProcessMovesCopiedFilePagesOnce() throws {
        let (s, ioas) = try changeProcessFixture(.mm)
        let (mfd, _) = try s.memfdMmap()
        let (rc, iova) = s.mapFile(ioas, mfd, 0, 4 * PAGE)
        XCTAssertEqual(rc, 0)
        let ioas2 = s.ioasAlloc()
        XCTAssertEqual(s.mockDomain(ioas2).0, 0)
        var c = IOMMUIOASCopy(flags: IOMMUFDConstant.mapReadable, dstIoasId: ioas2, srcIoasId: ioas, length: 4 * PAGE,
                              srcIova: iova)
        XCTAssertEqual(s.call(IOMMUFDCommand.ioasCopy, &c), 0)
        let child = try s.process.fork(pid: 202)
        XCTAssertEqual(changeProcess(s, from: child), 0)
        XCTAssertEqual(s.fd.accounting.pinnedPages(pid: child.pid), 4)
        XCTAssertEqual(s.fd.accounting.mmLockedPages(pid: child.pid), 4)
        XCTAssertEqual(s.fd.accounting.pinnedPages(pid: s.process.pid), 0)
        child.exit()
        s.teardownCheck()
        XCTAssertEqual(s.fd.accounting.pinnedPages, 0)
    }

    /// A mapping made while the task still held `CAP_IPC_LOCK` is ACCOUNT_NONE; one made
    /// after the task dropped it is charged, though both go through the same context.
    func testCapIPCLockIsAskedWhenTheMappingIsMade() throws {
        let task = IOMMUFDTaskCredentials()
        let s = try SelftestFD(credentials: task)
        let ioas = s.ioasAlloc()
        XCTAssertEqual(s.mockDomain(ioas).0, 0)
        XCTAssertEqual(s.mapFixed(ioas, s.buffer, PAGE, iova: APERTURE_START), 0)
        XCTAssertEqual(s.fd.accounting.userLockedPages, 0, "mapped with CAP_IPC_LOCK: not charged")
        XCTAssertEqual(s.fd.accounting.pinnedPages(pid: s.process.pid), 1)
        task.drop(.ipcLock)
        XCTAssertEqual(s.mapFixed(ioas, s.buffer + PAGE, 2 * PAGE, iova: APERTURE_START + PAGE), 0)
        XCTAssertEqual(s.fd.accounting.userLockedPages, 2, "mapped without CAP_IPC_LOCK: charged to the user")
        XCTAssertEqual(s.fd.accounting.pinnedPages(pid: s.process.pid), 3)
        task.setMemlockLimit(pages: 3)
        XCTAssertEqual(s.mapFixed(ioas, s.buffer + 3 * PAGE, 2 * PAGE, iova: APERTURE_START + 3 * PAGE), ENOMEM,
                       "RLIMIT_MEMLOCK is read at pin time")
        task.raise(.ipcLock)
        XCTAssertEqual(s.mapFixed(ioas, s.buffer + 3 * PAGE, 2 * PAGE, iova: APERTURE_START + 3 * PAGE), 0)
        XCTAssertEqual(s.fd.accounting.userLockedPages, 2)
        XCTAssertEqual(s.unmap(ioas, 0, .max).0, 0)
        XCTAssertEqual(s.fd.accounting.userLockedPages, 0)
        XCTAssertEqual(s.fd.accounting.pinnedPages, 0)
        s.teardownCheck()
    }

    /// `CAP_SYS_RESOURCE` is asked on every RLIMIT_MODE SET, not at open.
    func testCapSysResourceIsAskedAtOptionTime() throws {
        let task = IOMMUFDTaskCredentials()
        let s = try SelftestFD(credentials: task)
        var o = IOMMUOption(optionId: IOMMUFDConstant.optionRlimitMode, op: IOMMUFDConstant.optionOpSet, val64: 1)
        task.drop(.sysResource)
        XCTAssertEqual(s.call(IOMMUFDCommand.option, &o), EPERM)
        task.raise(.sysResource)
        XCTAssertEqual(s.call(IOMMUFDCommand.option, &o), 0)
        s.teardownCheck()
    }

    /// An ACCOUNT_NONE mapping (made with `CAP_IPC_LOCK`) keeps its `VmPin` with the old
    /// mm on CHANGE_PROCESS (`need_charge_update` skips it) while `change_mm` hands the
    /// pages to the caller; the later unpin then takes the page from the new mm's
    /// `pinned_vm`, an `atomic64_t` that goes below zero without a WARN. Nothing traps.
    func testChangeProcessOfAccountNoneMappingThenUnmapDoesNotTrap() throws {
        let s = try SelftestFD()
        let ioas = s.ioasAlloc()
        XCTAssertEqual(s.mockDomain(ioas).0, 0)
        let (mfd, _) = try s.memfdMmap()
        let (rc, iova) = s.mapFile(ioas, mfd, 0, PAGE)
        XCTAssertEqual(rc, 0)
        let child = try s.process.fork(pid: 203)
        XCTAssertEqual(changeProcess(s, from: child), 0)
        XCTAssertEqual(s.fd.accounting.pinnedPages(pid: s.process.pid), 1)
        XCTAssertEqual(s.fd.accounting.pinnedPages(pid: child.pid), 0)
        XCTAssertEqual(s.unmap(ioas, iova, PAGE).0, 0)
        XCTAssertEqual(s.fd.accounting.pinnedPages(pid: s.process.pid), 1, "the old mm keeps its VmPin")
        XCTAssertEqual(s.fd.accounting.pinnedPages(pid: child.pid), UInt64(bitPattern: -1),
                       "the new mm's pinned_vm is -1, printed unsigned as /proc does")
        XCTAssertEqual(s.fd.faultInjection.warnings, [], "pinned_vm has no WARN in the kernel")
        child.exit()
        s.teardownCheck()
    }

    /// Unpinning more than a counter holds is a WARN and the kernel's arithmetic, never a
    /// trap: `user->locked_vm` is left alone, `mm->locked_vm` wraps.
    func testUnchargeBelowZeroIsAWarnNotATrap() {
        let acct = PinAccounting()
        XCTAssertEqual(acct.uncharge(2, mode: .user, uid: 7, pid: 1)?.0, "decr_user_locked_vm")
        XCTAssertEqual(acct.userLockedPages(uid: 7), 0)
        XCTAssertEqual(acct.uncharge(2, mode: .mm, uid: 7, pid: 1)?.0, "__account_locked_vm")
        XCTAssertEqual(acct.mmLockedPages(pid: 1), UInt64.max - 1)
        XCTAssertNil(acct.uncharge(1, mode: .none, uid: 7, pid: 1))
    }

    // MARK: MAP_FILE errno and state

    /// `struct iommu_ioas_map_file`: 40 bytes, `fd` a signed word at 12 where MAP has
    /// `__reserved`, `start` at 16 where MAP has `user_va`; min_size is sizeof.
    func testMapFileLayout() {
        let m = IOMMUIOASMapFile(flags: 0x11223344, ioasId: 0x55667788, fd: -2, start: 0x0102030405060708,
                                 length: 0x1112131415161718, iova: 0x2122232425262728)
        let b = m.bytes
        XCTAssertEqual(b.count, 40)
        XCTAssertEqual(IOMMUIOASMapFile.minSize, 40)
        XCTAssertEqual(Array(b[0..<4]), [40, 0, 0, 0])
        XCTAssertEqual(Array(b[12..<16]), [0xFE, 0xFF, 0xFF, 0xFF])
        XCTAssertEqual(Array(b[16..<24]), [8, 7, 6, 5, 4, 3, 2, 1])
        XCTAssertEqual(IOMMUIOASMapFile(bytes: b), m)
        XCTAssertEqual(IOMMUFDCommand.ioasMapFile, 0x3B8F)
    }


    func testMapFileChecksInKernelOrder() throws {
        let s = try SelftestFD()
        let ioas = s.ioasAlloc()
        let (mfd, _) = try s.memfdMmap()
        let rw = IOMMUFDConstant.mapReadable | IOMMUFDConstant.mapWriteable
        // Each check fires before the later ones, whatever else is wrong.
        XCTAssertEqual(s.mapFile(99, -1, 0, 0, flags: rw | 1 << 3).0, EOPNOTSUPP)
        XCTAssertEqual(s.mapFile(99, -1, 0, UInt64.max, flags: rw).0, EOVERFLOW)
        XCTAssertEqual(s.mapFile(99, -1, 0, PAGE, iova: UInt64.max, flags: rw).0, EOVERFLOW)
        XCTAssertEqual(s.mapFile(99, -1, 0, PAGE, flags: IOMMUFDConstant.mapFixedIOVA).0, EINVAL)
        XCTAssertEqual(s.mapFile(99, -1, 0, PAGE).0, ENOENT)
        XCTAssertEqual(s.mapFile(ioas, -1, 0, PAGE).0, neg(.badFileDescriptor))
        XCTAssertEqual(s.mapFile(ioas, mfd + 1, 0, PAGE).0, neg(.badFileDescriptor))
        XCTAssertEqual(s.mapFile(ioas, mfd, UInt64.max - 1, PAGE).0, EOVERFLOW)
        XCTAssertEqual(s.mapFile(ioas, mfd, 0, 0).0, EINVAL)
        XCTAssertEqual(s.mappedBytes(ioas), 0, "no failed call left an area")
        XCTAssertEqual(PagePinRegistry.shared.pinnedPages(s.machine.memory), 0)
        // The descriptor is the caller's: a child's memfd is EBADF for the parent.
        let child = try s.process.fork(pid: 210)
        let childFD = try child.memfdCreate(name: "child", size: PAGE)
        XCTAssertEqual(s.mapFile(ioas, childFD, 0, PAGE).0, neg(.badFileDescriptor))
        let m = IOMMUIOASMapFile(flags: rw, ioasId: ioas, fd: childFD, length: PAGE)
        try child.writeMemory(address: s.arg, bytes: m.bytes)
        XCTAssertEqual(s.fd.ioctl(IOMMUFDCommand.ioasMapFile, s.arg, from: child), 0)
        child.exit()
        XCTAssertEqual(s.mappedBytes(ioas), PAGE)
        s.teardownCheck()
    }

    /// Past EOF is noticed when the pages are pinned: at MAP_FILE with a domain, at
    /// attach without one (lazy pinning, as for MAP's EFAULT).
    func testMapFilePastEOFIsEINVALWhenPinned() throws {
        let s = try SelftestFD(credentials: IOMMUFDCredentials(capIPCLock: false))
        let ioas = s.ioasAlloc()
        let (mfd, mfdVA) = try s.memfdMmap(4 * PAGE)
        XCTAssertEqual(s.mapFile(ioas, mfd, 2 * PAGE, 4 * PAGE, iova: APERTURE_START).0, 0, "nothing pinned yet")
        XCTAssertEqual(s.mockDomain(ioas).0, EINVAL, "the attach pins past EOF")
        XCTAssertEqual(s.unmap(ioas, APERTURE_START, 4 * PAGE).0, 0)
        let (rc, _, hwpt, _) = s.mockDomain(ioas)
        XCTAssertEqual(rc, 0)
        XCTAssertEqual(s.mapFile(ioas, mfd, 2 * PAGE, 3 * PAGE).0, EINVAL)
        XCTAssertEqual(s.mapFile(ioas, mfd, 0, 4 * PAGE + 1).0, EINVAL)
        XCTAssertEqual(s.mappedBytes(ioas), 0)
        XCTAssertEqual(PagePinRegistry.shared.pinnedPages(s.machine.memory), 0, "a failed pin leaves no pin")
        XCTAssertEqual(s.fd.accounting.pinnedPages, 0, "and no charge")
        // Any offset inside the file works, and the IOVA keeps the offset in the page.
        let (ok, iova) = s.mapFile(ioas, mfd, PAGE + 2048, 2 * PAGE)
        XCTAssertEqual(ok, 0)
        XCTAssertEqual(iova % PAGE, 2048)
        XCTAssertEqual(s.fd.accounting.pinnedPages, 3)
        XCTAssertEqual(s.checkMap(hwpt, iova, 2 * PAGE, mfdVA + PAGE + 2048), 0)
        XCTAssertEqual(s.unmap(ioas, iova, 2 * PAGE).0, 0)
        s.teardownCheck()
    }

    /// Pinned file pages outlive truncation and close: the domain keeps the frames and
    /// their data; unmapping frees them.
    func testMapFileKeepsPagesAcrossTruncateAndClose() throws {
        let s = try SelftestFD()
        let ioas = s.ioasAlloc()
        let (rc, _, hwpt, _) = s.mockDomain(ioas)
        XCTAssertEqual(rc, 0)
        let (mfd, va) = try s.memfdMmap(2 * PAGE)
        try s.process.writeMemory(address: va, bytes: [0xAB])
        let (mrc, iova) = s.mapFile(ioas, mfd, 0, 2 * PAGE)
        XCTAssertEqual(mrc, 0)
        XCTAssertEqual(s.checkMap(hwpt, iova, 2 * PAGE, va), 0)
        let pa = try XCTUnwrap(s.process.physicalAddress(of: va))
        try s.process.ftruncate(fd: mfd, length: 0)
        try s.process.close(fd: mfd)
        try s.process.munmap(address: va, length: Int(2 * PAGE))
        XCTAssertTrue(s.machine.memory.isAllocated(pa))
        XCTAssertEqual(try s.machine.memory.bytes(at: pa, count: 1), [0xAB])
        XCTAssertEqual(s.machine.memory.frameRefCount(pa), 1, "only the pin is left")
        XCTAssertEqual(s.unmap(ioas, iova, 2 * PAGE).0, 0)
        XCTAssertFalse(s.machine.memory.isAllocated(pa))
        s.teardownCheck()
    }

    /// A device's DMA into a MAP_FILE'd IOVA lands in the memfd's page cache: the process
    /// sees it through its shared mapping and through `pread`; CPU stores go the other way.
    func testDeviceDMAIntoMapFileIsVisibleThroughTheMemfdMapping() throws {
        let s = try SelftestFD()
        let ioas = s.ioasAlloc()
        let (rc, stdev, _, _) = s.mockDomain(ioas)
        XCTAssertEqual(rc, 0)
        let (mfd, va) = try s.memfdMmap()
        let (mrc, iova) = s.mapFile(ioas, mfd, PAGE, 4 * PAGE)
        XCTAssertEqual(mrc, 0)
        let dev = try XCTUnwrap(s.fd.lock.withLock { (s.fd.table.live(stdev) as? SelftestObject)?.mdev })
        try dev.dmaWrite(at: IOVA(rawValue: iova + PAGE + 10), bytes: [1, 2, 3, 4])
        XCTAssertEqual(try s.process.readMemory(address: va + 2 * PAGE + 10, count: 4), [1, 2, 3, 4])
        XCTAssertEqual(try s.process.memfd(mfd).read(offset: 2 * PAGE + 10, count: 4), [1, 2, 3, 4])
        try s.process.writeMemory(address: va + 4 * PAGE, bytes: [9, 8])
        XCTAssertEqual(try dev.dmaRead(at: IOVA(rawValue: iova + 3 * PAGE), count: 2), [9, 8])
        XCTAssertEqual(s.unmap(ioas, iova, 4 * PAGE).0, 0)
        s.teardownCheck()
    }

    func testTypedMapFileAndChangeProcess() throws {
        let s = try SelftestFD()
        let ioas = try s.fd.allocIOAS()
        let (mfd, _) = try s.memfdMmap()
        let iova = try s.fd.mapFile(ioas: ioas, fd: mfd, start: 0, length: 2 * PAGE, iova: IOVA(rawValue: APERTURE_START))
        XCTAssertEqual(iova, IOVA(rawValue: APERTURE_START))
        XCTAssertThrowsError(try s.fd.mapFile(ioas: ioas, fd: mfd + 7, start: 0, length: PAGE)) {
            XCTAssertEqual($0 as? Errno, .badFileDescriptor)
        }
        try s.fd.changeProcess()
        _ = try s.fd.map(ioas: ioas, userVA: s.buffer, length: PAGE)
        XCTAssertThrowsError(try s.fd.changeProcess()) { XCTAssertEqual($0 as? Errno, .invalidArgument) }
        s.teardownCheck()
    }

    /// Fail-nth over MAP_FILE with two domains, COPY, CHANGE_PROCESS and unmap: every
    /// unwind leaves no object, pin or charge. The memfd is populated beforehand, so its
    /// page cache (which rightly outlives the context) does not count as a leak.
    func testFailNthMapFile() throws {
        let n = try failNthSweep("map_file", memory: { s in _ = try! s.memfdMmap() }) { s in
            let mfd = s.process.openFileDescriptors[0]
            var step = Steps()
            let ioas = step.ioas(s)
            step(s.mockDomain(ioas).0)
            step(s.mapFile(ioas, mfd, PAGE, 4 * PAGE, iova: APERTURE_START).0)
            step(s.mockDomain(ioas).0)
            let ioas2 = step.ioas(s)
            var c = IOMMUIOASCopy(flags: IOMMUFDConstant.mapReadable, dstIoasId: ioas2, srcIoasId: ioas,
                                  length: 2 * PAGE, srcIova: APERTURE_START + PAGE)
            step(s.call(IOMMUFDCommand.ioasCopy, &c))
            var cp = IOMMUIOASChangeProcess()
            step(s.call(IOMMUFDCommand.ioasChangeProcess, &cp))
            step(s.unmap(ioas, APERTURE_START, 4 * PAGE).0)
            return step.rc
        }
        XCTAssertGreaterThan(n, 3)
    }

    // MARK: iommufd_mock_domain, file variants

    /// `one_domain_file` (buffer 8 pages) and `one_domain_file_hugepage` (2 × 2 MiB; its
    /// memfd is plain shmem, as `memfd_mmap` without `MAP_HUGETLB` makes it).
    private func forEachFileVariant(_ body: (SelftestFD, UInt32, UInt32, UInt64, Bool) throws -> Void) throws {
        for huge in [false, true] {
            let s = try SelftestFD()
            let ioas = s.ioasAlloc()
            let (rc, _, hwpt, _) = s.mockDomain(ioas)
            XCTAssertEqual(rc, 0)
            try body(s, ioas, hwpt, huge ? 2 * (2 << 20) : 8 * PAGE, huge)
            s.teardownCheck()
        }
    }

    func testSelftest93BasicFile() throws {
        try forEachFileVariant { s, ioas, hwpt, bufSize, _ in
            let (mfd, mfdBuffer) = try s.memfdMmap()
            let (rc, iova) = s.mapFile(ioas, mfd, 0, PAGE)
            XCTAssertEqual(rc, 0)
            XCTAssertEqual(s.checkMap(hwpt, iova, PAGE, mfdBuffer), 0)
            let tmp = try s.process.memfdCreate(name: "buffer", size: bufSize)
            try s.process.mmap(fd: tmp, length: Int(bufSize), prot: [.read, .write])
            XCTAssertEqual(s.mapFile(ioas, tmp, 0, bufSize + 1).0, EINVAL)
            try s.process.ftruncate(fd: tmp, length: 0)
            XCTAssertEqual(s.mapFile(ioas, tmp, 0, bufSize).0, EINVAL, "past EOF after ftruncate")
            try s.process.close(fd: tmp)
            XCTAssertEqual(s.mappedBytes(ioas), PAGE)
        }
    }

    private func allAligns(copy: Bool) throws {
        try forEachFileVariant { s, ioas, hwpt, bufSize, huge in
            let step = huge ? bufSize / 16 : MOCK_PAGE
            let (mfd, buf) = try s.memfdMmap(bufSize)
            XCTAssertEqual(s.checkRefs(buf, bufSize, 0), 0)
            var start: UInt64 = 0
            while start < bufSize {
                var end = huge ? bufSize : start + MOCK_PAGE
                while end < bufSize {
                    let length = end - start
                    let (rc, iova) = s.mapFile(ioas, mfd, start, length)
                    XCTAssertEqual(rc, 0, "start \(start) length \(length)")
                    var extra: UInt32 = 0
                    if copy {
                        let (mrc, stdev, hwpt2, _) = s.mockDomain(ioas)
                        XCTAssertEqual(mrc, 0)
                        XCTAssertEqual(hwpt2, hwpt, "mock devices share the auto hwpt")
                        extra = stdev
                    }
                    XCTAssertEqual(s.checkMap(hwpt, iova, length, buf + start), 0)
                    let lo = start / PAGE * PAGE, hi = end / PAGE * PAGE
                    XCTAssertEqual(s.checkRefs(buf + lo, hi - lo, 1), 0)
                    if copy { XCTAssertEqual(s.destroy(extra), 0) }
                    XCTAssertEqual(s.unmap(ioas, iova, length).0, 0)
                    end += MOCK_PAGE
                }
                start += step
            }
            XCTAssertEqual(s.checkRefs(buf, bufSize, 0), 0)
            try s.process.munmap(address: buf, length: Int(bufSize))
            try s.process.close(fd: mfd)
        }
    }

    func testSelftest95AllAlignsFile() throws { try allAligns(copy: false) }

    func testSelftest96AllAlignsCopyFile() throws { try allAligns(copy: true) }

    func testSelftest97UserCopyFile() throws {
        try forEachFileVariant { s, ioas, hwpt, _, _ in
            let (mfd, buf) = try s.memfdMmap()
            let ioas2 = s.ioasAlloc()
            let (m1, src) = s.mapFile(ioas2, mfd, 0, BUFFER_SIZE)
            XCTAssertEqual(m1, 0)
            let (arc, access) = s.createAccess(ioas2)
            XCTAssertEqual(arc, 0)
            let (prc, item) = s.accessPages(access, iova: src, length: BUFFER_SIZE, uptr: buf)
            XCTAssertEqual(prc, 0, "the access pins the memfd's pages, the ones behind mfd_buffer")
            var c = IOMMUIOASCopy(flags: IOMMUFDConstant.mapFixedIOVA | IOMMUFDConstant.mapWriteable,
                                  dstIoasId: ioas, srcIoasId: ioas2, length: BUFFER_SIZE,
                                  dstIova: APERTURE_START, srcIova: src)
            XCTAssertEqual(s.call(IOMMUFDCommand.ioasCopy, &c), 0)
            XCTAssertEqual(s.checkMap(hwpt, APERTURE_START, BUFFER_SIZE, buf), 0)
            let ioas3 = s.ioasAlloc()
            let (m3, src3) = s.mapFile(ioas3, mfd, 0, BUFFER_SIZE)
            XCTAssertEqual(m3, 0)
            XCTAssertEqual(s.destroyAccessPages(access, item), 0)
            XCTAssertEqual(s.test(IOMMUTestOp.accessReplaceIOAS, id: access, IOMMUTestCmd.AccessReplaceIOAS(ioasId: ioas3)), 0)
            XCTAssertEqual(s.unmap(ioas, APERTURE_START, BUFFER_SIZE).0, 0)
            XCTAssertEqual(s.destroy(ioas2), 0)
            let (p2, item2) = s.accessPages(access, iova: src3, length: BUFFER_SIZE, uptr: buf)
            XCTAssertEqual(p2, 0)
            c.srcIoasId = ioas3
            c.srcIova = src3
            XCTAssertEqual(s.call(IOMMUFDCommand.ioasCopy, &c), 0)
            XCTAssertEqual(s.checkMap(hwpt, APERTURE_START, BUFFER_SIZE, buf), 0)
            XCTAssertEqual(s.destroyAccessPages(access, item2), 0)
            XCTAssertEqual(s.fd.closeFile(Int32(bitPattern: access)), 0)
            XCTAssertEqual(s.destroy(ioas3), 0)
            XCTAssertEqual(s.unmap(ioas, APERTURE_START, BUFFER_SIZE).0, 0)
        }
    }
}
