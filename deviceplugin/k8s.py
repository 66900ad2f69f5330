"""The only module that talks to the Kubernetes API: patch this node's labels.

Uses the official client with in-cluster config, else ``KUBECONFIG`` / ~/.kube/config (``kube.client``). The
patch is a JSON merge patch (RFC 7386) on ``/api/v1/nodes/<name>``, so only the keys in the
body change and ``null`` removes a key.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import urllib3.exceptions
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from deviceplugin.errors import LabelPatchError
from deviceplugin.labels import build_label_patch
from kube.client import KubeConfigError, load_api_client as load_kube_client

logger = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
FIELD_MANAGER = "aim-deviceplugin"
# Per request timeout (connect, read): the API server answers a node GET/PATCH in milliseconds;
# 10 s lets a busy one finish and still keeps the label loop responsive.
REQUEST_TIMEOUT_S = (5.0, 10.0)


def load_api_client() -> client.ApiClient:
    """In-cluster config when running in a pod, else KUBECONFIG; LabelPatchError if neither."""
    try:
        return load_kube_client()
    except KubeConfigError as exc:
        raise LabelPatchError(f"no Kubernetes credentials (in-cluster or KUBECONFIG): {exc}") from exc


class NodeLabelPatcher:
    """Reads and merge-patches the labels of one node."""

    def __init__(self, node_name: str, api_client: client.ApiClient | None = None) -> None:
        self.node_name = node_name
        self._api_client = api_client

    def _api(self) -> client.CoreV1Api:
        if self._api_client is None:
            self._api_client = load_api_client()
        return client.CoreV1Api(self._api_client)

    def current_labels(self) -> Mapping[str, str] | None:
        """The node's labels, or None when they cannot be read (the patch then sets our keys only)."""
        try:
            node = self._api().read_node(self.node_name, _request_timeout=REQUEST_TIMEOUT_S)
        except (ApiException, urllib3.exceptions.HTTPError, OSError, ValueError, LabelPatchError) as exc:
            logger.info("could not read labels of node %s (%s); patching our keys only", self.node_name, exc)
            return None
        metadata = node.metadata
        return dict((metadata.labels if metadata is not None else None) or {})

    def apply(self, desired: Mapping[str, str | None]) -> dict[str, object]:
        """Patch the node so our keys have the desired values; returns the patch sent."""
        body = build_label_patch(desired, self.current_labels())
        try:
            self._api().patch_node(
                self.node_name,
                body,
                field_manager=FIELD_MANAGER,
                _content_type=MERGE_PATCH,
                _request_timeout=REQUEST_TIMEOUT_S,
            )
        except ApiException as exc:
            raise LabelPatchError(
                f"PATCH node {self.node_name} failed: HTTP {exc.status} {exc.reason}"
            ) from exc
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            raise LabelPatchError(f"PATCH node {self.node_name} failed: {exc}") from exc
        return body
