"""The bounded parsers (sizing.bounded): the issue's hostile values are rejected, fast, naming the field.

Each value below once stalled or crashed a service (issue 7): ``1e999999`` took ~70 s through a
float-free decimal path, ``inf``/``NaN``/``1e4400`` gave HTTP 500, ``²`` passes ``str.isdigit`` but
not ``int``, ``١`` counted as 1, more than 4,300 digits trips Python's int-conversion limit, ``1e400``
was taken as 10^400 partitions, deep nesting hit RecursionError. Here each is rejected with a
BoundedValueError whose message starts with the field, in well under 5 ms (a generous bound for a
shared CI machine; the parsers take microseconds).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import pytest

from sizing.bounded import (
    MAX_MEMORY_BYTES,
    MAX_PARTITION_COUNT,
    MAX_TEXT_LENGTH,
    BoundedValueError,
    parse_count,
    parse_int,
    parse_memory_bytes,
    shown,
)

FIELD = "annotation aim.amd.com/memory"
BOUND_SECONDS = 0.005
GI = 1 << 30


def _deep(levels: int, leaf: object = "1") -> object:
    value = leaf
    for _ in range(levels):
        value = [value]
    return value


def _deep_dict(levels: int) -> object:
    value: object = "1"
    for _ in range(levels):
        value = {"a": value}
    return value


HOSTILE: list[object] = [
    "1e999999", "inf", "Infinity", "-Infinity", "NaN", "nan", "1e4400", "1e400", "\u00b2", "2\u00b2", "\u0661",
    "\u0661\u0662", "\uff11", "1" * 4301, "9" * 5000, "1" * 65, 10**5000, -(10**5000), 2**65, True, False, None,
    1.5, float("inf"), float("nan"), b"24Gi", {"value": "1"}, ["1"], ("1",), _deep(1000), _deep_dict(1000),
    "", "   ", "-1", "-1Gi", "+-1", "0x10", "1_000", "24 Gi", "24GiB", "24gi", ".", "+", "e3", "Gi", "1e", "--1",
    "1e1000", "1E+31", "\u200b24Gi", "24Gi\x00", "\u221e",
    # nano and micro are "n" and "u" only (apimachinery suffix.go): not the micro sign, capitals or two suffixes
    "1\u00b5", "1\u03bc", "1U", "1N", "1nu", "1un", "1mn", "1nGi", "1e3n",
]


def _timed(parse: Callable[[], object]) -> tuple[BoundedValueError, float]:
    """The error and the fastest of three attempts: a stall repeats, a preempted time slice on a
    busy machine does not."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        with pytest.raises(BoundedValueError) as caught:
            parse()
        best = min(best, time.perf_counter() - started)
    return caught.value, best


def _check(error: BoundedValueError, seconds: float, raw: object) -> None:
    message = str(error)
    assert message.startswith(FIELD + "="), message
    assert error.field == FIELD and error.raw is raw
    assert "\n" not in message and len(message) < 200, message  # never echoes a huge value back
    assert seconds < BOUND_SECONDS, f"{shown(raw)} took {seconds * 1e3:.2f} ms"


@pytest.mark.parametrize("raw", HOSTILE, ids=shown)
def test_memory_rejects_hostile_values_fast(raw: object) -> None:
    error, seconds = _timed(lambda: parse_memory_bytes(FIELD, raw))
    _check(error, seconds, raw)


@pytest.mark.parametrize("raw", [*HOSTILE, "0.5", "1500m", "1e-3", "2Ei", "1025", "1e4", "1E", "1n", "1999999u",
                                 "1025000000000n"], ids=shown)
def test_count_rejects_hostile_values_fast(raw: object) -> None:
    error, seconds = _timed(lambda: parse_count(FIELD, raw))
    _check(error, seconds, raw)


@pytest.mark.parametrize("raw", [*HOSTILE, "1e3", "2.0", "101", "1" * 64, "+5"], ids=shown)
def test_int_rejects_hostile_values_fast(raw: object) -> None:
    error, seconds = _timed(lambda: parse_int(FIELD, raw, minimum=1, maximum=100))
    _check(error, seconds, raw)


@pytest.mark.parametrize(("raw", "expected"), [
    ("24Gi", 24 * GI), ("24576Mi", 24 * GI), ("25769803776", 24 * GI), (25769803776, 24 * GI),
    ("151.1Gi", -(-1511 * GI // 10)),  # rounded up to a whole byte
    ("48G", 48 * 10**9), ("1.5e9", 1_500_000_000), ("1e+3", 1000), (".5Gi", GI // 2), (" 24Gi\n", 24 * GI),
    ("1e-3", 1), ("1e-999999", 1),  # a positive fraction of a byte is a byte
    ("1Pi", MAX_MEMORY_BYTES), ("1024Ti", MAX_MEMORY_BYTES),
    # nano and micro (issue 18): exact, then a fraction of a byte rounds up as Quantity.Value() does
    ("25769803776000000000n", 24 * GI), ("25769803776000000u", 24 * GI), ("1500000u", 2), ("1000000u", 1),
    ("1n", 1), ("1u", 1), ("999999999n", 1), ("1000000001n", 2), ("0.5u", 1), (".000001u", 1),
    ("1125899906842624000000u", MAX_MEMORY_BYTES),
])
def test_memory_accepts_kubernetes_quantities(raw: object, expected: int) -> None:
    assert parse_memory_bytes(FIELD, raw) == expected


@pytest.mark.parametrize(("raw", "problem"), [
    ("0", "more than 0"), ("0Gi", "more than 0"), ("0e99", "more than 0"), ("1025Ti", "more than"),
    ("1Ei", "more than"), ("-1Gi", "negative"), ("1e31", "far too large"), ("1e400", "far too large"),
    ("1e999999", "far too large"), ("inf", "not a Kubernetes quantity"),
    ("\u00b2", "not a Kubernetes quantity"), ("1" * 65, f"longer than {MAX_TEXT_LENGTH}"),
    (True, "must be a string, not bool"), (_deep(1000), "must be a string, not list"),
    (10**5000, "far too large"), ("0n", "more than 0"), ("0.0u", "more than 0"),
    ("1125899906842624000001u", "more than"), ("1" * 40 + "n", "more than"),
], ids=shown)
def test_memory_rejection_says_what_is_wrong(raw: object, problem: str) -> None:
    with pytest.raises(BoundedValueError, match=problem):
        parse_memory_bytes(FIELD, raw)


@pytest.mark.parametrize(("raw", "expected"), [
    ("0", 0), ("2", 2), (2, 2), ("2e0", 2), ("2000m", 2), ("+3", 3), ("0.0", 0), (str(MAX_PARTITION_COUNT), 1024),
    ("0" * 64, 0), ("8 ", 8), ("2000000000n", 2), ("2000000u", 2), ("0n", 0),
])
def test_count_accepts_small_whole_numbers(raw: object, expected: int) -> None:
    assert parse_count(FIELD, raw) == expected


def test_count_bounds_are_the_callers() -> None:
    assert parse_count(FIELD, "1", minimum=1, maximum=1) == 1
    with pytest.raises(BoundedValueError, match="between 1 and 8"):
        parse_count(FIELD, "9e0", minimum=1, maximum=8)
    with pytest.raises(BoundedValueError, match="less than 1"):
        parse_count(FIELD, "0", minimum=1)


def test_int_accepts_only_ascii_digits_in_bounds() -> None:
    assert parse_int(FIELD, "0042", minimum=1, maximum=100) == 42
    assert parse_int(FIELD, 7, minimum=1, maximum=100) == 7
    with pytest.raises(BoundedValueError, match="ASCII digits"):
        parse_int(FIELD, "4\u0662", minimum=1, maximum=100)
    with pytest.raises(BoundedValueError, match="less than 1"):
        parse_int(FIELD, "0", minimum=1, maximum=100)


@pytest.mark.parametrize(("raw", "expected"), [
    ("short", "'short'"), ("x" * 100, "'" + "x" * 40 + "'… (100 characters)"), ({"a": 1}, "<dict>"),
    (_deep(1000), "<list>"), (10**5000, "<int of 16610 bits>"), (12, "12"), (None, "None"),
], ids=shown)
def test_shown_is_short_and_never_raises(raw: object, expected: str) -> None:
    assert shown(raw) == expected


def test_a_thousand_hostile_values_take_milliseconds_in_all() -> None:
    """The throughput view of the same bound: no value makes the parsers do unbounded work."""
    started = time.perf_counter()
    for _ in range(20):
        for raw in HOSTILE:
            for parse in (parse_memory_bytes, parse_count):
                with contextlib.suppress(BoundedValueError):
                    parse(FIELD, raw)
    assert time.perf_counter() - started < 1.0
