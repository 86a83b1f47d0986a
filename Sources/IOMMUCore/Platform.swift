// The simulated machine below the IOMMU (errno, locks, physical memory, the page-table
// engine, processes, PCI topology) is the `Platform` module. The core re-exports it, so
// a user of the IOMMU model writes `import IOMMUCore` only.
@_exported import Platform
