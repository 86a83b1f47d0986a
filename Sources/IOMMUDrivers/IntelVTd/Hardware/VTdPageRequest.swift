import IOMMUCore

/// One page request the hardware wrote into the page-request queue (`struct
/// page_req_dsc`): who asked, in which address space, for what access, at which page.
public struct VTdPageRequest: Hashable, Sendable {
    /// Requester ID (`rid`).
    public var rid: RID
    /// The PASID (`pasid`), nil when the request carried none (`pasid_present` clear).
    public var pasid: PASID?
    /// Whether the request carried a PASID (`pasid_present`).
    public var pasidPresent: Bool { pasid != nil }
    /// Read access requested (`rd_req`).
    public var read: Bool
    /// Write access requested (`wr_req`).
    public var write: Bool
    /// Execute requested (`exe_req`).
    public var execute: Bool
    /// Privileged mode requested (`pm_req`).
    public var privileged: Bool
    /// Last page in group (`lpig`): a response is expected.
    public var lastPage: Bool
    /// Page-request group index (`prg_index`, 9 bits).
    public var groupIndex: UInt16
    /// The page address (`addr`, 4 KiB aligned).
    public var address: IOVA

    /// A page request as the model's hardware produces it.
    public init(rid: RID, pasid: PASID?, read: Bool, write: Bool, execute: Bool,
                privileged: Bool, lastPage: Bool, groupIndex: UInt16, address: IOVA) {
        self.rid = rid
        self.pasid = pasid
        self.read = read
        self.write = write
        self.execute = execute
        self.privileged = privileged
        self.lastPage = lastPage
        self.groupIndex = groupIndex
        self.address = address
    }

    /// Whether the request is for (`rid`, `pasid`), nil matching requests without PASID
    /// (the kernel's drain matching rule).
    public func matches(rid: RID, pasid: PASID?) -> Bool { self.rid == rid && self.pasid == pasid }
}

/// A page-group response the hardware delivered to a device.
public struct VTdPageResponse: Hashable, Sendable {
    /// The device.
    public let rid: RID
    /// The PASID of the group, nil for a group without PASID.
    public let pasid: PASID?
    /// The group index.
    public let groupIndex: UInt16
    /// The response code.
    public let code: VTdPageResponseCode
}
