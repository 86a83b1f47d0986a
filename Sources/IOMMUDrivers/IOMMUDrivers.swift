// Vendor IOMMU drivers and their hardware models: Mock (the kernel selftest IOMMU) and IntelVTd.
import IOMMUCore
