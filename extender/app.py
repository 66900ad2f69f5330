"""The FastAPI application: routes, health, metrics and the OpenAPI document. A thin shell."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import PlainTextResponse, Response

from extender.cache import ClusterCache
from extender.metrics import CONTENT_TYPE, ExtenderMetrics
from extender.scoring import Policy
from extender.service import ExtenderService, Reply
from extender.wire import ErrorReply, ExtenderArgs, ExtenderFilterResult, HostPriority

API_VERSION = "0.1.0"


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
_BAD_REQUEST = {400: {"model": ErrorReply, "description": "Malformed JSON or not an ExtenderArgs"}}


def create_app(
    *,
    policy: Policy = Policy.BEST_FIT,
    cache: ClusterCache | None = None,
    background: Background | None = None,
    metrics: ExtenderMetrics | None = None,
) -> FastAPI:
    """Build the app. ``cache`` is the node cache (None = nodeCacheCapable: false only)."""
    metrics = metrics or ExtenderMetrics()
    if cache is not None:
        metrics.watch_cache(
            nodes=lambda: cache.node_count, pods=lambda: cache.pod_count, synced=lambda: float(cache.synced)
        )
    service = ExtenderService(policy=policy, cache=cache, metrics=metrics)

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

    @app.post("/filter", response_model=ExtenderFilterResult, responses=_BAD_REQUEST, openapi_extra=_REQUEST_BODY)
    async def filter_nodes(request: Request) -> Response:
        """ExtenderArgs -> ExtenderFilterResult: keep nodes whose partitions hold the pod's model."""
        return _reply(service.filter(await request.body()))

    @app.post("/prioritize", response_model=list[HostPriority], responses=_BAD_REQUEST, openapi_extra=_REQUEST_BODY)
    async def prioritize_nodes(request: Request) -> Response:
        """ExtenderArgs -> HostPriorityList: scores 0..10 by the configured policy."""
        return _reply(service.prioritize(await request.body()))

    @app.get("/healthz", response_class=PlainTextResponse)
    async def healthz() -> str:
        """Liveness: the process serves HTTP."""
        return "ok"

    @app.get("/readyz", response_class=PlainTextResponse)
    async def readyz() -> Response:
        """Readiness: with --node-cache watch, only after nodes and pods were listed once."""
        if cache is None or cache.synced:
            return PlainTextResponse("ok")
        return PlainTextResponse("node cache not synced yet", status_code=503)

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
