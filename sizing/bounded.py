"""Bounded parsers for every value that comes from outside (pure, total, microseconds).

Annotations, labels, quantities, requests, allocatable and sysfs files are all text written by
someone else. Each kind has exactly one parser here; each either returns a value inside its bounds
or raises ``BoundedValueError`` naming the field. None of them does unbounded work: input length is
checked before anything else, digits are ASCII only (``str.isdigit`` accepts ``²`` and ``١``),
exponents are range-checked before any arithmetic, and no float is ever built.
"""

from __future__ import annotations

import re
from typing import Final

# Longest text any parser looks at. A Kubernetes quantity is at most a few dozen characters; a
# label value at most 63 (apimachinery IsValidLabelValue). 64 leaves room without inviting work.
MAX_TEXT_LENGTH: Final = 64

# Upper bound of a memory size: 1 PiB. The largest partition that exists is 288 GiB (MI355X SPX,
# sizing/data/gpus.json); a whole 8-GPU node has 2.25 TiB. 1 PiB is far above both and still tiny
# next to what Python integers or JSON floats can carry.
MAX_MEMORY_BYTES: Final = 1 << 50

# Upper bound of a partition count (per pod, per node): a node holds at most 8 GPUs × 8 partitions
# today (CPX on MI300X); 1,024 leaves a wide margin for larger nodes without letting 10^400 through.
MAX_PARTITION_COUNT: Final = 1024

# Upper bound of a context length in tokens: the longest context in the catalogue is 1 Mi tokens
# (Qwen/Llama 4-class); 16 Mi leaves room for any model and stops a 4,300-digit "length".
MAX_CONTEXT_TOKENS: Final = 1 << 24

# Kubernetes quantity grammar (apimachinery resource.Quantity), ASCII only:
# <sign><digits>[.<digits>][<binarySI>|<decimalSI>|<e|E><sign><digits>]; decimalSI is
# n u m "" k M G T P E (apimachinery resource/suffix.go: nano 10^-9, micro 10^-6, milli 10^-3, ...).
_QUANTITY_RE: Final = re.compile(
    r"(?P<sign>[+-]?)(?P<int>[0-9]*)(?:\.(?P<frac>[0-9]*))?"
    r"(?:(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)|[eE](?P<exp>[+-]?[0-9]+))?",  # any exponent: text <= 64
    re.ASCII,
)
_BINARY_SUFFIX: Final = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "Pi": 1 << 50, "Ei": 1 << 60}
_DECIMAL_EXPONENT: Final = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_ASCII_DIGITS: Final = re.compile(r"[0-9]+", re.ASCII)


class BoundedValueError(ValueError):
    """A value from outside that is not what its field allows; the message names the field."""

    def __init__(self, field: str, raw: object, problem: str) -> None:
        self.field = field
        self.raw = raw
        self.problem = problem
        super().__init__(f"{field}={shown(raw)}: {problem}")


def shown(raw: object, limit: int = 40) -> str:
    """``raw`` as a short repr for a message: never echoes megabytes back to a log or a reply."""
    if isinstance(raw, (str, bytes)) and len(raw) > limit:
        return repr(raw[:limit]) + f"… ({len(raw)} characters)"
    if isinstance(raw, (dict, list, tuple)):
        return f"<{type(raw).__name__}>"
    if isinstance(raw, int) and raw.bit_length() > 128:  # repr of a 4,300-digit int raises ValueError
        return f"<int of {raw.bit_length()} bits>"
    text = repr(raw)
    return text if len(text) <= limit + 2 else text[:limit] + "…"


def _scalar_text(field: str, raw: object) -> str:
    """The text of a JSON scalar (str, or an int that a YAML/JSON writer did not quote)."""
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        raise BoundedValueError(field, raw, f"must be a string, not {type(raw).__name__}")
    if isinstance(raw, int):
        if raw.bit_length() > 64:
            raise BoundedValueError(field, raw, "is far too large")
        return str(raw)
    if len(raw) > MAX_TEXT_LENGTH:
        raise BoundedValueError(field, raw, f"is longer than {MAX_TEXT_LENGTH} characters")
    return raw.strip()


def parse_int(field: str, raw: object, *, minimum: int, maximum: int) -> int:
    """A whole number written in ASCII digits, ``minimum <= n <= maximum``."""
    text = _scalar_text(field, raw)
    if not _ASCII_DIGITS.fullmatch(text):
        raise BoundedValueError(field, raw, "is not a whole number in ASCII digits")
    if len(text.lstrip("0")) > len(str(maximum)):
        raise BoundedValueError(field, raw, f"is more than {maximum}")
    value = int(text)
    if value < minimum:
        raise BoundedValueError(field, raw, f"is less than {minimum}")
    if value > maximum:
        raise BoundedValueError(field, raw, f"is more than {maximum}")
    return value


def parse_count(field: str, raw: object, *, minimum: int = 0, maximum: int = MAX_PARTITION_COUNT) -> int:
    """A partition count (request, allocatable, label): a small non-negative integer.

    Kubelet writes device-plugin quantities as plain digits, but a user may write a quantity such
    as ``"2"``, ``"2e0"`` or ``"2000m"``; any quantity that is a whole number within bounds is taken.
    """
    text = _scalar_text(field, raw)
    if _ASCII_DIGITS.fullmatch(text):
        return parse_int(field, text, minimum=minimum, maximum=maximum)
    numerator, denominator = _quantity_fraction(field, raw, text)
    if numerator % denominator:
        raise BoundedValueError(field, raw, "is not a whole number")
    value = numerator // denominator
    if not minimum <= value <= maximum:
        raise BoundedValueError(field, raw, f"is not between {minimum} and {maximum}")
    return value


def parse_memory_bytes(field: str, raw: object, *, maximum: int = MAX_MEMORY_BYTES) -> int:
    """A memory size as a Kubernetes quantity (``24Gi``, ``151.1Gi``, ``25769803776``, ``1500m``,
    ``25769803776000000u``): whole bytes, rounded up as apimachinery's ``Quantity.Value()`` rounds a
    fraction up, ``0 < bytes <= maximum`` (1 PiB by default)."""
    text = _scalar_text(field, raw)
    numerator, denominator = _quantity_fraction(field, raw, text)
    value = -(-numerator // denominator)  # ceil: a fraction of a byte is a byte
    if value <= 0:
        raise BoundedValueError(field, raw, "must be more than 0 bytes")
    if value > maximum:
        raise BoundedValueError(field, raw, f"is more than {maximum} bytes (1 PiB)")
    return value


def _quantity_fraction(field: str, raw: object, text: str) -> tuple[int, int]:
    """Exact value of a quantity as ``numerator / denominator``, with every exponent bounded."""
    match = _QUANTITY_RE.fullmatch(text)
    if not match or not (match["int"] or match["frac"]):
        raise BoundedValueError(field, raw, "is not a Kubernetes quantity (like 24Gi, 512Mi or 8)")
    if match["sign"] == "-":
        raise BoundedValueError(field, raw, "is negative")
    integer, fraction = match["int"] or "0", match["frac"] or ""
    mantissa = int(integer + fraction)
    denominator = 10 ** len(fraction)
    suffix = match["suffix"] or ""
    if suffix in _BINARY_SUFFIX:
        return mantissa * _BINARY_SUFFIX[suffix], denominator
    exponent = int(match["exp"]) if match["exp"] is not None else _DECIMAL_EXPONENT[suffix]
    if exponent > 30:  # 10^30 is beyond every bound above; refuse before computing it
        if mantissa == 0:
            return 0, 1
        raise BoundedValueError(field, raw, "is far too large")
    if exponent < -30:
        return (0 if mantissa == 0 else 1), 10**30 * denominator  # a positive speck, not zero
    if exponent >= 0:
        return mantissa * 10**exponent, denominator
    return mantissa, denominator * 10**-exponent
