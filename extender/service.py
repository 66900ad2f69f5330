"""Filter and prioritize calls, from request bytes to reply bytes; the FastAPI routes wrap this.

Synchronous, no I/O, and bounded: every outside value goes through ``sizing.bounded`` in the
stages below, so a call costs milliseconds whatever the body holds. The app runs it in a worker
thread so that /healthz never waits behind it. The path of one pod through /filter:
wire (decode, envelope) -> node_offer (each Node's allocatable and memory label, or the node
cache's capacities) -> pod_demand (annotations and partition request) -> requirement (sizing)
-> decisions (once per distinct capacity) -> verdict (filter) -> wire (encode the reply).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from decision import reasons
from decision.node_offer import offer_fields
from decision.nodes import CapacityRef, Resolve, as_capacity, filter_nodes, score_refs
from decision.pod_demand import pod_reference, read_pod_demand
from decision.requirement import Requirement, Sizer
from decision.verdict import Policy
from extender.cache import ClusterCache
from extender.metrics import ExtenderMetrics
from extender.wire import (
    BadRequestError,
    ExtenderRequest,
    encode,
    encode_filter_result,
    encode_scored_hosts,
    read_extender_args,
    read_preemption_args,
)

logger = logging.getLogger(__name__)

# Longest "no node can take it" summary logged: a few dozen distinct reasons; a hostile fleet of
# distinct unreadable labels must not make one log line megabytes long.
MAX_LOGGED_SUMMARY = 2000


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    server_ms: float  # wall time from request bytes to reply bytes
    cpu_ms: float  # CPU time of the handling thread in that span (less disturbed by other processes than wall time)


class ExtenderService:
    """Holds the policy, the optional node cache and the metrics of one running extender."""

    def __init__(self, *, policy: Policy, cache: ClusterCache | None, metrics: ExtenderMetrics, sizer: Sizer) -> None:
        self.policy = policy
        self.cache = cache
        self.metrics = metrics
        self.sizer = sizer
        self._unknown = reasons.not_in_cache() if cache is not None else reasons.no_node_cache()

    # --- shared ------------------------------------------------------------------------------
    def _nodes(
        self, request: ExtenderRequest
    ) -> tuple[list[str], Sequence[CapacityRef], Resolve, list[dict[str, Any]] | None]:
        """Names and capacities of the request's nodes (with the resolver), plus the Node objects
        when the request carried them."""
        objects = request.node_objects
        if objects is not None:
            fields = list(map(offer_fields, objects))
            if None in fields:
                raise BadRequestError(f"Nodes.items[{fields.index(None)}] has no metadata.name (a string of at"
                                      " most 253 characters)")
            read = cast("list[tuple[str, int, int | None, str | None]]", fields)
            names = [name for name, _, _, _ in read]
            used = self.cache.used_on(names) if self.cache is not None else [0] * len(names)
            capacities = [(allocatable, size, n, defect)
                          for (_, allocatable, size, defect), n in zip(read, used, strict=True)]
            return names, capacities, as_capacity, objects
        names = request.node_names or []
        if self.cache is None:
            return names, [None] * len(names), as_capacity, None
        ids, resolve = self.cache.capacity_ids(names)
        return names, ids, resolve, None

    def _count_stale(self, verb: str) -> None:
        if self.cache is not None and self.cache.stale_seconds > 0:
            self.metrics.stale_decisions.labels(verb).inc()

    def _bad_request(self, verb: str, error: BadRequestError, started: float) -> Reply:
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
            names, refs, resolve, objects = self._nodes(request)
        except BadRequestError as error:
            return self._bad_request("filter", error, started)
        requirement = self.sizer.requirement(read_pod_demand(request.pod))
        outcome = filter_nodes(requirement, names, refs, unknown=self._unknown, resolve=resolve)
        kept: dict[str, Any] | None = None
        if objects is not None:
            keep = set(outcome.passed)
            kept = {"metadata": {}, "items": [node for node, name in zip(objects, names, strict=True) if name in keep]}
        try:
            body = encode_filter_result(
                node_names=outcome.passed if objects is None else None, nodes=kept,
                failed=outcome.failed, unresolvable=outcome.unresolvable,
            )
        except BadRequestError as error:
            return self._bad_request("filter", error, started)
        self.metrics.count_decisions(len(outcome.passed), outcome.reason_counts)
        self._count_stale("filter")
        self._log_filter(request.pod, requirement, len(names), outcome.passed, outcome.failed, outcome.unresolvable)
        return self._finish("filter", body, started, started_cpu, len(names))

    def prioritize(self, body: bytes) -> Reply:
        started, started_cpu = time.perf_counter(), time.thread_time()
        try:
            request = read_extender_args(body)
            names, refs, resolve, _ = self._nodes(request)
        except BadRequestError as error:
            return self._bad_request("prioritize", error, started)
        requirement = self.sizer.requirement(read_pod_demand(request.pod))
        scores = score_refs(requirement, refs, policy=self.policy, resolve=resolve)
        body = encode_scored_hosts(names, refs, scores)
        self._count_stale("prioritize")
        return self._finish("prioritize", body, started, started_cpu, len(names))

    def preempt(self, body: bytes) -> Reply:
        """ExtenderPreemptionArgs -> ExtenderPreemptionResult: the candidate nodes (with their victims
        unchanged) where evicting can help, i.e. without the filter's unresolvable reasons. kube-scheduler
        picks candidates with its own plugins only; without this verb it would evict pods on a node
        whose partitions are too small for the pod, which the filter then rejects anyway."""
        started, started_cpu = time.perf_counter(), time.thread_time()
        try:
            request = read_preemption_args(body)
        except BadRequestError as error:
            return self._bad_request("preempt", error, started)
        requirement = self.sizer.requirement(read_pod_demand(request.pod))
        names = list(request.victims)
        if self.cache is None:  # nothing known about the nodes: every candidate stays
            refs: Sequence[CapacityRef] = [None] * len(names)
            resolve: Resolve = as_capacity
        else:
            refs, resolve = self.cache.capacity_ids(names)
        outcome = filter_nodes(requirement, names, refs, unknown=self._unknown, resolve=resolve)
        kept = {name: request.victims[name] for name in names if name not in outcome.unresolvable}
        if len(kept) < len(names):
            logger.info("preemption for pod %s: %d of %d candidate nodes dropped (%s)", pod_reference(request.pod),
                        len(names) - len(kept), len(names), next(iter(outcome.unresolvable.values()))[:200])
        return self._finish("preempt", encode({"NodeNameToMetaVictims": kept}), started, started_cpu, len(names))

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
            summary = reasons.summarize([*failed.values(), *unresolvable.values()], total)[:MAX_LOGGED_SUMMARY]
            logger.info("filter %s (%s): no node can take it; %s", pod_reference(pod),
                        requirement.subject or "unsized", summary)
