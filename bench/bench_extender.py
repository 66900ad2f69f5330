#!/usr/bin/env python3
"""Benchmark the scheduler extender: filter + prioritize over real HTTP, like kube-scheduler calls it.

Two scenarios, each a stream of sequential filter-then-prioritize calls (kube-scheduler's
scheduling cycle is serial):
  names  nodeCacheCapable: true  - 5,000 NodeNames per call, node cache pre-filled (with usage)
  nodes  nodeCacheCapable: false - 500 full Node objects per call (the captured fixture node)
and hostile bodies (issue 18), each with the slowest /healthz answered meanwhile: a body declaring
more than the limit (the server has the full-Nodes limit, 128 MiB), the same streamed chunked, 94 MB
of whitespace within the limit (read, then refused as not JSON) and 70,000 NodeNames.

The server runs in its own process (uvicorn, 127.0.0.1) so client and server do not share a GIL.
Server-side time comes from the ``Server-Timing`` header the handler sets (request bytes in to
reply bytes out); end-to-end time is measured around the HTTP call in the client.

    .venv/bin/python bench/bench_extender.py [--names 5000] [--full-nodes 500] [--requests 300]
        [--client httpx|http.client] [--http auto|h11|httptools] [--loop auto|asyncio|uvloop] [--hostile 3]

Not a test: it prints numbers. Pods cycle through a few models and precisions, as a real queue would.
"""

from __future__ import annotations

import argparse
import copy
import gc
import http.client
import importlib.util
import json
import multiprocessing
import socket
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.extender.support import HealthProbe, post_chunked, post_declaring

RESOURCE = "amd.com/gpu-partition"  # sizing.contract.RESOURCE_NAME; the bench writes the wire as a cluster would
FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "extender"  # captured kube-scheduler requests

# (GiB per partition, partitions per node, compute mode, product): a mixed fleet of 8-GPU nodes.
NODE_SHAPES = [
    (24, 64, "CPX", "MI300X"),
    (48, 32, "QPX", "MI300X"),
    (192, 8, "SPX", "MI300X"),
    (32, 64, "CPX", "MI325X"),
    (256, 8, "SPX", "MI325X"),
]
PODS = [
    ({"aim.amd.com/model": "meta-llama/Llama-3.1-8B-Instruct", "aim.amd.com/precision": "fp16"}, 1),
    ({"aim.amd.com/model": "Qwen/Qwen3-32B", "aim.amd.com/precision": "fp8"}, 1),
    ({"aim.amd.com/model": "meta-llama/Llama-3.3-70B-Instruct", "aim.amd.com/precision": "fp16"}, 1),
    ({"aim.amd.com/model": "meta-llama/Llama-3.3-70B-Instruct", "aim.amd.com/precision": "fp8"}, 2),
    ({"aim.amd.com/memory": "40Gi"}, 1),
    ({}, 1),
]


def labels_for(index: int) -> tuple[dict[str, str], int]:
    gib, count, mode, product = NODE_SHAPES[index % len(NODE_SHAPES)]
    return {
        "amd.com/gpu-partition.memory-mib": str(gib * 1024),
        "amd.com/gpu-partition.count": str(count),
        "amd.com/gpu-partition.compute-mode": mode,
        "amd.com/gpu-partition.memory-mode": "NPS4" if mode == "CPX" else "NPS1",
        "amd.com/gpu-partition.cu-count": "38",
        "amd.com/gpu-partition.product": product,
        "amd.com/gpu-partition.homogeneous": "true",
    }, count


def node_names(n: int) -> list[str]:
    return [f"gpu-node-{i:05d}" for i in range(n)]


def full_nodes(n: int) -> list[dict[str, Any]]:
    template = json.loads((FIXTURES / "filter-request-nodes.json").read_text())["Nodes"]["items"][0]
    nodes = []
    for i, name in enumerate(node_names(n)):
        node = copy.deepcopy(template)
        labels, count = labels_for(i)
        node["metadata"]["name"] = name
        node["metadata"]["labels"].update(labels)
        node["status"]["allocatable"]["amd.com/gpu-partition"] = str(count)
        nodes.append(node)
    return nodes


def pods() -> list[dict[str, Any]]:
    template = json.loads((FIXTURES / "filter-request-nodenames.json").read_text())["Pod"]
    out = []
    for pod_annotations, partitions in PODS:
        pod = copy.deepcopy(template)
        pod["metadata"]["annotations"] = dict(pod_annotations)
        for container in pod["spec"]["containers"]:
            container["resources"] = {
                "requests": {"amd.com/gpu-partition": str(partitions)},
                "limits": {"amd.com/gpu-partition": str(partitions)},
            }
        out.append(pod)
    return out


def resolved(choice: str, fast: str, fallback: str) -> str:
    """What uvicorn's "auto" picks: the C implementation when it is installed."""
    if choice != "auto":
        return choice
    return fast if importlib.util.find_spec(fast) is not None else fallback


def run_server(sock: socket.socket, names: int, http: str = "auto", loop: str = "auto") -> None:
    """Server process: a pre-filled node cache (every 3rd node partly used) and uvicorn, with the
    body limit of full Nodes (the bench sends both kinds to one server)."""
    import uvicorn

    from decision.node_offer import read_node_offer
    from decision.pod_demand import BoundPodUsage
    from extender.app import create_app
    from extender.cache import ClusterCache
    from extender.wire import MAX_BODY_BYTES_NODES

    cache = ClusterCache()
    offers = []
    for i, name in enumerate(node_names(names)):
        labels, count = labels_for(i)
        node = {"metadata": {"name": name, "labels": labels}, "status": {"allocatable": {RESOURCE: str(count)}}}
        offer = read_node_offer(node)
        assert offer is not None
        offers.append(offer)
    cache.replace_nodes(offers)
    cache.replace_pods(
        {f"pod-{i}": BoundPodUsage(name, 1 + i % 5) for i, name in enumerate(node_names(names)) if i % 3 == 0}
    )
    gc.freeze()  # as `aim-extender serve` does before serving
    app = create_app(cache=cache, max_body_bytes=MAX_BODY_BYTES_NODES)
    config = uvicorn.Config(app, log_level="warning", access_log=False, http=http, loop=loop)
    uvicorn.Server(config).run(sockets=[sock])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


# (verb, body) -> (HTTP status, Server-Timing header, start of the body for error messages)
Post = Callable[[str, bytes], tuple[int, str, str]]
HEADERS = {"Content-Type": "application/json"}


def httpx_post(client: httpx.Client, url: str) -> Post:
    def post(verb: str, body: bytes) -> tuple[int, str, str]:
        reply = client.post(f"{url}/{verb}", content=body, headers=HEADERS)
        return reply.status_code, reply.headers.get("Server-Timing", ""), reply.text[:200]

    return post


def stdlib_post(port: int) -> Post:
    """http.client on one kept-alive connection: much less client work per call than httpx, so
    end-to-end numbers come closer to what the server allows (kube-scheduler's Go client costs
    little)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def post(verb: str, body: bytes) -> tuple[int, str, str]:
        connection.request("POST", f"/{verb}", body=body, headers=HEADERS)
        reply = connection.getresponse()
        text = reply.read()
        return reply.status, reply.getheader("Server-Timing", ""), text[:200].decode(errors="replace")

    return post


def measure(post: Post, bodies: list[bytes], requests: int, warmup: int) -> dict[str, Any]:
    server = {"filter": [], "prioritize": [], "both": []}  # type: dict[str, list[float]]
    cpu = {"filter": [], "prioritize": [], "both": []}  # type: dict[str, list[float]]
    e2e = {"filter": [], "prioritize": [], "both": []}  # type: dict[str, list[float]]
    started = None
    for i in range(warmup + requests):
        if i == warmup:
            started = time.perf_counter()
        body = bodies[i % len(bodies)]
        pair_server = pair_e2e = pair_cpu = 0.0
        for verb in ("filter", "prioritize"):
            t0 = time.perf_counter()
            status, server_timing, text = post(verb, body)
            elapsed = (time.perf_counter() - t0) * 1000
            if status != 200:
                raise SystemExit(f"{verb} answered {status}: {text}")
            timing = dict(part.strip().split(";dur=") for part in server_timing.split(","))
            in_server, in_cpu = float(timing["app"]), float(timing["cpu"])
            pair_server += in_server
            pair_cpu += in_cpu
            pair_e2e += elapsed
            if i >= warmup:
                server[verb].append(in_server)
                cpu[verb].append(in_cpu)
                e2e[verb].append(elapsed)
        if i >= warmup:
            server["both"].append(pair_server)
            cpu["both"].append(pair_cpu)
            e2e["both"].append(pair_e2e)
    assert started is not None
    wall = time.perf_counter() - started
    return {
        "server": server,
        "cpu": cpu,
        "e2e": e2e,
        "pods_per_second": requests / wall,
        "calls_per_second": 2 * requests / wall,
        "body_kib": sum(len(b) for b in bodies) / len(bodies) / 1024,
    }


def report(title: str, result: dict[str, Any]) -> None:
    print(f"\n{title}  (request body ~{result['body_kib']:.0f} KiB)")
    print(f"  {'':<32}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    names = {"server": "server-side", "cpu": "server CPU", "e2e": "end-to-end"}
    for kind in ("server", "cpu", "e2e"):
        for verb in ("filter", "prioritize", "both"):
            values = result[kind][verb]
            label = f"{names[kind]} {verb if verb != 'both' else 'filter+prioritize'}"
            print(f"  {label:<32}{statistics.median(values):>9.2f}{percentile(values, 99):>9.2f}{max(values):>9.2f}")
    pods, calls = result["pods_per_second"], result["calls_per_second"]
    print(f"  throughput: {pods:.0f} pods/s ({calls:.0f} calls/s), one client, sequential")


HOSTILE_BYTES = 94_000_000  # the body that held /healthz in the issue-18 sweep


def over_limit() -> int:
    from extender.wire import MAX_BODY_BYTES_NODES

    return MAX_BODY_BYTES_NODES + 1


def declared_post(port: int, size: int) -> int:
    """Headers declaring ``size`` bytes and no body: the status once the server answers."""
    return post_declaring(f"http://127.0.0.1:{port}", "/filter", size, timeout=60).status


def chunked_post(port: int, size: int) -> int | None:
    """``size`` bytes (a "[" and whitespace) in 1 MiB chunks: the status, or None when the server
    closed the connection (after its 413) before the client read it."""
    try:
        return post_chunked(f"http://127.0.0.1:{port}", "/filter", size, chunk=1 << 20, timeout=60).status
    except OSError:
        return None


def bench_hostile(url: str, port: int, rounds: int) -> None:
    """Time to answer each hostile body and the slowest /healthz meanwhile."""
    too_many = json.dumps({"Pod": pods()[0], "Nodes": None, "NodeNames": node_names(70_000)}).encode()
    limit = over_limit()
    cases: dict[str, Callable[[], int | None]] = {
        f"Content-Length {limit / 1e6:.0f} MB (over)": lambda: declared_post(port, limit),
        f"chunked {limit / 1e6:.0f} MB (over)": lambda: chunked_post(port, limit),
        f"chunked {HOSTILE_BYTES / 1e6:.0f} MB of whitespace": lambda: chunked_post(port, HOSTILE_BYTES),
        f"70,000 NodeNames ({len(too_many) / 1e6:.1f} MB)": lambda: httpx.post(f"{url}/filter", content=too_many,
                                                                               timeout=60).status_code,
    }
    print(f"\nhostile bodies ({rounds} rounds each): answer time p50 / max, slowest /healthz meanwhile")
    for name, post in cases.items():
        times, health, statuses = [], [], set()
        for _ in range(rounds):
            with HealthProbe(url, timeout=60, interval=0.01) as probe:
                time.sleep(0.05)
                started = time.perf_counter()
                statuses.add(post())
                times.append((time.perf_counter() - started) * 1000)
                time.sleep(0.05)
            health.append(probe.slowest * 1000)
        shown = ", ".join(str(s) if s is not None else "closed" for s in sorted(statuses, key=str))
        print(f"  {name:<34} HTTP {shown:<12} {statistics.median(times):>8.1f} / {max(times):>8.1f} ms"
              f"   /healthz max {max(health):>7.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=5000, help="NodeNames per call (default 5000)")
    parser.add_argument("--full-nodes", type=int, default=500, help="full Node objects per call (default 500)")
    parser.add_argument("--requests", type=int, default=300, help="measured pods per scenario (default 300)")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument(
        "--client",
        choices=["httpx", "http.client"],
        default="httpx",
        help="benchmark client (default httpx; http.client does less work per call)",
    )
    parser.add_argument(
        "--http",
        choices=["auto", "h11", "httptools"],
        default="auto",
        help="uvicorn HTTP parser (auto: httptools when installed, as `aim-extender serve` does)",
    )
    parser.add_argument(
        "--loop",
        choices=["auto", "asyncio", "uvloop"],
        default="auto",
        help="uvicorn event loop (auto: uvloop when installed, as `aim-extender serve` does)",
    )
    parser.add_argument("--hostile", type=int, default=3, help="rounds of each hostile body (0: skip)")
    args = parser.parse_args()

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    server = multiprocessing.get_context("spawn").Process(
        target=run_server, args=(sock, args.names, args.http, args.loop), daemon=True
    )
    server.start()
    try:
        with httpx.Client(timeout=30) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if client.get(f"{url}/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("server did not become ready")
                time.sleep(0.1)
            pod_list = pods()
            names = node_names(args.names)
            name_bodies = [json.dumps({"Pod": p, "Nodes": None, "NodeNames": names}).encode() for p in pod_list]
            nodes = full_nodes(args.full_nodes)
            node_bodies = [
                json.dumps({"Pod": p, "Nodes": {"metadata": {}, "items": nodes}, "NodeNames": None}).encode()
                for p in pod_list
            ]
            http_impl, loop_impl = resolved(args.http, "httptools", "h11"), resolved(args.loop, "uvloop", "asyncio")
            print(
                f"python {sys.version.split()[0]}, {multiprocessing.cpu_count()} CPUs; {args.requests} pods per"
                f" scenario after {args.warmup} warm-up; pods cycle over {len(pod_list)} model/precision/count"
                f" mixes; server: uvicorn http={http_impl} loop={loop_impl}; client: {args.client}"
            )
            post = httpx_post(client, url) if args.client == "httpx" else stdlib_post(port)
            report(
                f"NodeNames mode: {args.names} names, cache pre-filled",
                measure(post, name_bodies, args.requests, args.warmup),
            )
            report(
                f"Nodes mode: {args.full_nodes} full Node objects",
                measure(post, node_bodies, max(args.requests // 3, 30), args.warmup // 3 or 1),
            )
            if args.hostile:
                bench_hostile(url, port, args.hostile)
    finally:
        server.terminate()
        server.join(timeout=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
