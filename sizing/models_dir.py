"""A models directory: catalogue entries a cluster adds, one file per model (pure parsing).

An entry is a versioned JSON document (schema ``data/model-entry.schema.json``)::

    {"schema": "aim-gpu-sharing/model-entry/v1", "id": "ORG/NAME", "source": "<where the config came from>",
     "max_context": 32768, "config": { ...the checkpoint's config.json... }}

``parse_entry`` takes the file's text (the shells read the files: ``aim-sizing --models-dir`` and
the extender's ``extender.models_source``) and returns the sized ``ModelArch``; ``entry_document``
builds the document ``aim-sizing models add`` writes; ``extend_catalogue`` adds entries to a catalogue.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

from sizing.catalogue import Catalogue, ModelArch, model_from_hf_config
from sizing.errors import SizingError
from sizing.json_text import loads
from sizing.safetensors_header import WeightsSummary
from sizing.schema import check_document

ENTRY_SCHEMA = "aim-gpu-sharing/model-entry/v1"
MAX_ENTRY_BYTES = 1 << 20  # 1 MiB: a config.json is a few kB; a ConfigMap holds at most 1 MiB in all
ENTRY_SUFFIX = ".json"
# Entries in one directory: an entry is 2-40 kB, so a 1 MiB ConfigMap holds a few hundred at most; a
# directory with more is not a models directory, and it is refused whole (never a partial set).
MAX_ENTRIES = 512
# Other files a listing may pass over (kubelet's ..data links, non-.json keys) before it gives up.
MAX_OTHER_FILES = 4096


def entry_file_name(model_id: str) -> str:
    """The file name an entry for ``model_id`` is written under (ConfigMap keys allow [-._a-zA-Z0-9])."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", model_id.replace("/", "--")) + ENTRY_SUFFIX


def entry_document(config: Mapping[str, Any], model_id: str, source: str, max_context: int | None = None,
                   aliases: Iterable[str] = (), weights: WeightsSummary | None = None) -> dict[str, Any]:
    """The entry document for a config.json (and, when given, the exact weight bytes read from the
    checkpoint's safetensors); SizingError if the config cannot be sized or a fact is bad."""
    doc: dict[str, Any] = {"schema": ENTRY_SCHEMA, "id": model_id, "source": source, "config": dict(config)}
    if max_context is not None:
        doc["max_context"] = max_context
    if aliases:
        doc["aliases"] = list(aliases)
    if weights is not None:
        doc["weights"] = {"total_bytes": weights.total_bytes, "from": weights.source}
    model_from_document(doc, "<new entry>")  # validates schema and sizes the config
    return doc


def model_from_document(doc: object, file_name: str) -> ModelArch:
    """The ModelArch of a parsed entry document; SizingError naming the file and the field."""
    check_document(doc, "model-entry.schema.json", file_name, "aliases", lambda _d, i: f"alias {i}")
    assert isinstance(doc, Mapping)  # the schema requires an object
    try:
        model = model_from_hf_config(doc["config"], model_id=doc["id"])
    except SizingError as exc:
        raise SizingError(f"{file_name}: {exc}") from None
    changes: dict[str, Any] = {"source": doc["source"], "aliases": tuple(doc.get("aliases", ()))}
    if "max_context" in doc:
        changes["max_context"] = min(model.max_context, doc["max_context"])
    if "weights" in doc:  # exact bytes from the checkpoint's safetensors, used over the computed ones
        changes["exact_weights_bytes"] = doc["weights"]["total_bytes"]
    return dataclasses.replace(model, **changes)


def parse_entry(text: str | bytes, file_name: str) -> ModelArch:
    """The ModelArch of one entry file's contents; SizingError naming the file and the field."""
    if len(text) > MAX_ENTRY_BYTES:
        raise SizingError(f"{file_name}: larger than {MAX_ENTRY_BYTES} bytes")
    return model_from_document(loads(text, file_name), file_name)


def entry_names(listing: Iterable[str], directory: object) -> list[str]:
    """The entry file names among a directory ``listing`` (sorted; dot files such as kubelet's ``..data``
    and non-``.json`` names left out). SizingError when there are more than MAX_ENTRIES: the caller
    keeps what it had rather than load a part. The listing is read no further than the bounds need."""
    names: list[str] = []
    others = 0
    for name in listing:
        if name.startswith(".") or not name.endswith(ENTRY_SUFFIX):
            others += 1
            if others > MAX_OTHER_FILES:
                raise SizingError(f"models directory {directory} holds more than {MAX_OTHER_FILES} other files; "
                                  "is it the right directory?")
            continue
        names.append(name)
        if len(names) > MAX_ENTRIES:
            raise SizingError(f"models directory {directory} has more than {MAX_ENTRIES} entries; refused whole "
                              "rather than loading a part of it (remove entries no workload uses)")
    return sorted(names)


def extend_catalogue(base: Catalogue, models: Iterable[ModelArch]) -> Catalogue:
    """``base`` plus ``models``; an entry whose id is already in ``base`` is refused (SizingError)."""
    extra = tuple(models)
    clash = sorted(m.id for m in extra if m.id in base)
    if clash:
        raise SizingError(f"models directory entry {clash[0]!r} is already in the built-in catalogue")
    version = f"{base.data_version}+{len(extra)} local" if extra else base.data_version
    return Catalogue(tuple(base[m] for m in base) + extra, version)
