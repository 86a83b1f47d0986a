import IOMMUCore

// The page-table engine's workload on the ARM LPAE stage-1 4K format (48-bit IAS and
// OAS, four levels: the SMMUv3 and arm64 CPU shape), to read beside the x86-64 keys of
// the same run: `lpae_map4k_ns`, `lpae_unmap4k_ns` (and `lpae_table_bytes`) as
// `map4k_ns`, `unmap4k_ns`; `lpae_walk_ns` as `walk_ns`.

private let lpaeStage1 = try? PageTableFormat.armLPAE(.stage1, pageSizes: 1 << 12 | 1 << 21 | 1 << 30,
                                                      ias: 48, oas: 48)

/// `pageTableMapUnmap` on the LPAE format: `lpae_map4k_ns`, `lpae_unmap4k_ns`.
func lpaeMapUnmap() throws -> () throws -> [String: Double] {
    guard let format = lpaeStage1 else { throw Errno.invalidArgument }
    return try pageTableMapUnmap(format: format, keyPrefix: "lpae_")
}

/// `pageTableWalk` on the LPAE format: `lpae_walk_ns`.
func lpaeWalk() throws -> () throws -> [String: Double] {
    guard let format = lpaeStage1 else { throw Errno.invalidArgument }
    return try pageTableWalk(format: format, keyPrefix: "lpae_")
}
