import IOMMUCore

/// One queued-invalidation descriptor (`struct qi_desc`) as the driver submits it to the
/// invalidation queue. Each case is one descriptor type of the VT-d specification.
public enum VTdDescriptor: Hashable, Sendable, CustomStringConvertible {
    /// Context-cache invalidation, global (`QI_CC_TYPE`, `DMA_CCMD_GLOBAL_INVL`).
    case contextGlobal
    /// Context-cache invalidation, domain-selective (`DMA_CCMD_DOMAIN_INVL`).
    case contextDomain(did: UInt16)
    /// Context-cache invalidation, device-selective (`DMA_CCMD_DEVICE_INVL`): source-id
    /// and function mask.
    case contextDevice(did: UInt16, rid: RID)
    /// PASID-cache invalidation, PASID-selective within a domain (`QI_PC_PASID_SEL`).
    /// The PASID fields of descriptors hold the 20-bit value the hardware reads: the
    /// PASID-table index, where 0 is the RID_PASID entry of requests without PASID.
    case pasidCache(did: UInt16, pasid: UInt32)
    /// PASID-cache invalidation, domain-selective (`QI_PC_ALL_PASIDS`).
    case pasidCacheDomain(did: UInt16)
    /// PASID-cache invalidation, global (`QI_PC_GLOBAL`).
    case pasidCacheGlobal
    /// IOTLB invalidation, global (`DMA_TLB_GLOBAL_FLUSH`).
    case iotlbGlobal
    /// IOTLB invalidation, domain-selective (`DMA_TLB_DSI_FLUSH`).
    case iotlbDomain(did: UInt16)
    /// IOTLB invalidation, page-selective within a domain (`DMA_TLB_PSI_FLUSH`): the
    /// naturally aligned `2^mask` pages containing `address`; `ih` = leaf-only hint.
    case iotlbPage(did: UInt16, address: IOVA, mask: Int, ih: Bool)
    /// PASID-based IOTLB invalidation (`qi_flush_piotlb`): `npages` pages from `address`
    /// for (DID, PASID); `npages == .max` invalidates the whole PASID.
    case piotlb(did: UInt16, pasid: UInt32, address: IOVA, npages: UInt64, ih: Bool)
    /// Device-TLB invalidation without PASID (`qi_flush_dev_iotlb`): the device at `rid`
    /// drops ATC entries of requests without PASID over `[address, address + size)`.
    case devTLB(rid: RID, address: IOVA, size: UInt64)
    /// PASID-based device-TLB invalidation (`qi_flush_dev_iotlb_pasid`).
    case devTLBPasid(rid: RID, pasid: PASID, address: IOVA, size: UInt64)
    /// Invalidation wait (`QI_IWD_TYPE`): `fence` orders it after earlier descriptors,
    /// `drain` also waits for page requests in flight (`QI_IWD_PRQ_DRAIN`).
    case wait(fence: Bool, drain: Bool)
    /// Page-group response (`QI_PGRP_RESP_TYPE`) to the device at `rid`.
    case pageGroupResponse(rid: RID, pasid: PASID?, groupIndex: UInt16, code: VTdPageResponseCode, lastPage: Bool)

    /// The counter name of this descriptor kind (`"iotlb-psi"`, `"pasid-cache"`, ...).
    public var kind: String {
        switch self {
        case .contextGlobal: "context-global"
        case .contextDomain: "context-domain"
        case .contextDevice: "context-device"
        case .pasidCache: "pasid-cache"
        case .pasidCacheDomain: "pasid-cache-domain"
        case .pasidCacheGlobal: "pasid-cache-global"
        case .iotlbGlobal: "iotlb-global"
        case .iotlbDomain: "iotlb-dsi"
        case .iotlbPage: "iotlb-psi"
        case .piotlb: "piotlb"
        case .devTLB: "devtlb"
        case .devTLBPasid: "devtlb-pasid"
        case .wait: "wait"
        case .pageGroupResponse: "page-response"
        }
    }

    /// Index of ``kind`` in ``allKinds``.
    var kindIndex: Int {
        switch self {
        case .contextGlobal: 0
        case .contextDomain: 1
        case .contextDevice: 2
        case .pasidCache: 3
        case .pasidCacheDomain: 4
        case .pasidCacheGlobal: 5
        case .iotlbGlobal: 6
        case .iotlbDomain: 7
        case .iotlbPage: 8
        case .piotlb: 9
        case .devTLB: 10
        case .devTLBPasid: 11
        case .wait: 12
        case .pageGroupResponse: 13
        }
    }

    static let allKinds = ["context-global", "context-domain", "context-device", "pasid-cache",
                           "pasid-cache-domain", "pasid-cache-global", "iotlb-global", "iotlb-dsi",
                           "iotlb-psi", "piotlb", "devtlb", "devtlb-pasid", "wait", "page-response"]

    /// A short trace line.
    public var description: String {
        func h(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
        switch self {
        case .contextGlobal: return "cc global"
        case .contextDomain(let did): return "cc did=\(did)"
        case .contextDevice(let did, let rid): return "cc did=\(did) sid=\(rid)"
        case .pasidCache(let did, let pasid): return "pc did=\(did) pasid=\(pasid)"
        case .pasidCacheDomain(let did): return "pc did=\(did) all"
        case .pasidCacheGlobal: return "pc global"
        case .iotlbGlobal: return "iotlb global"
        case .iotlbDomain(let did): return "iotlb dsi did=\(did)"
        case .iotlbPage(let did, let a, let m, let ih): return "iotlb psi did=\(did) addr=\(a) am=\(m) ih=\(ih)"
        case .piotlb(let did, let p, let a, let n, _):
            return n == .max ? "piotlb did=\(did) pasid=\(p) all" : "piotlb did=\(did) pasid=\(p) addr=\(a) npages=\(n)"
        case .devTLB(let rid, let a, let s): return "devtlb sid=\(rid) addr=\(a) size=\(s == .max ? "all" : h(s))"
        case .devTLBPasid(let rid, let p, let a, let s):
            return "devtlb sid=\(rid) pasid=\(p) addr=\(a) size=\(s == .max ? "all" : h(s))"
        case .wait(let f, let d): return "wait fence=\(f) drain=\(d)"
        case .pageGroupResponse(let rid, let p, let g, let c, let l):
            return "page-response sid=\(rid) pasid=\(p.map { "\($0)" } ?? "-") prg=\(g) code=\(c) lpig=\(l)"
        }
    }
}

/// Page-group response codes (PCIe PRG Response; `QI_RESP_SUCCESS/INVALID/FAILURE`).
public enum VTdPageResponseCode: UInt8, Hashable, Sendable {
    /// Success: the page is now present, retry.
    case success = 0
    /// Invalid request: do not retry.
    case invalid = 1
    /// Response failure: stop page requests from the device.
    case failure = 0xf
}
