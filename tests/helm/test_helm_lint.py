"""The chart without a cluster: Helm's own lint (helm-sdkpy), values.yaml against
values.schema.json, and the dashboards as Grafana JSON."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.helm.chart_support import CHART, helm

# Helm's support.Severity: 1 info, 2 warning, 3 error.
WARNING = 2
DASHBOARDS = sorted((CHART / "dashboards").glob("*.json"))


def lint(chart: Path) -> dict[str, Any]:
    h = helm()
    return asyncio.run(h.Lint(h.Configuration(namespace="default")).run(str(chart)))


def test_chart_lints_without_warnings() -> None:
    result = lint(CHART)
    assert result["TotalChartsLinted"] == 1
    problems = [m for m in result["Messages"] if m["Severity"] >= WARNING]
    assert not problems, problems
    assert not result["Errors"]


def test_lint_catches_a_broken_template(tmp_path: Path) -> None:
    broken = tmp_path / "aim-gpu-sharing"
    shutil.copytree(CHART, broken)
    (broken / "templates" / "extender" / "service.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Values.namePrefix | noSuchFunction }}\n")
    result = lint(broken)
    assert [m for m in result["Messages"] if m["Severity"] > WARNING] or result["Errors"]


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(loaded)
    return loaded


def test_default_values_satisfy_the_schema(schema: dict[str, Any]) -> None:
    jsonschema.validate(yaml.safe_load((CHART / "values.yaml").read_text()), schema)


@pytest.mark.parametrize(("path", "bad"), [
    (("extender", "policy"), "best-fast"),
    (("extender", "cacheMode"), "sometimes"),
    (("extender", "replicas"), 0),
    (("webhook", "timeoutSeconds"), 31),
    (("webhook", "certificates", "mode"), "self-signed"),
    (("scheduler", "mode"), "both"),
    (("partitioner", "mode"), "yolo"),
    (("deviceplugin", "metricsPort"), 70000),
    (("namePrefix",), "Bad_Name"),
    (("resourceName",), "gpu-partition"),
    (("monitoring", "prometheusRule", "extenderP99BudgetSeconds"), 0),
])
def test_schema_rejects_bad_values(schema: dict[str, Any], path: tuple[str, ...], bad: Any) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    target = values
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = bad
    with pytest.raises(jsonschema.ValidationError) as raised:
        jsonschema.validate(values, schema)
    assert list(raised.value.absolute_path) == list(path)


def test_schema_rejects_misspelled_keys(schema: dict[str, Any]) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    values["extender"]["polcy"] = "spread"
    with pytest.raises(jsonschema.ValidationError, match="polcy"):
        jsonschema.validate(values, schema)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboards_are_grafana_json(path: Path) -> None:
    board = json.loads(path.read_text())
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 36
    panels = board["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    queried = [p for p in panels if p["type"] != "row"]
    assert queried
    for panel in queried:
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        assert panel["datasource"]["uid"] == "${datasource}"
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
    variables = [v["name"] for v in board["templating"]["list"]]
    assert "datasource" in variables


def test_dashboard_uids_are_unique() -> None:
    uids = [json.loads(p.read_text())["uid"] for p in DASHBOARDS]
    assert len(DASHBOARDS) == 3 and len(set(uids)) == 3
