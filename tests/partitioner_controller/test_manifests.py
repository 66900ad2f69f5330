"""manifests/partitioner agrees with the controller's CLI: its arguments parse, and the names the
RBAC rules grant (Lease, DCM ConfigMap) are the ones the controller uses with those arguments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from partitioner.cli import build_parser
from partitioner.controller import cli as controller_cli

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests" / "partitioner"


def _docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((MANIFESTS / name).read_text()) if d]


def _container() -> dict[str, Any]:
    (deployment,) = _docs("deployment.yaml")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def test_the_deployment_arguments_parse_and_start_in_recommend_mode() -> None:
    container = _container()
    assert container["command"] == ["aim-partitioner"]
    args = build_parser().parse_args(container["args"])
    assert args.command == "controller" and args.mode == "recommend" and args.leader_elect
    port = next(p["containerPort"] for p in container["ports"] if p["name"] == "metrics")
    assert args.metrics_port == port
    assert {e["name"] for e in container["env"]} == {"POD_NAMESPACE", "POD_NAME"}


def test_rbac_grants_the_names_the_controller_uses() -> None:
    args = build_parser().parse_args(_container()["args"])
    rules = {(d["kind"], d["metadata"].get("namespace")): d.get("rules", []) for d in _docs("rbac.yaml")}
    lease_rules = rules[("Role", "aim-gpu-sharing")]
    assert any(controller_cli.LEASE_NAME in r.get("resourceNames", []) and "update" in r["verbs"]
               for r in lease_rules)
    dcm_rules = rules[("Role", args.dcm_namespace)]
    assert any(args.dcm_configmap in r.get("resourceNames", []) and {"get", "patch"} <= set(r["verbs"])
               for r in dcm_rules)
    cluster = rules[("ClusterRole", None)]
    granted = {(res, verb) for r in cluster for res in r["resources"] for verb in r["verbs"]}
    assert {("nodes", "patch"), ("pods", "watch"), ("pods/eviction", "create"), ("events", "create")} <= granted
    assert ("pods", "delete") not in granted and ("nodes", "update") not in granted
