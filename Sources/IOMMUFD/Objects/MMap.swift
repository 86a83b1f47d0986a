import IOMMUCore

/// One region of a context's mmap space (`struct iommufd_mmap`, an entry of
/// `ictx->mt_mmap`): physical pages an object (a vIOMMU) lets user space map with `mmap`
/// of the iommufd at `offset`.
final class IOMMUFDMMapRegion {
    /// `immap->owner`: every live mapping holds a users reference on it.
    let owner: IOMMUFDObject
    /// The offset user space passes to `mmap` (`immap->vm_pgoff` in bytes).
    let offset: UInt64
    /// `immap->mmio_addr`.
    let physicalAddress: PhysicalAddress
    /// `immap->length`.
    let length: UInt64

    init(owner: IOMMUFDObject, offset: UInt64, physicalAddress: PhysicalAddress, length: UInt64) {
        self.owner = owner
        self.offset = offset
        self.physicalAddress = physicalAddress
        self.length = length
    }
}

/// The `vm_operations_struct` of an iommufd mapping (`iommufd_vma_ops`): each piece of a
/// mapping holds a reference on the region's owner and on the context, as the VMA holds
/// the iommufd file.
final class IOMMUFDMMapVMA: VMAOperations, @unchecked Sendable {
    let ctx: IOMMUFD
    let owner: IOMMUFDObject

    init(ctx: IOMMUFD, owner: IOMMUFDObject) {
        self.ctx = ctx
        self.owner = owner
    }

    /// `iommufd_fops_vma_open`.
    func open() {
        ctx.lock.withLock {
            ctx.ref(owner)
            ctx.liveMappings += 1
        }
    }

    /// `iommufd_fops_vma_close`; the last mapping of a closed fd lets the context go.
    func close() {
        ctx.lock.withLock {
            ctx.unref(owner)
            ctx.liveMappings -= 1
            if ctx.liveMappings == 0 && ctx.isClosed { ctx.releaseLocked() }
        }
    }
}

extension IOMMUFD {
    /// `_iommufd_alloc_mmap`: the lowest free offset from `PAGE_SIZE` on
    /// (`mtree_alloc_range`) for `length` bytes of `physicalAddress`, owned by `owner`.
    /// - Throws: `EINVAL` an address or length not page aligned, or a zero length; `EBUSY`
    ///   no room.
    func allocMMapRegion(owner: IOMMUFDObject, physicalAddress: PhysicalAddress, length: UInt64) throws(Errno) -> UInt64 {
        let page = IOPTPages.pageSize
        guard physicalAddress.isAligned(to: page), length != 0, length % page == 0 else { throw .invalidArgument }
        var offset = page
        for r in mmapRegions {
            if r.offset >= offset && r.offset - offset >= length { break }
            offset = max(offset, r.offset + r.length)
        }
        guard !offset.addingReportingOverflow(length - 1).overflow else { throw .busy }
        let region = IOMMUFDMMapRegion(owner: owner, offset: offset, physicalAddress: physicalAddress, length: length)
        mmapRegions.insert(region, at: mmapRegions.firstIndex { $0.offset > offset } ?? mmapRegions.count)
        return offset
    }

    /// `_iommufd_destroy_mmap`: the region at `offset` can no longer be mapped (mappings
    /// that exist keep their reference on the owner). A region `owner` does not own is a
    /// WARN.
    func destroyMMapRegion(owner: IOMMUFDObject, offset: UInt64) {
        guard let i = mmapRegions.firstIndex(where: { $0.offset == offset }), mmapRegions[i].owner === owner else {
            warn("_iommufd_destroy_mmap", "no region at offset \(offset) owned by \(owner)")
            return
        }
        mmapRegions.remove(at: i)
    }

    /// `mmap(address, length, prot, flags, iommufd, offset)` (`iommufd_fops_mmap`): maps a
    /// region an object (a vIOMMU) offers into the calling process, shared and uncached.
    /// The mapping holds a reference on the owner (`IOMMU_DESTROY` of it is `EBUSY`) and
    /// on the context (closing the fd releases it only when the last mapping goes); it
    /// goes with `munmap` or the process's exit (`iommufd_fops_vma_close`).
    /// - Parameters:
    ///   - length: the mapping's length; rounded up to pages, as `mmap` does.
    ///   - prot: `PROT_*` of the mapping.
    ///   - shared: `MAP_SHARED`.
    ///   - offset: the offset the object reported (`out_mmap_offset`).
    ///   - address: `MAP_FIXED_NOREPLACE` address, or nil to let the process choose.
    /// - Returns: the mapping's address in the calling process.
    /// - Throws: `EBADF` a closed fd; `EINVAL` a zero length, an offset not page aligned,
    ///   or not `MAP_SHARED`; `EPERM` `PROT_EXEC`; `ENXIO` an offset and length that are
    ///   not exactly a region's; what the process's `mmap` throws.
    public func mmap(length: Int, prot: ProcessProt, shared: Bool = true, offset: UInt64,
                     at address: UInt64? = nil) throws(Errno) -> UInt64 {
        try lock.withLock { () throws(Errno) -> UInt64 in
            guard !isClosed else { throw .badFileDescriptor }
            let page = IOPTPages.pageSize
            guard length > 0, offset % page == 0 else { throw .invalidArgument }
            let (rounded, o) = UInt64(length).addingReportingOverflow(page - 1)
            guard !o else { throw .noMemory }
            let vmaLength = rounded & ~(page - 1)
            guard shared else { throw .invalidArgument }
            guard !prot.contains(.exec) else { throw .notPermitted }
            guard let region = mmapRegions.first(where: { $0.offset <= offset && offset - $0.offset < $0.length }),
                  region.offset == offset, region.length == vmaLength else { throw .noSuchDeviceOrAddress }
            let frames = (0..<Int(vmaLength / page)).map { region.physicalAddress + UInt64($0) * page }
            let va = try current.mapFrames(frames, prot: prot, at: address,
                                           ops: IOMMUFDMMapVMA(ctx: self, owner: region.owner))
            // vm_ops.open is not called for the mapping itself.
            ref(region.owner)
            liveMappings += 1
            return va
        }
    }
}
