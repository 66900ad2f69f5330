"""Running the webhook inside ``aim-extender serve`` (flags and config: ``flags``): its socket, and a
uvicorn server that serves the webhook beside the extender in the same process and event loop.

The extender's server owns the signals; the webhook's server is a sibling task that stops when the
extender's does. The webhook's socket is bound at start (a port in use is a one-line error before
anything claims startup); it serves once its certificate files exist (the Secret may be written
by the certs Job after the pod started) and re-reads them when they change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Generator
from typing import Any, Protocol

import uvicorn
from prometheus_client import CollectorRegistry

import sizing
from kube.informer import Informer
from webhook.flags import WebhookConfig
from webhook.inventory import PartitionInventory
from webhook.models import ModelResolver
from webhook.mutation import Options
from webhook.server import (
    CERT_CHECK_SECONDS,
    CertificateReloader,
    TLSFilesError,
    WebhookMetrics,
    create_webhook_app,
    webhook_server,
)

logger = logging.getLogger("webhook")

# How often missing certificate files are looked for at start: the certs Job writes the Secret within
# seconds of install, and the kubelet then updates the optional volume within about a minute.
CERT_WAIT_SECONDS = 5.0


class Background(Protocol):
    """Something that runs beside the webhook, such as its node watch."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


def bind(config: WebhookConfig) -> socket.socket:
    """The webhook's listening socket; OSError (port in use, ...) before anything claims startup."""
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((config.host, config.port))
        sock.listen(128)  # the API server holds few connections to a webhook
    except OSError:
        sock.close()
        raise
    return sock


class _SiblingServer(uvicorn.Server):
    """A uvicorn server that leaves the signals to the extender's server (which stops it)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class Webhook:
    """The webhook's server, certificate reloader and node inventory inside the extender process."""

    def __init__(self, config: WebhookConfig, sock: socket.socket, inventory: PartitionInventory,
                 resolve_model: ModelResolver, registry: CollectorRegistry, *, watcher: Background | None = None,
                 cert_wait_seconds: float = CERT_WAIT_SECONDS) -> None:
        self.config = config
        self.sock = sock
        self.inventory = inventory
        self.watcher = watcher
        self.cert_wait_seconds = cert_wait_seconds
        self.options = Options(runtime=config.runtime, scheduler_name=config.scheduler_name,
                               resolve_model=resolve_model)
        self.metrics = WebhookMetrics(registry)
        self.metrics.inventory_nodes.set_function(lambda: inventory.node_count)
        self._server: uvicorn.Server | None = None
        self._stopping = asyncio.Event()

    def _files_present(self) -> bool:
        return os.path.exists(self.config.cert_file) and os.path.exists(self.config.key_file)

    async def _reloader(self) -> CertificateReloader | None:
        """The certificate, once its files exist and hold a usable pair; None when stopping first."""
        said = False
        while not self._stopping.is_set():
            if self._files_present():
                try:
                    return CertificateReloader(self.config.cert_file, self.config.key_file, self.metrics)
                except TLSFilesError as error:
                    logger.error("%s; the webhook is not serving, will retry in %.0f s", error, CERT_CHECK_SECONDS)
                    wait = CERT_CHECK_SECONDS
            else:
                if not said:
                    logger.warning("webhook certificate %s not there yet (the certs Job writes it); the webhook"
                                   " serves once it appears, checking every %.0f s", self.config.cert_file,
                                   self.cert_wait_seconds)
                    said = True
                wait = self.cert_wait_seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), wait)
        return None

    async def serve(self) -> None:
        if self.watcher is not None:
            self.watcher.start()
        # The 114 AIM profiles are generated on first use (a few hundred ms): not in a review.
        await asyncio.to_thread(sizing.profiles_by_id)
        reloader = await self._reloader()
        if reloader is None:
            return
        app = create_webhook_app(self.inventory.offers, self.options, self.metrics)
        base = webhook_server(app, self.config.host, self.config.port, reloader)
        self._server = _SiblingServer(base.config)
        if self._stopping.is_set():
            return
        watcher = asyncio.create_task(reloader.watch())
        logger.info("admission webhook serving HTTPS on %s:%d (%s)", self.config.host, self.config.port,
                    self.config.cert_file)
        try:
            await self._server.serve(sockets=[self.sock])
        finally:
            watcher.cancel()

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.should_exit = True
        if self.watcher is not None:
            self.watcher.stop()


class ServerWithWebhook(uvicorn.Server):
    """The extender's uvicorn server, with the webhook served beside it in the same event loop."""

    def __init__(self, config: uvicorn.Config, webhook: Webhook) -> None:
        super().__init__(config)
        self.webhook = webhook

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        task = asyncio.create_task(self.webhook.serve())
        try:
            await super().serve(sockets=sockets)
        finally:
            self.webhook.stop()
            await task
            self.webhook.sock.close()


def webhook_beside_extender(config: WebhookConfig, sock: socket.socket, api: Any, resolve_model: ModelResolver,
                            registry: CollectorRegistry, *, nodes: Informer | None = None) -> Webhook:
    """The webhook as ``aim-extender serve`` runs it: partition sizes from the node labels through
    ``nodes`` (the process's node informer, shared with the node cache; default: one of its own on
    ``api``, a kubernetes CoreV1Api), metrics in the extender's ``registry``."""
    from webhook.node_watch import NodeLabelWatcher

    inventory = PartitionInventory()
    return Webhook(config, sock, inventory, resolve_model, registry,
                   watcher=NodeLabelWatcher(api, inventory, nodes=nodes))
