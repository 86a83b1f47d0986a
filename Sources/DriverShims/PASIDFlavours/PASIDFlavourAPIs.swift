import IOMMUCore

/// The IOMMU API calls a driver made, by kernel name, in order: what the PASID-flavour
/// comparison prints in its "calls" column.
public final class APICallLog: @unchecked Sendable {
    private let lock = Lock()
    private var _calls: [String] = []
    /// An empty log.
    public init() {}
    /// Records one call.
    public func record(_ name: String) { lock.withLock { _calls.append(name) } }
    /// Every call, oldest first.
    public var calls: [String] { lock.withLock { _calls } }
    /// Each distinct call with how often it was made, in first-use order.
    public var counts: [APICallCount] {
        var order: [String] = []
        var counts: [String: Int] = [:]
        for c in calls {
            if counts[c] == nil { order.append(c) }
            counts[c, default: 0] += 1
        }
        return order.map { APICallCount(name: $0, count: counts[$0]!) }
    }
}

/// One API call and how often a driver made it.
public struct APICallCount: Hashable, Sendable, Encodable, CustomStringConvertible {
    /// The kernel function (`iommu_map`).
    public let name: String
    /// How many times.
    public let count: Int
    /// `name`, or `name ×count` when more than once.
    public var description: String { count > 1 ? "\(name) ×\(count)" : name }
}

/// Flavour (a), today's kernel: the device's default DMA domain attached to a global
/// PASID (`idxd_enable_system_pasid`), so PASID-tagged kernel DMA translates exactly like
/// RID DMA and every DMA-API unmap invalidates both.
public struct KernelPASID: Sendable {
    /// The default domain (`iommu_get_domain_for_dev`).
    public let domain: IOMMUDomain
    /// The global PASID it is attached at.
    public let pasid: PASID
    /// The device.
    public let device: PCIDevice

    /// `iommu_get_domain_for_dev` + `iommu_alloc_global_pasid` +
    /// `iommu_attach_device_pasid(domain, dev, pasid, NULL)`.
    /// - Throws: `EPERM` no RID domain; `ENOSPC` no PASID; the attach errno (the PASID
    ///   is freed again).
    public static func attach(_ dev: PCIDevice, log: APICallLog? = nil) throws(Errno) -> KernelPASID {
        guard let iommu = dev.machine?.iommu else { throw .noDevice }
        log?.record("iommu_get_domain_for_dev")
        guard let domain = iommu.domainForDevice(dev) else { throw .notPermitted }
        log?.record("iommu_alloc_global_pasid")
        // idxd_enable_system_pasid turns IOMMU_PASID_INVALID into ENOSPC.
        let pasid: PASID
        do { pasid = try iommu.allocGlobalPasid(for: dev) } catch { throw .noSpace }
        log?.record("iommu_attach_device_pasid")
        do throws(Errno) { try iommu.attachDevicePasid(domain, to: dev, pasid: pasid) } catch {
            log?.record("iommu_free_global_pasid")
            iommu.freeGlobalPasid(pasid)
            throw error
        }
        return KernelPASID(domain: domain, pasid: pasid, device: dev)
    }

    /// `iommu_detach_device_pasid` + `iommu_free_global_pasid` (`idxd_disable_system_pasid`).
    public func detach(log: APICallLog? = nil) {
        guard let iommu = device.machine?.iommu else { return }
        log?.record("iommu_detach_device_pasid")
        iommu.detachDevicePasid(domain, from: device, pasid: pasid)
        log?.record("iommu_free_global_pasid")
        iommu.freeGlobalPasid(pasid)
    }
}

/// Flavour (b), the rejected 2021 proposal kept as a variant: a PASID bound to the
/// kernel's own address space with supervisor requests enabled
/// (`iommu_sva_bind_device(dev, NULL, SVM_FLAG_SUPERVISOR_MODE)`). Descriptors use kernel
/// virtual addresses and `priv = 1`; no map/unmap is needed — and nothing flushes the
/// IOTLB when the kernel changes a mapping.
public struct SupervisorSVA: Sendable {
    /// The vendor's KVA domain.
    public let domain: IOMMUDomain
    /// The supervisor PASID.
    public let pasid: PASID
    /// The device.
    public let device: PCIDevice

    /// Allocates a global PASID, asks the vendor for a supervisor SVA domain on
    /// `kernel`'s page table and attaches it.
    /// - Throws: `EOPNOTSUPP` the vendor driver does not offer the variant
    ///   (``/IOMMUCore/SupervisorSVADriver``); the allocator's `ENOSPC` (no PASID free) or
    ///   `ENODEV` (a device without PASID); the vendor's and the attach's errno.
    ///   Nothing stays allocated on error.
    public static func bind(_ dev: PCIDevice, kernel: KernelAddressSpace, log: APICallLog? = nil) throws(Errno) -> SupervisorSVA {
        guard let iommu = dev.machine?.iommu else { throw .noDevice }
        guard let driver = dev.iommu?.driver as? any SupervisorSVADriver else { throw .notSupported }
        log?.record("iommu_alloc_global_pasid")
        let pasid = try iommu.allocGlobalPasid(for: dev)
        do throws(Errno) {
            log?.record("domain_alloc_sva(init_mm, SVM_FLAG_SUPERVISOR_MODE)")
            let domain = try driver.domainAllocSupervisorSVA(dev, kernelPageTable: kernel.pageTable)
            log?.record("iommu_attach_device_pasid")
            do throws(Errno) { try iommu.attachDevicePasid(domain, to: dev, pasid: pasid) } catch {
                iommu.freeDomain(domain)
                throw error
            }
            return SupervisorSVA(domain: domain, pasid: pasid, device: dev)
        } catch {
            iommu.freeGlobalPasid(pasid)
            throw error
        }
    }

    /// The explicit IOTLB flush the proposal's comment said a future API might add
    /// (`iommu_flush_iotlb_all` on the KVA domain): the only way to make a kernel
    /// page-table change visible to the device.
    public func flush(log: APICallLog? = nil) {
        log?.record("iommu_flush_iotlb_all")
        device.machine?.iommu.flushIOTLBAll(domain)
    }

    /// Detach, free the domain, free the PASID (`iommu_sva_unbind_device`).
    public func unbind(log: APICallLog? = nil) {
        guard let iommu = device.machine?.iommu else { return }
        log?.record("iommu_detach_device_pasid")
        iommu.detachDevicePasid(domain, from: device, pasid: pasid)
        log?.record("iommu_domain_free")
        iommu.freeDomain(domain)
        log?.record("iommu_free_global_pasid")
        iommu.freeGlobalPasid(pasid)
    }
}

/// Flavour (c), the 2017 proposal for the Adreno case: private PASIDs with their own
/// io-pgtable instead of an mm (`iommu_sva_alloc_pasid(domain, dev)`,
/// `iommu_sva_map(pasid, …)`, `iommu_sva_unmap(pasid, …)`,
/// `iommu_sva_free_pasid(domain, pasid)`), built on today's core: a global PASID and a
/// paging domain attached to it.
public final class PrivatePASIDs: @unchecked Sendable {
    private let lock = Lock()
    private var entries: [PASID: (domain: IOMMUDomain, device: PCIDevice)] = [:]
    /// The calls made, when given.
    public let log: APICallLog?

    /// A registry of private PASIDs.
    public init(log: APICallLog? = nil) { self.log = log }

    /// `iommu_sva_alloc_pasid(domain, dev)`: a global PASID whose translation is
    /// `domain`'s own page table.
    /// - Throws: `EINVAL` `domain` is not an unmanaged paging domain (a DMA-API or SVA
    ///   domain belongs to someone else); `ENODEV` the device has no IOMMU or no PASID;
    ///   `ENOSPC` no PASID free; the attach errno. Nothing stays allocated on error.
    public func allocPrivatePasid(domain: IOMMUDomain, dev: PCIDevice) throws(Errno) -> PASID {
        guard let iommu = dev.machine?.iommu else { throw .noDevice }
        guard domain.type == .unmanaged else { throw .invalidArgument }
        log?.record("iommu_alloc_global_pasid")
        let pasid = try iommu.allocGlobalPasid(for: dev)
        log?.record("iommu_attach_device_pasid")
        do throws(Errno) { try iommu.attachDevicePasid(domain, to: dev, pasid: pasid) } catch {
            iommu.freeGlobalPasid(pasid)
            throw error
        }
        lock.withLock { entries[pasid] = (domain, dev) }
        return pasid
    }

    /// `iommu_sva_map(pasid, iova, paddr, size, prot)` (`iommu_map` on the PASID's domain).
    /// - Throws: `ENOENT` unknown PASID; `iommu_map`'s errno.
    public func map(pasid: PASID, iova: IOVA, paddr: PhysicalAddress, size: UInt64,
                    prot: IOMMUProt = [.read, .write]) throws(Errno) {
        guard let e = lock.withLock({ entries[pasid] }), let iommu = e.device.machine?.iommu else { throw .noEntry }
        log?.record("iommu_map")
        try iommu.map(e.domain, iova: iova, paddr: paddr, size: size, prot: prot)
    }

    /// `iommu_sva_unmap(pasid, iova, size)` (`iommu_unmap`: unmap and invalidate).
    /// - Returns: bytes unmapped.
    /// - Throws: `ENOENT` unknown PASID.
    @discardableResult
    public func unmap(pasid: PASID, iova: IOVA, size: UInt64) throws(Errno) -> UInt64 {
        guard let e = lock.withLock({ entries[pasid] }), let iommu = e.device.machine?.iommu else { throw .noEntry }
        log?.record("iommu_unmap")
        return iommu.unmap(e.domain, iova: iova, size: size)
    }

    /// `iommu_sva_free_pasid(domain, pasid)`: detach and free the PASID (the caller keeps
    /// and frees the domain).
    /// - Throws: `EINVAL` the PASID is not a private PASID of `domain`. Nothing changes.
    public func freePrivatePasid(domain: IOMMUDomain, pasid: PASID) throws(Errno) {
        let e: (domain: IOMMUDomain, device: PCIDevice) = try lock.withLock { () throws(Errno) -> (domain: IOMMUDomain, device: PCIDevice) in
            guard let e = entries[pasid], e.domain === domain else { throw .invalidArgument }
            entries[pasid] = nil
            return e
        }
        guard let iommu = e.device.machine?.iommu else { return }
        log?.record("iommu_detach_device_pasid")
        iommu.detachDevicePasid(domain, from: e.device, pasid: pasid)
        log?.record("iommu_free_global_pasid")
        iommu.freeGlobalPasid(pasid)
    }

    /// The private PASIDs allocated and not freed, ascending.
    public var pasids: [PASID] { lock.withLock { entries.keys.sorted() } }
}
