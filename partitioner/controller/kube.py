"""The thin shell: every call the controller makes to the API server, each with a bounded
timeout, each failure turned into a short line for the log (the loop retries on its next tick)."""

from __future__ import annotations

import datetime
import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from partitioner.controller import keys
from partitioner.controller.clock import format_time, parse_time
from partitioner.controller.machine import NodePatch, patch_body
from partitioner.controller.observe import NodeView, PodView
from partitioner.controller.watch import short
from partitioner.dcm import CONFIG_KEY, parse_config
from sizing.bounded import BoundedValueError

logger = logging.getLogger(__name__)

# Every call: connect within 5 s, answer within 30 s (writes are small; a slower API server is
# treated as a failure and retried on the next tick).
TIMEOUT: Final = (5, 30)
# Events name a cluster-scoped object (a Node) from this namespace, as kubelet and kubectl do.
NODE_EVENT_NAMESPACE: Final = "default"


class EvictionResult(str, Enum):
    EVICTED = "evicted"
    BLOCKED = "blocked"  # 429: a PodDisruptionBudget does not allow it now
    GONE = "gone"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ProfilesDocument:
    """The DCM ConfigMap as read: its config.json (None when absent/unreadable) and when we last
    changed it."""

    exists: bool
    document: dict[str, Any] | None
    updated: float | None
    problem: str | None = None

    def profiles(self) -> Mapping[str, Any]:
        found = (self.document or {}).get("gpu-config-profiles")
        return found if isinstance(found, Mapping) else {}


class Kube:
    def __init__(self, api: client.ApiClient) -> None:
        self.core = client.CoreV1Api(api)

    def patch_node(self, node: NodeView, patch: NodePatch) -> bool:
        try:
            self.core.patch_node(node.name, patch_body(node, patch), _request_timeout=TIMEOUT)
            return True
        except ApiException as error:
            if error.status == 409:  # our view was older than the node (the watch lags our own writes)
                logger.debug("node %s changed since it was read; will redo this step on the next pass", node.name)
            else:
                logger.warning("node %s: update failed (%s); will retry on the next pass", node.name, short(error))
        except Exception as error:  # noqa: BLE001 - any transport failure: retried on the next tick
            logger.warning("node %s: update failed (%s); will retry on the next pass", node.name, short(error))
        return False

    def evict(self, namespace: str, name: str) -> EvictionResult:
        body = client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace=namespace))
        try:
            self.core.create_namespaced_pod_eviction(name, namespace, body, _request_timeout=TIMEOUT)
            return EvictionResult.EVICTED
        except ApiException as error:
            if error.status == 429:
                return EvictionResult.BLOCKED
            if error.status == 404:
                return EvictionResult.GONE
            logger.warning("eviction of pod %s/%s failed (%s); will retry", namespace, name, short(error))
        except Exception as error:  # noqa: BLE001
            logger.warning("eviction of pod %s/%s failed (%s); will retry", namespace, name, short(error))
        return EvictionResult.FAILED

    def _event(self, namespace: str, involved: client.V1ObjectReference, type_: str, reason: str,
               message: str) -> None:
        now = datetime.datetime.now(datetime.UTC)
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(name=f"{involved.name}.{secrets.token_hex(8)}", namespace=namespace),
            involved_object=involved, reason=reason, message=message[:1024], type=type_,
            source=client.V1EventSource(component=keys.EVENT_COMPONENT), first_timestamp=now, last_timestamp=now,
            count=1, reporting_component=keys.EVENT_COMPONENT, reporting_instance=keys.EVENT_COMPONENT,
        )
        try:
            self.core.create_namespaced_event(namespace, event, _request_timeout=TIMEOUT)
        except Exception as error:  # noqa: BLE001 - an event is best effort
            logger.info("could not record event %s on %s %s (%s)", reason, involved.kind, involved.name, short(error))

    def node_event(self, node: str, uid: str, type_: str, reason: str, message: str) -> None:
        self._event(NODE_EVENT_NAMESPACE, client.V1ObjectReference(api_version="v1", kind="Node", name=node,
                                                                    uid=uid or node), type_, reason, message)

    def pod_event(self, pod: PodView, type_: str, reason: str, message: str) -> None:
        self._event(pod.namespace, client.V1ObjectReference(api_version="v1", kind="Pod", name=pod.name,
                                                            namespace=pod.namespace, uid=pod.uid), type_, reason,
                    message)

    def read_profiles(self, namespace: str, name: str) -> ProfilesDocument:
        try:
            found = self.core.read_namespaced_config_map(name, namespace, _request_timeout=TIMEOUT)
        except ApiException as error:
            if error.status == 404:
                return ProfilesDocument(False, None, None)
            return ProfilesDocument(False, None, None, f"reading ConfigMap {namespace}/{name}: {short(error)}")
        except Exception as error:  # noqa: BLE001
            return ProfilesDocument(False, None, None, f"reading ConfigMap {namespace}/{name}: {short(error)}")
        annotations = (found.metadata.annotations if found.metadata else None) or {}
        updated = None
        if keys.CONFIGMAP_UPDATED in annotations:
            try:
                updated = parse_time(f"ConfigMap annotation {keys.CONFIGMAP_UPDATED}",
                                     annotations[keys.CONFIGMAP_UPDATED])
            except BoundedValueError:
                updated = None
        raw = (found.data or {}).get(CONFIG_KEY)
        if raw is None:
            return ProfilesDocument(True, None, updated, f"ConfigMap {namespace}/{name} has no {CONFIG_KEY}")
        if not isinstance(raw, str):
            return ProfilesDocument(True, None, updated, f"ConfigMap {namespace}/{name}: {CONFIG_KEY} is not text")
        try:
            document = parse_config(raw)  # bounded: size, depth, numbers of more than 4,300 digits
        except ValueError as error:
            return ProfilesDocument(True, None, updated, f"ConfigMap {namespace}/{name}: {error}")
        return ProfilesDocument(True, document, updated)

    def write_profiles(self, namespace: str, name: str, document: Mapping[str, Any], now: float,
                       exists: bool) -> bool:
        body = {"metadata": {"name": name, "namespace": namespace,
                             "annotations": {keys.CONFIGMAP_UPDATED: format_time(now)},
                             "labels": {"app.kubernetes.io/managed-by": keys.EVENT_COMPONENT}},
                "data": {CONFIG_KEY: json.dumps(document, indent=2, sort_keys=True)}}
        try:
            if exists:
                self.core.patch_namespaced_config_map(name, namespace, body, _request_timeout=TIMEOUT)
            else:
                self.core.create_namespaced_config_map(namespace, cast(Any, body), _request_timeout=TIMEOUT)
            return True
        except Exception as error:  # noqa: BLE001
            logger.warning("writing the DCM profiles to ConfigMap %s/%s failed (%s); will retry", namespace, name,
                           short(error))
            return False
