"""Evaluates the syntax tree of tests/helm/promql.py at one instant over sample series, for the
subset our alert rules use: selectors (5 min lookback), ranges, rate/increase (no extrapolation,
counter resets handled), histogram_quantile (Prometheus' linear interpolation), absent, vector,
sum/min/max/avg/count by/without, arithmetic and comparison (filtering, or with bool), and/or/unless,
one-to-one matching with on/ignoring. Enough to show that an alert fires on the broken state and
stays quiet on the healthy one."""

from __future__ import annotations

import itertools
import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from tests.helm.promql import (
    Aggregation,
    Binary,
    Call,
    Negative,
    Node,
    Num,
    Selector,
    Str,
    VectorSelector,
    parse,
)

Labels = frozenset[tuple[str, str]]
Vector = dict[Labels, float]
Matrix = dict[Labels, list[tuple[float, float]]]
Value = float | str | Vector | Matrix

LOOKBACK_SECONDS = 300.0  # Prometheus' default query.lookback-delta
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": lambda a, b: a / b if b else math.nan,
    "%": math.fmod, "^": operator.pow,
}
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "==": operator.eq, "!=": operator.ne, ">": operator.gt, "<": operator.lt, ">=": operator.ge, "<=": operator.le,
}


@dataclass(frozen=True)
class Series:
    labels: Mapping[str, str]  # including __name__
    samples: Sequence[tuple[float, float]]  # (seconds, value), ascending


def seconds(duration: str) -> float:
    return sum(float(n) * _UNITS[u] for n, u in re.findall(r"([0-9]+)(ms|s|m|h|d|w|y)", duration))


def _matches(selector: Selector, labels: Mapping[str, str]) -> bool:
    if selector.metric and labels.get("__name__") != selector.metric:
        return False
    for m in selector.matchers:
        value = labels.get(m.label, "")
        ok = {"=": value == m.value, "!=": value != m.value,
              "=~": re.fullmatch(m.value, value) is not None, "!~": re.fullmatch(m.value, value) is None}[m.op]
        if not ok:
            return False
    return True


def _without_name(labels: Labels) -> Labels:
    return frozenset((k, v) for k, v in labels if k != "__name__")


class Evaluator:
    def __init__(self, series: Sequence[Series], at: float) -> None:
        self.series, self.at = series, at

    def instant(self, selector: Selector) -> Vector:
        out: Vector = {}
        for s in self.series:
            if _matches(selector, s.labels):
                recent = [v for t, v in s.samples if self.at - LOOKBACK_SECONDS < t <= self.at]
                if recent:
                    out[frozenset(s.labels.items())] = recent[-1]
        return out

    def ranged(self, selector: Selector) -> Matrix:
        window = seconds(selector.range or "0s")
        out: Matrix = {}
        for s in self.series:
            if _matches(selector, s.labels):
                points = [(t, v) for t, v in s.samples if self.at - window < t <= self.at]
                if points:
                    out[frozenset(s.labels.items())] = points
        return out

    def evaluate(self, node: Node) -> Value:
        if isinstance(node, Num):
            return node.value
        if isinstance(node, Str):
            return node.value
        if isinstance(node, VectorSelector):
            return self.ranged(node.selector) if node.selector.range else self.instant(node.selector)
        if isinstance(node, Negative):
            inner = self.evaluate(node.expr)
            if isinstance(inner, float):
                return -inner
            return {_without_name(k): -v for k, v in self._vector(inner).items()}
        if isinstance(node, Call):
            return self._call(node)
        if isinstance(node, Aggregation):
            return self._aggregate(node)
        if isinstance(node, Binary):
            return self._binary(node)
        raise NotImplementedError(f"evaluating {type(node).__name__}")

    @staticmethod
    def _vector(value: Value) -> Vector:
        if not isinstance(value, dict):
            raise TypeError(f"expected an instant vector, got {value!r}")
        return value  # type: ignore[return-value]

    def _call(self, node: Call) -> Value:
        if node.name in ("rate", "increase"):
            (arg,) = node.args
            assert isinstance(arg, VectorSelector) and arg.selector.range
            window = seconds(arg.selector.range)
            out: Vector = {}
            for labels, points in self.ranged(arg.selector).items():
                if len(points) < 2:
                    continue
                growth = sum(b - a if b >= a else b for (_, a), (_, b) in itertools.pairwise(points))
                out[_without_name(labels)] = growth / window if node.name == "rate" else growth
            return out
        if node.name == "histogram_quantile":
            q = self.evaluate(node.args[0])
            assert isinstance(q, float)
            return histogram_quantile(q, self._vector(self.evaluate(node.args[1])))
        if node.name == "absent":
            (arg,) = node.args
            if self._vector(self.evaluate(arg)):
                return {}
            labels = frozenset((m.label, m.value) for m in arg.selector.matchers if m.op == "=") \
                if isinstance(arg, VectorSelector) else frozenset()
            return {labels: 1.0}
        if node.name == "vector":
            value = self.evaluate(node.args[0])
            assert isinstance(value, float)
            return {frozenset(): value}
        raise NotImplementedError(f"function {node.name}")

    def _aggregate(self, node: Aggregation) -> Vector:
        vector = self._vector(self.evaluate(node.expr))
        groups: dict[Labels, list[float]] = {}
        for labels, value in vector.items():
            if node.labels is None:
                key: Labels = frozenset()
            elif node.without:
                key = frozenset((k, v) for k, v in labels if k not in node.labels and k != "__name__")
            else:
                key = frozenset((k, v) for k, v in labels if k in node.labels)
            groups.setdefault(key, []).append(value)
        reduce: dict[str, Callable[[list[float]], float]] = {
            "sum": sum, "min": min, "max": max, "count": lambda xs: float(len(xs)),
            "avg": lambda xs: sum(xs) / len(xs)}
        if node.op not in reduce:
            raise NotImplementedError(f"aggregation {node.op}")
        return {key: float(reduce[node.op](values)) for key, values in groups.items()}

    def _binary(self, node: Binary) -> Value:
        lhs, rhs = self.evaluate(node.lhs), self.evaluate(node.rhs)
        op = node.op
        if isinstance(lhs, float) and isinstance(rhs, float):
            if op in _COMPARE:
                return float(_COMPARE[op](lhs, rhs))
            return _ARITHMETIC[op](lhs, rhs)
        if op in ("and", "or", "unless"):
            left, right = self._vector(lhs), self._vector(rhs)
            right_keys = {self._key(k, node) for k in right}
            if op == "and":
                return {k: v for k, v in left.items() if self._key(k, node) in right_keys}
            if op == "unless":
                return {k: v for k, v in left.items() if self._key(k, node) not in right_keys}
            left_keys = {self._key(k, node) for k in left}
            return left | {k: v for k, v in right.items() if self._key(k, node) not in left_keys}
        if isinstance(lhs, float) or isinstance(rhs, float):
            vector = self._vector(rhs if isinstance(lhs, float) else lhs)
            scalar = lhs if isinstance(lhs, float) else rhs
            assert isinstance(scalar, float)
            pairs = [(k, (scalar, v) if isinstance(lhs, float) else (v, scalar)) for k, v in vector.items()]
        else:
            right = {self._key(k, node): v for k, v in self._vector(rhs).items()}
            pairs = [(k, (v, right[self._key(k, node)])) for k, v in self._vector(lhs).items()
                     if self._key(k, node) in right]
        out: Vector = {}
        for labels, (a, b) in pairs:
            if op in _COMPARE:
                if node.return_bool:
                    out[_without_name(labels)] = float(_COMPARE[op](a, b))
                elif _COMPARE[op](a, b):
                    out[labels] = a if not isinstance(lhs, float) else b
            else:
                out[_without_name(labels)] = _ARITHMETIC[op](a, b)
        return out

    @staticmethod
    def _key(labels: Labels, node: Binary) -> Labels:
        if node.on is not None:
            return frozenset((k, v) for k, v in labels if k in node.on)
        ignored = set(node.ignoring or ()) | {"__name__"}
        return frozenset((k, v) for k, v in labels if k not in ignored)


def histogram_quantile(q: float, buckets: Vector) -> Vector:
    groups: dict[Labels, list[tuple[float, float]]] = {}
    for labels, count in buckets.items():
        le = dict(labels).get("le")
        if le is None:
            continue
        key = frozenset((k, v) for k, v in labels if k not in ("le", "__name__"))
        groups.setdefault(key, []).append((math.inf if le == "+Inf" else float(le), count))
    out: Vector = {}
    for key, points in groups.items():
        points.sort()
        total = points[-1][1]
        if total == 0:
            out[key] = math.nan
            continue
        rank = q * total
        lower_bound, lower_count = 0.0, 0.0
        for bound, count in points:
            if count >= rank:
                if math.isinf(bound):
                    out[key] = lower_bound
                else:
                    out[key] = lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
                break
            lower_bound, lower_count = bound, count
    return out


def evaluate(expr: str, series: Sequence[Series], at: float) -> Value:
    """The value of ``expr`` at second ``at``."""
    ast = parse(expr).ast
    assert ast is not None
    return Evaluator(series, at).evaluate(ast)
