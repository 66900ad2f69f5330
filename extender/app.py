"""The FastAPI application: routes, health, metrics and the OpenAPI document. A thin shell."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from decision.partition_memory import NodePartitionMemory, partition_memory
from decision.requirement import Sizer
from decision.verdict import Policy
from extender.cache import DEFAULT_STALE_AFTER_SECONDS, ClusterCache
from extender.metrics import CONTENT_TYPE, ExtenderMetrics
from extender.service import ExtenderService, Reply
from extender.wire import (
    ErrorReply,
    ExtenderArgs,
    ExtenderFilterResult,
    HostPriority,
    default_max_body_bytes,
    encode,
)
from kube.request_body import BodyIncompleteError, BodyTooLargeError, read_body, refusal

API_VERSION = "0.1.0"
logger = logging.getLogger(__name__)


class Background(Protocol):
    """Something that runs beside the server, such as the cluster watcher."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


def _reply(reply: Reply) -> Response:
    return Response(
        content=reply.body,
        status_code=reply.status,
        media_type="application/json",
        headers={"Server-Timing": f"app;dur={reply.server_ms:.3f}, cpu;dur={reply.cpu_ms:.3f}"},
    )


_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ExtenderArgs"}}},
    }
}
_BAD_REQUEST: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorReply, "description": "Malformed JSON or not an ExtenderArgs"},
    413: {"model": ErrorReply, "description": "Body over --max-body-bytes (refused before it is read)"},
}


def create_app(
    *,
    policy: Policy = Policy.BEST_FIT,
    cache: ClusterCache | None = None,
    background: Background | None = None,
    metrics: ExtenderMetrics | None = None,
    sizer: Sizer | None = None,
    stale_after_seconds: float = DEFAULT_STALE_AFTER_SECONDS,
    max_body_bytes: int | None = None,
) -> FastAPI:
    """Build the app. ``cache`` is the node cache (None = nodeCacheCapable: false only); ``sizer``
    sizes pods from its catalogue (default: the packaged one); a body over ``max_body_bytes``
    (default: wire.default_max_body_bytes for the node cache mode) is refused with HTTP 413."""
    metrics = metrics or ExtenderMetrics()
    body_limit = max_body_bytes or default_max_body_bytes(node_cache_capable=cache is not None)
    sizer = sizer or Sizer()
    if cache is not None:
        def bound_partition_memory() -> dict[str, NodePartitionMemory]:
            return partition_memory(*cache.bound_snapshot(), sizer.requirement)

        metrics.watch_cache(
            nodes=lambda: cache.node_count, pods=lambda: cache.pod_count, synced=lambda: float(cache.synced),
            stale_seconds=lambda: cache.stale_seconds, partition_memory=bound_partition_memory,
        )
    service = ExtenderService(policy=policy, cache=cache, metrics=metrics, sizer=sizer)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if background is not None:
            background.start()
        try:
            yield
        finally:
            if background is not None:
                background.stop()

    app = FastAPI(
        title="AIM GPU-partition scheduler extender",
        version=API_VERSION,
        summary="kube-scheduler extender: model-aware filter and best-fit prioritize for amd.com/gpu-partition",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.metrics = metrics

    async def decide(verb: str, request: Request, handle: Callable[[bytes], Reply]) -> Response:
        """Read the body (awaiting each chunk, within the limit), then decide in a worker thread so
        that /healthz and other calls never wait behind it."""
        try:
            body = await read_body(request, body_limit)
        except BodyTooLargeError as error:
            metrics.bad_requests.labels(verb).inc()
            logger.warning("refused a %s request with HTTP 413: %s", verb, error)
            return refusal(encode({"Error": str(error)}), error)
        except BodyIncompleteError:
            return Response(status_code=400)  # the caller left: nobody reads this
        return _reply(await run_in_threadpool(handle, body))

    @app.post("/filter", response_model=ExtenderFilterResult, responses=_BAD_REQUEST, openapi_extra=_REQUEST_BODY)
    async def filter_nodes(request: Request) -> Response:
        """ExtenderArgs -> ExtenderFilterResult: keep nodes whose partitions hold the pod's model."""
        return await decide("filter", request, service.filter)

    @app.post("/prioritize", response_model=list[HostPriority], responses=_BAD_REQUEST, openapi_extra=_REQUEST_BODY)
    async def prioritize_nodes(request: Request) -> Response:
        """ExtenderArgs -> HostPriorityList: scores 0..10 by the configured policy."""
        return await decide("prioritize", request, service.prioritize)

    @app.post("/preempt", responses=_BAD_REQUEST)
    async def preempt(request: Request) -> Response:
        """ExtenderPreemptionArgs -> ExtenderPreemptionResult: only candidate nodes where the pod fits."""
        return await decide("preempt", request, service.preempt)

    @app.get("/healthz", response_class=PlainTextResponse)
    async def healthz() -> str:
        """Liveness: the process serves HTTP."""
        return "ok"

    @app.get("/readyz", response_class=PlainTextResponse)
    async def readyz() -> Response:
        """Readiness: with --node-cache watch, once nodes and pods were listed, and while the watch
        has not been broken for longer than --stale-after seconds."""
        if cache is None:
            return PlainTextResponse("ok")
        if not cache.synced:
            return PlainTextResponse("node cache not synced yet", status_code=503)
        stale = cache.stale_seconds
        if stale > stale_after_seconds:
            message = f"node cache stale for {stale:.0f} s (watch broken; limit {stale_after_seconds:g} s)"
            return PlainTextResponse(message, status_code=503)
        return PlainTextResponse("ok")

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        """Prometheus text exposition."""
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            args_schema = ExtenderArgs.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
            components.update(args_schema.pop("$defs", {}))
            components["ExtenderArgs"] = args_schema
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
