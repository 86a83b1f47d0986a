import IOMMUCore

/// The handler of `IOMMU_TEST_CMD`: what `CONFIG_IOMMUFD_TEST` adds to the kernel's
/// iommufd. A context opened with one (``IOMMUFD/init(machine:process:user:credentials:accounting:testBackend:vfioContainer:)``)
/// has `IOMMU_TEST_CMD` in its ioctl table, which then reaches 0xA0; without one the
/// command is `ENOTTY` and the table ends at 0x94, as on a kernel built without the
/// option. The selftest (module `IOMMUFDSelftest`, with the mock vendor behind it) is the
/// handler; like the kernel's `iommufd_test()`, it works on the context's internals, so
/// this hook and what it reaches are package API, not public API of iommufd.
package protocol IOMMUFDTestCommandHandler: AnyObject, Sendable {
    /// `sizeof(struct iommu_test_cmd)`: the size of the command's table row.
    var commandSize: Int { get }
    /// `offsetofend(struct iommu_test_cmd, last)`: the row's `min_size`.
    var commandMinSize: Int { get }
    /// `iommufd_test(ucmd)`: runs one command, with the context's lock held, after the
    /// dispatcher applied the size rules. Returns the ioctl's value.
    func testCommand(_ ctx: IOMMUFD, _ ucmd: inout UCmd) throws(Errno) -> Int32
    /// `iommufd_selftest_destroy`: releases what a SELFTEST object holds (its device's
    /// attachment and binding, then the mock device).
    func destroy(_ object: SelftestObject, in ctx: IOMMUFD)
}

/// `IOMMUFD_OBJ_SELFTEST` (`struct selftest_obj`): a mock device made by a test command
/// and bound to the context. It lives in the object table like any object, so the table
/// knows its type; what destroying it undoes is the handler's.
package final class SelftestObject: IOMMUFDObject, @unchecked Sendable {
    /// The device object of the bound mock device.
    package var idev: DeviceObject?
    /// The mock device.
    package var mdev: PCIDevice?

    /// An empty object, to be filled by the handler before it is finalized.
    package init() { super.init(type: .selftest) }

    override func destroy(_ ctx: IOMMUFD) { ctx.testBackend?.destroy(self, in: ctx) }
}

/// A file a context hands out for the test-command handler (the selftest's access fd):
/// the context only numbers it and closes it.
package protocol IOMMUFDTestFile: AnyObject {
    /// Closing the fd (its last `fput`).
    func close(_ ctx: IOMMUFD)
}
