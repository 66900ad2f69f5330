"""Filter and prioritize calls, from request bytes to reply bytes; the FastAPI routes wrap this.

Synchronous and fast on purpose: it runs on the event loop, does no I/O, and reads only name,
labels and allocatable from Node objects.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

from extender import reasons
from extender.cache import ClusterCache
from extender.decisions import filter_nodes, same_key, score_by_key
from extender.demand import pod_reference, read_sizing_request
from extender.metrics import ExtenderMetrics
from extender.nodefacts import node_key_fields
from extender.requirements import Requirement, requirement_for
from extender.scoring import NodeKey, Policy
from extender.wire import (
    BadRequest,
    ExtenderRequest,
    encode,
    encode_filter_result,
    encode_scored_hosts,
    read_extender_args,
)

logger = logging.getLogger(__name__)

Resolve = Callable[[Hashable], NodeKey]


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    server_ms: float  # wall time from request bytes to reply bytes
    cpu_ms: float  # CPU time of the handling thread in that span (less disturbed by other processes than wall time)


class ExtenderService:
    """Holds the policy, the optional node cache and the metrics of one running extender."""

    def __init__(self, *, policy: Policy, cache: ClusterCache | None, metrics: ExtenderMetrics) -> None:
        self.policy = policy
        self.cache = cache
        self.metrics = metrics
        self._unknown = reasons.not_in_cache() if cache is not None else reasons.no_node_cache()

    # --- shared ------------------------------------------------------------------------------
    def _nodes(
        self, request: ExtenderRequest
    ) -> tuple[list[str], Sequence[Hashable | None], Resolve, list[dict[str, Any]] | None]:
        """Names and keys of the request's nodes (with the key resolver), plus the Node objects
        when the request carried them."""
        objects = request.node_objects
        if objects is not None:
            fields = list(map(node_key_fields, objects))
            if None in fields:
                raise BadRequest(f"Nodes.items.{fields.index(None)} has no metadata.name")
            names = [name for name, _, _ in fields]  # type: ignore[misc]
            used = self.cache.used_on(names) if self.cache is not None else repeat(0)
            keys = [(allocatable, size, n) for (_, allocatable, size), n in zip(fields, used)]  # type: ignore[misc]
            return names, keys, same_key, objects
        names = request.node_names or []
        if self.cache is None:
            return names, [None] * len(names), same_key, None
        ids, resolve = self.cache.keys(names)
        return names, ids, resolve, None

    def _bad_request(self, verb: str, error: BadRequest, started: float) -> Reply:
        self.metrics.bad_requests.labels(verb).inc()
        logger.warning("rejected a %s request with HTTP 400: %s", verb, error)
        return Reply(400, encode({"Error": str(error)}), (time.perf_counter() - started) * 1000, 0.0)

    def _finish(self, verb: str, body: bytes, started: float, started_cpu: float, node_count: int) -> Reply:
        elapsed = time.perf_counter() - started
        cpu = time.thread_time() - started_cpu
        self.metrics.request_seconds.labels(verb).observe(elapsed)
        self.metrics.request_nodes.labels(verb).observe(node_count)
        return Reply(200, body, elapsed * 1000, cpu * 1000)

    # --- verbs -------------------------------------------------------------------------------
    def filter(self, body: bytes) -> Reply:
        started, started_cpu = time.perf_counter(), time.thread_time()
        try:
            request = read_extender_args(body)
            names, keys, resolve, objects = self._nodes(request)
        except BadRequest as error:
            return self._bad_request("filter", error, started)
        requirement = requirement_for(read_sizing_request(request.pod))
        outcome = filter_nodes(requirement, names, keys, unknown=self._unknown, resolve=resolve)
        self.metrics.count_decisions(len(outcome.passed), outcome.reason_counts)
        kept: dict[str, Any] | None = None
        if objects is not None:
            keep = set(outcome.passed)
            kept = {"metadata": {}, "items": [node for node, name in zip(objects, names) if name in keep]}
        body = encode_filter_result(
            node_names=outcome.passed if objects is None else None, nodes=kept,
            failed=outcome.failed, unresolvable=outcome.unresolvable,
        )
        self._log_filter(request.pod, requirement, len(names), outcome.passed, outcome.failed, outcome.unresolvable)
        return self._finish("filter", body, started, started_cpu, len(names))

    def prioritize(self, body: bytes) -> Reply:
        started, started_cpu = time.perf_counter(), time.thread_time()
        try:
            request = read_extender_args(body)
            names, keys, resolve, _ = self._nodes(request)
        except BadRequest as error:
            return self._bad_request("prioritize", error, started)
        requirement = requirement_for(read_sizing_request(request.pod))
        scores = score_by_key(requirement, keys, policy=self.policy, resolve=resolve)
        body = encode_scored_hosts(names, keys, scores)
        return self._finish("prioritize", body, started, started_cpu, len(names))

    @staticmethod
    def _log_filter(
        pod: Mapping[str, Any], requirement: Requirement, total: int, passed: list[str],
        failed: dict[str, str], unresolvable: dict[str, str],
    ) -> None:
        if passed:
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("filter %s (%s): %d of %d nodes pass", pod_reference(pod),
                             requirement.subject or "unsized", len(passed), total)
            return
        if total:
            summary = reasons.summarize([*failed.values(), *unresolvable.values()], total)
            logger.info("filter %s (%s): no node can take it; %s", pod_reference(pod),
                        requirement.subject or "unsized", summary)
