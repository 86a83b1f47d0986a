import IOMMUCore

extension IDXDDevice {
    /// Runs queued descriptors in submission order (the device's engines picking work
    /// from the WQs). Returns how many ran. A no-op for descriptors already run.
    @discardableResult
    public func runEngine(limit: Int = .max) -> Int {
        lock.withLock {
            var ran = 0
            while ran < limit, let next = nextPending(where: { _ in true }) {
                execute(next)
                ran += 1
            }
            return ran
        }
    }

    /// Removes and returns the oldest queued descriptor matching `filter`, across WQs in
    /// WQ order (the model's arbiter).
    private func nextPending(where filter: (QueuedDescriptor) -> Bool) -> QueuedDescriptor? {
        for wq in workQueues {
            if let i = wq.pending.firstIndex(where: filter) { return wq.pending.remove(at: i) }
        }
        return nil
    }

    /// Executes every queued descriptor matching `filter` (drains).
    func runPending(_ filter: (QueuedDescriptor) -> Bool) {
        while let next = nextPending(where: filter) { execute(next) }
    }

    /// One descriptor: the operation by device DMA through the IOMMU with the descriptor's
    /// PASID and privilege, page by page, then the completion record (same address space).
    /// A translation fault stops the operation with `DSA_COMP_PAGE_FAULT_NOBOF` (write bit
    /// for a write), the bytes completed and the faulting address, so the submitter can
    /// touch the page and resubmit the rest, as with real DSA without block-on-fault.
    func execute(_ q: QueuedDescriptor) {
        let d = q.descriptor
        var record = DSACompletionRecord(status: .success)
        if d.transferSize > options.maxTransferBytes && d.opcode != .noop {
            record.status = .transferSizeOutOfRange
        } else {
            switch d.opcode {
            case .noop: break
            case .memmove: record = copy(d, q)
            case .fill: record = fill(d, q)
            case .compare: record = compare(d, q)
            default: record.status = .badOpcode
            }
        }
        var written = false
        if d.flags.contains(.requestCompletionRecord), d.flags.contains(.completionRecordAddressValid) {
            do throws(DMAFault) {
                try pci.dmaWrite(at: d.completionAddress, bytes: record.bytes, pasid: q.pasid, privileged: q.privileged)
                written = true
            } catch {
                _softwareErrors.append("wq\(q.wq): completion record at \(d.completionAddress) not written: \(error.reason)")
            }
        }
        _completions.append(IDXDCompletion(wq: q.wq, pasid: q.pasid, privileged: q.privileged, opcode: d.opcode,
                                           record: record, recordWritten: written))
    }

    /// Bytes to the next page boundary of either address: one DMA chunk.
    private func chunk(_ a: IOVA, _ b: IOVA, _ left: UInt32) -> Int {
        let toA = 4096 - a.offset(within: 4096)
        let toB = 4096 - b.offset(within: 4096)
        return Int(min(UInt64(left), toA, toB))
    }

    private func pageFault(_ done: UInt32, _ f: DMAFault) -> DSACompletionRecord {
        let write = f.access.contains(.write)
        return DSACompletionRecord(status: DSACompletionStatus(rawValue: DSACompletionStatus.pageFault.rawValue
                                                                | (write ? DSACompletionStatus.writeBit : 0)),
                                   bytesCompleted: done, faultAddress: f.address)
    }

    private func copy(_ d: IDXDDescriptor, _ q: QueuedDescriptor) -> DSACompletionRecord {
        var done: UInt32 = 0
        while done < d.transferSize {
            let src = d.source &+ UInt64(done), dst = d.destination &+ UInt64(done)
            let n = chunk(src, dst, d.transferSize - done)
            do throws(DMAFault) {
                let bytes = try pci.dmaRead(at: src, count: n, pasid: q.pasid, privileged: q.privileged)
                try pci.dmaWrite(at: dst, bytes: bytes, pasid: q.pasid, privileged: q.privileged)
            } catch {
                return pageFault(done, error)
            }
            done += UInt32(n)
        }
        return DSACompletionRecord(status: .success, bytesCompleted: done)
    }

    private func fill(_ d: IDXDDescriptor, _ q: QueuedDescriptor) -> DSACompletionRecord {
        var done: UInt32 = 0
        while done < d.transferSize {
            let dst = d.destination &+ UInt64(done)
            let n = chunk(dst, dst, d.transferSize - done)
            // The 8-byte pattern repeats from the start of the destination.
            let bytes = (0..<n).map { i in UInt8(truncatingIfNeeded: d.pattern >> UInt64(8 * ((Int(done) + i) & 7))) }
            do throws(DMAFault) { try pci.dmaWrite(at: dst, bytes: bytes, pasid: q.pasid, privileged: q.privileged) } catch {
                return pageFault(done, error)
            }
            done += UInt32(n)
        }
        return DSACompletionRecord(status: .success, bytesCompleted: done)
    }

    private func compare(_ d: IDXDDescriptor, _ q: QueuedDescriptor) -> DSACompletionRecord {
        var done: UInt32 = 0
        while done < d.transferSize {
            let a = d.source &+ UInt64(done), b = d.destination &+ UInt64(done)
            let n = chunk(a, b, d.transferSize - done)
            do throws(DMAFault) {
                let x = try pci.dmaRead(at: a, count: n, pasid: q.pasid, privileged: q.privileged)
                let y = try pci.dmaRead(at: b, count: n, pasid: q.pasid, privileged: q.privileged)
                if let i = (0..<n).first(where: { x[$0] != y[$0] }) {
                    // Result 1: different; bytes_completed is the offset of the first difference.
                    return DSACompletionRecord(status: .success, result: 1, bytesCompleted: done + UInt32(i))
                }
            } catch {
                return pageFault(done, error)
            }
            done += UInt32(n)
        }
        return DSACompletionRecord(status: .success, result: 0, bytesCompleted: done)
    }
}
