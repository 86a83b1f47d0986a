import IOMMUCore
import IOMMUFD

/// The selftest's emulated access (`struct selftest_access`): an ACCESS object behind a
/// file descriptor, with the pinned items it made. Its `unmap` callback unpins every
/// item the IOAS unmap touches, as a well-behaved mdev driver must.
final class SelftestAccess: IOMMUFDTestFile, @unchecked Sendable {
    unowned(unsafe) let ctx: IOMMUFD
    var access: AccessObject!
    /// Pinned items by ID: (iova, length).
    var items: [UInt32: (iova: UInt64, length: UInt64)] = [:]
    var nextItemID: UInt32 = 0

    init(ctx: IOMMUFD) { self.ctx = ctx }

    /// `iommufd_test_access_unmap`: unpin every item intersecting `[iova, iova+length)`.
    func unmap(iova: IOVA, length: UInt64) {
        let iova = iova.rawValue
        let last = iova &+ length &- 1
        for (id, item) in items.sorted(by: { $0.key < $1.key })
        where item.iova <= last && iova <= item.iova &+ item.length &- 1 {
            ctx.accessUnpinPages(access, iova: IOVA(rawValue: item.iova), length: item.length)
            items[id] = nil
        }
    }

    /// Closing the access fd: unpin everything and destroy the access.
    func close(_ ctx: IOMMUFD) {
        for (_, item) in items.sorted(by: { $0.key < $1.key }) {
            ctx.accessUnpinPages(access, iova: IOVA(rawValue: item.iova), length: item.length)
        }
        items = [:]
        ctx.accessDestroy(access)
    }
}

extension MockSelftestBackend {
    /// `iommufd_selftest_destroy`: detach the RID, unbind the device, remove the mock
    /// device.
    package func destroy(_ object: SelftestObject, in ctx: IOMMUFD) {
        if let idev = object.idev {
            ctx.hwptDetach(idev, pasid: nil)
            ctx.deviceUnbind(idev)
        }
        if let mdev = object.mdev { destroyMockDevice(mdev, on: ctx.machine) }
        object.idev = nil
        object.mdev = nil
    }
}
