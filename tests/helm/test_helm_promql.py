"""The PromQL checker itself (tests/helm/promql.py) accepts what Prometheus accepts in our rules
and dashboards and refuses the mistakes that make a panel empty or a rule fail to load; its
evaluator (promql_eval.py) computes what Prometheus computes for the operations the rules use."""

from __future__ import annotations

import pytest

from tests.helm.promql import PromQLError, parse
from tests.helm.promql_eval import Series, evaluate


@pytest.mark.parametrize(("query", "metrics"), [
    ("sum by (le, verb) (rate(a_bucket[5m]))", {"a_bucket"}),
    ('histogram_quantile(0.99, sum by (le) (rate(a_bucket{x="y"}[5m]))) > 0.25', {"a_bucket"}),
    ('sum(rate(a[5m])) == 0 and sum(rate(b{r=~"p|q"}[5m])) > 0', {"a", "b"}),
    ('absent(up{job="x"})', {"up"}),
    ("sum by (node, product) (a) - sum by (node, product) (b) > 0", {"a", "b"}),
    ("a / on(node) group_left(product) b", {"a", "b"}),
    ("rate(a[5m:1m])", {"a"}),
    ("-a offset 5m", {"a"}),
    ("a > bool 3", {"a"}),
    ("topk(3, sum without (pod) (a))", {"a"}),
    ('{__name__="a", job="j"}', {"a"}),
    ("1 + 2 * 3 ^ 2", set()),
])
def test_accepts(query: str, metrics: set[str]) -> None:
    assert parse(query).metrics == metrics


def test_range_is_recorded() -> None:
    (selector,) = parse('increase(a{result="failed"}[30m])').selectors
    assert selector.range == "30m" and selector.matchers[0].value == "failed"


@pytest.mark.parametrize(("query", "problem"), [
    ("rate(a)", "range vector"),
    ("sum(rate(a[5m])", r"expected '\)'"),
    ("foo(a)", "unknown function"),
    ("a{b=c}", "quoted value"),
    ("histogram_quantile(a)", "takes 2"),
    ("a +", "expected a number"),
    ("a[5m] + 1", "range vector"),
    ("sum(a) by", r"expected '\('"),
    ('a{b=~"("}', "bad regex"),
    ("1 and a", "instant vectors"),
    ("a b", "trailing"),
    ("rate(a[5x])", "duration"),
    ('{job=""}', "non-empty matcher"),
])
def test_refuses(query: str, problem: str) -> None:
    with pytest.raises(PromQLError, match=problem):
        parse(query)


def _series(name: str, labels: dict[str, str], values: list[float]) -> Series:
    return Series({"__name__": name, **labels}, [(i * 15.0, v) for i, v in enumerate(values)])


def test_evaluator_rate_handles_counter_resets() -> None:
    counter = _series("c", {"pod": "a"}, [10, 20, 30, 5, 15])  # reset after 30: +10 +10 +5 +10 = 35
    assert evaluate("increase(c[5m])", [counter], 60.0) == {frozenset({("pod", "a")}): 35.0}
    # the 1m window (0, 60] leaves out the sample at 0: 20 -> 30 -> 5 -> 15 is +10 +5 +10
    assert evaluate("rate(c[1m])", [counter], 60.0) == {frozenset({("pod", "a")}): 25.0 / 60}


def test_evaluator_matching_and_set_operators() -> None:
    a = _series("a", {"node": "n1"}, [8])
    b = [_series("b", {"node": "n1"}, [6]), _series("b", {"node": "n2"}, [1])]
    assert evaluate("a - b > 0", [a, *b], 0.0) == {frozenset({("node", "n1")}): 2.0}
    assert evaluate("b and a", [a, *b], 0.0) == {frozenset({("__name__", "b"), ("node", "n1")}): 6.0}
    assert evaluate("sum(a) or vector(0)", [], 0.0) == {frozenset(): 0.0}
    assert evaluate('absent(up{job="x"})', [], 0.0) == {frozenset({("job", "x")}): 1.0}
    assert evaluate('absent(up{job="x"})', [_series("up", {"job": "x"}, [0])], 0.0) == {}
    assert evaluate("max by (node) (b) == 1", b, 0.0) == {frozenset({("node", "n2")}): 1.0}


def test_evaluator_lookback_drops_stale_series() -> None:
    old = Series({"__name__": "g"}, [(0.0, 1.0)])
    assert evaluate("g", [old], 299.0) and evaluate("g", [old], 301.0) == {}
