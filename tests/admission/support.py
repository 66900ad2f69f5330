"""Helpers for the webhook tests: AdmissionReview bodies, applying a reply's patch, schema checks,
and the webhook served over real HTTPS (uvicorn, a certificate from ``aim-extender certs``' code).
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import socket
import ssl
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonpatch
import jsonschema
import kubernetes_validate
import yaml

import sizing
from sizing import Catalogue
from sizing.contract import PartitionShape, node_labels
from sizing.models_dir import extend_catalogue, parse_entry
from tests.extender.support import server_thread
from webhook.certs import make_ca, make_serving
from webhook.inventory import PartitionInventory
from webhook.mutation import Options
from webhook.server import CertificateReloader, create_webhook_app, webhook_server

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "admission"
MODELS_CONFIGMAP = Path(__file__).resolve().parents[2] / "manifests" / "models" / "configmap.yaml"
GIB = 1 << 30
KUBERNETES_VERSION = "1.37"  # newest schema kubernetes-validate ships (tests/deploy uses it too)
POD_KIND = {"group": "", "version": "v1", "kind": "Pod"}
ISVC_KIND = {"group": "serving.kserve.io", "version": "v1beta1", "kind": "InferenceService"}


@cache
def models_directory_catalogue() -> Catalogue:
    """The catalogue plus a models directory of two entries: the shipped example ConfigMap's
    pre-quantized AWQ checkpoint (jmurphy97/mistral-7b-awq), and the same real Mistral config
    without its quantization_config as a 16-bit model (example-org/mistral-7b-base)."""
    data = yaml.safe_load(MODELS_CONFIGMAP.read_text())["data"]
    (name, text), = data.items()
    awq = parse_entry(text, name)
    document = json.loads(text)
    document["id"] = "example-org/mistral-7b-base"
    document["config"].pop("quantization_config")
    document["config"]["torch_dtype"] = "bfloat16"
    plain = parse_entry(json.dumps(document), "example-org--mistral-7b-base.json")
    return extend_catalogue(sizing.CATALOGUE, [awq, plain])


def partition_labels(product: str, compute_mode: str, memory_gib: int, count: int) -> dict[str, str]:
    """The labels our device plugin writes for ``count`` equal partitions (sizing.contract)."""
    shape = PartitionShape(product, compute_mode, "NPS4" if compute_mode == "CPX" else "NPS1", 38, memory_gib * GIB)
    return {k: v for k, v in node_labels([shape] * count).items() if v is not None}


def inventory_of(**nodes: dict[str, str]) -> PartitionInventory:
    inventory = PartitionInventory()
    for name, labels in nodes.items():
        inventory.set_node(name, labels)
    return inventory


def demo_inventory() -> PartitionInventory:
    """MI300X nodes in CPX (64 x 24 GiB) and MI308X-like nodes with 32 x 48 GiB partitions."""
    return inventory_of(cpx=partition_labels("MI300X", "CPX", 24, 64), qpx=partition_labels("MI308X", "CPX", 48, 32))


def review_request(kind: Mapping[str, str], obj: Mapping[str, Any], operation: str = "CREATE") -> dict[str, Any]:
    """An AdmissionReview as the API server sends it."""
    resource = "pods" if kind["kind"] == "Pod" else "inferenceservices"
    return {
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()), "kind": dict(kind),
            "resource": {"group": kind["group"], "version": kind["version"], "resource": resource},
            "requestKind": dict(kind), "namespace": "team-a", "operation": operation,
            "userInfo": {"username": "alice"}, "object": copy.deepcopy(dict(obj)), "oldObject": None,
            "dryRun": False, "options": None,
        },
    }


@dataclass(frozen=True)
class Answer:
    """One AdmissionReview response, decoded."""

    review: dict[str, Any]
    ops: list[dict[str, Any]]

    @property
    def response(self) -> dict[str, Any]:
        return self.review["response"]

    @property
    def allowed(self) -> bool:
        return bool(self.response["allowed"])

    @property
    def warnings(self) -> list[str]:
        return list(self.response.get("warnings") or [])

    def applied_to(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        return jsonpatch.apply_patch(copy.deepcopy(dict(obj)), self.ops)


def decode(review: dict[str, Any]) -> Answer:
    response = review["response"]
    ops: list[dict[str, Any]] = []
    if "patch" in response:
        assert response["patchType"] == "JSONPatch"
        ops = json.loads(base64.b64decode(response["patch"]))
    return Answer(review, ops)


def validate_pod(pod: Mapping[str, Any]) -> None:
    kubernetes_validate.validate(dict(pod), KUBERNETES_VERSION, strict=True)


@cache
def _isvc_validator() -> jsonschema.Draft7Validator:
    schema = json.loads((FIXTURES / "inferenceservice-v1beta1.schema.json").read_text())
    return jsonschema.Draft7Validator(schema)


def validate_inference_service(obj: Mapping[str, Any]) -> None:
    """Against KServe's own CRD schema (openAPIV3Schema, trimmed; see the fixture's $comment)."""
    _isvc_validator().validate(dict(obj))


def args_of(container: Mapping[str, Any]) -> dict[str, str]:
    """``--flag=value`` / ``--flag value`` tokens of a container as a dict (last one wins)."""
    out: dict[str, str] = {}
    tokens = list(container.get("args") or [])
    for index, token in enumerate(tokens):
        if not token.startswith("--"):
            continue
        name, sep, value = token.partition("=")
        if not sep:
            nxt = tokens[index + 1] if index + 1 < len(tokens) else ""
            value = "" if nxt.startswith("--") else nxt
        out[name] = value
    return out


def flag_count(container: Mapping[str, Any], flag: str) -> int:
    return sum(1 for t in container.get("args") or [] if t == flag or t.startswith(flag + "="))


@dataclass(frozen=True)
class TLSFiles:
    ca: Path
    cert: Path
    key: Path


def write_tls(directory: Path, names: tuple[str, ...] = ("localhost", "127.0.0.1")) -> TLSFiles:
    """A CA and a serving certificate for ``names``, made by the certs command's own functions."""
    now = dt.datetime.now(dt.UTC)
    ca = make_ca("aim webhook test CA", now)
    serving = make_serving(ca, names, now)
    files = TLSFiles(directory / "ca.crt", directory / "tls.crt", directory / "tls.key")
    files.ca.write_bytes(ca.cert_pem)
    files.cert.write_bytes(serving.cert_pem)
    files.key.write_bytes(serving.key_pem)
    return files


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@dataclass
class RunningWebhook:
    url: str
    tls: TLSFiles
    inventory: PartitionInventory
    reloader: CertificateReloader
    client: httpx.Client

    def review(self, kind: Mapping[str, str], obj: Mapping[str, Any], operation: str = "CREATE") -> Answer:
        body = review_request(kind, obj, operation)
        reply = self.client.post(self.url + "/mutate", json=body)
        assert reply.status_code == 200, reply.text
        answer = decode(reply.json())
        assert answer.response["uid"] == body["request"]["uid"]
        return answer


@contextmanager
def serve_webhook(directory: Path, inventory: PartitionInventory,
                  options: Options | None = None) -> Iterator[RunningWebhook]:
    """The webhook app under uvicorn with TLS on 127.0.0.1 (a free port), in a thread."""
    tls = write_tls(directory)
    reloader = CertificateReloader(str(tls.cert), str(tls.key))
    app = create_webhook_app(inventory.offers, options or Options())
    sock = free_socket()
    port = sock.getsockname()[1]
    server = webhook_server(app, "127.0.0.1", port, reloader)
    context = ssl.create_default_context(cafile=str(tls.ca))
    try:
        with server_thread(server, sock, "the webhook server"), httpx.Client(verify=context, timeout=10) as client:
            yield RunningWebhook(f"https://localhost:{port}", tls, inventory, reloader, client)
    finally:
        sock.close()
