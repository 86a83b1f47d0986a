import IOMMUCore

/// `IOMMUFD_OBJ_VEVENTQ` (`struct iommufd_veventq`): a queue of virtual events of one type
/// on a vIOMMU, read by user space from a file descriptor.
///
/// Each event is read as a `struct iommufd_vevent_header` (`flags`, `sequence`) followed
/// by the type's record. Sequence numbers count from 0 and wrap after `INT_MAX`. While
/// `depth` events wait, a new one is dropped: a single header with
/// `IOMMU_VEVENTQ_FLAG_LOST_EVENTS` and no data stands at the tail, carrying the sequence
/// number of the latest drop, until a real event follows it (the gap in the numbers then
/// tells the reader what was lost). The fd holds a reference on the object (so it cannot
/// be destroyed, `EBUSY`, until the fd is closed); the object holds one on its vIOMMU.
public final class VEventQueueObject: IOMMUFDObject, @unchecked Sendable {
    /// The vEVENTQ ID (`obj->id`).
    public var id: VEventQueueObjectID { VEventQueueObjectID(rawValue: rawID) }
    /// `veventq->viommu` (a reference is held).
    let viommu: VIOMMUObject
    /// `veventq->type`.
    let queueType: UInt32
    /// `veventq->depth`.
    let depth: UInt32

    /// One entry of `veventq->common.deliver`.
    enum Entry {
        case event(sequence: UInt32, data: [UInt8])
        /// `veventq->lost_events_header`.
        case lost(sequence: UInt32)
    }

    /// Guards the queue (`veventq->common.lock`): a driver reports from any thread.
    private let queueLock = Lock()
    private var deliver: [Entry] = []
    /// `veventq->num_events`: real events waiting (the lost-events header excluded).
    private var numEvents: UInt32 = 0
    /// `veventq->sequence`: the number the next report gets.
    private var sequence: UInt32 = 0
    /// The fd is open (it holds a users reference).
    var fdOpen = false

    init(viommu: VIOMMUObject, type: UInt32, depth: UInt32) {
        self.viommu = viommu
        queueType = type
        self.depth = depth
        super.init(type: .veventq)
    }

    /// Events waiting to be read (a lost-events header counts as one).
    public var pendingCount: Int { queueLock.withLock { deliver.count } }

    /// `iommufd_viommu_report_event` on this queue, with `iommufd_vevent_handler`: append
    /// `data` as the next event, or, with `depth` events waiting, (re)place the
    /// lost-events header at the tail. Every report takes a sequence number.
    func report(_ data: [UInt8]) {
        queueLock.withLock {
            let entry: Entry
            if numEvents == depth {
                entry = .lost(sequence: sequence)
            } else {
                entry = .event(sequence: sequence, data: data)
                numEvents += 1
            }
            // A lost-events header at the tail is replaced by whatever comes next.
            if case .lost? = deliver.last { deliver.removeLast() }
            deliver.append(entry)
            sequence = (sequence &+ 1) & UInt32(Int32.max)
        }
    }

    /// `iommufd_veventq_abort` / `iommufd_veventq_destroy`: drop what waits, leave the
    /// vIOMMU and drop its reference.
    override func destroy(_ ctx: IOMMUFD) {
        queueLock.withLock {
            deliver = []
            numEvents = 0
        }
        viommu.veventqs.removeAll { $0 === self }
        ctx.unref(viommu)
    }

    func fdClosed(_ ctx: IOMMUFD) {
        fdOpen = false
        ctx.unref(self)
    }

    /// `iommufd_veventq_fops_read`: whole events only, oldest first; a lost-events header
    /// needs just its 8 bytes. An event that does not fit in what is left of `count`
    /// stays queued, as does one that cannot be copied out (a header already copied still
    /// counts in the bytes returned).
    /// - Returns: bytes read; `EFAULT` when nothing could be copied.
    func read(_ ctx: IOMMUFD, buffer: UInt64, count: Int) -> Result<Int, Errno> {
        let headerSize = IOMMUFDVEventHeader.size
        var done = 0
        var rc: Errno?
        while let entry = queueLock.withLock({ deliver.first }) {
            guard done < count, headerSize <= count - done else { break }
            let header: IOMMUFDVEventHeader
            let data: [UInt8]
            switch entry {
            case .event(let seq, let d):
                header = IOMMUFDVEventHeader(flags: 0, sequence: seq)
                data = d
            case .lost(let seq):
                header = IOMMUFDVEventHeader(flags: IOMMUFDConstant.veventqFlagLostEvents, sequence: seq)
                data = []
            }
            // A real event is read whole or not at all.
            guard headerSize + data.count <= count - done else { break }
            do { try ctx.user.copyToUser(buffer &+ UInt64(done), header.bytes) } catch {
                rc = error
                break
            }
            done += headerSize
            if !data.isEmpty {
                do { try ctx.user.copyToUser(buffer &+ UInt64(done), data) } catch {
                    rc = error
                    break
                }
            }
            queueLock.withLock {
                deliver.removeFirst()
                if case .event = entry { numEvents -= 1 }
            }
            done += data.count
        }
        if done == 0, let rc { return .failure(rc) }
        return .success(done)
    }

    /// `iommufd_eventq_fops_poll` for a vEVENTQ: `EPOLLIN | EPOLLRDNORM` while events
    /// wait, else nothing (a vEVENTQ is not writable).
    var pollMask: Int32 { queueLock.withLock { deliver.isEmpty ? 0 : 0x41 } }
}
