import IOMMUCore

/// The 256-bit image of a descriptor in the invalidation queue (`struct qi_desc`), as the
/// kernel's `qi_flush_*` helpers and `intel_iommu_page_response` build it with the
/// `QI_*` field macros of `drivers/iommu/intel/iommu.h`. The model's queue executes the
/// typed descriptor; the words are what `intel_iommu:qi_submit` prints.
public struct VTdQIWords: Hashable, Sendable {
    /// `qw0`: the type in bits 3:0, then the descriptor's fields.
    public var qw0: UInt64 = 0
    /// `qw1`: address, address mask, group index.
    public var qw1: UInt64 = 0
    /// `qw2`, unused by the descriptors the model issues.
    public var qw2: UInt64 = 0
    /// `qw3`, unused by the descriptors the model issues.
    public var qw3: UInt64 = 0
}

extension VTdDescriptor {
    /// `QI_CC_TYPE` ... `QI_PGRP_RESP_TYPE`: the type field of `qw0`.
    public var qiType: UInt64 {
        switch self {
        case .contextGlobal, .contextDomain, .contextDevice: 0x1
        case .iotlbGlobal, .iotlbDomain, .iotlbPage: 0x2
        case .devTLB: 0x3
        case .wait: 0x5
        case .piotlb: 0x6
        case .pasidCache, .pasidCacheDomain, .pasidCacheGlobal: 0x7
        case .devTLBPasid: 0x8
        case .pageGroupResponse: 0x9
        }
    }

    /// The descriptor as the kernel writes it into the queue. Fields the model does not
    /// keep are zero: the drain bits of an IOTLB descriptor (`cap_read_drain`,
    /// `cap_write_drain`), the ATS queue depth of a device-TLB descriptor, and the status
    /// address of an invalidation wait (`qw1`, a kernel address).
    public var qiWords: VTdQIWords {
        var w = VTdQIWords()
        let type = qiType
        switch self {
        case .contextGlobal:
            w.qw0 = type | 1 << 4                                   // QI_CC_GRAN(DMA_CCMD_GLOBAL_INVL)
        case .contextDomain(let did):
            w.qw0 = type | 2 << 4 | UInt64(did) << 16               // DMA_CCMD_DOMAIN_INVL, QI_CC_DID
        case .contextDevice(let did, let rid):
            w.qw0 = type | 3 << 4 | UInt64(did) << 16 | UInt64(rid.raw) << 32   // + QI_CC_SID, FM 0
        case .iotlbGlobal:
            w.qw0 = type | 1 << 4                                   // QI_IOTLB_GRAN(DMA_TLB_GLOBAL_FLUSH)
        case .iotlbDomain(let did):
            w.qw0 = type | 2 << 4 | UInt64(did) << 16               // DMA_TLB_DSI_FLUSH, QI_IOTLB_DID
        case .iotlbPage(let did, let address, let mask, let ih):
            w.qw0 = type | 3 << 4 | UInt64(did) << 16               // DMA_TLB_PSI_FLUSH
            w.qw1 = address.rawValue & ~0xfff | (ih ? 1 << 6 : 0) | UInt64(mask) & 0x3f   // ADDR, IH, AM
        case .devTLB(let rid, let address, let size):
            w.qw0 = Self.deviceTLBSID(rid) | type | Self.pfsid(rid)
            w.qw1 = Self.sizedAddress(address.rawValue, size, sizeBit: 1)    // QI_DEV_IOTLB_ADDR | QI_DEV_IOTLB_SIZE
        case .devTLBPasid(let rid, let pasid, let address, let size):
            w.qw0 = UInt64(pasid.rawValue & 0xf_ffff) << 32 | UInt64(rid.raw) << 16 | type | Self.pfsid(rid)
            w.qw1 = Self.sizedAddress(address.rawValue, size, sizeBit: 1 << 11)   // QI_DEV_EIOTLB_SIZE
        case .wait(let fence, let drain):
            // QI_IWD_STATUS_DATA(QI_DONE) | QI_IWD_STATUS_WRITE | QI_IWD_TYPE
            w.qw0 = 2 << 32 | 1 << 5 | type | (fence ? 1 << 6 : 0) | (drain ? 1 << 7 : 0)
        case .piotlb(let did, let pasid, let address, let npages, let ih):
            let head = UInt64(pasid) << 32 | UInt64(did) << 16 | type
            if npages == .max {
                w.qw0 = head | 2 << 4                               // QI_GRAN_NONG_PASID
            } else {
                let mask = Self.order(npages)
                w.qw0 = head | 3 << 4                               // QI_GRAN_PSI_PASID
                w.qw1 = address.rawValue & ~((UInt64(1) << (12 + mask)) - 1) | (ih ? 1 << 6 : 0) | mask & 0x3f
            }
        case .pasidCache(let did, let pasid):
            w.qw0 = UInt64(pasid) << 32 | UInt64(did) << 16 | 1 << 4 | type     // QI_PC_PASID_SEL
        case .pasidCacheDomain(let did):
            w.qw0 = UInt64(did) << 16 | type                                    // QI_PC_ALL_PASIDS
        case .pasidCacheGlobal:
            w.qw0 = 3 << 4 | type                                               // QI_PC_GLOBAL
        case .pageGroupResponse(let rid, let pasid, let index, let code, let last):
            let pasidBits = UInt64(pasid?.rawValue ?? 0) << 32 | (pasid != nil ? 1 << 4 : 0)
            w.qw0 = pasidBits | UInt64(rid.raw) << 16 | UInt64(code.rawValue) << 12 | type
            w.qw1 = UInt64(index) << 3 | (last ? 1 << 2 : 0)                    // QI_PGRP_IDX, QI_PGRP_LPIG
        }
        return w
    }

    /// `QI_DEV_IOTLB_SID`.
    private static func deviceTLBSID(_ rid: RID) -> UInt64 { UInt64(rid.raw) << 32 }

    /// `QI_DEV_IOTLB_PFSID` of a physical function (its own source-id): bits 3:0 at
    /// 15:12, bits 15:4 at 63:52.
    private static func pfsid(_ rid: RID) -> UInt64 {
        UInt64(rid.raw & 0xf) << 12 | UInt64((rid.raw >> 4) & 0xfff) << 52
    }

    /// log2 of `pages` rounded up to a power of two (`ilog2(__roundup_pow_of_two())`).
    private static func order(_ pages: UInt64) -> UInt64 {
        var mask: UInt64 = 0
        while mask < 52 && UInt64(1) << mask < pages { mask += 1 }
        return mask
    }

    /// A device-TLB address with the size encoding of `qi_flush_dev_iotlb`: for more
    /// than one page, the low bits below the range's top are set and the S bit given;
    /// a whole-space flush (`size == .max`) uses `MAX_AGAW_PFN_WIDTH`.
    private static func sizedAddress(_ address: UInt64, _ size: UInt64, sizeBit: UInt64) -> UInt64 {
        let mask = size == .max ? 52 : order(max(1, (size + 0xfff) >> 12))
        guard mask > 0 else { return address & ~0xfff }
        let filled = (size == .max ? 0 : address) | ((UInt64(1) << (11 + mask)) - 1)
        return filled & ~0xfff | sizeBit
    }
}
