"""Run the plugin: serve, register, watch the kubelet, refresh devices and labels, stop cleanly.

Threads (all stop on ``stop()``):
- socket watch (every 0.25 s): re-creates our socket when the kubelet wiped it, re-registers
  when kubelet.sock was re-created or a ListAndWatch stream closed with none replacing it;
- poll: health every --health-interval; discovery when the KFD topology fingerprint changes
  (checked at the same pace), every --discovery-interval, and on SIGHUP;
- label sync (labelsync.py), when node labels are on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc

from deviceplugin import checkpoint, discovery, labels
from deviceplugin.config import (
    GRPC_MAX_WORKERS,
    REGISTER_BACKOFF_INITIAL_S,
    REGISTER_BACKOFF_MAX_S,
    REGISTER_TIMEOUT_S,
    SOCKET_WATCH_INTERVAL_S,
    STOP_RPC_GRACE_S,
    STOP_SERVER_WAIT_S,
    STOP_THREAD_JOIN_S,
    STREAM_CLOSED_GRACE_S,
    PluginConfig,
)
from deviceplugin.errors import RegistrationError
from deviceplugin.labelsync import LabelPatcher, LabelSync
from deviceplugin.metrics import PluginMetrics
from deviceplugin.proto import api_pb2_grpc
from deviceplugin.registration import register
from deviceplugin.server import DevicePluginServicer, StreamTracker
from deviceplugin.state import DeviceState
from kube.backoff import Backoff

logger = logging.getLogger(__name__)


def _socket_identity(path: Path) -> tuple[int, int] | None:
    """(inode, ctime) of a socket file, or None; changes when the file is re-created."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_ctime_ns)


@dataclasses.dataclass
class _SocketWatch:
    """Mutable state of the socket-watch thread (owned by that thread only)."""

    kubelet_id: tuple[int, int] | None
    need_register: bool = True
    next_attempt: float = 0.0
    backoff: Backoff = dataclasses.field(
        default_factory=lambda: Backoff(REGISTER_BACKOFF_INITIAL_S, REGISTER_BACKOFF_MAX_S)
    )
    waiting_logged: bool = False


class PluginRunner:
    def __init__(
        self,
        config: PluginConfig,
        *,
        metrics: PluginMetrics | None = None,
        label_patcher: LabelPatcher | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics if metrics is not None else PluginMetrics(node=config.node_name or "")
        self.state = DeviceState(sysfs_root=config.sysfs_root, dev_root=config.dev_root, metrics=self.metrics)
        self.streams = StreamTracker()
        self._stop = threading.Event()
        self._rediscover = threading.Event()
        self._server: grpc.Server | None = None
        self._threads: list[threading.Thread] = []
        self._checkpoint = checkpoint.CheckpointReader(config.kubelet_dir, config.resource_name)
        self._label_sync: LabelSync | None = None
        if config.node_labels:
            if label_patcher is None:
                from deviceplugin.k8s import NodeLabelPatcher  # only import kubernetes when needed

                assert config.node_name is not None  # config.validate() guarantees it
                label_patcher = NodeLabelPatcher(config.node_name)
            self._label_sync = LabelSync(
                patcher=label_patcher,
                desired_labels=lambda: labels.desired_labels(
                    self.state.labelled_partitions(), (gpu.address for gpu in self.state.inventory.gpus)),
                metrics=self.metrics,
            )
        self.registered = threading.Event()
        self.registration_count = 0
        self.metrics_port: int | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self.state.refresh_inventory()
        inventory = self.state.inventory
        logger.info("discovered %d partition(s) on %d GPU(s)", len(inventory.partitions), len(inventory.gpus))
        if self.config.metrics_port:
            self.metrics_port = self.metrics.serve(self.config.metrics_port)
            logger.info("metrics on :%d/metrics", self.metrics_port)
        if self._label_sync is not None:
            self._label_sync.start()
        self._start_server()
        for target, name in ((self._watch_sockets, "socket-watch"), (self._poll, "poll")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def run(self) -> None:
        """Start and block until ``stop()`` (SIGTERM) is called."""
        self.start()
        while not self._stop.wait(1.0):
            pass
        self.shutdown()

    def stop(self) -> None:
        self._stop.set()
        self._rediscover.set()  # wakes the poll thread, which then sees the stop
        self.state.wake_all()

    def request_rediscovery(self) -> None:
        self._rediscover.set()

    def shutdown(self) -> None:
        self.stop()
        for thread in self._threads:
            thread.join(timeout=STOP_THREAD_JOIN_S)
        if self._label_sync is not None:
            self._label_sync.stop()
        self._stop_server()
        self.metrics.stop()
        logger.info("stopped; removed %s", self.config.socket_path)

    # -- gRPC server -------------------------------------------------------------------------
    def _start_server(self) -> None:
        path = self.config.socket_path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._unlink(path)
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=GRPC_MAX_WORKERS, thread_name_prefix="grpc")
        )
        servicer = DevicePluginServicer(
            state=self.state,
            metrics=self.metrics,
            dev_root=self.config.dev_root,
            streams=self.streams,
            stopping=self._stop.is_set,
        )
        api_pb2_grpc.add_DevicePluginServicer_to_server(servicer, server)
        try:
            server.add_insecure_port(f"unix://{path.absolute()}")
        except RuntimeError as exc:  # grpc reports a failed bind this way; callers handle OSError
            raise OSError(f"cannot listen on {path}: {exc}") from exc
        server.start()
        self._server = server
        logger.info("serving DevicePlugin on %s", path)

    def _stop_server(self) -> None:
        if self._server is not None:
            self._server.stop(grace=STOP_RPC_GRACE_S).wait(timeout=STOP_SERVER_WAIT_S)
            self._server = None
        try:
            self._unlink(self.config.socket_path)
        except OSError as exc:  # best effort: stopping must go on (the next start removes it)
            logger.warning("could not remove %s: %s", self.config.socket_path, exc)

    @staticmethod
    def _unlink(path: Path) -> None:
        """Remove a socket file; nothing to do when it (or its directory) does not exist."""
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            os.unlink(path)

    # -- background loops --------------------------------------------------------------------
    def _watch_sockets(self) -> None:
        watch = _SocketWatch(kubelet_id=_socket_identity(self.config.kubelet_socket))
        while not self._stop.is_set():
            try:
                self._watch_once(watch)
            except Exception:  # a bug or an unexpected OS error must not end re-registration
                logger.exception("socket watch failed; will retry in %.0f s", REGISTER_BACKOFF_INITIAL_S)
                watch.need_register = True
                self._stop.wait(REGISTER_BACKOFF_INITIAL_S)
            self._stop.wait(SOCKET_WATCH_INTERVAL_S)

    def _watch_once(self, watch: _SocketWatch) -> None:
        current_kubelet = _socket_identity(self.config.kubelet_socket)
        if current_kubelet != watch.kubelet_id:
            if current_kubelet is not None:
                logger.info("kubelet.sock re-created (kubelet restarted); registering again")
                watch.need_register, watch.next_attempt = True, 0.0
                watch.backoff.reset()
            watch.kubelet_id = current_kubelet
        if not self.config.socket_path.exists():
            logger.warning("plugin socket %s was removed; re-creating it", self.config.socket_path)
            self._stop_server()
            self._start_server()
            watch.need_register, watch.next_attempt = True, 0.0
        if self.streams.take_lonely_close(STREAM_CLOSED_GRACE_S):
            logger.warning("kubelet closed ListAndWatch and did not reconnect; registering again")
            watch.need_register, watch.next_attempt = True, 0.0
        if not watch.need_register or time.monotonic() < watch.next_attempt:
            return
        self.metrics.set_registered(False)
        if current_kubelet is None:
            if not watch.waiting_logged:
                logger.info("waiting for %s to appear (kubelet not running yet)", self.config.kubelet_socket)
                watch.waiting_logged = True
            return
        watch.waiting_logged = False
        try:
            register(
                self.config.kubelet_socket,
                endpoint=self.config.socket_name,
                resource_name=self.config.resource_name,
                timeout_s=REGISTER_TIMEOUT_S,
            )
        except RegistrationError as exc:
            self.metrics.registrations_total.labels(result="error").inc()
            self.metrics.set_registered(False)
            delay = watch.backoff.next()
            logger.warning("%s; will retry in %.0f s", exc, delay)
            watch.next_attempt = time.monotonic() + delay
            return
        self.metrics.registrations_total.labels(result="ok").inc()
        self.metrics.set_registered(True)
        self.registration_count += 1
        watch.need_register = False
        watch.backoff.reset()
        self.registered.set()
        logger.info(
            "registered %s with the kubelet (endpoint %s)", self.config.resource_name, self.config.socket_name
        )

    def _poll(self) -> None:
        next_discovery = time.monotonic() + self.config.discovery_interval_s
        fingerprint = discovery.topology_fingerprint(self.config.sysfs_root)
        while not self._stop.is_set():
            requested = self._rediscover.wait(self.config.health_interval_s)
            if self._stop.is_set():
                return
            try:
                current = discovery.topology_fingerprint(self.config.sysfs_root)
                if requested or current != fingerprint or time.monotonic() >= next_discovery:
                    self._rediscover.clear()
                    fingerprint = current
                    changed = self.state.refresh_inventory()
                    next_discovery = time.monotonic() + self.config.discovery_interval_s
                else:
                    changed = self.state.refresh_health()
                changed |= self.state.set_checkpoint_allocated(self._checkpoint.allocated())
                if changed and self._label_sync is not None:
                    self._label_sync.mark_dirty()  # labels follow health as well as inventory
            except Exception:  # e.g. PermissionError from a stat: health must keep being checked
                logger.exception(
                    "health/discovery poll failed; keeping the last advertised state, will retry in %.0f s",
                    self.config.health_interval_s,
                )
