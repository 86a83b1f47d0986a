import IOMMUCore

/// Per-device driver state (`struct device_domain_info`): the device's own PASID table
/// (directory plus lazily allocated 4 KiB tables), the RID domain, and which PCI
/// features the driver enabled.
public final class VTdDeviceInfo: @unchecked Sendable {
    /// The device (weak: the machine owns it).
    public private(set) weak var dev: PCIDevice?
    /// The requester ID.
    public let rid: RID
    /// The unit the device sits behind.
    /// `unowned(unsafe)`: a machine never removes an IOMMU unit, and the info belongs to
    /// a device probed behind it, so the unit outlives the info; read on every map
    /// (`iotlbSyncMap`) it then costs no unowned-refcount traffic.
    public unowned(unsafe) let unit: IntelIOMMU
    /// PASIDs the table covers (`pasid_table->max_pasid`).
    public let maxPasid: UInt32
    /// Physical address of the PASID directory.
    public let directory: PhysicalAddress
    let directoryBytes: Int
    /// Directory index → PASID-table page.
    var tables: [UInt64: PhysicalAddress] = [:]
    /// The domain translating requests without PASID (`info->domain`), nil when blocked.
    public internal(set) var ridDomain: VTdDomain?
    /// The RID domain attached while the context was still the copied one (deferred).
    var deferredDomain: VTdDomain?
    /// Attachments of domains with a fault handler (`info->iopf_refcount`); the device
    /// is on the unit's iopf queue while it is non-zero.
    public internal(set) var iopfRefcount = 0
    /// Test hook (``IntelIOMMUDriver/failSetDevPasid(_:on:)``): the errno every
    /// non-blocking `set_dev_pasid` on the device fails with, nil normally.
    var failSetDevPasid: Errno?

    init(dev: PCIDevice, unit: IntelIOMMU, maxPasid: UInt32) throws(Errno) {
        self.dev = dev
        rid = dev.rid
        self.unit = unit
        // At least one page; 8 bytes per directory entry, 64 PASIDs per entry.
        let entries = max(512, Int((maxPasid + 63) / 64))
        var pow2 = 512
        while pow2 < entries { pow2 <<= 1 }
        directoryBytes = pow2 * 8
        self.maxPasid = UInt32(pow2) * 64
        directory = try unit.vtd.memory.allocContiguous(bytes: directoryBytes)
    }

    /// PDTS for the context entry: the directory holds `2^(pdts + 7)` entries.
    var pdts: Int { (directoryBytes / 8).trailingZeroBitCount - 7 }

    /// The PASID-table entry address of `pasid`, allocating its table when `allocate`.
    /// - Throws: `ENOMEM` when a table page cannot be allocated.
    func entryAddress(_ pasid: UInt32, allocate: Bool) throws(Errno) -> PhysicalAddress? {
        guard pasid < maxPasid else { return nil }
        let index = VTdPASIDDirectory.index(pasid)
        let table: PhysicalAddress
        if let t = tables[index] {
            table = t
        } else {
            guard allocate else { return nil }
            table = try unit.vtd.memory.allocFrame()
            tables[index] = table
            // Directory entries are never freed once populated.
            unit.vtd.memory.store64(directory + index * 8, table.rawValue | VTdPASIDDirectory.present)
        }
        return table + VTdPASIDDirectory.tableIndex(pasid) * VTdPASIDEntry.size
    }

    /// Every present PASID entry of the device: (PASID, entry address).
    func presentEntries() -> [(UInt32, PhysicalAddress)] {
        var out: [(UInt32, PhysicalAddress)] = []
        for (index, table) in tables {
            for i in 0..<UInt64(64) where unit.vtd.memory.load64(table + i * 64) & 1 != 0 {
                out.append((UInt32(index * 64 + i), table + i * 64))
            }
        }
        return out
    }

    /// Writes the scalable-mode context entry (`intel_pasid_setup_sm_context`):
    /// directory pointer, PDTS, RID_PASID 0, DTE/PASIDE/PRE per what is enabled, present.
    func programContext() throws(Errno) {
        guard let dev else { return }
        var c = VTdContextEntry()
        c.pasidDirectory = directory
        c.pdts = pdts
        c.ridPasid = IntelIOMMU.ridPasid
        c.dte = dev.atsEnabled
        c.paside = unit.caps.pasid
        c.pre = dev.priEnabled
        c.present = true
        c.store(unit.vtd.memory, VTdContextEntry.address(table: try unit.contextTable(for: rid), devfn: rid.devfn))
        unit.log(.contextEntry(rid: rid, present: true))
        if unit.caps.cachingMode {
            unit.submit([.contextDevice(did: 0, rid: rid), .pasidCacheGlobal, .iotlbGlobal])
        } else {
            unit.flushWriteBuffer()
        }
    }

    /// Clears the context entry and invalidates what the hardware cached for the device.
    func clearContext() {
        guard let table = unit.contextTables[Int(rid.bus) * 2 + (rid.devfn >= 0x80 ? 1 : 0)] else { return }
        VTdContextEntry().store(unit.vtd.memory, VTdContextEntry.address(table: table, devfn: rid.devfn))
        unit.log(.contextEntry(rid: rid, present: false))
        unit.submit([.contextDevice(did: 0, rid: rid), .pasidCacheGlobal, .iotlbGlobal])
    }

    /// Frees the PASID tables and the directory (`intel_pasid_free_table`).
    func freeTables() {
        for (_, t) in tables { unit.vtd.memory.freeFrame(t) }
        tables = [:]
        unit.vtd.memory.free(directory, bytes: directoryBytes)
    }
}
