"""Dynamic Resource Allocation (resource.k8s.io/v1) for GPU partitions: the node's partitions as
ResourceSlice devices (``slices``, pure) and the shell that publishes them (``publish``).
See docs/dra.md."""
