// The driver-facing part of iommufd (the ops vendors implement, user data, UserMemory,
// the uAPI byte image and vendor data types) is the `IOMMUFDDriver` module, which vendors
// depend on instead of all of iommufd. Re-exported: a user of iommufd sees one API.
@_exported import IOMMUFDDriver
