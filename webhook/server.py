"""The webhook's HTTPS shell: one route (``POST /mutate``), its metrics and its certificate.

The webhook runs beside the extender in the same process, on its own port and with its own
certificate, always over TLS (the API server calls webhooks over HTTPS only). The certificate is
re-read when its files change, so a rotated Secret takes effect without a restart.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.concurrency import run_in_threadpool

from decision.fits import Offer
from kube.regular_file import file_problem
from kube.request_body import BodyIncompleteError, BodyTooLargeError, read_body, refusal
from webhook.mutation import Options
from webhook.review import MAX_BODY_BYTES, Reply, refused_body, review

logger = logging.getLogger("webhook")

MUTATE_PATH = "/mutate"
NAMESPACE = "aim_webhook"

# Latency buckets from 0.1 ms to 5 s, above the webhook's 3 s timeoutSeconds (manifests/webhook): a
# review slower than that has failed at the API server already.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

# How often the certificate files are checked for a rotation. The kubelet refreshes a mounted Secret
# within about a minute (its sync period plus cache TTL); 30 s adds at most half of that again.
CERT_CHECK_SECONDS = 30.0


class TLSFilesError(ValueError):
    """The webhook certificate or key cannot be used; the message names the file."""


class WebhookMetrics:
    """Reviews by kind and result, and their latency, in the given registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.inventory_nodes = Gauge("inventory_nodes", "Nodes with GPU partitions in the webhook's inventory"
                                     " (from the process's node watch).", namespace=NAMESPACE, registry=registry)
        self.reviews = Counter("reviews", "AdmissionReviews answered, by result"
                               " (patched, unchanged, denied, ignored, bad_request).",
                               ["result"], namespace=NAMESPACE, registry=registry)
        self.warnings = Counter("warnings", "Admission warnings returned to users.",
                                namespace=NAMESPACE, registry=registry)
        self.seconds = Histogram("review_duration_seconds", "Server-side time of one review, body read to reply.",
                                 namespace=NAMESPACE, buckets=LATENCY_BUCKETS, registry=registry)
        self.cert_reloads = Counter("certificate_reloads", "Serving certificate reloads after its files changed,"
                                    " by result (ok, failed).", ["result"], namespace=NAMESPACE, registry=registry)

    def observe(self, reply: Reply, seconds: float) -> None:
        self.reviews.labels(reply.result.value).inc()
        if reply.warnings:
            self.warnings.inc(reply.warnings)
        self.seconds.observe(seconds)


def create_webhook_app(offers: Callable[[], Sequence[Offer]], options: Options,
                       metrics: WebhookMetrics | None = None, *, max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """The webhook's app: ``POST /mutate`` (AdmissionReview) and ``GET /healthz``. A body over
    ``max_body_bytes`` is refused with HTTP 413 before it is read; a review runs in a worker
    thread, so /healthz and other reviews never wait behind it."""
    app = FastAPI(title="AIM GPU-partition admission webhook", docs_url=None, redoc_url=None, openapi_url=None)

    @app.post(MUTATE_PATH)
    async def mutate(request: Request) -> Response:
        started = time.perf_counter()
        too_large = None
        try:
            body = await read_body(request, max_body_bytes)
        except BodyTooLargeError as error:
            too_large = error
            reply = refused_body(str(error))
        except BodyIncompleteError:
            return Response(status_code=400)  # the caller left: nobody reads this
        else:
            reply = await run_in_threadpool(review, body, offers, options)
        if metrics is not None:
            metrics.observe(reply, time.perf_counter() - started)
        if reply.status != 200:
            logger.warning("answered an admission request with HTTP %d: %s", reply.status, reply.body[:200].decode())
        if too_large is not None:
            return refusal(reply.body, too_large)
        return Response(reply.body, status_code=reply.status, media_type="application/json")

    @app.get("/healthz", response_class=PlainTextResponse)
    async def healthz() -> str:
        return "ok"

    return app


def _fingerprint(paths: Sequence[str]) -> tuple[tuple[int, int, int], ...]:
    out = []
    for path in paths:
        st = os.stat(path)  # follows the kubelet's ..data symlink to the current files
        out.append((st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(out)


@dataclass
class CertificateReloader:
    """A server SSLContext whose certificate is reloaded when the files change."""

    cert_file: str
    key_file: str
    metrics: WebhookMetrics | None = None

    def __post_init__(self) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2  # the API server speaks TLS 1.2 and 1.3
        self._load()
        self._seen = _fingerprint((self.cert_file, self.key_file))

    def _load(self) -> None:
        for flag, path in (("--webhook-cert-file", self.cert_file), ("--webhook-key-file", self.key_file)):
            problem = file_problem(path)  # a FIFO would block ssl (and the event loop on reload) for good
            if problem is not None:
                raise TLSFilesError(f"webhook certificate: {flag} {path}: {problem}")
        try:
            self.context.load_cert_chain(self.cert_file, self.key_file)
        except FileNotFoundError as error:
            raise TLSFilesError(f"webhook certificate: {error.filename}: file not found") from None
        except (ssl.SSLError, OSError) as error:
            raise TLSFilesError(f"webhook certificate {self.cert_file} / key {self.key_file}: not a PEM"
                                f" certificate and matching key ({error.__class__.__name__})") from None

    def check(self) -> bool:
        """Reload when the files changed; True when a new certificate is in use."""
        try:
            seen = _fingerprint((self.cert_file, self.key_file))
        except OSError as error:
            logger.warning("cannot stat the webhook certificate (%s); keeping the current one, will retry in %.0f s",
                           error, CERT_CHECK_SECONDS)
            return False
        if seen == self._seen:
            return False
        try:
            self._load()
        except TLSFilesError as error:
            logger.warning("%s; keeping the current certificate, will retry in %.0f s", error, CERT_CHECK_SECONDS)
            if self.metrics is not None:
                self.metrics.cert_reloads.labels("failed").inc()
            return False
        self._seen = seen
        if self.metrics is not None:
            self.metrics.cert_reloads.labels("ok").inc()
        logger.info("webhook certificate reloaded from %s", self.cert_file)
        return True

    async def watch(self, interval: float = CERT_CHECK_SECONDS) -> None:
        while True:
            await asyncio.sleep(interval)
            self.check()


def webhook_server(app: FastAPI, host: str, port: int, reloader: CertificateReloader) -> uvicorn.Server:
    """A uvicorn server for ``app`` on its own port, serving TLS with ``reloader``'s context."""
    config = uvicorn.Config(app, host=host, port=port, ssl_certfile=reloader.cert_file, ssl_keyfile=reloader.key_file,
                            log_config=None, access_log=False, lifespan="off")
    config.load()
    config.ssl = reloader.context  # the reloadable context, not uvicorn's one-shot copy
    return uvicorn.Server(config)
