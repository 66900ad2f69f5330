"""Whether vLLM on ROCm serves a pre-quantized checkpoint's format (packaged data, sources inside).

The facts are ``data/rocm-quantization.json`` (validated against its schema when first read). The
sizing sizes every declared format; this only says, next to the estimate, whether the serving stack
will load it on AMD GPUs.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from sizing.schema import check_document

DATA_FILE = "rocm-quantization.json"


def load_support(document: Any) -> dict[str, tuple[str, str]]:
    """method -> (status, one-line explanation with its source) from a parsed data document."""
    check_document(document, "rocm-quantization.schema.json", DATA_FILE, "methods", lambda _d, i: f"method {i}")
    sources = document["sources"]
    out: dict[str, tuple[str, str]] = {}
    for method, fact in document["methods"].items():
        source = sources.get(fact["source"], fact["source"])
        note = f"{fact['note']}; " if fact.get("note") else ""
        out[method] = (fact["status"], f"{note}source: {source}")
    return out


@cache
def rocm_support() -> dict[str, tuple[str, str]]:
    """The packaged table (reads the installed package's data file once)."""
    text = resources.files("sizing").joinpath(f"data/{DATA_FILE}").read_text(encoding="utf-8")
    return load_support(json.loads(text))


def support_line(method: str) -> str:
    """One line for an estimate: whether vLLM on ROCm serves ``method``."""
    status, why = rocm_support().get(method, ("unverified", "not in the table"))
    verdict = {"served": "served by vLLM on ROCm", "not_served": "NOT served by vLLM on ROCm (sized anyway)",
               "unverified": "not verified on vLLM ROCm (sized anyway)"}[status]
    return f"{method}: {verdict}; {why}"
