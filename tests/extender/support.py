"""Helpers for the extender tests: captured kube-scheduler requests, labels, annotations, and the
extender under a real uvicorn on 127.0.0.1."""

from __future__ import annotations

import contextlib
import copy
import ctypes
import ctypes.util
import http.client
import json
import os
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
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
    scheme = "https" if "ssl_certfile" in uvicorn_options else "http"
    try:
        with server_thread(uvicorn.Server(config), sock, "uvicorn"):
            yield f"{scheme}://127.0.0.1:{port}"
    finally:
        sock.close()


@contextmanager
def server_thread(server: uvicorn.Server, sock: socket.socket, what: str) -> Iterator[None]:
    """Run ``server`` on the bound ``sock`` in a daemon thread for the block, once it has started
    (10 s at most, else RuntimeError naming ``what``); asked to exit and joined afterwards."""
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError(f"{what} did not start within 10 s")
            time.sleep(0.01)
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class HealthProbe:
    """GETs /healthz in a loop from its own thread and keeps the slowest answer and any failure."""

    def __init__(self, url: str, *, timeout: float = 2.0, verify: ssl.SSLContext | bool = True,
                 interval: float = 0.02) -> None:
        self.url = url
        self.timeout = timeout
        self.verify = verify
        self.interval = interval  # seconds between answers; the benchmarks probe every 10 ms
        self.slowest = 0.0
        self.probes = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout, verify=self.verify) as client:
            while not self._stop.is_set():
                started = time.perf_counter()
                try:
                    reply = client.get(f"{self.url}/healthz")
                    if reply.status_code != 200:
                        self.failures.append(f"HTTP {reply.status_code}")
                except httpx.HTTPError as error:
                    self.failures.append(repr(error))
                self.slowest = max(self.slowest, time.perf_counter() - started)
                self.probes += 1
                self._stop.wait(self.interval)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _connect(url: str, tls: ssl.SSLContext | None, timeout: float) -> socket.socket:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    sock = socket.create_connection((host, port), timeout=timeout)
    return tls.wrap_socket(sock, server_hostname=host) if tls is not None else sock


@dataclass(frozen=True)
class RawReply:
    status: int
    body: bytes
    seconds: float  # from the first byte sent to the reply read
    sent: int  # body bytes the client had sent when the reply came
    sent_after: int = 0  # body bytes the server still took after its reply (post_chunked's keep_sending)


def post_declaring(url: str, path: str, length: int, *, tls: ssl.SSLContext | None = None,
                   timeout: float = 5.0) -> RawReply:
    """POST headers declaring ``Content-Length: length`` and no body at all: only a server that
    refuses by the declared length answers (any other waits for the body until ``timeout``)."""
    with _connect(url, tls, timeout) as sock:
        started = time.perf_counter()
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {length}\r\n\r\n".encode())
        reply = http.client.HTTPResponse(sock)
        reply.begin()
        return RawReply(reply.status, reply.read(), time.perf_counter() - started, 0)


def post_chunked(url: str, path: str, total: int, *, chunk: int = 256 << 10, pause: float = 0.0,
                 tls: ssl.SSLContext | None = None, timeout: float = 10.0, keep_sending: int = 0) -> RawReply:
    """POST a ``Transfer-Encoding: chunked`` body of up to ``total`` bytes (``pause`` seconds between
    chunks), stopping once the server has answered, then read the reply; ``sent`` says how much of
    the body had gone out by then (the server may answer, and close, before the end). Then, like a
    client that has not looked at the reply yet, send up to ``keep_sending`` more bytes, a chunk
    every 10 ms: ``sent_after`` is what went out before the connection failed (a server that closed
    right after its reply resets it at the first bytes that arrive). With ``keep_sending`` the body
    is never finished: after ``total`` bytes the client waits for the reply, so what the server has
    left to drain after it is known (``total`` less what it read, plus ``keep_sending``), not however
    far the kernel's buffers let the client run ahead.

    One thread does both: an SSL socket is not safe to write from one thread while another reads
    (OpenSSL; a concurrent read returned a spurious end of stream). With TLS the client speaks 1.2,
    whose handshake carries the session ticket, so bytes from the server after it are the reply
    (TLS 1.3 sends tickets after the handshake, indistinguishable here from a reply)."""
    if tls is not None:
        tls = _tls12(tls)
    with _connect(url, tls, timeout) as sock:
        started = time.perf_counter()
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n".encode())
        sent = 0
        payload = b"[" + b" " * (chunk - 1)
        while sent < total:
            if _answered(sock):
                break
            try:
                _send_chunk(sock, payload)
            except OSError:
                break  # the server closed the connection after its reply
            sent += len(payload)
            payload = b" " * chunk
            if pause:
                time.sleep(pause)
        else:
            if not keep_sending:
                with contextlib.suppress(OSError):
                    sock.sendall(b"0\r\n\r\n")
        reply = http.client.HTTPResponse(sock)
        reply.begin()
        body, seconds = reply.read(), time.perf_counter() - started
        after = 0
        while after < keep_sending:
            try:
                _send_chunk(sock, payload)
            except OSError:
                break
            after += len(payload)
            time.sleep(0.01)
        return RawReply(reply.status, body, seconds, sent, after)


def _send_chunk(sock: socket.socket, payload: bytes) -> None:
    """One chunk of a ``Transfer-Encoding: chunked`` body."""
    sock.sendall(b"%x\r\n" % len(payload) + payload + b"\r\n")


def _answered(sock: socket.socket) -> bool:
    """Whether the server has sent something (without reading it)."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    return bool(select.select([sock], [], [], 0)[0])


def _tls12(context: ssl.SSLContext) -> ssl.SSLContext:
    """``context``'s trust, speaking TLS 1.2 at most."""
    pinned = ssl.create_default_context()
    for der in context.get_ca_certs(binary_form=True):
        pinned.load_verify_locations(cadata=ssl.DER_cert_to_PEM_cert(der))
    pinned.maximum_version = ssl.TLSVersion.TLSv1_2
    return pinned


def resident_bytes() -> int:
    """This process's resident set after a full collection, with free heap memory handed back to
    the system (glibc malloc_trim), so what remains is memory still referenced."""
    import gc

    gc.collect()
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        trim = getattr(ctypes.CDLL(libc_name), "malloc_trim", None)
        if trim is not None:
            trim(0)
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
