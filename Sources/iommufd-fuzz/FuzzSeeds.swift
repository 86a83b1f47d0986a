import IOMMUFDSelftest

/// The seed corpus: short programs that reach deep into the model, written from the
/// selftest's own steps, plus the inputs that once trapped (an area ending at the top of
/// the IOVA space, mock devices made and destroyed over and over, CHANGE_PROCESS of
/// pages that were not charged). libFuzzer mutates them; ``FuzzSandbox`` runs them.
enum FuzzSeeds {
    static let rw = IOMMUFDConstant.mapReadable | IOMMUFDConstant.mapWriteable
    static let fixed = IOMMUFDConstant.mapFixedIOVA
    static let aperture = IOMMUTestOp.mockApertureStart
    static let buffer = FuzzSandbox.bufferAddress
    static let page: UInt64 = 4096

    static func step(_ op: FuzzOperation, _ payload: [UInt8], _ placement: FuzzArgumentPlacement = .argPage) -> FuzzStep {
        FuzzStep(operation: op, placement: placement, payload: payload)
    }
    static func step<T: UAPIStruct>(_ op: FuzzOperation, _ s: T) -> FuzzStep { step(op, s.bytes) }
    static func test<P: IOMMUTestPayload>(_ op: UInt32, id: UInt32 = 0, _ p: P) -> FuzzStep {
        step(.testCmd, IOMMUTestCmd(op: op, id: id, p).bytes)
    }

    static let ioas = step(.ioasAlloc, IOMMUIOASAlloc())
    static func mockDomain(_ pt: UInt32, flags: UInt32 = 0) -> FuzzStep {
        test(IOMMUTestOp.mockDomainFlags, id: pt, IOMMUTestCmd.MockDomainFlags(devFlags: flags))
    }
    static func map(_ ioas: UInt32, iova: UInt64, length: UInt64, va: UInt64 = buffer) -> FuzzStep {
        step(.ioasMap, IOMMUIOASMap(flags: fixed | rw, ioasId: ioas, userVa: va, length: length, iova: iova))
    }
    static func unmap(_ ioas: UInt32, _ iova: UInt64, _ length: UInt64) -> FuzzStep {
        step(.ioasUnmap, IOMMUIOASUnmap(ioasId: ioas, iova: iova, length: length))
    }
    static func destroy(_ id: UInt32) -> FuzzStep { step(.destroy, IOMMUDestroy(id: id)) }

    /// The seed programs, by name (the name is the seed file's name).
    static var all: [(String, [FuzzStep])] {
        let top = UInt64.max - (page - 1)
        return [
            ("top-of-range", [ioas, map(1, iova: top, length: page), unmap(1, top, page), map(1, iova: top, length: page),
                              step(.ioasCopy, IOMMUIOASCopy(flags: fixed | IOMMUFDConstant.mapReadable, dstIoasId: 1,
                                                            srcIoasId: 1, length: page, dstIova: aperture,
                                                            srcIova: top)),
                              destroy(1)]),
            ("mock-domain-map", [ioas, mockDomain(1), map(1, iova: aperture, length: 4 * page),
                                 test(IOMMUTestOp.mdCheckMap, id: 4, IOMMUTestCmd.CheckMap(iova: aperture,
                                                                                          length: 4 * page, uptr: buffer)),
                                 unmap(1, aperture, 2 * page), unmap(1, 0, .max), destroy(2)]),
            ("devices-over-and-over", [ioas] + (0..<24).flatMap { _ in [mockDomain(1), destroy(2)] }),
            ("access-pin-and-rw", [ioas, map(1, iova: aperture, length: 8 * page),
                                   test(IOMMUTestOp.createAccess, id: 1,
                                        IOMMUTestCmd.CreateAccess(flags: IOMMUTestOp.createAccessNeedsPinPages)),
                                   test(IOMMUTestOp.accessPages, id: 1000,
                                        IOMMUTestCmd.AccessPages(iova: aperture, length: 4 * page, uptr: buffer)),
                                   test(IOMMUTestOp.accessRW, id: 1000,
                                        IOMMUTestCmd.AccessRW(iova: aperture + 3, length: 100,
                                                              uptr: FuzzSandbox.argAddress + 0x8000, flags: 0)),
                                   unmap(1, 0, .max), step(.closeFile, [0])]),
            ("change-process-uncharged", [ioas, mockDomain(1),
                                          step(.ioasMapFile, IOMMUIOASMapFile(flags: rw, ioasId: 1, fd: FuzzSandbox.memfd,
                                                                              start: 0, length: 2 * page)),
                                          step(.childIoctl, [UInt8(FuzzProgram.operations.firstIndex(of: .ioasChangeProcess)!)]
                                                + IOMMUIOASChangeProcess().bytes),
                                          unmap(1, 0, .max), step(.childExit, [])]),
            ("change-process-charged", [step(.capability, [0, 0]), ioas, mockDomain(1),
                                        step(.ioasMapFile, IOMMUIOASMapFile(flags: rw, ioasId: 1, fd: FuzzSandbox.memfd,
                                                                            start: 0, length: 2 * page)),
                                        step(.childIoctl, [UInt8(FuzzProgram.operations.firstIndex(of: .ioasChangeProcess)!)]
                                              + IOMMUIOASChangeProcess().bytes),
                                        step(.memlockLimit, [1, 0, 0, 0]), map(1, iova: aperture + 8 * page, length: 4 * page),
                                        unmap(1, 0, .max)]),
            ("nested-and-fault", [ioas, mockDomain(1),
                                  step(.hwptAlloc, IOMMUHWPTAlloc(flags: IOMMUFDConstant.hwptAllocNestParent, devId: 3, ptId: 1)),
                                  step(.faultQueueAlloc, IOMMUFaultAlloc()),
                                  step(.hwptAlloc, IOMMUHWPTAlloc(flags: IOMMUFDConstant.hwptFaultIDValid, devId: 3, ptId: 5,
                                                                  dataType: IOMMUTestOp.hwptDataSelftest, dataLen: 4,
                                                                  dataUptr: FuzzSandbox.argAddress + 48, faultId: 6)
                                    .bytes + [0xef, 0xbe, 0xad, 0x0b]),
                                  test(IOMMUTestOp.mockDomainReplace, id: 2, IOMMUTestCmd.MockDomainReplace(ptId: 7)),
                                  test(IOMMUTestOp.triggerIOPF, IOMMUTestCmd.TriggerIOPF(devId: 3, pasid: 0, grpid: 1,
                                                                                        perm: 1, addr: aperture)),
                                  step(.readFile, [0, 40, 0]), step(.pollFile, [0])]),
            ("dirty-tracking", [ioas, mockDomain(1),
                                step(.hwptAlloc, IOMMUHWPTAlloc(flags: IOMMUFDConstant.hwptAllocDirtyTracking, devId: 3, ptId: 1)),
                                map(1, iova: aperture, length: 8 * page),
                                step(.hwptSetDirtyTracking, IOMMUHWPTSetDirtyTracking(flags: 1, hwptId: 5)),
                                step(.hwptGetDirtyBitmap, IOMMUHWPTGetDirtyBitmap(hwptId: 5, iova: aperture, length: 8 * page,
                                                                                 pageSize: page,
                                                                                 data: FuzzSandbox.argAddress + 0x8000))]),
            ("pasid", [ioas, mockDomain(1, flags: IOMMUTestOp.devicePasid),
                       step(.hwptAlloc, IOMMUHWPTAlloc(flags: IOMMUFDConstant.hwptAllocPasid, devId: 3, ptId: 1)),
                       test(IOMMUTestOp.mockDomainReplace, id: 2, IOMMUTestCmd.MockDomainReplace(ptId: 5)),
                       test(IOMMUTestOp.pasidAttach, id: 2, IOMMUTestCmd.PasidAttach(pasid: 1024, ptId: 5)),
                       test(IOMMUTestOp.pasidReplace, id: 2, IOMMUTestCmd.PasidReplace(pasid: 1024, ptId: 5)),
                       test(IOMMUTestOp.pasidDetach, id: 2, IOMMUTestCmd.PasidDetach(pasid: 1024))]),
            ("vfio-compat", [ioas, step(.vfioIOAS, IOMMUVFIOIOAS(ioasId: 1, op: IOMMUFDConstant.vfioIOASSet)),
                             step(.vfioSetIOMMU, [3, 0, 0, 0, 0, 0, 0, 0]),
                             step(.vfioIOMMUMapDMA, VFIOIOMMUType1DMAMap(argsz: 32, flags: 3, vaddr: buffer, iova: 0x10000,
                                                                          size: 4 * page).bytes),
                             step(.vfioIOMMUUnmapDMA, VFIOIOMMUType1DMAUnmap(argsz: 24, iova: 0x10000, size: 4 * page).bytes)]),
            ("viommu", [ioas, mockDomain(1), map(1, iova: aperture, length: 2 * page),
                        step(.hwptAlloc, IOMMUHWPTAlloc(flags: IOMMUFDConstant.hwptAllocNestParent, devId: 3, ptId: 1)),
                        step(.viommuAlloc, IOMMUVIOMMUAlloc(type: IOMMUVIOMMUType.selftest, devId: 3, hwptId: 5,
                                                            dataLen: UInt32(IOMMUVIOMMUSelftest.size),
                                                            dataUptr: FuzzSandbox.argAddress + 48).bytes
                                + [UInt8](repeating: 0, count: 8) + IOMMUVIOMMUSelftest(inData: 0xbeef).bytes),
                        step(.vdeviceAlloc, IOMMUVDeviceAlloc(viommuId: 6, devId: 3, virtId: 0x99)),
                        step(.hwptAlloc, IOMMUHWPTAlloc(devId: 3, ptId: 6, dataType: IOMMUTestOp.hwptDataSelftest,
                                                        dataLen: 4, dataUptr: FuzzSandbox.argAddress + 48)
                                .bytes + [0xef, 0xbe, 0xad, 0x0b]),
                        test(IOMMUTestOp.mockDomainReplace, id: 2, IOMMUTestCmd.MockDomainReplace(ptId: 8)),
                        step(.veventqAlloc, IOMMUVEventQAlloc(viommuId: 6, type: IOMMUVEventQType.selftest, veventqDepth: 2)),
                        test(IOMMUTestOp.triggerVEvent, IOMMUTestCmd.TriggerVEvent(devId: 3)),
                        test(IOMMUTestOp.triggerVEvent, IOMMUTestCmd.TriggerVEvent(devId: 3)),
                        test(IOMMUTestOp.triggerVEvent, IOMMUTestCmd.TriggerVEvent(devId: 3)),
                        step(.pollFile, [0]), step(.readFile, [0, 40, 0]),
                        step(.hwptInvalidate, IOMMUHWPTInvalidate(hwptId: 6, dataUptr: FuzzSandbox.argAddress + 32,
                                                                  dataType: IOMMUHWPTInvalidateDataType.viommuSelftest,
                                                                  entryLen: UInt32(IOMMUVIOMMUInvalidateSelftest.size),
                                                                  entryNum: 2).bytes
                                + IOMMUVIOMMUInvalidateSelftest(vdevId: 0x99, cacheId: 1).bytes
                                + IOMMUVIOMMUInvalidateSelftest(flags: 1, vdevId: 0x99).bytes),
                        test(IOMMUTestOp.devCheckCache, id: 3, IOMMUTestCmd.CheckDevCache(id: 1, cache: 0)),
                        step(.hwQueueAlloc, IOMMUHWQueueAlloc(viommuId: 6, type: IOMMUHWQueueType.selftest, index: 0,
                                                              nestingParentIova: aperture, length: page)),
                        step(.hwQueueAlloc, IOMMUHWQueueAlloc(viommuId: 6, type: IOMMUHWQueueType.selftest, index: 1,
                                                              nestingParentIova: aperture + page / 2, length: page)),
                        unmap(1, aperture, page),
                        step(.mmapContext, [0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0x20, 0, 0, 1]),
                        step(.munmapMapping, [0, 0, 0]),
                        step(.childIoctl, [UInt8(FuzzProgram.operations.firstIndex(of: .destroy)!)] + IOMMUDestroy(id: 6).bytes),
                        destroy(7), destroy(10), destroy(9)]),
            ("check-refs-wide", [test(IOMMUTestOp.mdCheckRefs, IOMMUTestCmd.CheckRefs(length: 1 << 62, uptr: 0, refs: 0))]),
            ("sizes", [step(.destroy, [4, 0, 0, 0]), step(.ioasAlloc, [13, 0, 0, 0] + [UInt8](repeating: 0, count: 12)),
                       step(.destroy, IOMMUDestroy(id: 1).bytes, .null), step(.destroy, IOMMUDestroy(id: 1).bytes, .pageEnd),
                       step(.anyIoctl, [0x7f, 0x3b, 0, 0] + [UInt8](repeating: 0, count: 8))]),
        ]
    }
}
