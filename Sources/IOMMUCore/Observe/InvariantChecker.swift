#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The rules of the kernel's IOMMU layer the checker can see broken. Each has a
/// ``name`` a reader understands ("stale translation after unmap") and a short label, its
/// `rawValue` ("I4"), which output prints after the name and JSON carries as `invariant`.
/// The labels are this project's own numbering and are defined here only.
public enum Invariant: String, Hashable, Sendable, CaseIterable {
    /// I1: only the domain attached to a (RID, PASID) translates its requests (the
    /// hardware used some other table, or the core says nothing is attached).
    case translationAuthority = "I1"
    /// I4: after `iommu_unmap` (or `iommu_unmap_fast` and `iommu_iotlb_sync`) returns, no
    /// IOTLB or ATC still translates the range.
    case coherenceAfterUnmap = "I4"
    /// I6: after a detach or unbind has returned, the device's requests on that PASID
    /// no longer translate.
    case noDMAAfterDetach = "I6"
    /// I7: a PASID is handed out again only after every entry using it is torn down and
    /// its page requests are drained.
    case pasidLifetime = "I7"
    /// I8: a VT-d domain ID is freed only when no context or PASID entry carries it, and
    /// never handed out while one does.
    case didAccounting = "I8"
    /// I9: SMMUv3 ASID/VMID accounting: an ASID or VMID is never 0, unique among live
    /// domains, and, once no attachment uses it, freed only with no CD or STE carrying it
    /// and nothing tagged with it left in the TLB.
    case asidVMIDAccounting = "I9"
    /// I10: a PASID is torn down in order: its entry is cleared only once the PASID cache
    /// and IOTLB no longer hold it, and the teardown returns with its page requests drained.
    case teardownOrder = "I10"
    /// I11: an attach programs the hardware before it publishes the domain in the
    /// core's tables (reserve, program, then publish).
    case entryVisibility = "I11"
    /// I14: exactly one response per page-request group.
    case onePageResponse = "I14"
    /// ATS: ATS sequencing (SMMUv3): PCI ATS is enabled only while the device's STE lets the
    /// IOMMU answer ATS translation requests, never with a plain bypass or abort STE.
    case atsSequencing = "ATS"
    /// `iommu_map`, `iommu_unmap` and `iommu_unmap_fast` may run at the same time on one
    /// domain only on disjoint ranges (the page table's "write range lock" contract);
    /// two calls whose ranges overlap ran at once.
    case overlappingMapUnmap = "map/unmap overlap"

    /// What the rule forbids, in a few words: how a violation starts when printed.
    public var name: String {
        switch self {
        case .translationAuthority: "translation by a domain that is not attached"
        case .coherenceAfterUnmap: "stale translation after unmap"
        case .noDMAAfterDetach: "DMA after detach"
        case .pasidLifetime: "PASID reused before teardown"
        case .didAccounting: "domain ID freed while in use"
        case .teardownOrder: "PASID teardown out of order"
        case .entryVisibility: "PASID published before it was programmed"
        case .onePageResponse: "page-request group not answered exactly once"
        case .asidVMIDAccounting: "ASID or VMID freed while in use"
        case .atsSequencing: "ATS enabled while the STE cannot answer it"
        case .overlappingMapUnmap: "map and unmap of overlapping ranges at once"
        }
    }
}

/// A reported violation: which invariant, where, and the event that broke it.
public struct Violation: Hashable, Sendable, CustomStringConvertible {
    /// The invariant broken.
    public let invariant: Invariant
    /// The device involved, if any.
    public let device: RID?
    /// The PASID involved (nil: a request without PASID).
    public let pasid: PASID?
    /// The address involved, if any: the IOVA a device used.
    public let address: IOVA?
    /// The event that broke the invariant (e.g. `"dma read"`, `"did release"`).
    public let event: String
    /// What went wrong, in one sentence.
    public let message: String

    /// A violation record.
    public init(_ invariant: Invariant, device: RID? = nil, pasid: PASID? = nil, address: IOVA? = nil,
                event: String, message: String) {
        self.invariant = invariant
        self.device = device
        self.pasid = pasid
        self.address = address
        self.event = event
        self.message = message
    }

    /// `stale translation after unmap (I4): dev 00:02.0 pasid - addr 0x1000 [dma read]: message`.
    public var description: String {
        let d = device.map { "\($0)" } ?? "-"
        let p = pasid.map { "\($0)" } ?? "-"
        let a = address.map { "\($0)" } ?? "-"
        return "\(invariant.name) (\(invariant.rawValue)): dev \(d) pasid \(p) addr \(a) [\(event)]: \(message)"
    }
}

/// The invariant checker ("sanitizer"), switched on per machine. When on, the DMA engine
/// compares every translation the hardware served with what the core's software state
/// says (translation authority, coherence after unmap, no DMA after detach); the core
/// checks PASID publication and reuse; vendor models report what only they can see
/// (domain-ID accounting, teardown order). See ``Invariant``. When off it costs one branch.
public final class InvariantChecker: @unchecked Sendable {
    private let lock = Lock()
    private var _violations: [Violation] = []
    /// The on/off switch: an atomic, since the DMA engine tests it on every request
    /// while another thread may switch checking on or off (see `DMAPath`).
    let enabledFlag = AtomicFlag()
    /// Ranges unmapped with `iommu_unmap_fast` whose `iommu_iotlb_sync` has not run yet.
    private var unmapWindows: [ObjectIdentifier: [(start: IOVA, end: IOVA)]] = [:]
    /// The `iommu_map`/`iommu_unmap` calls running now, per domain.
    private var callsInFlight: [ObjectIdentifier: [MapUnmapCall]] = [:]

    /// One running `iommu_map` or `iommu_unmap(_fast)`: which, on what, from which thread.
    struct MapUnmapCall {
        let name: String
        let first: IOVA
        let last: IOVA
        let thread: pthread_t
        let serial: Int
    }
    private var nextCallSerial = 0
    /// (RID, PASID) pairs that were detached at least once, to tell DMA after detach from
    /// translation by a domain that is not attached.
    private var detached: Set<PasidKey> = []

    struct PasidKey: Hashable {
        let rid: RID
        let pasid: PASID?
    }

    /// Creates a disabled checker.
    public init() {}

    /// Whether checking is on.
    public var isEnabled: Bool {
        get { enabledFlag.isSet }
        set { lock.withLock { enabledFlag.set(newValue) } }
    }

    /// Every violation reported so far.
    public var violations: [Violation] { lock.withLock { _violations } }

    /// Violations of one invariant.
    public func violations(of invariant: Invariant) -> [Violation] { violations.filter { $0.invariant == invariant } }

    /// Forgets the reported violations.
    public func clear() { lock.withLock { _violations.removeAll() } }

    /// Reports a violation (vendor models use this for ``Invariant/didAccounting`` and
    /// ``Invariant/teardownOrder``). Ignored when off.
    public func report(_ violation: Violation) {
        guard enabledFlag.isSet else { return }
        lock.withLock { _violations.append(violation) }
    }

    func openUnmapWindow(_ domain: IOMMUDomain, start: IOVA, end: IOVA) {
        guard enabledFlag.isSet else { return }
        lock.withLock { unmapWindows[ObjectIdentifier(domain), default: []].append((start, end)) }
    }

    /// `iommu_iotlb_sync` flushed `[start, end]`: the windows inside it close. Other
    /// windows of the domain (another thread's unmap, on another range) stay open.
    func closeUnmapWindows(_ domain: IOMMUDomain, start: IOVA, end: IOVA) {
        guard enabledFlag.isSet else { return }
        lock.withLock {
            let key = ObjectIdentifier(domain)
            unmapWindows[key]?.removeAll { start <= $0.start && $0.end <= end }
            if unmapWindows[key]?.isEmpty == true { unmapWindows[key] = nil }
        }
    }

    /// A flush of the whole domain: every window closes.
    func closeUnmapWindows(_ domain: IOMMUDomain) {
        guard enabledFlag.isSet else { return }
        lock.withLock { _ = unmapWindows.removeValue(forKey: ObjectIdentifier(domain)) }
    }

    /// Notes that `name` (`iommu_map`, `iommu_unmap`) starts on `[first, last]` of
    /// `domain`, and reports it if a call on an overlapping range runs on another thread
    /// (the same thread's nested call, such as the unmap that undoes a failed map, is
    /// part of its outer call). Returns a token for ``endCall(_:_:)``; nil when off.
    func beginCall(_ name: String, _ domain: IOMMUDomain, first: IOVA, last: IOVA) -> Int? {
        guard enabledFlag.isSet else { return nil }
        let me = pthread_self()
        let (serial, clash): (Int, MapUnmapCall?) = lock.withLock {
            let key = ObjectIdentifier(domain)
            let clash = callsInFlight[key]?.first {
                pthread_equal($0.thread, me) == 0 && $0.first <= last && first <= $0.last
            }
            nextCallSerial += 1
            callsInFlight[key, default: []].append(
                MapUnmapCall(name: name, first: first, last: last, thread: me, serial: nextCallSerial))
            return (nextCallSerial, clash)
        }
        if let clash {
            report(Violation(.overlappingMapUnmap, address: first, event: name,
                             message: "\(name) of [\(first), \(last)] on \(domain) while \(clash.name) of "
                                + "[\(clash.first), \(clash.last)] runs on another thread"))
        }
        return serial
    }

    /// The call ``beginCall(_:_:first:last:)`` returned `token` for has returned.
    func endCall(_ token: Int?, _ domain: IOMMUDomain) {
        guard let token else { return }
        lock.withLock {
            let key = ObjectIdentifier(domain)
            callsInFlight[key]?.removeAll { $0.serial == token }
            if callsInFlight[key]?.isEmpty == true { callsInFlight[key] = nil }
        }
    }

    func noteDetach(rid: RID, pasid: PASID?) {
        guard enabledFlag.isSet else { return }
        lock.withLock { _ = detached.insert(PasidKey(rid: rid, pasid: pasid)) }
    }

    private func inUnmapWindow(_ domain: IOMMUDomain, _ address: IOVA) -> Bool {
        lock.withLock {
            unmapWindows[ObjectIdentifier(domain)]?.contains { $0.start <= address && address <= $0.end } ?? false
        }
    }

    /// Compares one translation the hardware served with the software truth.
    func checkTranslation(machine: Machine, device: PCIDevice, request: TranslationRequest,
                          physical: PhysicalAddress, cached: Bool) {
        let pasid = request.pasid
        let authority = machine.iommu.authoritativeDomain(for: device, pasid: request.pasid)
        let event = "dma " + (request.access.contains(.write) ? "write" : "read") + (cached ? " (IOTLB hit)" : " (walk)")
        switch authority {
        case .unknown:
            return
        case .blocked:
            let wasDetached = lock.withLock { detached.contains(PasidKey(rid: device.rid, pasid: pasid)) }
            report(Violation(wasDetached ? .noDMAAfterDetach : .translationAuthority, device: device.rid,
                             pasid: request.pasid, address: request.address, event: event,
                             message: wasDetached
                                ? "translated to \(physical) after the domain was detached"
                                : "translated to \(physical) while no domain is attached"))
        case .domain(let domain):
            let truth: PhysicalAddress = switch domain.type {
            case .identity: PhysicalAddress(identity: request.address)
            // An SVA domain's truth is the process's CPU page table.
            case .sva: domain.mm.map { mm in
                mm.isExiting ? 0 : mm.physicalAddress(of: request.address.rawValue) ?? 0
            } ?? 0
            default: domain.iovaToPhys(request.address)
            }
            if truth == physical { return }
            if inUnmapWindow(domain, request.address) {
                // A stale hit is legal until iommu_iotlb_sync, unless the memory is gone.
                if machine.memory.isAllocated(physical) { return }
                report(Violation(.coherenceAfterUnmap, device: device.rid, pasid: request.pasid,
                                 address: request.address, event: event,
                                 message: "stale translation reached freed memory \(physical) before iommu_iotlb_sync"))
                return
            }
            let message = truth == 0
                ? "translated to \(physical) but \(domain) has no mapping (missing invalidation)"
                : "translated to \(physical) but \(domain) maps it to \(truth)"
            report(Violation(cached || truth == 0 ? .coherenceAfterUnmap : .translationAuthority, device: device.rid,
                             pasid: request.pasid, address: request.address, event: event, message: message))
        }
    }
}
