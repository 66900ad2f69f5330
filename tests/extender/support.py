"""Helpers for the extender tests: captured kube-scheduler requests, labels, annotations, and the
extender under a real uvicorn on 127.0.0.1."""

from __future__ import annotations

import copy
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI

from sizing.contract import MIB, RESOURCE_NAME, PartitionShape, node_labels
from tests.fixtures import FIXTURES

# The requests a real kube-scheduler sent, captured unmodified (tests/fixtures/extender/README.md).
EXTENDER_FIXTURES = FIXTURES / "extender"

GIB_MIB = 1024  # MiB per GiB, for labels


def load_fixture(name: str) -> dict[str, Any]:
    return json.loads((EXTENDER_FIXTURES / name).read_text())


def partition_labels(
    *, memory_gib: int, count: int, compute_mode: str = "CPX", product: str = "MI300X"
) -> dict[str, str]:
    """The labels the device plugin writes on a homogeneous node (with its own function)."""
    memory_mode = "NPS4" if compute_mode == "CPX" else "NPS1"
    shape = PartitionShape(product, compute_mode, memory_mode, 38, memory_gib * GIB_MIB * MIB)
    return {key: value for key, value in node_labels([shape] * count).items() if value is not None}


def label_node(node: dict[str, Any], labels: dict[str, str], *, allocatable: int | None = None) -> None:
    node["metadata"].setdefault("labels", {}).update(labels)
    if allocatable is not None:
        node["status"]["allocatable"][RESOURCE_NAME] = str(allocatable)


def annotate(request: dict[str, Any], annotations: dict[str, str], *, partitions: int | None = None) -> dict[str, Any]:
    """A copy of a captured request whose pod carries these annotations (and partition count)."""
    request = copy.deepcopy(request)
    request["Pod"]["metadata"].setdefault("annotations", {}).update(annotations)
    if partitions is not None:
        for container in request["Pod"]["spec"]["containers"]:
            for kind in ("requests", "limits"):
                container["resources"][kind][RESOURCE_NAME] = str(partitions)
    return request


def make_node(name: str, labels: dict[str, str] | None, allocatable: int | None) -> dict[str, Any]:
    status: dict[str, Any] = {"allocatable": {"cpu": "16", "memory": "64Gi", "pods": "110"}}
    if allocatable is not None:
        status["allocatable"][RESOURCE_NAME] = str(allocatable)
    return {"metadata": {"name": name, "labels": dict(labels or {})}, "spec": {}, "status": status}


@contextmanager
def serve_app(app: FastAPI, **uvicorn_options: Any) -> Iterator[str]:
    """Run ``app`` under uvicorn on 127.0.0.1 (a free port) in a thread; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", **uvicorn_options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start within 10 s")
        time.sleep(0.01)
    scheme = "https" if "ssl_certfile" in uvicorn_options else "http"
    try:
        yield f"{scheme}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
