"""A small PromQL parser for checking dashboard queries and alert expressions: it tokenizes,
parses the grammar Prometheus documents (binary operators with precedence and vector matching,
aggregations with by/without, function calls, selectors with label matchers, range selectors,
subqueries, offset), checks function names, argument counts and range-vector arguments, and
returns every vector selector and the syntax tree (evaluated by promql_eval.py). No PyPI package
parses PromQL and promtool is a Go binary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Function name -> (argument types); "v" instant vector, "m" range vector, "s" scalar, "str" string,
# a trailing "?" marks optional arguments (docs: prometheus.io/docs/prometheus/latest/querying/functions/).
FUNCTIONS: dict[str, tuple[str, ...]] = {
    "abs": ("v",), "absent": ("v",), "absent_over_time": ("m",), "ceil": ("v",), "floor": ("v",),
    "changes": ("m",), "clamp": ("v", "s", "s"), "clamp_max": ("v", "s"), "clamp_min": ("v", "s"),
    "delta": ("m",), "deriv": ("m",), "exp": ("v",), "histogram_quantile": ("s", "v"),
    "idelta": ("m",), "increase": ("m",), "irate": ("m",), "rate": ("m",), "resets": ("m",),
    "label_replace": ("v", "str", "str", "str", "str"), "ln": ("v",), "log2": ("v",), "log10": ("v",),
    "predict_linear": ("m", "s"), "round": ("v", "s?"), "scalar": ("v",), "sort": ("v",), "sort_desc": ("v",),
    "sqrt": ("v",), "time": (), "timestamp": ("v",), "vector": ("s",),
    "avg_over_time": ("m",), "min_over_time": ("m",), "max_over_time": ("m",), "sum_over_time": ("m",),
    "count_over_time": ("m",), "last_over_time": ("m",), "quantile_over_time": ("s", "m"),
}
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
                "bottomk", "topk", "quantile"}
PARAMETRIC = {"count_values", "bottomk", "topk", "quantile"}
# Lowest to highest precedence; "^" is right-associative.
PRECEDENCE: tuple[tuple[str, ...], ...] = (
    ("or",), ("and", "unless"), ("==", "!=", "<=", "<", ">=", ">"), ("+", "-"), ("*", "/", "%", "atan2"), ("^",),
)
COMPARISONS = {"==", "!=", "<=", "<", ">=", ">"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<duration>(?:[0-9]+(?:ms|s|m|h|d|w|y))+)(?![0-9A-Za-z_])
  | (?P<number>(?:[0-9]*\.[0-9]+|[0-9]+\.?)(?:[eE][-+]?[0-9]+)?)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_:]*)
  | (?P<op>==|!=|<=|>=|=~|!~|[-+*/%^<>=(){}\[\],:@])
""", re.VERBOSE)


class PromQLError(ValueError):
    pass


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str  # = != =~ !~
    value: str


@dataclass(frozen=True)
class Selector:
    metric: str | None
    matchers: tuple[Matcher, ...]
    range: str | None = None


# The syntax tree (what tests/helm/promql_eval.py evaluates).
@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Str:
    value: str


@dataclass(frozen=True)
class VectorSelector:
    selector: Selector


@dataclass(frozen=True)
class Subquery:
    expr: Node
    range: str


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Aggregation:
    op: str
    labels: tuple[str, ...] | None  # None: no grouping clause
    without: bool
    param: Node | None
    expr: Node


@dataclass(frozen=True)
class Binary:
    op: str
    lhs: Node
    rhs: Node
    return_bool: bool = False
    on: tuple[str, ...] | None = None  # on(...) labels
    ignoring: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Negative:
    expr: Node


Node = Num | Str | VectorSelector | Subquery | Call | Aggregation | Binary | Negative
Typed = tuple[str, Node]  # ("v" instant vector | "m" range vector | "s" scalar | "str" string, node)


@dataclass
class Parsed:
    selectors: list[Selector] = field(default_factory=list)
    ast: Node | None = None

    @property
    def metrics(self) -> set[str]:
        names = {s.metric for s in self.selectors if s.metric}
        names |= {m.value for s in self.selectors for m in s.matchers if m.label == "__name__" and m.op == "="}
        return names


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise PromQLError(f"unexpected character {text[pos]!r} at {pos} in {text!r}")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append((kind, match.group()))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0
        self.result = Parsed()

    # -- token helpers
    def peek(self, offset: int = 0) -> tuple[str, str]:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else ("eof", "")

    def take(self) -> tuple[str, str]:
        token = self.peek()
        self.pos += 1
        return token

    def expect(self, value: str) -> None:
        got = self.take()[1]
        if got != value:
            raise PromQLError(f"expected {value!r}, got {got or 'end of query'!r} in {self.text!r}")

    def fail(self, what: str) -> PromQLError:
        return PromQLError(f"{what} at token {self.pos} ({self.peek()[1] or 'end'!r}) in {self.text!r}")

    # -- grammar; each returns (type, node): "v", "m", "s" or "str"
    def parse(self) -> Parsed:
        self.result.ast = self.expression(0)[1]
        if self.peek()[0] != "eof":
            raise self.fail("unexpected trailing input")
        return self.result

    def expression(self, level: int) -> Typed:
        if level == len(PRECEDENCE):
            return self.unary()
        left, left_node = self.expression(level + 1)
        while self.peek()[1] in PRECEDENCE[level]:
            op = self.take()[1]
            returns_bool = False
            on = ignoring = None
            if self.peek()[1] == "bool":
                if op not in COMPARISONS:
                    raise self.fail(f"bool after non-comparison {op}")
                self.take()
                returns_bool = True
            if self.peek()[1] in ("on", "ignoring"):
                which = self.take()[1]
                labels = tuple(self.label_list())
                on, ignoring = (labels, None) if which == "on" else (None, labels)
                if self.peek()[1] in ("group_left", "group_right"):
                    self.take()
                    if self.peek()[1] == "(":
                        self.label_list()
            right, right_node = self.expression(level + 1 if op != "^" else level)
            if op in ("and", "or", "unless") and (left != "v" or right != "v"):
                raise self.fail(f"set operator {op} needs instant vectors on both sides")
            if "m" in (left, right) or "str" in (left, right):
                raise self.fail(f"operator {op} on a range vector or string")
            left = "s" if left == right == "s" else "v"
            left_node = Binary(op, left_node, right_node, returns_bool, on, ignoring)
        return left, left_node

    def unary(self) -> Typed:
        if self.peek()[1] in ("-", "+"):
            sign = self.take()[1]
            kind, node = self.unary()
            if kind not in ("v", "s"):
                raise self.fail("unary sign on a non-number")
            return kind, (Negative(node) if sign == "-" else node)
        return self.postfix(self.primary())

    def postfix(self, typed: Typed) -> Typed:
        kind, node = typed
        while True:
            if self.peek()[1] == "[":
                if kind != "v":
                    raise self.fail("range or subquery on a non-instant vector")
                self.take()
                window = self.duration()
                if self.peek()[1] == ":":  # subquery [range:resolution]
                    self.take()
                    if self.peek()[0] == "duration":
                        self.duration()
                    node = Subquery(node, window)
                elif isinstance(node, VectorSelector) and node.selector.range is None:
                    ranged = Selector(node.selector.metric, node.selector.matchers, window)
                    self.result.selectors[self.result.selectors.index(node.selector)] = ranged
                    node = VectorSelector(ranged)
                else:
                    raise self.fail("a range needs a selector (or a subquery with ':')")
                self.expect("]")
                kind = "m"
            elif self.peek()[1] == "offset":
                self.take()
                if self.peek()[1] == "-":
                    self.take()
                self.duration()
            elif self.peek()[1] == "@":
                self.take()
                self.take()
            else:
                return kind, node

    def duration(self) -> str:
        kind, value = self.take()
        if kind != "duration":
            raise PromQLError(f"expected a duration like 5m, got {value!r} in {self.text!r}")
        return value

    def primary(self) -> Typed:
        kind, value = self.peek()
        if kind == "number":
            self.take()
            return "s", Num(float(value))
        if kind == "string":
            self.take()
            return "str", Str(value[1:-1])
        if value == "(":
            self.take()
            inner = self.expression(0)
            self.expect(")")
            return inner
        if value == "{":
            return "v", VectorSelector(self.selector(None))
        if kind == "ident":
            if value in AGGREGATIONS and (self.peek(1)[1] in ("(", "by", "without")):
                return self.aggregation()
            if self.peek(1)[1] == "(":
                return self.call()
            if value in KEYWORDS or value in ("and", "or", "unless", "atan2"):
                raise self.fail(f"keyword {value!r} where a value was expected")
            self.take()
            return "v", VectorSelector(self.selector(value))
        raise self.fail("expected a number, string, selector, function or '('")

    def selector(self, metric: str | None) -> Selector:
        matchers: list[Matcher] = []
        if self.peek()[1] == "{":
            self.take()
            while self.peek()[1] != "}":
                label_kind, label = self.take()
                if label_kind != "ident":
                    raise self.fail("expected a label name")
                op = self.take()[1]
                if op not in ("=", "!=", "=~", "!~"):
                    raise self.fail(f"expected a label matcher operator after {label}")
                value_kind, raw = self.take()
                if value_kind != "string":
                    raise self.fail(f"label {label} needs a quoted value")
                value = raw[1:-1]
                if op in ("=~", "!~"):
                    try:
                        re.compile(value)
                    except re.error as error:
                        raise PromQLError(f"label {label}: bad regex {value!r}: {error}") from error
                matchers.append(Matcher(label, op, value))
                if self.peek()[1] == ",":
                    self.take()
                elif self.peek()[1] != "}":
                    raise self.fail("expected ',' or '}' in label matchers")
            self.take()
        if metric is None and not any(m.op in ("=", "=~") and m.value for m in matchers):
            raise self.fail("a selector without a metric name needs a non-empty matcher")
        selector = Selector(metric, tuple(matchers))
        self.result.selectors.append(selector)
        return selector

    def label_list(self) -> list[str]:
        self.expect("(")
        labels: list[str] = []
        while self.peek()[1] != ")":
            kind, value = self.take()
            if kind != "ident":
                raise self.fail("expected a label name in the list")
            labels.append(value)
            if self.peek()[1] == ",":
                self.take()
        self.take()
        return labels

    def grouping(self) -> tuple[tuple[str, ...] | None, bool]:
        if self.peek()[1] in ("by", "without"):
            without = self.take()[1] == "without"
            return tuple(self.label_list()), without
        return None, False

    def aggregation(self) -> Typed:
        name = self.take()[1]
        labels, without = self.grouping()
        self.expect("(")
        param: Node | None = None
        if name in PARAMETRIC:
            param_kind, param = self.expression(0)
            if param_kind not in ("s", "str"):
                raise self.fail(f"{name} needs a scalar or string parameter first")
            self.expect(",")
        argument, node = self.expression(0)
        if argument != "v":
            raise self.fail(f"{name} aggregates an instant vector")
        self.expect(")")
        if labels is None:
            labels, without = self.grouping()
        return "v", Aggregation(name, labels, without, param, node)

    def call(self) -> Typed:
        name = self.take()[1]
        if name not in FUNCTIONS:
            raise PromQLError(f"unknown function {name!r} in {self.text!r}")
        expected = FUNCTIONS[name]
        self.expect("(")
        got: list[Typed] = []
        while self.peek()[1] != ")":
            got.append(self.expression(0))
            if self.peek()[1] == ",":
                self.take()
            elif self.peek()[1] != ")":
                raise self.fail(f"expected ',' or ')' in {name}()")
        self.take()
        required = [t for t in expected if not t.endswith("?")]
        if not len(required) <= len(got) <= len(expected):
            raise PromQLError(f"{name}() takes {len(expected)} argument(s), got {len(got)} in {self.text!r}")
        for index, (want, (have, _node)) in enumerate(zip(expected, got, strict=False)):
            if want.rstrip("?") != have:
                raise PromQLError(f"{name}() argument {index + 1} must be {_TYPE_NAMES[want.rstrip('?')]},"
                                  f" got {_TYPE_NAMES[have]} in {self.text!r}")
        return ("s" if name in ("time", "scalar") else "v"), Call(name, tuple(node for _kind, node in got))


_TYPE_NAMES = {"v": "an instant vector", "m": "a range vector", "s": "a scalar", "str": "a string"}


def parse(text: str) -> Parsed:
    """Parse one PromQL expression; raises PromQLError naming the problem."""
    return _Parser(text).parse()


GRAFANA_LABEL_VALUES = re.compile(r"^label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)$")
