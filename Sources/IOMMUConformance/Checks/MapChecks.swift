import IOMMUCore
import XCTest

// Map and unmap (checks 23-35; check 25, the gfp flags, means nothing in the model).

extension ConformanceSuite {
    static let mapChecks: [ConformanceCheck] = [
        .check23MapRejectsMisalignedSize, .check24MapOnNonPagingDomainIsEINVAL, .check26FailedMapLeavesNothingMapped,
        .check27PageSizeSelection, .check28MapOverExistingLeafIsEEXIST, .check29UnmapAtUnmappedIOVAReturnsZero,
        .check30UnmapInsideBlockDoesNotSplit, .check31UnmapAddsUpMapsAndStopsAtHole,
        .check32DMAFaultsAfterUnmapAndStaleWindowIsTracked, .check33TablePagesFreedOnlyAfterSync,
        .check34IovaToPhysOnIdentityAndBlocked, .check35FlushQueueDefersIOVAReuse,
    ]
}

/// The smallest page size of `domain`.
func minPage(_ domain: IOMMUDomain) -> UInt64 { domain.pgsizeBitmap & (~domain.pgsizeBitmap &+ 1) }

extension ConformanceCheck {
    /// Check 23: `iommu_map` with an IOVA, physical address or size that is not a
    /// multiple of the domain's smallest page size is `EINVAL` and maps nothing.
    public static var check23MapRejectsMisalignedSize: ConformanceCheck {
        ConformanceCheck { vendor in
            let rig = try vendor.makeRig([.pasid])
            let domain = try rig.pagingDomain()
            let page = minPage(domain)
            let buf = try rig.buffer(bytes: max(4096, Int(page)))
            let iova = rig.iova(domain)
            assertErrno(.invalidArgument, "size") {
                try rig.iommu.map(domain, iova: iova, paddr: buf, size: page + page / 2, prot: [.read])
            }
            assertErrno(.invalidArgument, "iova") {
                try rig.iommu.map(domain, iova: iova + page / 2, paddr: buf, size: page, prot: [.read])
            }
            assertErrno(.invalidArgument, "paddr") {
                try rig.iommu.map(domain, iova: iova, paddr: buf + page / 2, size: page, prot: [.read])
            }
            for off in stride(from: UInt64(0), to: 2 * page, by: Int(page)) {
                XCTAssertEqual(rig.iommu.iovaToPhys(domain, iova: iova + off), 0)
            }
            try rig.iommu.map(domain, iova: iova, paddr: buf, size: page, prot: [.read])
            XCTAssertEqual(rig.iommu.iovaToPhys(domain, iova: iova), buf)
        }
    }

    /// Check 24: `iommu_map` on a BLOCKED, IDENTITY, SVA or (with nesting) NESTED domain
    /// is `EINVAL`, with a WARN for each.
    public static var check24MapOnNonPagingDomainIsEINVAL: ConformanceCheck {
        ConformanceCheck { vendor in
            let rig = try vendor.makeRig([.pasid])
            var domains: [IOMMUDomain] = [
                rig.driver.blockedDomain ?? IOMMUDomain(type: .blocked, owner: rig.driver, ops: []),
                rig.driver.identityDomain ?? IOMMUDomain(type: .identity, owner: rig.driver, ops: []),
                IOMMUDomain(type: .sva, owner: rig.driver, ops: [.setDevPasid]),
            ]
            if vendor.has(.nesting) { domains.append(try vendor.nestedDomain(in: rig, for: rig.devices[0]).nested) }
            for d in domains {
                assertErrno(.invalidArgument, "\(d)") {
                    try rig.iommu.map(d, iova: 0x1000000, paddr: 0x100000, size: 4096, prot: [.read])
                }
            }
            XCTAssertEqual(rig.machine.warnings.filter { $0.function == "iommu_map" }.count, domains.count)
        }
    }

    /// Check 26: when the driver's `map_pages` fails part way, `iommu_map` returns the
    /// error and unmaps the pages it had mapped; without the failure the same map works.
    public static var check26FailedMapLeavesNothingMapped: ConformanceCheck {
        ConformanceCheck(requires: .failureInjection) { vendor in
            let rig = try vendor.makeRig([.pasid])
            let domain = try rig.pagingDomain()
            let buf = try rig.buffer(bytes: 4 * 4096)
            let iova = rig.iova(domain)
            let page = minPage(domain)
            try vendor.failMapPages(after: 3, in: domain)
            assertErrno(.noMemory) { try rig.iommu.map(domain, iova: iova, paddr: buf, size: 4 * 4096, prot: [.read]) }
            for off in stride(from: UInt64(0), to: 4 * 4096, by: Int(page)) {
                XCTAssertEqual(rig.iommu.iovaToPhys(domain, iova: iova + off), 0, "offset \(off)")
            }
            try vendor.failMapPages(after: nil, in: domain)
            try rig.iommu.map(domain, iova: iova, paddr: buf, size: 4 * 4096, prot: [.read])
        }
    }

    /// Check 27: the core's page-size choice (`iommu_pgsize`) on a 4K | 2M | 1G domain
    /// owned by the vendor's driver: the largest size both addresses are aligned to and
    /// the length covers, several pages of one size per `map_pages` call.
    public static var check27PageSizeSelection: ConformanceCheck {
        ConformanceCheck { vendor in
            let rig = try vendor.makeRig([.pasid])
            let mib2: UInt64 = 2 << 20
            // 4 MiB at iova = pa, both 2 MiB aligned: two 2 MiB leaves in one call.
            let a = try PageTableTestDomain(owner: rig.driver, memory: rig.memory)
            try rig.iommu.map(a, iova: IOVA(rawValue: mib2), paddr: PhysicalAddress(rawValue: mib2), size: 2 * mib2, prot: [.read, .write])
            XCTAssertEqual(a.mapCalls.map(\.pgsize), [mib2])
            XCTAssertEqual(a.mapCalls.map(\.count), [2])
            XCTAssertEqual(a.leafSize(IOVA(rawValue: mib2)), mib2)
            XCTAssertEqual(a.leafSize(IOVA(rawValue: 2 * mib2 + 0x1000)), mib2)
            // iova 2 MiB aligned, pa 4 KiB off: 1024 leaves of 4 KiB.
            let b = try PageTableTestDomain(owner: rig.driver, memory: rig.memory)
            try rig.iommu.map(b, iova: IOVA(rawValue: 2 * mib2), paddr: PhysicalAddress(rawValue: mib2 + 0x1000), size: 2 * mib2, prot: [.read])
            XCTAssertEqual(b.mapCalls.map(\.pgsize), [0x1000])
            XCTAssertEqual(b.mapCalls.map(\.count), [1024])
            XCTAssertEqual(b.leafSize(IOVA(rawValue: 2 * mib2)), 0x1000)
            XCTAssertEqual(b.iovaToPhys(IOVA(rawValue: 2 * mib2 + 0x5000)), PhysicalAddress(rawValue: mib2 + 0x6000))
            // 2 MiB + 4 KiB starting 4 KiB below a 2 MiB boundary: 4 KiB, then one 2 MiB leaf.
            let c = try PageTableTestDomain(owner: rig.driver, memory: rig.memory)
            let start = 3 * mib2 - 0x1000
            try rig.iommu.map(c, iova: IOVA(rawValue: start), paddr: PhysicalAddress(rawValue: start), size: mib2 + 0x1000, prot: [.read])
            XCTAssertEqual(c.mapCalls.map(\.pgsize), [0x1000, mib2])
            XCTAssertEqual(c.mapCalls.map(\.count), [1, 1])
            XCTAssertEqual(c.leafSize(IOVA(rawValue: start)), 0x1000)
            XCTAssertEqual(c.leafSize(IOVA(rawValue: 3 * mib2)), mib2)
            // The same range one 4 KiB longer ends with a 4 KiB leaf after the block.
            let d = try PageTableTestDomain(owner: rig.driver, memory: rig.memory)
            try rig.iommu.map(d, iova: IOVA(rawValue: start), paddr: PhysicalAddress(rawValue: start), size: mib2 + 0x2000,
                              prot: [.read])
            XCTAssertEqual(d.mapCalls.map(\.pgsize), [0x1000, mib2, 0x1000])
            XCTAssertEqual(d.leafSize(IOVA(rawValue: 4 * mib2)), 0x1000)
        }
    }

    /// Check 28: a map over an existing leaf is `EEXIST` and the original mapping stays;
    /// a map that runs into one undoes its own first part.
    public static var check28MapOverExistingLeafIsEEXIST: ConformanceCheck {
        ConformanceCheck { vendor in
            let rig = try vendor.makeRig([.pasid])
            let domain = try rig.pagingDomain()
            let (a, b) = (try rig.buffer(), try rig.buffer(bytes: 8192))
            let iova = rig.iova(domain, 0x10000)
            try rig.iommu.map(domain, iova: iova, paddr: a, size: 4096, prot: [.read])
            assertErrno(.exists) { try rig.iommu.map(domain, iova: iova, paddr: b, size: 4096, prot: [.read]) }
            XCTAssertEqual(rig.iommu.iovaToPhys(domain, iova: iova), a)
            assertErrno(.exists) { try rig.iommu.map(domain, iova: iova - 4096, paddr: b, size: 8192, prot: [.read]) }
            XCTAssertEqual(rig.iommu.iovaToPhys(domain, iova: iova - 4096), 0, "partial map undone")
            XCTAssertEqual(rig.iommu.iovaToPhys(domain, iova: iova), a)
        }
    }

    /// Check 29: `iommu_unmap` starting at an unmapped IOVA returns 0 and unmaps nothing
    /// beyond it.
    public static var check29UnmapAtUnmappedIOVAReturnsZero: ConformanceCheck {
        ConformanceCheck { vendor in
            let rig = try vendor.makeRig([.pasid])
            let domain = try rig.pagingDomain()
            let buf = try rig.buffer()
            let iova = rig.iova(domain, 0x10000)
            try rig.iommu.map(domain, iova: iova + 4096, paddr: buf, size: 4096, prot: [.read])
            XCTAssertEqual(rig.iommu.unmap(domain, iova: iova, size: 8192), 0)
            XCTAssertEqual(rig.iommu.iovaToPhys(domain, iova: iova + 4096), buf)
        }
    }

    /// Check 30: unmapping 4 KiB inside a 2 MiB block (io-pgtable, on a domain of the
    /// vendor's driver) returns 0 and the block stays mapped; the whole block unmaps.
    public static var check30UnmapInsideBlockDoesNotSplit: ConformanceCheck {
        ConformanceCheck { vendor in
            let rig = try vendor.makeRig([.pasid])
            let d = try PageTableTestDomain(owner: rig.driver, memory: rig.memory)
            let mib2: UInt64 = 2 << 20
            try rig.iommu.map(d, iova: IOVA(rawValue: mib2), paddr: PhysicalAddress(rawValue: 4 * mib2), size: mib2, prot: [.read])
            XCTAssertEqual(rig.iommu.unmap(d, iova: IOVA(rawValue: mib2), size: 0x1000), 0)
            XCTAssertEqual(rig.iommu.unmap(d, iova: IOVA(rawValue: mib2 + 0x1000), size: 0x1000), 0)
            XCTAssertEqual(d.leafSize(IOVA(rawValue: mib2 + 0x1000)), mib2)
            XCTAssertEqual(rig.iommu.iovaToPhys(d, iova: IOVA(rawValue: mib2 + 0x1000)), PhysicalAddress(rawValue: 4 * mib2 + 0x1000))
            XCTAssertEqual(rig.iommu.unmap(d, iova: IOVA(rawValue: mib2), size: mib2), mib2, "the whole block unmaps")
        }
    }

    /// Check 31: one unmap over two whole earlier maps returns their sum; over a hole it
    /// stops there and returns the bytes before it.
    public static var check31UnmapAddsUpMapsAndStopsAtHole: ConformanceCheck {
        ConformanceCheck { vendor in
            let rig = try vendor.makeRig([.pasid])
            let domain = try rig.pagingDomain()
            let buf = try rig.buffer(bytes: 16384)
            let iova = rig.iova(domain, 0x20000)
            try rig.iommu.map(domain, iova: iova, paddr: buf, size: 8192, prot: [.read])
            try rig.iommu.map(domain, iova: iova + 8192, paddr: buf + 8192, size: 8192, prot: [.read])
            XCTAssertEqual(rig.iommu.unmap(domain, iova: iova, size: 16384), 16384)
            XCTAssertEqual(rig.iommu.iovaToPhys(domain, iova: iova + 8192), 0)
            try rig.iommu.map(domain, iova: iova, paddr: buf, size: 4096, prot: [.read])
            try rig.iommu.map(domain, iova: iova + 8192, paddr: buf + 8192, size: 4096, prot: [.read])
            XCTAssertEqual(rig.iommu.unmap(domain, iova: iova, size: 12288), 4096)
            XCTAssertEqual(rig.iommu.iovaToPhys(domain, iova: iova + 8192), buf + 8192, "beyond the hole stays")
        }
    }

    /// Check 32: after `iommu_unmap` device DMA faults. With a hardware that caches
    /// translations, a stale hit is possible after `iommu_unmap_fast` until
    /// `iommu_iotlb_sync`, and the invariant checker reports a stale hit that reaches
    /// freed memory; after the sync DMA faults.
    public static var check32DMAFaultsAfterUnmapAndStaleWindowIsTracked: ConformanceCheck {
        ConformanceCheck { vendor in
            let rig = try vendor.makeRig([.pasid])
            let dev = rig.devices[0]
            rig.machine.checker.isEnabled = true
            let domain = try rig.pagingDomain()
            try rig.iommu.attachDevice(domain, to: dev)
            let buf = try rig.buffer(fill: 0x5a)
            let iova = rig.iova(domain)
            try rig.iommu.map(domain, iova: iova, paddr: buf, size: 4096, prot: [.read, .write])
            XCTAssertEqual(try dev.dmaRead(at: iova, count: 2), [0x5a, 0x5a], "fills the IOTLB")
            XCTAssertEqual(rig.iommu.unmap(domain, iova: iova, size: 4096), 4096)
            XCTAssertThrowsError(try dev.dmaRead(at: iova, count: 2)) { XCTAssertTrue($0 is DMAFault) }
            assertNoViolations(rig.machine)

            try rig.iommu.map(domain, iova: iova, paddr: buf, size: 4096, prot: [.read, .write])
            XCTAssertEqual(try dev.dmaRead(at: iova, count: 1), [0x5a])
            var gather = IOTLBGather()
            XCTAssertEqual(rig.iommu.unmapFast(domain, iova: iova, size: 4096, gather: &gather), 4096)
            if vendor.has(.cachesTranslations) {
                XCTAssertEqual(try dev.dmaRead(at: iova, count: 1), [0x5a], "stale hit inside the window")
                assertNoViolations(rig.machine, "legal while the memory is live")
                rig.memory.free(buf, bytes: 4096)
                // A read: hardware may re-walk a cached entry for a write (to set the dirty
                // bit), but serves a read from the stale entry.
                _ = try? dev.dmaRead(at: iova, count: 1)
                XCTAssertEqual(rig.machine.checker.violations(of: .coherenceAfterUnmap).count, 1,
                               "DMA into freed memory through a stale entry")
            }
            rig.iommu.iotlbSync(domain, gather: &gather)
            XCTAssertThrowsError(try dev.dmaRead(at: iova, count: 1)) { XCTAssertTrue($0 is DMAFault) }
        }
    }

    /// Check 33: page-table pages an unmap removes (io-pgtable, on a domain of the
    /// vendor's driver: the leaf table that a 2 MiB unmap covers whole) stay allocated
    /// until `iommu_iotlb_sync`, then are freed.
    public static var check33TablePagesFreedOnlyAfterSync: ConformanceCheck {
        ConformanceCheck { vendor in
            let rig = try vendor.makeRig([.pasid])
            let d = try PageTableTestDomain(owner: rig.driver, memory: rig.memory)
            let iova: IOVA = 0x80_0000_0000 // 1 << 39, a fresh top-level slot: three table pages below it
            // A physical address off by one page from 2 MiB alignment: 512 leaves of 4 KiB.
            try rig.iommu.map(d, iova: iova, paddr: 0x201000, size: 0x20_0000, prot: [.read])
            XCTAssertEqual(d.table.tablePages, 4)
            var gather = IOTLBGather()
            XCTAssertEqual(rig.iommu.unmapFast(d, iova: iova, size: 0x20_0000, gather: &gather), 0x20_0000)
            XCTAssertEqual(gather.freelist.count, 1, "the leaf table the unmap covered")
            XCTAssertTrue(gather.freelist.allSatisfy { rig.memory.isAllocated($0) }, "not reused before the sync")
            let pages = gather.freelist
            rig.iommu.iotlbSync(d, gather: &gather)
            XCTAssertTrue(pages.allSatisfy { !rig.memory.isAllocated($0) }, "freed after the sync")
            d.table.destroy()
        }
    }

    /// Check 34: `iommu_iova_to_phys` is the identity on an IDENTITY domain, 0 on a
    /// BLOCKED one and 0 for an unmapped IOVA of a paging domain.
    public static var check34IovaToPhysOnIdentityAndBlocked: ConformanceCheck {
        ConformanceCheck { vendor in
            let rig = try vendor.makeRig([.pasid])
            let identity = rig.driver.identityDomain ?? IOMMUDomain(type: .identity, owner: rig.driver, ops: [])
            XCTAssertEqual(rig.iommu.iovaToPhys(identity, iova: 0x12345000), 0x12345000)
            let blocked = rig.driver.blockedDomain ?? IOMMUDomain(type: .blocked, owner: rig.driver, ops: [])
            XCTAssertEqual(rig.iommu.iovaToPhys(blocked, iova: 0x12345000), 0)
            let paging = try rig.pagingDomain()
            XCTAssertEqual(rig.iommu.iovaToPhys(paging, iova: rig.iova(paging)), 0, "unmapped")
        }
    }

    /// Check 35: on a DMA-FQ default domain an unmapped IOVA is not handed out again
    /// before the deferred flush-all; afterwards it is, and no stale hit remains.
    public static var check35FlushQueueDefersIOVAReuse: ConformanceCheck {
        ConformanceCheck { vendor in
            let rig = try vendor.makeRig([.pasid], defaultDomainType: .dmaFQ)
            let dev = rig.devices[0]
            XCTAssertEqual(dev.group!.defaultDomain!.type, .dmaFQ)
            let buf = try rig.buffer(fill: 0x35)
            let a = try rig.iommu.dmaMapPage(dev, paddr: buf, size: 4096)
            XCTAssertEqual(try dev.dmaRead(at: a, count: 1), [0x35])
            try rig.iommu.dmaUnmapPage(dev, dmaAddress: a, size: 4096)
            XCTAssertEqual(rig.iommu.dmaFlushQueueDepth(dev), 1)
            let b = try rig.iommu.dmaMapPage(dev, paddr: buf, size: 4096)
            XCTAssertNotEqual(b, a, "queued IOVA reallocated before the flush-all")
            try rig.iommu.dmaUnmapPage(dev, dmaAddress: b, size: 4096)
            rig.iommu.dmaFlushQueue(dev)
            XCTAssertEqual(rig.iommu.dmaFlushQueueDepth(dev), 0)
            XCTAssertThrowsError(try dev.dmaRead(at: a, count: 1), "flushed: no stale hit")
            XCTAssertEqual(try rig.iommu.dmaMapPage(dev, paddr: buf, size: 4096), a, "reusable after the flush")
        }
    }
}
