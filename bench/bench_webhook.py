#!/usr/bin/env python3
"""Benchmark the admission webhook: time per AdmissionReview, in process and over real HTTPS.

Cases are the AdmissionReview bodies of tests/fixtures/admission (a catalogue-model Pod, a profile
InferenceService, a Pod with the user's own values, a model that fits nowhere, a garbage annotation).
The cluster has --nodes labelled nodes of five partition shapes (the webhook keeps distinct offers).

  core   ``review()`` on the request bytes: decode, size, patch, encode (what one call costs the CPU)
  https  POST /mutate to the webhook under uvicorn with TLS in its own process, one keep-alive
         connection, sequential calls (the API server sends one review per object)

    .venv/bin/python bench/bench_webhook.py [--requests 2000] [--https-requests 300] [--nodes 5000]

Not a test: it prints p50/p99 per case.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import socket
import ssl
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from extender.admission.certs import make_ca, make_serving
from extender.admission.inventory import PartitionInventory
from extender.admission.mutation import Options
from extender.admission.review import review
from extender.admission.server import CertificateReloader, create_webhook_app, webhook_server
from sizing.contract import PartitionShape, node_labels

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


def bench_https(bodies: dict[str, bytes], nodes: int, requests: int) -> None:
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
        finally:
            server.terminate()
            server.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="in-process calls per case")
    parser.add_argument("--https-requests", type=int, default=300, help="HTTPS calls per case (0: skip)")
    parser.add_argument("--nodes", type=int, default=5000, help="labelled nodes in the cluster")
    args = parser.parse_args()
    bodies = {name: (FIXTURES / file).read_bytes() for name, file in CASES.items()}
    print(f"{args.nodes} nodes, {len(inventory(args.nodes).offers())} distinct partition offers")
    bench_core(bodies, inventory(args.nodes), args.requests)
    if args.https_requests:
        bench_https(bodies, args.nodes, args.https_requests)


if __name__ == "__main__":
    main()
