/// The command stream an Adreno command processor (CP) executes: PM4 type-7 packets, a
/// header dword (opcode, payload length, parity bits) followed by the payload
/// (`OUT_PKT7` in `drivers/gpu/drm/msm/adreno/adreno_gpu.h`).
public enum PM4 {
    /// A CP opcode.
    public struct Opcode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        /// The 7-bit opcode.
        public let rawValue: UInt8
        /// Wraps an opcode.
        public init(rawValue: UInt8) { self.rawValue = rawValue & 0x7F }

        /// `CP_NOP`: payload ignored.
        public static let nop = Opcode(rawValue: 0x10)
        /// `CP_MEM_WRITE`: address (2 dwords), then dwords to write there.
        public static let memWrite = Opcode(rawValue: 0x3D)
        /// `CP_EVENT_WRITE`: an event; with 4 dwords, `CACHE_FLUSH_TS` writes a value to
        /// an address once the work before it is done (the fence).
        public static let eventWrite = Opcode(rawValue: 0x46)
        /// `CP_SMMU_TABLE_UPDATE`: TTBR0 low, TTBR0 high | ASID << 16, CONTEXTIDR, context
        /// bank: the CP reprograms that context bank's TTBR0 and CONTEXTIDR and
        /// invalidates the ASID's TLB entries itself.
        public static let smmuTableUpdate = Opcode(rawValue: 0x53)
        /// The model's DMA copy: source (2 dwords), destination (2), length in bytes. Not
        /// an Adreno opcode: it stands for the blits and shader loads and stores that move
        /// a real GPU's data.
        public static let modelCopy = Opcode(rawValue: 0x7D)
        /// The model's DMA fill: destination (2 dwords), length, byte value.
        public static let modelFill = Opcode(rawValue: 0x7E)
        /// The model's read-back: source (2 dwords), result buffer (2), length: copies
        /// what the GPU reads into a buffer the submitting process reads on the CPU.
        public static let modelReadBack = Opcode(rawValue: 0x7F)

        /// The kernel's name (`CP_SMMU_TABLE_UPDATE`) or the model's.
        public var description: String {
            switch self {
            case .nop: "CP_NOP"
            case .memWrite: "CP_MEM_WRITE"
            case .eventWrite: "CP_EVENT_WRITE"
            case .smmuTableUpdate: "CP_SMMU_TABLE_UPDATE"
            case .modelCopy: "MODEL_DMA_COPY"
            case .modelFill: "MODEL_DMA_FILL"
            case .modelReadBack: "MODEL_DMA_READBACK"
            default: "CP opcode 0x\(String(rawValue, radix: 16))"
            }
        }
    }

    /// `CP_EVENT_WRITE` events.
    public enum Event {
        /// `CACHE_FLUSH_TS` (4): flush and write a timestamp (the fence).
        public static let cacheFlushTS: UInt32 = 0x04
        /// `CACHE_INVALIDATE` (0x31): the UCHE flush `a6xx_set_pagetable` emits after a
        /// table switch, so nothing cached under the old table lingers.
        public static let ucheFlush: UInt32 = 0x31
    }

    /// `CP_TYPE7_PKT`.
    static let type7: UInt32 = 0x7 << 28

    /// `PM4_PARITY`: the odd parity of a value's nibbles.
    public static func parity(_ v: UInt32) -> UInt32 {
        let x = v ^ v >> 4 ^ v >> 8 ^ v >> 12 ^ v >> 16 ^ v >> 20 ^ v >> 24 ^ v >> 28
        return (0x9669 >> (x & 0xF)) & 1
    }

    /// The header of a type-7 packet with `count` payload dwords (`OUT_PKT7`).
    public static func header(_ opcode: Opcode, count: Int) -> UInt32 {
        let cnt = UInt32(count) & 0x3FFF
        let op = UInt32(opcode.rawValue)
        return type7 | cnt | parity(cnt) << 15 | op << 16 | parity(op) << 23
    }

    /// Decodes a header: the opcode and the payload length, nil for a dword that is not
    /// a well-formed type-7 header (wrong type or parity).
    public static func decode(_ header: UInt32) -> (opcode: Opcode, count: Int)? {
        guard header >> 28 == 0x7 else { return nil }
        let cnt = header & 0x3FFF
        let op = header >> 16 & 0x7F
        guard header >> 15 & 1 == parity(cnt), header >> 23 & 1 == parity(op) else { return nil }
        return (Opcode(rawValue: UInt8(op)), Int(cnt))
    }
}
