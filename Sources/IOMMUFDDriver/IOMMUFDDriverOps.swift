import IOMMUCore

/// `struct iommu_user_data`: vendor data a user passed by pointer, with its type, read
/// through the context's ``UserMemory`` only when the driver asks
/// (`iommu_copy_struct_from_user`).
public struct IOMMUUserData: Sendable {
    /// `type`: the `enum iommu_hwpt_data_type` value.
    public let type: UInt32
    /// `uptr`.
    public let uptr: UInt64
    /// `len`.
    public let len: UInt32
    /// The memory `uptr` points into: the caller's, as iommufd reads it.
    package let user: any UserMemory

    /// The user data of one ioctl, read through `user` (iommufd builds it).
    package init(type: UInt32, uptr: UInt64, len: UInt32, user: any UserMemory) {
        self.type = type
        self.uptr = uptr
        self.len = len
        self.user = user
    }

    /// `iommu_copy_struct_to_user(data, ksrc, type, min_last)`: writes `bytes` (a driver
    /// structure of `maxLength` bytes) back to the caller, as much as its `len` holds.
    /// - Throws: `EINVAL` type mismatch, or `len` below `minLength` or above `maxLength`;
    ///   `EFAULT` bad pointer.
    public func copyOut(_ bytes: [UInt8], expectedType: UInt32, minLength: Int, maxLength: Int) throws(Errno) {
        guard type == expectedType else { throw .invalidArgument }
        guard Int(len) >= minLength, Int(len) <= maxLength else { throw .invalidArgument }
        try user.copyToUser(uptr, Array(bytes.prefix(Int(len))))
    }

    /// `iommu_copy_struct_from_user(data, kdst, type, min_last)`.
    /// - Throws: `EINVAL` type mismatch, or `len` below `minLength` or above `maxLength`;
    ///   `EFAULT` bad pointer.
    public func copy(expectedType: UInt32, minLength: Int, maxLength: Int) throws(Errno) -> [UInt8] {
        let f = "iommu_copy_struct_from_user"
        guard type == expectedType else { throw .invalidArgument.from(f, "data type \(type), expected \(expectedType)") }
        guard Int(len) >= minLength, Int(len) <= maxLength else {
            throw .invalidArgument.from(f, "data_len \(len) is outside [\(minLength), \(maxLength)]")
        }
        return try user.copyFromUser(uptr, count: Int(len))
    }
}

/// `struct iommu_user_data_array`: an array of vendor invalidation entries
/// (`IOMMU_HWPT_INVALIDATE`).
public struct IOMMUUserDataArray: Sendable {
    /// `type`: `enum iommu_hwpt_invalidate_data_type`.
    public let type: UInt32
    /// `uptr`.
    public let uptr: UInt64
    /// `entry_len`.
    public let entryLen: UInt32
    /// `entry_num` on input.
    public let entryNum: UInt32
    /// The memory `uptr` points into: the caller's, as iommufd reads it.
    package let user: any UserMemory

    /// The entry array of one ioctl, read through `user` (iommufd builds it).
    package init(type: UInt32, uptr: UInt64, entryLen: UInt32, entryNum: UInt32, user: any UserMemory) {
        self.type = type
        self.uptr = uptr
        self.entryLen = entryLen
        self.entryNum = entryNum
        self.user = user
    }

    /// `iommu_copy_struct_from_full_user_array(kdst, entry_size, array, type)`: every entry,
    /// each `entrySize` bytes (`copy_struct_from_user` per entry: a shorter entry is
    /// zero-extended, a longer one must be zero past `entrySize`).
    /// - Throws: `EINVAL` type mismatch or no entry; `E2BIG` non-zero bytes past
    ///   `entrySize` in a longer entry; `EFAULT`.
    public func copyAll(expectedType: UInt32, entrySize: Int) throws(Errno) -> [[UInt8]] {
        guard type == expectedType else { throw .invalidArgument }
        guard entryNum != 0 else { throw .invalidArgument }
        var out: [[UInt8]] = []
        for i in 0..<Int(entryNum) {
            let raw = try user.copyFromUser(uptr &+ UInt64(i) &* UInt64(entryLen), count: Int(entryLen))
            if raw.count > entrySize {
                guard raw[entrySize...].allSatisfy({ $0 == 0 }) else { throw .tooBig }
                out.append(Array(raw.prefix(entrySize)))
            } else {
                out.append(raw + [UInt8](repeating: 0, count: entrySize - raw.count))
            }
        }
        return out
    }

    /// `iommu_copy_struct_from_user_array(array, kdst, type, index, min_last)`.
    /// - Throws: `EINVAL` type mismatch or `entry_len` outside `[minLength, maxLength]`
    ///   (only the first `maxLength` bytes are read when larger entries are allowed);
    ///   `EFAULT`.
    public func copyEntry(_ index: Int, expectedType: UInt32, minLength: Int, maxLength: Int) throws(Errno) -> [UInt8] {
        let f = "iommu_copy_struct_from_user_array"
        guard type == expectedType else { throw .invalidArgument.from(f, "data type \(type), expected \(expectedType)") }
        guard Int(entryLen) >= minLength, Int(entryLen) <= maxLength else {
            throw .invalidArgument.from(f, "entry_len \(entryLen) is outside [\(minLength), \(maxLength)]")
        }
        return try user.copyFromUser(uptr &+ UInt64(index) * UInt64(entryLen), count: Int(entryLen))
    }
}

/// The iommufd-facing part of a vendor driver's `iommu_ops` and `iommu_domain_ops` that
/// the core protocol does not carry: hardware info, typed nested user data, and user
/// cache invalidation. Vendor data crosses only as bytes. A driver that does not adopt
/// it reports no hardware info, receives nested data unchecked, and has no
/// `cache_invalidate_user` (`EOPNOTSUPP`).
public protocol IOMMUFDDriverOps: AnyObject, Sendable {
    /// `iommu_ops.hw_info(dev, &length, &type)`: the vendor info structure for `type`
    /// (`IOMMU_HW_INFO_TYPE_DEFAULT` asks for the driver's own).
    /// - Throws: `EOPNOTSUPP` for a type the driver does not report.
    func hwInfo(_ dev: PCIDevice, type: UInt32) throws(Errno) -> (type: UInt32, data: [UInt8])

    /// The checks of `domain_alloc_nested` before the driver builds the domain: validate
    /// and copy `data` (`EOPNOTSUPP` unknown type, `EINVAL` length, `EFAULT`). The
    /// returned bytes go to `IOMMUDriver.domainAllocNested`.
    func nestedUserData(_ dev: PCIDevice, _ data: IOMMUUserData) throws(Errno) -> [UInt8]

    /// The user-data step of `domain_alloc_paging_flags` (`IOMMU_HWPT_ALLOC` on an IOAS
    /// with a data type): validate and copy `data`, or refuse it (`EOPNOTSUPP`). The
    /// returned bytes go to `IOMMUDriver.domainAllocPaging`.
    func pagingUserData(_ dev: PCIDevice, _ data: IOMMUUserData) throws(Errno) -> [UInt8]

    /// `iommu_domain_ops.cache_invalidate_user(domain, array)` for a nested domain of
    /// this driver. `handled` must hold the number of entries processed, on error too.
    /// - Throws: `EOPNOTSUPP` when the domain has no user invalidation; the driver's
    ///   per-entry errno.
    func cacheInvalidateUser(_ domain: IOMMUDomain, _ array: IOMMUUserDataArray, handled: inout UInt32) throws(Errno)
}
