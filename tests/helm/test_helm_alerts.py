"""The chart's alert rules, as the FULL release renders them, checked and unit-tested by the real
promtool (tests/helm/prometheus_server.py finds it): ``promtool check rules`` loads them (PromQL,
durations, annotation templates), ``promtool test rules`` runs rules_tests/alerts.test.yaml (a healthy
cluster where nothing fires, and the broken state of each alert where it fires with its labels and
summary). Each alert is also mutated to never fire and to always fire: its firing cases must catch
the first and its quiet cases the second, so no alert lands without both."""

from __future__ import annotations

import copy as copy_module
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helm.conftest import FULL, Installed
from tests.helm.prometheus_server import promtool

UNIT_TESTS = Path(__file__).resolve().parent / "rules_tests" / "alerts.test.yaml"
RULES_FILE = "alerts.rules.yaml"  # the name its rule_files gives
NEVER, ALWAYS = "vector(1) == 0", "vector(1)"  # mutants of an alert's expr (they keep its `for`)

Spec = dict[str, Any]


@pytest.fixture(scope="module")
def spec(releases: dict[str, Installed]) -> Spec:
    rule = releases[FULL.key].release.one("PrometheusRule", f"{FULL.prefix}-alerts")
    return rule["spec"]  # type: ignore[no-any-return]


def alerts(spec: Spec) -> list[dict[str, Any]]:
    return [r for group in spec["groups"] for r in group["rules"] if "alert" in r]


def without_descriptions(spec: Spec, mutate: Callable[[dict[str, Any]], None] = lambda rule: None) -> Spec:
    """A copy without the runbook paragraphs (promtool compares annotations exactly; the unit tests
    check the summary), each rule passed through ``mutate``."""
    copy: Spec = copy_module.deepcopy(spec)
    for rule in alerts(copy):
        rule.get("annotations", {}).pop("description", None)
        mutate(rule)
    return copy


def test_promtool_loads_the_rendered_rules(spec: Spec, tmp_path: Path) -> None:
    path = tmp_path / RULES_FILE
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    done = promtool("check", "rules", path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alerts(spec))} rules found" in done.stdout, done.stdout


def test_promtool_unit_tests_pass(spec: Spec, tmp_path: Path) -> None:
    (tmp_path / RULES_FILE).write_text(yaml.safe_dump(without_descriptions(spec), sort_keys=False))
    shutil.copy(UNIT_TESTS, tmp_path)
    done = promtool("test", "rules", UNIT_TESTS.name, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def selected(alert: str, firing: bool, rules_file: str) -> dict[str, Any]:
    """The unit tests with only the checks of ``alert`` that expect it firing (or quiet), on ``rules_file``."""
    document = yaml.safe_load(UNIT_TESTS.read_text())
    groups = []
    for group in document["tests"]:
        checks = [c for c in group.get("alert_rule_test", [])
                  if c["alertname"] == alert and bool(c.get("exp_alerts")) == firing]
        if checks:
            groups.append({**group, "alert_rule_test": checks, "promql_expr_test": []})
    return {**document, "rule_files": [rules_file], "tests": groups}


def passed(output: str) -> dict[str, bool]:
    """Test file -> passed, from promtool's stdout ("Unit Testing:  FILE" then "  SUCCESS" when it passed)."""
    sections = output.split("Unit Testing:")[1:]
    return {section.split()[0]: "SUCCESS" in section for section in sections}


def test_every_alert_fires_and_stays_quiet_in_the_unit_tests(spec: Spec, tmp_path: Path) -> None:
    """Each alert's firing cases fail with its expr replaced by NEVER, its quiet cases with ALWAYS
    (all mutants in one promtool run), and both pass with the chart's rules."""
    problems, cases = [], {}
    for rule in alerts(spec):
        for firing, replacement in ((True, NEVER), (False, ALWAYS)):
            name, case = rule["alert"], "firing" if firing else "quiet"
            tests = selected(name, firing, f"{name}-{case}.rules.yaml")
            if not tests["tests"]:
                problems.append(f"{name}: no {case} case in {UNIT_TESTS.name}")
                continue

            def mutate(r: dict[str, Any], name: str = name, replacement: str = replacement) -> None:
                if r["alert"] == name:
                    r["expr"] = replacement

            # JSON is YAML to promtool, and much faster to write than PyYAML's output for 44 files
            (tmp_path / f"{name}-{case}.rules.yaml").write_text(json.dumps(without_descriptions(spec, mutate)))
            (tmp_path / f"{name}-{case}.yaml").write_text(json.dumps(tests))
            (tmp_path / f"{name}-{case}.own.yaml").write_text(json.dumps({**tests, "rule_files": [RULES_FILE]}))
            cases[f"{name}-{case}.yaml"] = f"{name}: its {case} cases pass with expr {replacement!r}"
    (tmp_path / RULES_FILE).write_text(json.dumps(without_descriptions(spec)))
    own = [f.replace(".yaml", ".own.yaml") for f in cases]
    done = promtool("test", "rules", *own, *cases, cwd=tmp_path)
    results = passed(done.stdout)
    assert all(results[f] for f in own), f"the selected cases fail on the chart's own rules:\n{done.stderr}"
    problems += [message for file, message in cases.items() if results[file]]
    assert not problems, "\n".join(problems)
