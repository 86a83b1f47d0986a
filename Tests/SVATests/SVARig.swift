import IOMMUConformance
import IOMMUCore
import IOMMUDrivers
import VendorFixtures
import XCTest

typealias Process = IOMMUCore.Process

/// A machine with VT-d units (one driver, or one driver per unit to model incompatible
/// IOMMUs), PCI devices with PASID/ATS/PRI, and processes, for the VT-d side of SVA and
/// I/O page faults: deliberately buggy drivers, unit capabilities, the page-request
/// queue. Built by the VT-d conformance vendor; the checker and the event log are on.
/// Sendable for the concurrency test: after `init` only `units`, fixed by then, is read.
final class SVARig: @unchecked Sendable {
    let machine: Machine
    let drivers: [IntelIOMMUDriver]
    let units: [IntelIOMMU]
    private var nextPid: Int32 = 100

    /// `units` VT-d units; with `separateDrivers` each unit has its own driver object
    /// (domains of one are incompatible with the others).
    init(units count: Int = 1, separateDrivers: Bool = false, bugs: VTdDriverBugs = [],
         caps: VTdCapabilities = VTdCapabilities()) throws {
        let rig = try VTdVendor(caps: caps, bugs: bugs).makeRig()
        for _ in 1..<max(count, 1) { try rig.addUnit(sharingDriver: !separateDrivers) }
        machine = rig.machine
        machine.checker.isEnabled = true
        machine.events.isEnabled = true
        units = machine.iommus.map { $0 as! IntelIOMMU }
        drivers = units.map(\.intelDriver)
    }

    var unit: IntelIOMMU { units[0] }
    var iommu: IOMMUSubsystem { machine.iommu }
    var violations: [Violation] { machine.checker.violations }
    var responses: [IOPFResponseRecord] { iommu.faultLog.responses }

    /// A device at `bus:slot.0` behind unit `unit`.
    @discardableResult
    func device(_ slot: UInt8, unit: Int = 0, pasidWidth: Int? = 20, ats: Bool = true, pri: Bool = true,
                bus: UInt8? = nil) throws -> PCIDevice {
        let caps = PCICapabilities(pasid: pasidWidth.map { PASIDCapability(width: $0, privileged: true, execute: true) },
                                   ats: ats, pri: pri)
        let dev = PCIDevice(rid: RID(bus: bus ?? UInt8(unit), device: slot, function: 0), caps: caps)
        try machine.addDevice(dev, behind: units[unit])
        return dev
    }

    /// A new process on this machine.
    func process() throws -> Process {
        nextPid += 1
        return try Process(memory: machine.memory, pid: nextPid)
    }

    /// The unit `dev` sits behind.
    func unit(of dev: PCIDevice) -> IntelIOMMU { dev.iommu as! IntelIOMMU }

    /// What a PRI device and the kernel do together: the PRQ thread runs, the iopf
    /// work runs, and the last page-group response the device got is returned.
    @discardableResult
    func servePageRequests(for dev: PCIDevice) -> VTdPageResponse? {
        let u = unit(of: dev)
        u.processPageRequests()
        u.iopfQueue.runPending()
        return u.vtd.pageResponses.last { $0.rid == dev.rid }
    }

    /// A DMA write that, on a page request, lets the kernel serve it and retries
    /// while the response is SUCCESS (at most `attempts` times).
    func dmaWriteRetrying(_ dev: PCIDevice, at va: UInt64, bytes: [UInt8], pasid: PASID,
                          attempts: Int = 4) throws -> Int {
        var faults = 0
        while true {
            do {
                try dev.dmaWrite(at: IOVA(sva: va), bytes: bytes, pasid: pasid)
                return faults
            } catch {
                guard error.reason == VTdFault.firstStagePageRequest, faults < attempts else { throw error }
                faults += 1
                guard servePageRequests(for: dev)?.code == .success else { throw error }
            }
        }
    }

    /// A DMA read with the same retry protocol.
    func dmaReadRetrying(_ dev: PCIDevice, at va: UInt64, count: Int, pasid: PASID, attempts: Int = 4) throws -> [UInt8] {
        var faults = 0
        while true {
            do {
                return try dev.dmaRead(at: IOVA(sva: va), count: count, pasid: pasid)
            } catch {
                guard error.reason == VTdFault.firstStagePageRequest, faults < attempts else { throw error }
                faults += 1
                guard servePageRequests(for: dev)?.code == .success else { throw error }
            }
        }
    }
}

/// A page request as the core sees it.
func request(pasid: PASID?, grpid: UInt32, address: UInt64, perm: IOMMUFaultPerm = .read,
             last: Bool = true) -> IOPFFault {
    var flags: IOMMUFaultFlags = last ? [.lastPage] : []
    if pasid != nil { flags.insert(.responseNeedsPasid) }
    return IOPFFault(flags: flags, pasid: pasid, grpid: grpid, perm: perm, address: IOVA(sva: address))
}

/// A page-request descriptor as a device's PRI sends it.
func prq(_ dev: PCIDevice, pasid: PASID?, group: UInt16, address: UInt64, read: Bool = true, write: Bool = false,
         execute: Bool = false, privileged: Bool = false, last: Bool = true) -> VTdPageRequest {
    VTdPageRequest(rid: dev.rid, pasid: pasid, read: read, write: write,
                   execute: execute, privileged: privileged, lastPage: last, groupIndex: group, address: IOVA(sva: address))
}

/// A fault handler that records the groups it gets and answers them as told.
final class RecordingHandler: IOPFHandler, @unchecked Sendable {
    private let lock = NSLock()
    private var _groups: [IOPFGroup] = []
    var answer: IOMMUPageResponseCode? = .success
    var fail: Errno?
    var groups: [IOPFGroup] { lock.withLock { _groups } }

    func handleIOPF(_ group: IOPFGroup) throws(Errno) {
        if let fail { throw fail }
        lock.withLock { _groups.append(group) }
        if let answer { group.queueWork { group.respond(answer) } }
    }
}
