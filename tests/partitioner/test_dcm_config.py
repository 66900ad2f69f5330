"""DCM's config.json read back from its ConfigMap (``dcm.parse_config``, issue 18): our own document
and DCM's example are read; hostile ones (deep nesting, 5,000-digit numbers, not an object, too
large) are a one-line problem naming config.json, never a RecursionError in the controller. Read
through the controller's API shell from a real API server too."""

from __future__ import annotations

import json

import pytest

from partitioner import dcm
from partitioner.controller.kube import Kube
from partitioner.modes import Mode
from tests.controlplane.harness import ControlPlane

# DCM's example (ROCm/device-config-manager docs/configuration/configmap.md), trimmed to one profile.
DCM_EXAMPLE = """{
  "gpu-config-profiles": {
    "cpx-profile": {
      "skippedGPUs": {"ids": []},
      "profiles": [{"computePartition": "CPX", "memoryPartition": "NPS4", "numGPUsAssigned": 8}]
    }
  },
  "gpuClientSystemdServices": {"names": ["amd-metrics-exporter", "gpuagent"]}
}"""

HOSTILE = [
    ("deep", "[" * 100_000 + "]" * 100_000, "config.json is nested too deeply"),
    ("deep-object", '{"a": ' * 20 + "{}" + "}" * 20, "config.json is nested more than 16 levels deep"),
    ("huge-number", '{"gpu-config-profiles": {"n": ' + "9" * 5000 + "}}", "config.json is not JSON"),
    ("list", "[]", "config.json is not an object"),
    ("garbage", "\x00not json", "config.json is not JSON"),
]


def test_our_document_and_dcms_example_are_read() -> None:
    ours = dcm.config([(Mode("CPX", "NPS4"), 8), (Mode("SPX", "NPS1"), 8)])
    assert dcm.parse_config(dcm.configmap(ours)["data"][dcm.CONFIG_KEY]) == ours
    assert set(dcm.parse_config(DCM_EXAMPLE)["gpu-config-profiles"]) == {"cpx-profile"}


@pytest.mark.parametrize(("name", "text", "fragment"), HOSTILE, ids=[case[0] for case in HOSTILE])
def test_hostile_config_json_is_one_line_naming_it(name: str, text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=r"config\.json") as caught:
        dcm.parse_config(text)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)
    assert len(str(caught.value)) < 200


def test_larger_than_a_configmap_is_refused_before_parsing() -> None:
    text = json.dumps({"gpu-config-profiles": {}, "pad": "x" * dcm.MAX_CONFIG_BYTES})
    with pytest.raises(ValueError, match=r"config\.json is larger than 1024 KiB"):
        dcm.parse_config(text)


def test_hostile_config_json_from_the_api_server_is_a_problem(control_plane: ControlPlane, namespace: str) -> None:
    core, kube = control_plane.core, Kube(control_plane.api)
    for name, text, fragment in HOSTILE:
        core.create_namespaced_config_map(namespace, {"metadata": {"name": name}, "data": {dcm.CONFIG_KEY: text}})
        found = kube.read_profiles(namespace, name)
        assert found.exists and found.document is None and found.profiles() == {}
        assert (found.problem or "").startswith(f"ConfigMap {namespace}/{name}: {fragment}"), found.problem
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "ok"}, "data": {dcm.CONFIG_KEY: DCM_EXAMPLE}})
    assert set(kube.read_profiles(namespace, "ok").profiles()) == {"cpx-profile"}
