#!/usr/bin/env python3
"""Benchmark the admission webhook: time per AdmissionReview, in process and over real HTTPS.

Cases are the AdmissionReview bodies of tests/fixtures/admission (a catalogue-model Pod, a profile
InferenceService, a Pod with the user's own values, a model that fits nowhere, a garbage annotation).
The cluster has --nodes labelled nodes of five partition shapes (the webhook keeps distinct offers).

  core   ``review()`` on the request bytes: decode, size, patch, encode (what one call costs the CPU)
  https  POST /mutate to the webhook under uvicorn with TLS in its own process, one keep-alive
         connection, sequential calls (the API server sends one review per object)
  big    a Pod at the bounds the webhook reads: 256 containers of 1,024 args each (the serving
         container last), sized and patched (what the patch's diff costs on a big object)
  hostile  a Pod with 1,000,000 containers (3 MB, denied): ``review()`` time in process, and over
         HTTPS the review's time and the slowest /healthz answered meanwhile (issue 18)

    .venv/bin/python bench/bench_webhook.py [--requests 2000] [--https-requests 300] [--nodes 5000]
        [--big-requests 200] [--hostile-requests 5]

Not a test: it prints p50/p99 per case.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import socket
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sizing.contract import PartitionShape, node_labels
from tests.extender.support import HealthProbe
from webhook.certs import make_ca, make_serving
from webhook.inventory import PartitionInventory
from webhook.mutation import Options
from webhook.review import review
from webhook.server import CertificateReloader, create_webhook_app, webhook_server

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "admission"
CASES = {
    "pod catalogue model": "review-pod-catalogue-model.json",
    "isvc profile": "review-isvc-profile.json",
    "pod user values": "review-pod-user-values.json",
    "isvc fits nowhere": "review-isvc-fits-nowhere.json",
    "pod garbage annotation": "review-pod-garbage-annotation.json",
}
GIB = 1 << 30
# (GiB per partition, partitions per node, compute mode, product): a mixed fleet of 8-GPU nodes.
NODE_SHAPES = [(24, 64, "CPX", "MI300X"), (48, 32, "QPX", "MI300X"), (192, 8, "SPX", "MI300X"),
               (32, 64, "CPX", "MI325X"), (256, 8, "SPX", "MI325X")]


def inventory(nodes: int) -> PartitionInventory:
    inv = PartitionInventory()
    for index in range(nodes):
        gib, count, mode, product = NODE_SHAPES[index % len(NODE_SHAPES)]
        shape = PartitionShape(product, mode, "NPS1", 38, gib * GIB)
        inv.set_node(f"node-{index}", node_labels([shape] * count))
    return inv


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered) * 1e3
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3
    return f"p50 {p50:7.3f} ms  p99 {p99:7.3f} ms"


def bench_core(bodies: dict[str, bytes], inv: PartitionInventory, requests: int) -> None:
    options = Options()
    print(f"core: review() in process, {requests} calls per case")
    for name, body in bodies.items():
        review(body, inv.offers, options)  # warm sizing's caches, as a running server has them
        samples = []
        for _ in range(requests):
            started = time.perf_counter()
            review(body, inv.offers, options)
            samples.append(time.perf_counter() - started)
        print(f"  {name:24s} {percentiles(samples)}")


def _serve(port: int, cert: str, key: str, nodes: int) -> None:
    inv = inventory(nodes)
    app = create_webhook_app(inv.offers, Options())
    webhook_server(app, "127.0.0.1", port, CertificateReloader(cert, key)).run()


def million_containers() -> bytes:
    """The catalogue-model Pod review with 1,000,000 empty containers before its own (3 MB)."""
    body = json.loads((FIXTURES / CASES["pod catalogue model"]).read_text())
    spec = body["request"]["object"]["spec"]
    spec["containers"] = [{}] * 1_000_000 + spec["containers"]
    return json.dumps(body).encode()


BIG_CONTAINERS = 256  # webhook.workload.MAX_CONTAINERS
BIG_ARGS = 1024  # webhook.workload.MAX_TOKENS


def big_pod() -> bytes:
    """The catalogue-model Pod review with 255 sidecars before its vLLM container, every container
    with 1,024 args (the serving container's own two plus 1,022 more), about 2.5 MB."""
    body = json.loads((FIXTURES / CASES["pod catalogue model"]).read_text())
    spec = body["request"]["object"]["spec"]
    vllm = spec["containers"][0]
    vllm["args"] = vllm["args"] + [f"--x{j}" for j in range(BIG_ARGS - len(vllm["args"]))]
    sidecars = [{"name": f"side-{i}", "image": "busybox", "args": [f"--x{j}" for j in range(BIG_ARGS)]}
                for i in range(BIG_CONTAINERS - 1)]
    spec["containers"] = [*sidecars, vllm]
    return json.dumps(body).encode()


def bench_hostile_core(body: bytes, inv: PartitionInventory, requests: int) -> None:
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        reply = review(body, inv.offers, Options())
        samples.append(time.perf_counter() - started)
    print(f"hostile: review() of a Pod with 1,000,000 containers ({len(body) / 1e6:.1f} MB), {requests} calls:"
          f" {percentiles(samples)}; answer: {json.loads(reply.body)['response'].get('status', {}).get('message')}")


def bench_https(bodies: dict[str, bytes], nodes: int, requests: int, hostile: bytes | None = None,
                hostile_requests: int = 0) -> None:
    with tempfile.TemporaryDirectory() as directory:
        now = dt.datetime.now(dt.UTC)
        ca = make_ca("bench CA", now)
        serving = make_serving(ca, ("localhost",), now)
        cert, key, ca_file = Path(directory, "tls.crt"), Path(directory, "tls.key"), Path(directory, "ca.crt")
        cert.write_bytes(serving.cert_pem)
        key.write_bytes(serving.key_pem)
        ca_file.write_bytes(ca.cert_pem)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = multiprocessing.Process(target=_serve, args=(port, str(cert), str(key), nodes), daemon=True)
        server.start()
        url = f"https://localhost:{port}/mutate"
        context = ssl.create_default_context(cafile=str(ca_file))
        try:
            with httpx.Client(verify=context, timeout=10) as client:
                deadline = time.monotonic() + 30
                while True:
                    try:
                        client.get(f"https://localhost:{port}/healthz")
                        break
                    except httpx.HTTPError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.1)
                print(f"https: POST /mutate over TLS, keep-alive, {requests} calls per case")
                for name, body in bodies.items():
                    headers = {"Content-Type": "application/json"}
                    client.post(url, content=body, headers=headers)
                    samples = []
                    for _ in range(requests):
                        started = time.perf_counter()
                        reply = client.post(url, content=body, headers=headers)
                        samples.append(time.perf_counter() - started)
                        assert reply.status_code == 200, reply.text
                    print(f"  {name:24s} {percentiles(samples)}")
                if hostile is not None and hostile_requests:
                    headers = {"Content-Type": "application/json"}
                    samples, slowest = [], []
                    for _ in range(hostile_requests):
                        probing = HealthProbe(f"https://localhost:{port}", verify=context, timeout=30, interval=0.01)
                        with probing as probe:
                            time.sleep(0.1)
                            started = time.perf_counter()
                            reply = client.post(url, content=hostile, headers=headers)
                            samples.append(time.perf_counter() - started)
                            time.sleep(0.1)
                        slowest.append(probe.slowest)
                        assert reply.status_code == 200, reply.text[:300]
                    print(f"  1,000,000 containers     {percentiles(samples)}; slowest /healthz meanwhile"
                          f" {max(slowest) * 1e3:.0f} ms (median of runs {statistics.median(slowest) * 1e3:.0f} ms)")
        finally:
            server.terminate()
            server.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="in-process calls per case")
    parser.add_argument("--https-requests", type=int, default=300, help="HTTPS calls per case (0: skip)")
    parser.add_argument("--nodes", type=int, default=5000, help="labelled nodes in the cluster")
    parser.add_argument("--big-requests", type=int, default=200, help="256 x 1,024-args Pod reviews (0: skip)")
    parser.add_argument("--hostile-requests", type=int, default=5, help="1,000,000-container reviews (0: skip)")
    args = parser.parse_args()
    bodies = {name: (FIXTURES / file).read_bytes() for name, file in CASES.items()}
    print(f"{args.nodes} nodes, {len(inventory(args.nodes).offers())} distinct partition offers")
    bench_core(bodies, inventory(args.nodes), args.requests)
    if args.big_requests:
        bench_core({"pod 256 x 1,024 args": big_pod()}, inventory(args.nodes), args.big_requests)
    hostile = million_containers() if args.hostile_requests else None
    if hostile is not None:
        bench_hostile_core(hostile, inventory(args.nodes), args.hostile_requests)
    if args.https_requests:
        bench_https(bodies, args.nodes, args.https_requests, hostile, args.hostile_requests)


if __name__ == "__main__":
    main()
