"""What the DRA kubelet plugin's ServiceAccount uses and must not do (deviceplugin/dra: publish its
node's ResourceSlices, read the claims it prepares, read its Node for the slices' owner reference).
resource.k8s.io questions need an API server that serves the group (1.34+): kubectl answers "no"
for a type the server does not know, so a 1.25 plane checks only ``CORE``."""

from __future__ import annotations

from tests.controlplane.access import Access

OTHER = "default"  # a namespace that is not the project's

CORE_ALLOWED = [Access("get", "nodes")]
CORE_DENIED = [Access("patch", "nodes"), Access("list", "nodes"), Access("update", "nodes"),
               Access("list", "pods"), Access("get", "pods", namespace=OTHER)]
RESOURCE_ALLOWED = (
    [Access(verb, "resourceslices.resource.k8s.io") for verb in ("list", "create", "update", "delete")]
    + [Access("get", "resourceclaims.resource.k8s.io", namespace=OTHER)]
)
RESOURCE_DENIED = [
    Access("patch", "resourceslices.resource.k8s.io"),
    Access("list", "resourceclaims.resource.k8s.io"),
    Access("update", "resourceclaims.resource.k8s.io", namespace=OTHER, subresource="status"),
    Access("create", "deviceclasses.resource.k8s.io"),
]
