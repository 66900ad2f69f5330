"""The PromQL checker itself (tests/helm/promql.py) accepts what Prometheus accepts in our rules
and dashboards and refuses the mistakes that make a panel empty or a rule fail to load."""

from __future__ import annotations

import pytest

from tests.helm.promql import PromQLError, parse


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
