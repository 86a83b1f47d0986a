import XCTest
import IOMMUCore
@testable import IOMMUFD
import IOMMUFDSelftest

/// The `iommufd_ioas` fixture and its variants: an IOAS, a memory limit, N mock devices on
/// it (the last one's stdev/hwpt/device kept), and for `mock_domain` one more PASID-capable
/// device.
struct IOASVariant: CustomStringConvertible {
    let name: String
    let mockDomains: Int
    let memoryLimit: UInt32
    let pasidCapable: Bool
    var description: String { name }

    static let all = [
        IOASVariant(name: "no_domain", mockDomains: 0, memoryLimit: 65536, pasidCapable: false),
        IOASVariant(name: "mock_domain", mockDomains: 1, memoryLimit: 65536, pasidCapable: true),
        IOASVariant(name: "two_mock_domain", mockDomains: 2, memoryLimit: 65536, pasidCapable: false),
        IOASVariant(name: "mock_domain_limit", mockDomains: 1, memoryLimit: 16, pasidCapable: false),
    ]
}

final class IOASFixture {
    let s: SelftestFD
    let variant: IOASVariant
    let ioas: UInt32
    var stdev: UInt32 = 0
    var hwpt: UInt32 = 0
    var device: UInt32 = 0
    var devicePasid: UInt32 = 0
    let baseIOVA: UInt64

    init(_ v: IOASVariant) throws {
        s = try SelftestFD()
        variant = v
        ioas = s.ioasAlloc()
        precondition(s.test(IOMMUTestOp.setTempMemoryLimit, IOMMUTestCmd.MemoryLimit(limit: v.memoryLimit)) == 0)
        for _ in 0..<v.mockDomains {
            let (rc, st, hw, dev) = s.mockDomain(ioas)
            precondition(rc == 0, "mock domain: \(rc)")
            (stdev, hwpt, device) = (st, hw, dev)
        }
        if v.pasidCapable {
            let (rc, _, _, dev) = s.mockDomain(ioas, flags: IOMMUTestOp.devicePasid)
            precondition(rc == 0)
            devicePasid = dev
        }
        baseIOVA = v.mockDomains > 0 ? APERTURE_START : 0
    }

    var buffer: UInt64 { s.buffer }
}

/// The variant running now (for failure messages).
nonisolated(unsafe) var currentVariant = ""

extension XCTestCase {
    /// Runs `body` once per `iommufd_ioas` variant, each on a fresh context, and checks the
    /// teardown (no pinned page after close).
    func forEachIOASVariant(_ variants: [IOASVariant] = IOASVariant.all, _ body: (IOASFixture) throws -> Void) throws {
        for v in variants {
            let f = try IOASFixture(v)
            currentVariant = v.name
            do { try body(f) } catch { XCTFail("\(v): \(error)") }
            f.s.teardownCheck()
        }
    }
}
