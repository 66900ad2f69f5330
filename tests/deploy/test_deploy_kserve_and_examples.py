"""KServe runtime and the workload examples carry what the extender and vLLM need.

kubernetes-validate has no schema for KServe's CRDs, so their required fields are checked here:
- InferenceService: apiVersion/kind, spec.predictor.model.modelFormat.name, a runtime that
  exists and supports that format, schedulerName, the aim.amd.com/* annotations on the pod,
  amd.com/gpu-partition requests == limits;
- ClusterServingRuntime: container kserve-container, a ROCm vLLM image (never KServe's vLLM image
  that is swapped for the CPU build), /dev/shm as a memory emptyDir, port 8000 served and probed;
- for every example (KServe and plain Deployment): the annotations name a catalogued model and a
  precision the sizing library parses, --max-model-len matches the annotation and the effective
  --tensor-parallel-size (runtime args + ISVC args, last wins) equals the partition count.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.deploy_support import RESOURCE, SCHEDULER_NAME, Doc, find, one, parse_flags

ANNOTATIONS = ("aim.amd.com/model", "aim.amd.com/precision", "aim.amd.com/max-model-len")

ISVCS = find("InferenceService")
RUNTIMES = find("ClusterServingRuntime")
EXAMPLE_DEPLOYMENTS = [d for d in find("Deployment") if "examples" in d.path.parts]


def isvc_id(d: Doc) -> str:
    return d.name


def runtime_for(isvc: Doc) -> Doc:
    return one("ClusterServingRuntime", isvc.body["spec"]["predictor"]["model"]["runtime"])


def effective_args(isvc: Doc) -> list[str]:
    """KServe appends the InferenceService container args to the runtime container args."""
    runtime_args = runtime_for(isvc).body["spec"]["containers"][0].get("args", [])
    return list(runtime_args) + list(isvc.body["spec"]["predictor"]["model"].get("args", []))


def partitions(resources: dict[str, Any]) -> int:
    requests, limits = resources.get("requests", {}), resources.get("limits", {})
    assert RESOURCE in limits, f"{RESOURCE} missing from limits"
    assert requests.get(RESOURCE) == limits[RESOURCE], "extended resources need requests == limits"
    count = limits[RESOURCE]
    assert isinstance(count, str) and count.isdigit(), f"quote the count: {count!r}"
    return int(count)


def examples() -> list[tuple[str, dict[str, str], list[str], dict[str, Any]]]:
    """(id, pod annotations, effective vLLM args, resources) for every example workload."""
    out = []
    for isvc in ISVCS:
        predictor = isvc.body["spec"]["predictor"]
        out.append(
            (f"isvc/{isvc.name}", predictor["annotations"], effective_args(isvc), predictor["model"]["resources"])
        )
    for dep in EXAMPLE_DEPLOYMENTS:
        template = dep.body["spec"]["template"]
        container = template["spec"]["containers"][0]
        out.append(
            (f"deployment/{dep.name}", template["metadata"]["annotations"], container["args"], container["resources"])
        )
    return out


EXAMPLES = examples()


def test_there_is_a_one_partition_and_a_multi_partition_inference_service() -> None:
    counts = sorted(partitions(d.body["spec"]["predictor"]["model"]["resources"]) for d in ISVCS)
    assert counts[0] == 1 and counts[-1] >= 2
    assert EXAMPLE_DEPLOYMENTS, "a plain Deployment example is expected"


@pytest.mark.parametrize("isvc", ISVCS, ids=isvc_id)
def test_inference_service_has_the_required_fields(isvc: Doc) -> None:
    assert isvc.api_version == "serving.kserve.io/v1beta1" and isvc.kind == "InferenceService"
    predictor = isvc.body["spec"]["predictor"]
    assert predictor["model"]["modelFormat"]["name"]
    assert predictor["schedulerName"] == SCHEDULER_NAME
    assert set(ANNOTATIONS) <= predictor["annotations"].keys(), "the extender reads these pod annotations"
    assert partitions(predictor["model"]["resources"]) >= 1


@pytest.mark.parametrize("isvc", ISVCS, ids=isvc_id)
def test_inference_service_uses_a_runtime_that_supports_its_format(isvc: Doc) -> None:
    model = isvc.body["spec"]["predictor"]["model"]
    formats = {f["name"] for f in runtime_for(isvc).body["spec"]["supportedModelFormats"]}
    assert model["modelFormat"]["name"] in formats


@pytest.mark.parametrize("isvc", ISVCS, ids=isvc_id)
def test_inference_service_runs_as_a_plain_deployment(isvc: Doc) -> None:
    """Knative rejects schedulerName unless kubernetes.podspec-schedulername is enabled."""
    mode = isvc.body["metadata"]["annotations"]["serving.kserve.io/deploymentMode"]
    assert mode in {"RawDeployment", "Standard"}


@pytest.mark.parametrize("runtime", RUNTIMES, ids=lambda d: d.name)
def test_runtime_serves_vllm_on_rocm(runtime: Doc) -> None:
    assert runtime.api_version == "serving.kserve.io/v1alpha1"
    spec = runtime.body["spec"]
    container = spec["containers"][0]
    assert container["name"] == "kserve-container"
    image = container["image"]
    assert image.startswith("rocm/vllm:"), "KServe swaps vllm/vllm-openai for the CPU build without nvidia.com/gpu"
    assert ":" in image and not image.endswith(":latest")
    flags = parse_flags(container["args"])
    assert {"--model", "--served-model-name", "--tensor-parallel-size", "--port"} <= flags.keys()
    port = int(flags["--port"])
    assert port == 8000 and port in {p["containerPort"] for p in container["ports"]}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] == port


@pytest.mark.parametrize("runtime", RUNTIMES, ids=lambda d: d.name)
def test_runtime_gives_vllm_a_memory_backed_dev_shm(runtime: Doc) -> None:
    spec = runtime.body["spec"]
    mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["mountPath"] == "/dev/shm")
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    assert volume["emptyDir"]["medium"] == "Memory"


@pytest.mark.parametrize("deployment", EXAMPLE_DEPLOYMENTS, ids=lambda d: d.name)
def test_plain_deployment_example_opts_in_like_an_inference_service(deployment: Doc) -> None:
    template = deployment.body["spec"]["template"]
    assert template["spec"]["schedulerName"] == SCHEDULER_NAME
    assert set(ANNOTATIONS) <= template["metadata"]["annotations"].keys()
    assert partitions(template["spec"]["containers"][0]["resources"]) == 1
    shm = next(v for v in template["spec"]["volumes"] if v["name"] == "dshm")
    assert shm["emptyDir"]["medium"] == "Memory"


@pytest.mark.parametrize(("example", "annotations", "args", "resources"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_vllm_args_agree_with_the_sizing_annotations(example, annotations, args, resources) -> None:
    flags = parse_flags(args)
    assert int(flags["--tensor-parallel-size"]) == partitions(resources), "one vLLM rank per partition"
    assert flags["--max-model-len"] == annotations["aim.amd.com/max-model-len"]


@pytest.mark.parametrize(("example", "annotations", "args", "resources"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_annotations_name_a_catalogued_model_and_a_known_precision(example, annotations, args, resources) -> None:
    sizing = pytest.importorskip("sizing", reason="the sizing package is not importable")
    sizing.CATALOGUE.get_model(annotations["aim.amd.com/model"])
    sizing.parse_precision(annotations["aim.amd.com/precision"])
    assert int(annotations["aim.amd.com/max-model-len"]) > 0
