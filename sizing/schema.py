"""JSON Schema validation (draft 2020-12) of the data files and of the profiles, one style for all.

The schemas live in ``data/``: ``models.schema.json`` and ``gpus.schema.json`` (checked at load with
one-line errors naming the entry and field, ``check_document``), ``profile.schema.json`` and
``aim-profile.schema.json`` (``schema_errors``). Each is read from the installed package the first
time it is needed; validation itself is pure.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any, Final

import jsonschema
from jsonschema.exceptions import ValidationError

from sizing.bounded import shown
from sizing.errors import DataFileError

# An entry's readable name from the document and its index (e.g. "entry 3 (org/model)").
EntryNamer = Callable[[Any, int], str]


def _strict_integer(checker: Any, instance: object) -> bool:
    """JSON Schema's integer admits 4.0; facts are written as whole numbers, so only ints count."""
    return isinstance(instance, int) and not isinstance(instance, bool)


_STRICT_TYPES: Final = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _strict_integer)
# jsonschema's own way to change one type (its stubs leave ``extend`` untyped)
_Validator: Final = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    jsonschema.Draft202012Validator, type_checker=_STRICT_TYPES)


@cache
def validator(schema_file: str) -> Any:
    """The draft 2020-12 validator of ``data/<schema_file>`` (read once from the installed package;
    integers must be JSON integers)."""
    text = resources.files("sizing").joinpath(f"data/{schema_file}").read_text(encoding="utf-8")
    # not check_schema() here: validating against the metaschema costs more than the document
    # itself; tests/sizing/test_data_validation.py checks every schema once
    return _Validator(json.loads(text))


def _field(error: ValidationError, start: int) -> str:
    """Dotted path of the failing field inside its entry (``mla.qk_rope_head_dim``, ``pci_device_ids[0]``)."""
    parts = list(error.absolute_path)[start:]
    instance: Any = error.instance  # jsonschema's stubs type it as "Any | Unset"
    if error.validator == "required":  # the path ends at the object; the missing key is the field
        required: Any = error.validator_value
        missing = [key for key in required if key not in instance]
        parts.append(missing[0] if missing else "?")
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        parts.append(sorted(key for key in instance if key not in known)[0])
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or ("<document>" if start == 0 else "<entry>")


def _problem(error: ValidationError) -> str:
    instance: Any = error.instance
    expected: Any = error.validator_value
    if error.validator == "required":
        return "is missing"
    if error.validator == "type":
        names = " or ".join(expected) if isinstance(expected, list) else str(expected)
        return f"must be of type {names}, got {shown(instance)}"
    if error.validator == "const":
        return f"must be {expected!r}, got {shown(instance)}"
    if error.validator == "enum":
        return f"must be one of {', '.join(map(str, expected))}, got {shown(instance)}"
    if error.validator == "minimum":
        return f"must be at least {expected}, got {shown(instance)}"
    if error.validator == "minItems":
        return f"must have at least {expected} item(s), got {len(instance)}"
    if error.validator == "pattern":
        return f"must match {expected}, got {shown(instance)}"
    if error.validator == "additionalProperties":
        return "is not a field of this format (misspelt?)"
    return f"{error.message.splitlines()[0]}"


def check_document(document: object, schema_file: str, file_name: str, entries_key: str,
                   name_entry: EntryNamer) -> None:
    """Raise DataFileError for the first schema violation of ``document`` (in document order).

    The message is one line: the file, the entry (``name_entry(document, index)``, for errors under
    ``entries_key``), the field's path inside the entry and what is wrong with its value.
    """
    errors = sorted(validator(schema_file).iter_errors(document),
                    key=lambda e: [str(p).zfill(8) for p in e.absolute_path])
    if not errors:
        return
    error = errors[0]
    path = list(error.absolute_path)
    where = file_name
    start = 0
    if len(path) >= 2 and path[0] == entries_key and isinstance(path[1], int):
        where = f"{file_name} {name_entry(document, path[1])}"
        start = 2
    raise DataFileError(f"{where}: field {_field(error, start)!r} {_problem(error)}")


def schema_errors(document: object, schema_file: str) -> list[str]:
    """Every violation of ``data/<schema_file>`` as a line ``path: message``; empty when valid."""
    errors = validator(schema_file).iter_errors(document)
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in sorted(errors, key=lambda e: list(map(str, e.absolute_path)))]
