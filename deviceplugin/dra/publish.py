"""Publish this node's partitions as ResourceSlices (resource.k8s.io/v1): the only DRA module that
talks to the API server.

``SlicePublisher.publish(inventory)`` lists the driver's slices of this node, and when what they
hold differs from the inventory (the spec hash annotation of ``slices``), writes the new pool
generation (create or replace every slice, then delete the slices the pool no longer has). The
scheduler reads only the newest generation of a pool, so a half-written change is never mixed with
the old one. Errors are ``SlicePublishError`` with the HTTP status and reason.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import urllib3.exceptions
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from deviceplugin.dra.slices import SPEC_HASH_ANNOTATION, resource_slices
from deviceplugin.errors import DevicePluginError, LabelPatchError
from deviceplugin.inventory import Inventory
from deviceplugin.k8s import REQUEST_TIMEOUT_S, load_api_client
from sizing.contract import DRA_DRIVER

logger = logging.getLogger(__name__)

FIELD_MANAGER: Final = "aim-deviceplugin-dra"
# Slices listed at most: a node has at most 64 GPUs x 8 partitions = 512 devices = 4 slices; far more
# is someone else's garbage under our driver name, deleted page by page on later publishes.
LIST_LIMIT: Final = 64


class SlicePublishError(DevicePluginError):
    """Listing, writing or deleting this node's ResourceSlices failed."""


@dataclass(frozen=True, slots=True)
class Published:
    """What one publish did: the pool generation now current, and whether anything was written."""

    generation: int
    changed: bool
    devices: int
    skipped: tuple[str, ...] = ()


def _call(what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return function(*args, _request_timeout=REQUEST_TIMEOUT_S, **kwargs)
    except ApiException as exc:
        raise SlicePublishError(f"{what} failed: HTTP {exc.status} {exc.reason}") from exc
    except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
        raise SlicePublishError(f"{what} failed: {exc}") from exc


class SlicePublisher:
    """Keeps the ResourceSlices of one node equal to its partitions."""

    def __init__(self, node_name: str, api_client: client.ApiClient | None = None) -> None:
        self.node_name = node_name
        self._api_client = api_client

    def api_client(self) -> client.ApiClient:
        """The client this publisher uses (loaded on first use); SlicePublishError without credentials."""
        return self._client()

    def _client(self) -> client.ApiClient:
        if self._api_client is None:
            try:
                self._api_client = load_api_client()
            except LabelPatchError as exc:
                raise SlicePublishError(str(exc)) from exc
        return self._api_client

    def _resource(self) -> client.ResourceV1Api:
        return client.ResourceV1Api(self._client())

    def current(self) -> list[dict[str, Any]]:
        """This node's slices of our driver, as the API server returns them (plain JSON)."""
        selector = f"spec.nodeName={self.node_name},spec.driver={DRA_DRIVER}"
        response = _call(f"LIST resourceslices {selector}", self._resource().list_resource_slice,
                         field_selector=selector, limit=LIST_LIMIT, _preload_content=False)
        try:
            document = json.loads(response.data)
        except ValueError as exc:
            raise SlicePublishError(f"LIST resourceslices {selector}: the answer is not JSON") from exc
        items = document.get("items") if isinstance(document, dict) else None
        return [item for item in items or () if isinstance(item, dict)]

    def _owner(self) -> Mapping[str, str] | None:
        """The Node's name and uid for the owner reference, or None when it cannot be read."""
        try:
            node = client.CoreV1Api(self._client()).read_node(self.node_name, _request_timeout=REQUEST_TIMEOUT_S)
        except (ApiException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            logger.info("could not read node %s (%s); slices published without an owner", self.node_name, exc)
            return None
        uid = node.metadata.uid if node.metadata is not None else None
        return {"name": self.node_name, "uid": uid} if uid else None

    def publish(self, inventory: Inventory) -> Published:
        existing = self.current()
        generation = max((_generation(item) for item in existing), default=0)
        probe = resource_slices(inventory, self.node_name, generation)
        wanted = {s["metadata"]["name"] for s in probe.slices}
        have = {_name(item): item for item in existing}
        devices = sum(len(s["spec"]["devices"]) for s in probe.slices)
        if existing and set(have) == wanted and all(
                _hash(item) == probe.spec_hash and _generation(item) == generation for item in existing):
            return Published(generation, False, devices, probe.skipped)
        generation += 1
        fresh = resource_slices(inventory, self.node_name, generation, owner=self._owner())
        api = self._resource()
        for body in fresh.slices:
            name = body["metadata"]["name"]
            if name in have:
                body["metadata"]["resourceVersion"] = have[name].get("metadata", {}).get("resourceVersion")
                _call(f"PUT resourceslice {name}", api.replace_resource_slice, name, body, field_manager=FIELD_MANAGER)
            else:
                _call(f"POST resourceslice {name}", api.create_resource_slice, body, field_manager=FIELD_MANAGER)
        for name in sorted(set(have) - wanted):
            _call(f"DELETE resourceslice {name}", api.delete_resource_slice, name)
        logger.info("published %d partition(s) of node %s as DRA devices (pool generation %d, %d slice(s))",
                    devices, self.node_name, generation, len(fresh.slices))
        return Published(generation, True, devices, fresh.skipped)


def _name(item: Mapping[str, Any]) -> str:
    metadata = item.get("metadata")
    return str(metadata.get("name")) if isinstance(metadata, Mapping) else ""


def _hash(item: Mapping[str, Any]) -> str | None:
    metadata = item.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    value = annotations.get(SPEC_HASH_ANNOTATION) if isinstance(annotations, Mapping) else None
    return value if isinstance(value, str) else None


def _generation(item: Mapping[str, Any]) -> int:
    spec = item.get("spec")
    pool = spec.get("pool") if isinstance(spec, Mapping) else None
    value = pool.get("generation") if isinstance(pool, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 62 else 0
