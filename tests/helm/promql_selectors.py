"""The series a PromQL expression selects, read with promql-parser (PyPI: Python bindings of
GreptimeTeam's Rust parser, compatible with Prometheus 2.45): it refuses what Prometheus refuses
(unknown functions, wrong argument types or counts, bad regexes, durations, matchers) and gives the
syntax tree, walked here for every vector selector. Evaluation is the real Prometheus's job
(promtool test rules, and the server in test_helm_observability)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import promql_parser

# A Grafana "label_values(metric, label)" variable query (Grafana's syntax, not PromQL).
GRAFANA_LABEL_VALUES = re.compile(r"^label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)$")
_OPS = ((promql_parser.MatchOp.Equal, "="), (promql_parser.MatchOp.NotEqual, "!="),
        (promql_parser.MatchOp.Re, "=~"), (promql_parser.MatchOp.NotRe, "!~"))  # MatchOp is not hashable


class PromQLError(ValueError):
    """The expression does not parse; the message is the parser's, with the expression."""


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str  # = != =~ !~
    value: str


@dataclass(frozen=True)
class Selector:
    metric: str | None  # None for a selector by labels only (no __name__ equality)
    matchers: tuple[Matcher, ...]  # without the __name__ one
    range: float | None = None  # seconds, for a range selector (rate(x[5m]) -> 300.0)


@dataclass(frozen=True)
class Parsed:
    expr: promql_parser.Expr
    selectors: tuple[Selector, ...]

    @property
    def metrics(self) -> set[str]:
        return {s.metric for s in self.selectors if s.metric}


def parse(query: str) -> Parsed:
    try:
        expr = promql_parser.parse(query)
    except ValueError as error:
        raise PromQLError(f"{error} (in {query!r})") from None
    found: list[Selector] = []
    pending_range: list[float] = []  # a range selector's range, for its VectorSelector (visited next)

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.MatrixSelector):
            pending_range.append(node.range.total_seconds())
        elif isinstance(node, promql_parser.VectorSelector):
            found.append(_selector(node, pending_range.pop() if pending_range else None))

    promql_parser.walk(expr, visit)
    return Parsed(expr, tuple(found))


def _selector(node: promql_parser.VectorSelector, seconds: float | None) -> Selector:
    matchers = [Matcher(m.name, next(text for op, text in _OPS if m.op == op), m.value)
                for m in node.matchers.matchers]
    name = node.name or next((m.value for m in matchers if m.label == "__name__" and m.op == "="), None)
    return Selector(name, tuple(m for m in matchers if m.label != "__name__"), seconds)
