"""A stand-in for the Kubernetes API server: /api/v1/nodes and /api/v1/pods, list and watch.

Serves real HTTP on 127.0.0.1 in the JSON the kubernetes Python client consumes: a list with
``metadata.resourceVersion``, and a chunked watch stream of ``{"type", "object"}`` lines from a
given resourceVersion until ``timeoutSeconds``. ``push`` changes an object and wakes watchers;
``hold_lists`` delays list replies so a test can see the extender before it has synced;
``go_down`` and ``come_back`` stage an outage on the same port.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

_KINDS = {"/api/v1/nodes": "nodes", "/api/v1/pods": "pods"}


class StandInApiServer:
    def __init__(self) -> None:
        self.objects: dict[str, dict[str, dict[str, Any]]] = {"nodes": {}, "pods": {}}
        self.events: dict[str, list[tuple[int, str, dict[str, Any]]]] = {"nodes": [], "pods": []}
        self.version = 1000
        self.requests: list[str] = []
        self.lists_released = threading.Event()
        self.lists_released.set()
        self.closing = threading.Event()
        self._changed = threading.Condition()
        self._server: ThreadingHTTPServer | None = None

    # --- test API ---------------------------------------------------------------------------
    def add(self, kind: str, obj: dict[str, Any]) -> None:
        with self._changed:
            self.version += 1
            obj["metadata"]["resourceVersion"] = str(self.version)
            self.objects[kind][self._key(obj)] = obj

    def push(self, kind: str, event: str, obj: dict[str, Any]) -> None:
        with self._changed:
            self.version += 1
            obj["metadata"]["resourceVersion"] = str(self.version)
            if event == "DELETED":
                self.objects[kind].pop(self._key(obj), None)
            else:
                self.objects[kind][self._key(obj)] = obj
            self.events[kind].append((self.version, event, obj))
            self._changed.notify_all()

    def expire_watches(self, kind: str) -> None:
        """Send watchers the 410 Gone error the API server sends when their resourceVersion is too
        old (etcd compaction); a correct client lists again."""
        with self._changed:
            self.version += 1
            status = {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "reason": "Expired",
                "message": "too old resource version",
                "code": 410,
            }
            self.events[kind].append((self.version, "ERROR", status))
            self._changed.notify_all()

    def hold_lists(self) -> None:
        self.lists_released.clear()

    def release_lists(self) -> None:
        self.lists_released.set()

    def kubeconfig(self, directory: Path) -> str:
        path = directory / "kubeconfig"
        path.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters: [{{name: standin, cluster: {{server: 'http://127.0.0.1:{self.port}'}}}}]\n"
            "users: [{name: tester, user: {}}]\n"
            "contexts: [{name: standin, context: {cluster: standin, user: tester}}]\n"
            "current-context: standin\n"
        )
        return str(path)

    @staticmethod
    def _key(obj: dict[str, Any]) -> str:
        meta = obj["metadata"]
        return meta.get("uid") or f"{meta.get('namespace', '')}/{meta['name']}"

    # --- lifecycle --------------------------------------------------------------------------
    def start(self, port: int = 0) -> None:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                if standin.closing.is_set():  # down: drop kept-alive connections without an answer
                    self.close_connection = True
                    return
                url = urlparse(self.path)
                standin.requests.append(self.path)
                kind = _KINDS.get(url.path)
                if kind is None:
                    self._send(404, {"kind": "Status", "code": 404, "message": f"{url.path} not served"})
                    return
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if query.get("watch") in ("true", "1"):
                    self._watch(kind, int(query.get("resourceVersion") or 0), float(query.get("timeoutSeconds") or 5))
                else:
                    standin.lists_released.wait(timeout=30)
                    with standin._changed:
                        items = list(standin.objects[kind].values())
                        version = standin.version
                    self._send(
                        200,
                        {
                            "kind": "List",
                            "apiVersion": "v1",
                            "metadata": {"resourceVersion": str(version)},
                            "items": items,
                        },
                    )

            def _send(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _watch(self, kind: str, since: int, timeout: float) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.wfile.flush()
                deadline = threading.Event()
                timer = threading.Timer(timeout, deadline.set)
                timer.start()
                try:
                    while not deadline.is_set() and not standin.closing.is_set():
                        with standin._changed:
                            fresh = [e for e in standin.events[kind] if e[0] > since]
                            if not fresh:
                                standin._changed.wait(timeout=0.05)
                                continue
                        for version, event, obj in fresh:
                            self._chunk(json.dumps({"type": event, "object": obj}).encode() + b"\n")
                            since = version
                    if standin.closing.is_set():
                        self.close_connection = True  # going down: cut the stream, no clean end
                        return
                    self._chunk(b"")
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    timer.cancel()

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    def stop(self) -> None:
        self.closing.set()
        self.lists_released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def go_down(self) -> None:
        """An outage: open watches end and new connections are refused until ``come_back``."""
        port = self.port
        self.stop()
        self._down_port = port

    def come_back(self) -> None:
        self.closing.clear()
        self.start(self._down_port)
