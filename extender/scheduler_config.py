"""The KubeSchedulerConfiguration documents that register this extender with kube-scheduler.

One source for every copy: the shipped manifests (``kubescheduler.config.k8s.io/v1``, checked equal
to this module's output by tests/deploy) and the configurations the control-plane tests run
(``v1beta3``: Kubernetes 1.23 to 1.28; the pre-release 1.25 build the tests run takes only
this one; ``v1`` is GA from 1.25, KEP-785).
The extender fields are the same in both versions. Pure: builds dicts, no I/O.
Why each value: the comments in manifests/scheduler/kube-scheduler-config.yaml and
docs/deployment.md ("The scheduler configuration", "Why weight 150").

The native variant (``native_scheduler_config``, manifests/scheduler/kube-scheduler-config.native.yaml)
calls no extender: kube-scheduler's own plugins place best fit from what the admission webhook
writes into the pod (required ``memory-mib Gt`` node affinity, and preferred terms ranking the
smallest partition size that fits highest), with NodeAffinity weighted so that any difference in
those terms outranks everything else, then NodeResourcesFit MostAllocated over the partitions
(fullness) outranking the remaining score plugins: the extender's order (size, fullness, the rest)
without an HTTP round trip per pod (docs/extender.md "Native mode").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import yaml

from sizing.contract import RESOURCE_NAME

API_V1: Final = "kubescheduler.config.k8s.io/v1"
API_V1BETA3: Final = "kubescheduler.config.k8s.io/v1beta3"
API_VERSIONS: Final = (API_V1, API_V1BETA3)
KIND: Final = "KubeSchedulerConfiguration"

NAMESPACE: Final = "aim-gpu-sharing"
SCHEDULER_NAME: Final = "aim-gpu-scheduler"  # pods opt in with spec.schedulerName
DEFAULT_SCHEDULER_NAME: Final = "default-scheduler"
SERVICE_HOST: Final = "aim-gpu-extender.aim-gpu-sharing.svc"  # manifests/extender/service.yaml
SERVICE_PORT: Final = 8888  # the Service port and the extender's --port in the Deployment
# One step of the best-fit score (10 x 150) outranks every default in-tree score plugin (1,200).
WEIGHT: Final = 150
# A filter timeout fails the attempt; the extender answers from memory in milliseconds.
HTTP_TIMEOUT: Final = "2s"
# Best fit must see every feasible node (the adaptive default stops at 500 of 5,000).
PERCENTAGE_OF_NODES_TO_SCORE: Final = 100
# kubeadm's scheduler kubeconfig, for the default-scheduler variant.
KUBEADM_SCHEDULER_KUBECONFIG: Final = "/etc/kubernetes/scheduler.conf"
# Where the TLS component mounts the CA that signed the extender's certificate.
TLS_CA_FILE: Final = "/etc/aim-gpu-scheduler-extender-ca/ca.crt"

# Native mode. kube-scheduler's node scores are 0..MaxNodeScore = 100 per plugin, times the
# plugin's weight (pkg/scheduler/framework/interface.go).
MAX_NODE_SCORE: Final = 100
# Default score plugins the native profile turns off. NodeResourcesBalancedAllocation balances a
# node's CPU against its memory use: for pods placed by partition size and then partition fullness
# it only broke exact ties, and it was 12 % of kube-scheduler's CPU at 5,000 nodes (Go profile,
# bench/bench_scheduler.py --cpu-profile): off, native mode runs faster than plain kube-scheduler
# instead of 0.83-0.96 of it (docs/extender.md "Measured").
DISABLED_SCORE_PLUGINS: Final = ("NodeResourcesBalancedAllocation",)
# The other score plugins kube-scheduler enables by default that the native profile keeps, with
# their default weights (pkg/scheduler/apis/config/v1beta3 and v1 default_plugins.go; the same in
# 1.25 to 1.31).
OTHER_SCORE_WEIGHTS: Final = {"TaintToleration": 3, "PodTopologySpread": 2, "InterPodAffinity": 2,
                              "ImageLocality": 1}
# Fullness: one point of MostAllocated (1 x 1,000) outranks the most the other plugins give (100 x 8).
FULLNESS_WEIGHT: Final = 1_000
# Size: one point of the webhook's preferred terms (after NodeAffinity's normalization to 0..100)
# outranks fullness plus the rest (100 x (1,000 + 8) = 100,800); weights are int32 in the API.
SIZE_WEIGHT: Final = 1_000_000


@dataclass(frozen=True)
class ExtenderTLS:
    """HTTPS to the extender with server verification: a CA (file or inline PEM) and the name."""

    server_name: str = SERVICE_HOST
    ca_file: str | None = TLS_CA_FILE
    ca_data: str | None = None  # base64 of the PEM bundle; takes precedence over ca_file

    def __post_init__(self) -> None:
        if not (self.ca_file or self.ca_data):
            # Without a CA kube-scheduler sets Insecure and skips verification (extender.go makeTransport).
            raise ValueError("ExtenderTLS needs ca_file or ca_data: without a CA kube-scheduler does not verify")


@dataclass(frozen=True)
class ExtenderEndpoint:
    """Where kube-scheduler reaches the extender and how it sends nodes."""

    host: str = SERVICE_HOST
    port: int = SERVICE_PORT
    node_cache_capable: bool = True  # True: NodeNames only (extender --node-cache watch)
    tls: ExtenderTLS | None = None

    @property
    def url_prefix(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"


def extender_entry(endpoint: ExtenderEndpoint) -> dict[str, Any]:
    """One ``extenders:`` item."""
    entry: dict[str, Any] = {
        "urlPrefix": endpoint.url_prefix,
        "filterVerb": "filter",
        # Preemption picks victims with kube-scheduler's own plugins and asks only extenders with a
        # preemptVerb (v1.25 preemption.go callExtenders): /preempt drops nodes too small for the pod.
        "preemptVerb": "preempt",
        "prioritizeVerb": "prioritize",
        "weight": WEIGHT,
        "enableHTTPS": endpoint.tls is not None,
    }
    if endpoint.tls is not None:
        tls: dict[str, Any] = {"insecure": False}
        if endpoint.tls.ca_file:
            tls["caFile"] = endpoint.tls.ca_file
        if endpoint.tls.ca_data:
            tls["caData"] = endpoint.tls.ca_data
        tls["serverName"] = endpoint.tls.server_name
        entry["tlsConfig"] = tls
    entry |= {
        "nodeCacheCapable": endpoint.node_cache_capable,
        "managedResources": [{"name": RESOURCE_NAME, "ignoredByScheduler": False}],
        "httpTimeout": HTTP_TIMEOUT,
        "ignorable": False,
    }
    return entry


def _check_version(api_version: str) -> None:
    if api_version not in API_VERSIONS:
        raise ValueError(f"api_version {api_version!r}: expected one of {', '.join(API_VERSIONS)}")


def _second_scheduler_head(api_version: str, scheduler_name: str, leader_election: bool,
                           kubeconfig: str | None) -> dict[str, Any]:
    """What every second scheduler's document starts with: version, client, own lease, 100 %."""
    _check_version(api_version)
    config: dict[str, Any] = {"apiVersion": api_version, "kind": KIND}
    if kubeconfig is not None:
        config["clientConnection"] = {"kubeconfig": kubeconfig}
    config["leaderElection"] = (
        {"leaderElect": True, "resourceLock": "leases", "resourceName": scheduler_name,
         "resourceNamespace": NAMESPACE}
        if leader_election else {"leaderElect": False}
    )
    config["percentageOfNodesToScore"] = PERCENTAGE_OF_NODES_TO_SCORE
    return config


def second_scheduler_config(
    api_version: str = API_V1,
    *,
    endpoint: ExtenderEndpoint | None = None,
    scheduler_name: str = SCHEDULER_NAME,
    leader_election: bool = True,
    kubeconfig: str | None = None,
) -> dict[str, Any]:
    """The configuration of the second scheduler (manifests/scheduler/kube-scheduler-config.yaml
    with the defaults; components/tls/kube-scheduler-config.yaml with ``ExtenderTLS()``)."""
    config = _second_scheduler_head(api_version, scheduler_name, leader_election, kubeconfig)
    config["profiles"] = [{"schedulerName": scheduler_name}]
    config["extenders"] = [extender_entry(endpoint or ExtenderEndpoint())]
    return config


def native_profile(scheduler_name: str = SCHEDULER_NAME, resource_name: str = RESOURCE_NAME) -> dict[str, Any]:
    """The profile of native mode: the webhook's preferred node-affinity terms (partition size)
    first, fullness of ``resource_name`` (MostAllocated) next, the default plugins after (but
    DISABLED_SCORE_PLUGINS)."""
    return {
        "schedulerName": scheduler_name,
        "plugins": {"score": {"enabled": [
            {"name": "NodeAffinity", "weight": SIZE_WEIGHT},
            {"name": "NodeResourcesFit", "weight": FULLNESS_WEIGHT},
        ], "disabled": [{"name": name} for name in DISABLED_SCORE_PLUGINS]}},
        "pluginConfig": [{"name": "NodeResourcesFit", "args": {"scoringStrategy": {
            "type": "MostAllocated",
            "resources": [{"name": resource_name, "weight": 1}],
        }}}],
    }


def native_scheduler_config(
    api_version: str = API_V1,
    *,
    scheduler_name: str = SCHEDULER_NAME,
    leader_election: bool = True,
    kubeconfig: str | None = None,
) -> dict[str, Any]:
    """The second scheduler in native mode: no extender (manifests/scheduler/kube-scheduler-config.native.yaml).
    Needs the admission webhook, which writes the node affinity the profile ranks by."""
    config = _second_scheduler_head(api_version, scheduler_name, leader_election, kubeconfig)
    config["profiles"] = [native_profile(scheduler_name)]
    return config


def default_scheduler_config(
    api_version: str = API_V1,
    *,
    endpoint: ExtenderEndpoint | None = None,
    kubeconfig: str = KUBEADM_SCHEDULER_KUBECONFIG,
) -> dict[str, Any]:
    """The DEFAULT scheduler with the extender and an ``aim-gpu-scheduler`` profile
    (manifests/scheduler/kube-scheduler-config.default-scheduler.yaml). Only ``v1``: it needs the
    per-profile percentageOfNodesToScore, which arrived in 1.26 (kubernetes/kubernetes#112521),
    after the releases that take only v1beta3 (1.23, 1.24)."""
    _check_version(api_version)
    if api_version != API_V1:
        raise ValueError(f"api_version {api_version!r}: the default-scheduler variant needs {API_V1}"
                         " (percentageOfNodesToScore per profile)")
    return {
        "apiVersion": api_version,
        "kind": KIND,
        "clientConnection": {"kubeconfig": kubeconfig},
        "profiles": [
            {"schedulerName": DEFAULT_SCHEDULER_NAME},
            {"schedulerName": SCHEDULER_NAME, "percentageOfNodesToScore": PERCENTAGE_OF_NODES_TO_SCORE},
        ],
        "extenders": [extender_entry(endpoint or ExtenderEndpoint())],
    }


def to_yaml(config: dict[str, Any]) -> str:
    """The document as YAML, keys in the order built (what ``aim-extender scheduler-config`` prints)."""
    return yaml.safe_dump(config, sort_keys=False)
