"""Whether vLLM on ROCm serves a pre-quantized checkpoint's format (packaged data, sources inside).

The facts are ``data/rocm-quantization.json`` (validated against its schema when first read): a
status per method, optionally refined per product. The sizing sizes every declared format; this only
says, next to the estimate, whether the serving stack loads it on AMD GPUs, and where it does not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from sizing.schema import check_document

DATA_FILE = "rocm-quantization.json"


@dataclass(frozen=True)
class Support:
    status: str  # served | not_served | unverified
    products: tuple[tuple[str, str], ...]  # (product, status) where a product differs or is refined
    why: str  # note and source, one line

    def not_served_on(self) -> tuple[str, ...]:
        return tuple(p for p, s in self.products if s == "not_served")


def load_support(document: Any) -> dict[str, Support]:
    """method -> Support from a parsed data document (schema-checked; DataFileError naming the field)."""
    check_document(document, "rocm-quantization.schema.json", DATA_FILE, "methods", lambda _d, i: f"method {i}")
    sources = document["sources"]
    out: dict[str, Support] = {}
    for method, fact in document["methods"].items():
        source = sources.get(fact["source"], fact["source"])
        note = f"{fact['note']}; " if fact.get("note") else ""
        out[method] = Support(fact["status"], tuple(sorted(fact.get("products", {}).items())),
                              f"{note}source: {source}")
    return out


@cache
def rocm_support() -> dict[str, Support]:
    """The packaged table (reads the installed package's data file once)."""
    text = resources.files("sizing").joinpath(f"data/{DATA_FILE}").read_text(encoding="utf-8")
    return load_support(json.loads(text))


def support_line(method: str, table: dict[str, Support] | None = None) -> str:
    """One line for an estimate: whether vLLM on ROCm serves ``method``, and on which products not."""
    support = (table if table is not None else rocm_support()).get(method)
    if support is None:
        return f"{method}: not in the ROCm support table (sized anyway)"
    verdict = {"served": "served by vLLM on ROCm", "not_served": "NOT served by vLLM on ROCm (sized anyway)",
               "unverified": "not verified on vLLM ROCm (sized anyway)"}[support.status]
    missing = support.not_served_on()
    if missing and support.status != "not_served":
        verdict += f", but NOT on {', '.join(missing)} (sized anyway)"
    emulated = [p for p, s in support.products if s == "emulated"]
    if emulated:
        verdict += f"; emulated on {', '.join(emulated)}"
    return f"{method}: {verdict}; {support.why}"
