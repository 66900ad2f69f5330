"""A small stand-in for AMD's Device Config Manager and our device plugin, on the test control
plane. A thread watches nodes (``kubernetes.watch.Watch``); when a node's
``dcm.amd.com/gpu-config-profile`` label names a profile and its state label is absent, it looks
the profile up in the DCM ConfigMap (as DCM reads its config.json) and answers per the node's
behaviour: ``succeed`` sets ``…-state=success``; ``fail`` sets ``failure``; ``ignore`` never
answers; ``hold`` answers once ``release(node)`` is called. After a success, once the
``amd-dcm`` taint is gone (the device plugin's pods come back), it advertises the new partitions
as our device plugin would: labels from ``sizing.contract.node_labels`` and the node's
capacity/allocatable."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client, watch as kube_watch

from decision import planning
from partitioner.controller import keys
from partitioner.dcm import CONFIG_KEY
from sizing.contract import RESOURCE_NAME, PartitionShape, node_labels

Watch: Any = kube_watch.Watch  # the client has no type hints


@dataclass
class _Node:
    product: str
    gpus: int
    behaviour: str
    released: bool = False
    answered: bool = True  # the last request has been answered (a new one starts when the state label goes)
    applied: str | None = None  # mode applied by "DCM", to be advertised once the taint is gone
    requests: list[str] = field(default_factory=list)  # profiles asked for, in order


class DcmStandIn:
    def __init__(self, core: client.CoreV1Api, configmap_namespace: str, configmap_name: str) -> None:
        self._core = core
        self._cm = (configmap_namespace, configmap_name)
        self._nodes: dict[str, _Node] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watch: Any = None
        self._thread = threading.Thread(target=self._run, name="dcm-standin", daemon=True)
        self.errors: list[str] = []

    def manage(self, name: str, product: str, gpus: int, behaviour: str = "succeed") -> None:
        with self._lock:
            self._nodes[name] = _Node(product, gpus, behaviour)

    def release(self, name: str) -> None:
        with self._lock:
            self._nodes[name].released = True
        self._poke(name)

    def requests(self, name: str) -> list[str]:
        with self._lock:
            return list(self._nodes[name].requests)

    def start(self) -> DcmStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()
        self._thread.join(timeout=5)

    # --- the loop ------------------------------------------------------------------------------
    def _poke(self, name: str) -> None:
        try:
            self._handle(self._core.api_client.sanitize_for_serialization(self._core.read_node(name)))
        except client.ApiException as error:
            self.errors.append(f"{name}: {error.status}")

    def _run(self) -> None:
        while not self._stop.is_set():
            self._watch = Watch()
            try:
                for event in self._watch.stream(self._core.list_node, timeout_seconds=30):
                    if self._stop.is_set():
                        break
                    obj = event.get("raw_object")
                    if isinstance(obj, dict) and event.get("type") != "DELETED":
                        self._handle(obj)
            except Exception as error:  # noqa: BLE001 - a stand-in keeps going; errors are kept for asserts
                if not self._stop.is_set():
                    self.errors.append(repr(error))
                    self._stop.wait(0.2)

    def _handle(self, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        labels = obj["metadata"].get("labels") or {}
        with self._lock:
            node = self._nodes.get(name)
            if node is None:
                return
            profile = labels.get(keys.DCM_PROFILE_LABEL)
            state = labels.get(keys.DCM_STATE_LABEL)
            tainted = any(t.get("key") == keys.DCM_TAINT_KEY for t in (obj.get("spec") or {}).get("taints") or [])
            if profile and state is None:  # an outstanding request (the controller clears the state label)
                if node.answered or not node.requests:
                    node.requests.append(profile)
                    node.answered = False
                answer = self._answer(node, profile)
                if answer is not None:
                    self._label(name, {keys.DCM_STATE_LABEL: answer})
                    node.answered = True
                return
            if state == keys.DCM_SUCCESS and node.applied and not tainted:
                self._advertise(name, node)

    def _answer(self, node: _Node, profile: str) -> str | None:
        if node.behaviour == "ignore" or (node.behaviour == "hold" and not node.released):
            return None
        if node.behaviour == "fail":
            return keys.DCM_FAILURE
        mode = self._profile_mode(profile)
        if mode is None:
            return keys.DCM_FAILURE  # DCM: NonExistentProfile
        node.applied = mode
        return keys.DCM_SUCCESS

    def _profile_mode(self, profile: str) -> str | None:
        found = self._core.read_namespaced_config_map(self._cm[1], self._cm[0])
        document = json.loads((found.data or {}).get(CONFIG_KEY, "{}"))
        entry = document.get("gpu-config-profiles", {}).get(profile)
        if not entry:
            return None
        first = entry["profiles"][0]
        return f"{first['computePartition']}/{first['memoryPartition']}"

    def _advertise(self, name: str, node: _Node) -> None:
        compute, memory = (node.applied or "").split("/")
        geometry = planning.partition_geometry(node.product, compute, memory)
        shape = PartitionShape(product=geometry.product, compute_mode=geometry.compute_mode,
                               memory_mode=geometry.memory_mode, compute_units=geometry.compute_units,
                               memory_bytes=geometry.memory_bytes)
        count = geometry.partitions * node.gpus
        self._core.patch_node_status(name, {"status": {"capacity": {RESOURCE_NAME: str(count)},
                                                       "allocatable": {RESOURCE_NAME: str(count)}}})
        self._label(name, node_labels([shape] * count, gpus=node.gpus))
        node.applied = None

    def _label(self, name: str, labels: dict[str, str | None]) -> None:
        self._core.patch_node(name, {"metadata": {"labels": labels}})
