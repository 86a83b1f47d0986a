import IOMMUCore

extension VTdHardware {
    /// The queued-invalidation engine: executes `descriptors` in order, logs each one in
    /// ``executed`` and counts it by kind. The model's queue completes synchronously, so
    /// an invalidation-wait returns at once. A device-TLB descriptor for a device that is
    /// gone or not present is dropped and recorded in ``droppedDescriptors`` (real
    /// hardware would time out: `qi_check_fault`'s ITE). The caller holds the hardware lock.
    public func submit(_ descriptors: [VTdDescriptor]) {
        for d in descriptors {
            executedLog.append(d)
            kindCounts[d.kindIndex] &+= 1
            execute(d)
        }
    }

    /// Forgets the executed-descriptor log (counters are kept).
    public func clearLog() { executedLog.removeAll() }

    private func execute(_ d: VTdDescriptor) {
        switch d {
        case .contextGlobal, .contextDomain:
            // Scalable-mode context entries carry no DID: domain-selective drops them all.
            for i in 0..<Self.contextSlots { contextCache[i].key = 0 }
        case .contextDevice(_, let rid):
            let s = contextCache + ContextSlot.index(rid.raw)
            if s.pointee.key == ContextSlot.validKey | UInt32(rid.raw) { s.pointee.key = 0 }
        case .pasidCache(let did, let pasid):
            // Cached not-present entries (caching mode) are tagged with no usable DID, so a
            // PASID-selective invalidation drops them whatever DID it names.
            dropPASIDSlots { s in
                UInt32(truncatingIfNeeded: s.key & 0xF_FFFF) == pasid
                    && (s.did == did || s.flags & PASIDSlot.presentFlag == 0)
            }
        case .pasidCacheDomain(let did):
            dropPASIDSlots { s in s.did == did || s.flags & PASIDSlot.presentFlag == 0 }
        case .pasidCacheGlobal:
            dropPASIDSlots { _ in true }
        case .iotlbGlobal:
            iotlb.invalidateAll()
        case .iotlbDomain(let did):
            iotlb.invalidate { tag, _, _ in Self.did(ofTag: tag) == did }
        case .iotlbPage(let did, let address, let mask, _):
            let span = UInt64(1) << UInt64(min(mask + 12, 63))
            let first = address.alignedDown(to: span)
            let last = first &+ (span - 1)
            iotlb.invalidate { tag, iova, size in
                Self.did(ofTag: tag) == did && iova <= last && iova &+ (size - 1) >= first
            }
        case .piotlb(let did, let pasid, let address, let npages, _):
            let tag = Self.iotlbTag(did: did, pasid: pasid)
            if npages == .max {
                iotlb.invalidate(tag: tag)
            } else {
                let bytes = npages.multipliedReportingOverflow(by: 4096)
                iotlb.invalidate(tag: tag, iova: address.alignedDown(to: 4096), size: bytes.overflow ? .max : bytes.partialValue)
            }
        case .devTLB(let rid, let address, let size):
            guard let dev = endpoint(rid), dev.isPresent else { droppedDescriptors.append(d); return }
            dev.invalidateATC(pasid: nil, address: address, size: size)
        case .devTLBPasid(let rid, let pasid, let address, let size):
            guard let dev = endpoint(rid), dev.isPresent else { droppedDescriptors.append(d); return }
            dev.invalidateATC(pasid: pasid, address: address, size: size)
        case .wait:
            break
        case .pageGroupResponse(let rid, let pasid, let group, let code, _):
            guard endpoint(rid) != nil else { droppedDescriptors.append(d); return }
            pageResponses.append(VTdPageResponse(rid: rid, pasid: pasid, groupIndex: group, code: code))
        }
    }

    private func dropPASIDSlots(_ matches: (PASIDSlot) -> Bool) {
        for i in 0..<Self.pasidSlots where pasidCache[i].key & PASIDSlot.validKey != 0 && matches(pasidCache[i]) {
            pasidCache[i].key = 0
        }
    }

    // MARK: page-request queue

    /// The page requests waiting in the queue, oldest first (what the PRQ thread reads
    /// between head and tail).
    public var pendingPageRequests: [VTdPageRequest] { prqLock.withLock { prq } }

    /// Removes and returns the oldest page request (advancing the queue head), nil when
    /// the queue is empty.
    public func popPageRequest() -> VTdPageRequest? {
        prqLock.withLock { prq.isEmpty ? nil : prq.removeFirst() }
    }

    /// Removes and returns every queued request for (`rid`, `pasid`) (nil: requests
    /// without PASID), as a PRQ thread that handled them would.
    public func takePageRequests(rid: RID, pasid: PASID?) -> [VTdPageRequest] {
        prqLock.withLock {
            let taken = prq.filter { $0.matches(rid: rid, pasid: pasid) }
            prq.removeAll { $0.matches(rid: rid, pasid: pasid) }
            return taken
        }
    }

    /// Whether requests for (`rid`, `pasid`) are queued.
    public func hasPendingPageRequests(rid: RID, pasid: PASID?) -> Bool {
        prqLock.withLock { prq.contains { $0.matches(rid: rid, pasid: pasid) } }
    }

    /// Clears the PRQ overflow flag (`DMA_PRS_PRO`) once software emptied the queue.
    public func clearPRQOverflow() { prqLock.withLock { regs[7] = 0 } }
}
