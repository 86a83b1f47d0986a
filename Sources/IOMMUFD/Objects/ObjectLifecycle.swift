import IOMMUCore

extension IOMMUFD {
    /// `iommufd_object_alloc`: reserve the lowest free ID for `obj`; lookups do not see
    /// it until ``finalize(_:)``. An injection point (`ENOMEM`).
    /// - Throws: `ENOMEM`.
    package func allocObject(_ obj: IOMMUFDObject) throws(Errno) {
        if shouldFail() { throw .noMemory.from("iommufd_object_alloc", "allocation failed by injection") }
        obj.rawID = try table.reserve(obj)
    }

    /// `iommufd_object_finalize`: publish the object.
    package func finalize(_ obj: IOMMUFDObject) {
        obj.waitCount = 0
        table.publish(obj)
    }

    /// `iommufd_object_abort`: free the reserved ID of an object that holds nothing yet.
    func abort(_ obj: IOMMUFDObject) { table.release(obj.rawID) }

    /// `iommufd_object_abort_and_destroy`: undo a half-built object and free its ID.
    package func abortAndDestroy(_ obj: IOMMUFDObject) {
        obj.abort(self)
        table.release(obj.rawID)
    }

    /// `iommufd_get_object(ictx, id, type)`: a live object of `type` (`.any` matches
    /// all) with a short-term reference; release it with ``put(_:)``. An injection
    /// point (`ENOENT`).
    /// - Throws: `ENOENT` for a missing, reserved, tombstoned or dying ID, or a wrong type.
    func getObject(_ id: UInt32, _ type: IOMMUFDObjectType) throws(Errno) -> IOMMUFDObject {
        if shouldFail() { throw .noEntry.from("iommufd_get_object", "lookup of \(id) failed by injection") }
        guard let o = table.live(id), type == .any || o.type == type, o.users > 0 else {
            throw .noEntry.from("iommufd_get_object", lookupFailure(id, type))
        }
        o.users += 1
        o.waitCount += 1
        return o
    }

    /// Why a lookup of `id` as `type` found nothing.
    private func lookupFailure(_ id: UInt32, _ type: IOMMUFDObjectType) -> String {
        let wanted = type == .any ? "object" : "\(type)"
        switch table.slots[id] {
        case nil: return "no \(wanted) \(id)"
        case .reserved?: return "object \(id) is still being created"
        case .tombstone?: return "object \(id) was destroyed (tombstone)"
        case .live(let o)?: return o.users > 0 ? "object \(id) is a \(o.type), not a \(wanted)" : "object \(id) is being destroyed"
        }
    }

    /// Typed ``getObject(_:_:)``.
    package func get<T: IOMMUFDObject>(_ id: UInt32, _ type: IOMMUFDObjectType, as: T.Type) throws(Errno) -> T {
        let o = try getObject(id, type)
        guard let t = o as? T else {
            put(o)
            throw .noEntry.from("iommufd_get_object", "object \(id) is a \(o.type), not a \(T.self)")
        }
        return t
    }

    /// `iommufd_put_object`.
    package func put(_ obj: IOMMUFDObject) {
        obj.users -= 1
        obj.waitCount -= 1
    }

    /// Takes a long-term reference (`refcount_inc(&obj->users)`).
    func ref(_ obj: IOMMUFDObject) { obj.users += 1 }
    /// Drops a long-term reference.
    func unref(_ obj: IOMMUFDObject) { obj.users -= 1 }

    /// `iommufd_object_remove(ictx, NULL, id, 0)` (`IOMMU_DESTROY`).
    /// - Throws: `ENOENT` for a missing or tombstoned ID; `EBUSY` while another holder
    ///   has a reference (nothing changes).
    func removeObject(_ id: UInt32) throws(Errno) {
        guard let o = table.live(id) else { throw .noEntry.from("iommufd_destroy", lookupFailure(id, .any)) }
        guard o.users == 1 else {
            throw .busy.from("iommufd_destroy", "\(o) is still referenced (\(o.users - 1) reference(s) besides the table's)")
        }
        table.release(id)
        if vfioIOAS === o { vfioIOAS = nil }
        o.users = 0
        o.destroy(self)
    }

    /// `iommufd_object_put_and_try_destroy`: drop a long-term reference; if only the
    /// table's remains, destroy the object (auto domains dying with their last device).
    func putAndTryDestroy(_ obj: IOMMUFDObject) {
        obj.users -= 1
        guard obj.users == 1, table.live(obj.rawID) === obj else { return }
        table.release(obj.rawID)
        obj.users = 0
        obj.destroy(self)
    }

    /// Destroys an object and leaves its ID reserved until close
    /// (`REMOVE_OBJ_TOMBSTONE`).
    func destroyToTombstone(_ obj: IOMMUFDObject) {
        table.tombstone(obj.rawID)
        obj.users = 0
        obj.destroy(self)
    }
}
