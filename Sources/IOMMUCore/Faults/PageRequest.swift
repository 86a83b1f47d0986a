/// A page request as a device's PCIe Page Request Interface (PRI) sends it to its IOMMU
/// (a Page Request Message): "make this page present, then I retry". Requests with the
/// same group index form a page-request group; the one marked last closes the group, and
/// the device expects exactly one page-group response for it.
///
/// The hardware model that receives it (``IOMMUDevice/receivePageRequest(_:)``) keeps it
/// in its own format; its driver turns it into an ``IOPFFault`` for the core.
public struct PageRequest: Hashable, Sendable, CustomStringConvertible {
    /// The requester.
    public var rid: RID
    /// The PASID of the request, nil for a request without a PASID prefix.
    public var pasid: PASID?
    /// The access asked for (read, write, execute, privileged).
    public var access: IOMMUFaultPerm
    /// The page-request group index (9 bits on PCIe; larger values are truncated by the
    /// hardware model that stores them).
    public var groupIndex: UInt16
    /// Last request of its group: a response is expected.
    public var isLastInGroup: Bool
    /// The page address (the offset in the page is ignored; under SVA, the process's
    /// virtual address).
    public var address: IOVA

    /// A page request.
    public init(rid: RID, pasid: PASID?, access: IOMMUFaultPerm = .read, groupIndex: UInt16, isLastInGroup: Bool = true,
                address: IOVA) {
        self.rid = rid
        self.pasid = pasid
        self.access = access
        self.groupIndex = groupIndex
        self.isLastInGroup = isLastInGroup
        self.address = address
    }

    /// The core's view of the request (`struct iommu_fault_page_request`), as a driver
    /// reports it with ``IOMMUSubsystem/reportDeviceFault(_:_:)``: a request with a
    /// PASID needs the PASID in its response.
    public var fault: IOPFFault {
        var flags: IOMMUFaultFlags = isLastInGroup ? [.lastPage] : []
        if pasid != nil { flags.insert(.responseNeedsPasid) }
        return IOPFFault(flags: flags, pasid: pasid, grpid: UInt32(groupIndex), perm: access,
                         address: address.alignedDown(to: 4096))
    }

    /// `page request 00:02.0 pasid 5 grp 3 addr 0x1000 rw last`.
    public var description: String {
        let rights = [(IOMMUFaultPerm.read, "r"), (.write, "w"), (.exec, "x"), (.priv, "p")]
            .filter { access.contains($0.0) }.map(\.1).joined()
        return "page request \(rid) pasid \(pasid.map { "\($0)" } ?? "-") grp \(groupIndex) addr "
            + "\(address.alignedDown(to: 4096)) \(rights)" + (isLastInGroup ? " last" : "")
    }
}

extension PCIDevice {
    /// The device's PRI sends `request` (its ``PageRequest/rid`` is replaced by the
    /// device's own) to the IOMMU it sits behind. What happens next is the vendor's:
    /// see ``IOMMUDevice/receivePageRequest(_:)``.
    /// - Returns: whether the IOMMU took the request (false: the unit has no
    ///   page-request support or its queue is full; the request is lost).
    /// - Throws: `ENODEV` when the device is on no machine or behind no registered
    ///   IOMMU; `EOPNOTSUPP` when PRI is not enabled on the device (`pci_enable_pri`
    ///   never ran), so it cannot send page requests.
    @discardableResult
    public func sendPageRequest(_ request: PageRequest) throws(Errno) -> Bool {
        guard machine != nil, let unit = iommu, unit.machine != nil else {
            throw .noDevice.from("sendPageRequest", "\(rid) is on no machine or behind no registered IOMMU")
        }
        guard priEnabled else { throw .notSupported.from("sendPageRequest", "PRI is not enabled on \(rid)") }
        var r = request
        r.rid = rid
        machine?.events.record(.model("page_request", device: rid, pasid: r.pasid,
                                      [.init("device", rid.devName), .init("request", r.description)]))
        return unit.receivePageRequest(r)
    }
}
