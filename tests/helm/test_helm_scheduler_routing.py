"""The chart routes what its webhook sizes to the scheduler it installs (issue 16, item 2), on the
real control plane: the extender run with the args of the default release's Deployment (only
ports and file paths replaced), the release's webhook entry (only its endpoint and scope replaced)
and a kube-scheduler run with the release's own KubeSchedulerConfiguration (only the extender's
URL replaced). A Pod that names no scheduler is stored with spec.schedulerName aim-gpu-scheduler
and bound by that scheduler (its Scheduled event says so) to the partition that fits best; an
InferenceService is stored with spec.predictor.schedulerName. And the value that turns it off.

Why kube-system: every release of this package has a fail-closed webhook for opted-in objects
everywhere except kube-system and its own namespace, with no pod behind it here; kube-system is
the one namespace none of them intercepts. The copy of the entry is limited to this test's objects."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from kubernetes import client

from sizing.contract import ANNOTATION_MODEL, ANNOTATION_PRECISION, RESOURCE_NAME
from tests.controlplane.deployment import install_kserve_crds
from tests.controlplane.gpu_cluster import IMAGE, POOL, POOL_LABEL, bound_node, create_pool, delete_pool
from tests.controlplane.harness import ControlPlane, RunningExtender
from tests.controlplane.processes import ManagedProcess, free_port, wait_until
from tests.deploy.deploy_support import parse_flags
from tests.helm.chart_support import install, uninstall
from tests.helm.conftest import DEFAULTS, Installed

NAMESPACE = "kube-system"  # see the module docstring
TEST_LABEL = "aim.test/routing"  # limits the webhook copy to this test's objects
OPT_IN = "aim.amd.com/admission"
SCHEDULER = "aim-gpu-scheduler"  # values.yaml scheduler.name
WEBHOOK_COPY = "hd-routing-webhook"
# The flags the harness sets itself, and those naming ports or files of the pod.
HARNESS_FLAGS = ("--host", "--port", "--node-cache", "--policy")
READY_TIMEOUT_SECONDS = 60.0


@dataclass
class Routing:
    plane: ControlPlane
    extender: RunningExtender
    scheduler: ManagedProcess
    cpx: str  # node with 24 GiB partitions
    spx: str  # node with one 192 GiB partition


def container_args(installed: Installed, kind: str, name: str) -> list[str]:
    obj = installed.release.one(kind, f"{installed.combination.prefix}-{name}")
    args: list[str] = obj["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


def local_args(args: list[str], replace: dict[str, str]) -> list[str]:
    """The Deployment's ``serve`` args with the harness's flags left out and ``replace`` applied."""
    assert args[0] == "serve"
    out = []
    for arg in args[1:]:
        flag = arg.split("=", 1)[0]
        if flag in HARNESS_FLAGS:
            continue
        out.append(f"{flag}={replace[flag]}" if flag in replace else arg)
    return out


def webhook_copy(plane: ControlPlane, installed: Installed, port: int) -> dict[str, Any]:
    """The release's "objects" entry as the API server stores it, called by URL (no Service can
    be reached here) and limited to kube-system objects labelled TEST_LABEL."""
    stored = client.AdmissionregistrationV1Api(plane.api).read_mutating_webhook_configuration(
        f"{installed.combination.prefix}-webhook")
    document = plane.api.sanitize_for_serialization(stored)
    (entry,) = [copy.deepcopy(w) for w in document["webhooks"] if w["name"].startswith("objects.")]
    entry["clientConfig"] = {"url": f"https://127.0.0.1:{port}/mutate",
                             "caBundle": base64.b64encode(plane.ca.cert_path.read_bytes()).decode()}
    entry["namespaceSelector"] = {"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}}
    entry["objectSelector"]["matchLabels"][TEST_LABEL] = "yes"
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": WEBHOOK_COPY}, "webhooks": [entry]}


def scheduler_config(installed: Installed, extender_url: str) -> dict[str, Any]:
    """The release's KubeSchedulerConfiguration, the extender reached at ``extender_url``; the
    harness fills in its client connection and leader election."""
    configmap = installed.release.one("ConfigMap", f"{installed.combination.prefix}-scheduler-config")
    config: dict[str, Any] = yaml.safe_load(configmap["data"]["config.yaml"])
    config.pop("leaderElection")
    (extender,) = config["extenders"]
    extender["urlPrefix"] = extender_url
    return config


def sized_pod(name: str, pool: str) -> dict[str, Any]:
    """An opted-in Pod as a user writes it: the model, no scheduler, no partitions."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {OPT_IN: "enabled", TEST_LABEL: "yes"},
                         "annotations": {ANNOTATION_MODEL: "meta-llama/Llama-3.1-8B-Instruct",
                                         ANNOTATION_PRECISION: "fp16"}},
            "spec": {"nodeSelector": {POOL_LABEL: pool}, "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "vllm", "image": IMAGE,
                                     "args": ["vllm", "serve", "meta-llama/Llama-3.1-8B-Instruct"]}]}}


@pytest.fixture(scope="module")
def routing(control_plane: ControlPlane, releases: dict[str, Installed],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Routing]:
    plane = control_plane
    installed = releases[DEFAULTS.key]
    specs = tuple(s for s in POOL if s.suffix in ("cpx8", "spx"))
    pool = create_pool(plane, "hroute", specs)
    processes: list[ManagedProcess] = []
    try:
        workdir = tmp_path_factory.mktemp("routing")
        (workdir / "models").mkdir()
        tls = plane.ca.issue(str(workdir / "webhook"), "webhook", ip_addresses=("127.0.0.1",), server=True)
        webhook_port = free_port()
        args = container_args(installed, "Deployment", "extender")
        flags = parse_flags(args)
        extender = plane.start_extender(
            node_cache=flags["--node-cache"], policy=flags["--policy"],
            extra_args=local_args(args, {"--models-dir": str(workdir / "models"),
                                         "--webhook-port": str(webhook_port),
                                         "--webhook-cert-file": str(tls.cert),
                                         "--webhook-key-file": str(tls.key)}))
        processes.append(extender.process)
        plane.kubectl("apply", "-f", "-", stdin=json.dumps(webhook_copy(plane, installed, webhook_port)))
        scheduler = plane.start_scheduler(scheduler_config(installed, extender.url), name="hroute-scheduler")
        processes.append(scheduler)
        wait_until(lambda: plane.scheduler_metrics(scheduler).get('scheduler_scheduler_cache_size{type="nodes"}', 0)
                   >= len(specs), READY_TIMEOUT_SECONDS, "the release's scheduler to see the nodes")
        yield Routing(plane, extender, scheduler, pool["cpx8"], pool["spx"])
    finally:
        plane.kubectl("delete", "mutatingwebhookconfiguration", WEBHOOK_COPY, "--ignore-not-found", check=False)
        plane.kubectl("delete", "pods", "-n", NAMESPACE, "-l", TEST_LABEL, "--force", "--grace-period=0",
                      "--ignore-not-found", check=False)
        for process in processes:
            plane.stop_process(process)
        delete_pool(plane, pool)


def test_the_default_release_routes_sized_pods_to_its_scheduler(routing: Routing) -> None:
    core = routing.plane.core

    def admitted() -> bool:
        """Until the webhook serves (its certificate loaded), creation is refused (failurePolicy Fail)."""
        try:
            core.create_namespaced_pod(NAMESPACE, sized_pod("hroute-llama-8b", "hroute"))
        except client.ApiException as error:
            assert "webhook" in str(error.body), error.body
            return False
        return True

    wait_until(admitted, READY_TIMEOUT_SECONDS, "the webhook to admit the pod")
    stored = core.read_namespaced_pod("hroute-llama-8b", NAMESPACE)
    assert stored.spec.scheduler_name == SCHEDULER
    assert stored.spec.containers[0].resources.limits[RESOURCE_NAME] == "1"
    record = json.loads(stored.metadata.annotations[OPT_IN])
    assert record["set"]["schedulerName"] == SCHEDULER
    # the 8B model fits a 24 GiB partition: best fit takes it, never the 192 GiB one
    assert bound_node(core, NAMESPACE, "hroute-llama-8b") == routing.cpx

    def scheduled_by() -> str | None:
        events = core.list_namespaced_event(NAMESPACE, field_selector="involvedObject.name=hroute-llama-8b").items
        return next((e.reporting_component for e in events if e.reason == "Scheduled"), None)

    assert wait_until(scheduled_by, 10.0, "the Scheduled event") == SCHEDULER


def test_an_inference_service_is_stored_with_the_predictors_scheduler(routing: Routing) -> None:
    plane = routing.plane
    established = plane.kubectl("get", "crd", "inferenceservices.serving.kserve.io", "-o",
                                "jsonpath={.status.conditions[?(@.type=='Established')].status}", check=False)
    if established.stdout != "True":  # other packages install them too; applying takes ~20 s
        install_kserve_crds(plane)
    isvc = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": "hroute-isvc", "namespace": NAMESPACE,
                         "labels": {OPT_IN: "enabled", TEST_LABEL: "yes"},
                         "annotations": {ANNOTATION_MODEL: "meta-llama/Llama-3.1-8B-Instruct",
                                         ANNOTATION_PRECISION: "fp16"}},
            "spec": {"predictor": {"model": {"modelFormat": {"name": "vllm-rocm"},
                                             "storageUri": "hf://meta-llama/Llama-3.1-8B-Instruct"}}}}
    done = plane.kubectl("create", "--dry-run=server", "-o", "json", "-f", "-", stdin=json.dumps(isvc))
    stored = json.loads(done.stdout)
    assert stored["spec"]["predictor"]["schedulerName"] == SCHEDULER
    assert stored["spec"]["predictor"]["model"]["resources"]["limits"][RESOURCE_NAME] == "1"


@pytest.mark.parametrize(("name", "values", "expected"), [
    ("hsn0", {"webhook": {"setSchedulerName": False}}, None),
    ("hsn1", {"scheduler": {"mode": "default-scheduler", "name": "gpu-profile"}, "kubeVersionOverride": "v1.30.0"},
     None),
    ("hsn2", {"scheduler": {"mode": "default-scheduler", "name": "gpu-profile"}, "kubeVersionOverride": "v1.30.0",
              "webhook": {"setSchedulerName": True}}, "gpu-profile"),
    ("hsn3", {"scheduler": {"name": "gpu-two"}}, "gpu-two"),
], ids=["off", "default-scheduler-auto", "default-scheduler-true", "renamed"])
def test_which_scheduler_name_the_webhook_is_given(control_plane: ControlPlane, releases: dict[str, Installed],
                                                   name: str, values: dict[str, Any], expected: str | None) -> None:
    """false turns it off; with default-scheduler it is off unless set true (the profile exists only
    once the user configured the default scheduler); it follows scheduler.name."""
    base = {"namePrefix": f"{name}-aim-gpu", "deviceplugin": {"enabled": False},
            "monitoring": {"dashboards": {"enabled": False}}}
    webhook = {"certificates": {"mode": "cert-manager"}, **values.get("webhook", {})}  # no hook Job to run here
    rendered = install(control_plane, name, f"{name}-ns", {**base, **values, "webhook": webhook})
    uninstall(control_plane, name, f"{name}-ns")
    args = rendered.one("Deployment", f"{name}-aim-gpu-extender")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert parse_flags(args).get("--webhook-scheduler-name") == expected
