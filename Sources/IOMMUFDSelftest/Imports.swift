// The selftest sits on iommufd, whose package-level internals its ops reach, and
// re-exports it: a test that imports the selftest has all of iommufd's API with it.
@_exported import IOMMUFD
