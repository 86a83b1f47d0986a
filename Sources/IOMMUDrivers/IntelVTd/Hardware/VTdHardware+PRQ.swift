import IOMMUCore

extension VTdHardware {
    /// A PCIe Page Request Message arriving from the link below the unit (a device's
    /// PRI sending `request` directly: a request of a multi-page group, or a PASID Stop
    /// Marker). The hardware writes it into the page-request queue; when the queue is
    /// full it sets the overflow flag (`DMA_PRS_PRO`) and drops the request.
    /// - Returns: whether the request was queued.
    @discardableResult
    public func receivePageRequest(_ request: VTdPageRequest) -> Bool {
        prqLock.withLock {
            guard prq.count < Self.prqCapacity else {
                regs[7] = 1
                return false
            }
            prq.append(request)
            regs[4] &+= 1
            return true
        }
    }
}

extension VTdPageRequest {
    /// Whether the request is a PASID Stop Marker: last page in group with neither read
    /// nor write requested (LRW = 0b100); no response is expected.
    public var isStopMarker: Bool { lastPage && !read && !write }
}
