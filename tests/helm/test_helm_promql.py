"""tests/helm/promql_selectors.py: the selectors read from promql-parser's syntax tree are every
series an expression names (inside functions, aggregations, both sides of binary operators,
subqueries), with matchers and ranges; the mistakes that make a panel empty or a rule fail to load
are refused with the parser's message."""

from __future__ import annotations

import pytest

from tests.helm.promql_selectors import Matcher, PromQLError, Selector, parse


@pytest.mark.parametrize(("query", "metrics"), [
    ("sum by (le, verb) (rate(a_bucket[5m]))", {"a_bucket"}),
    ('histogram_quantile(0.99, sum by (le) (rate(a_bucket{x="y"}[5m]))) > 0.25', {"a_bucket"}),
    ('(sum(rate(a[5m])) or vector(0)) == 0 and sum(rate(b{r=~"p|q"}[5m])) > 0', {"a", "b"}),
    ('absent(up{job="x"})', {"up"}),
    ("a / on(node) group_left(product) b", {"a", "b"}),
    ("max_over_time(rate(a[5m])[30m:1m])", {"a"}),
    ("-a offset 5m unless c", {"a", "c"}),
    ('{__name__="a", job="j"}', {"a"}),
    ("1 + 2 * 3 ^ 2", set()),
])
def test_every_series_is_found(query: str, metrics: set[str]) -> None:
    assert parse(query).metrics == metrics


def test_matchers_and_ranges_are_recorded() -> None:
    assert parse('increase(a{result="failed", reason!~"x|y"}[30m]) > 0 and b{job="j"}').selectors == (
        Selector("a", (Matcher("result", "=", "failed"), Matcher("reason", "!~", "x|y")), 1800.0),
        Selector("b", (Matcher("job", "=", "j"),), None),
    )


@pytest.mark.parametrize(("query", "problem"), [
    ("rate(a)", "expected type matrix"),
    ("sum(rate(a[5m])", "unclosed left parenthesis"),
    ("foo(a)", "unknown function"),
    ("a{b=c}", "expected string"),
    ("histogram_quantile(a)", "expected 2 argument"),
    ('a{b=~"("}', "illegal regex"),
    ("1 and a", "set operator"),
    ("rate(a[5x])", "duration"),
    ('{job=""}', "non-empty matcher"),
])
def test_mistakes_are_refused(query: str, problem: str) -> None:
    with pytest.raises(PromQLError, match=problem) as error:
        parse(query)
    assert repr(query) in str(error.value)
