"""One object in, a JSONPatch and warnings (or a denial) out. Pure.

Every value the webhook sets is set only where the user left it unset, and is recorded in one
annotation (``aim.amd.com/admission``) with the value it had. On a later call (reinvocation, or an
UPDATE of an InferenceService) a field whose value still equals the recorded one is the webhook's
and may be recomputed; any other value is the user's and is never touched. A second call with the
same inputs therefore returns an empty patch.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

import sizing
from decision.fits import Offer, Target
from decision.pod_demand import annotation_text
from decision.text import gib
from sizing import ModelArch, Precision
from sizing.bounded import MAX_CONTEXT_TOKENS, BoundedValueError, parse_count, parse_int, parse_memory_bytes, shown
from sizing.contract import (
    ANNOTATION_MAX_MODEL_LEN,
    ANNOTATION_MEMORY,
    ANNOTATION_MODEL,
    ANNOTATION_PRECISION,
    ANNOTATION_PREFIX,
    ANNOTATION_PROFILE,
    LABEL_MEMORY_MIB,
    RESOURCE_NAME,
)
from sizing.estimator import declared_precision
from webhook.choice import PREFERRED_TERM_WEIGHT, Choice, decide, size_bounds
from webhook.engine_flags import FlagUse, flag_uses
from webhook.flags import DEFAULT_MODEL_FORMAT, DEFAULT_RUNTIME
from webhook.models import ModelResolver, catalogue_model
from webhook.patching import Draft, Path, UnpatchableError, dotted, lookup
from webhook.workload import (
    KSERVE_ISVC_LABEL,
    Kind,
    NotMutableError,
    RefusedError,
    Workload,
    read_workload,
)

# The one annotation that records what the webhook set (JSON: field -> value it set).
ANNOTATION_RECORD: Final = ANNOTATION_PREFIX + "admission"
# KServe's annotation naming the extended resources it may treat as GPUs (constants.go).
ANNOTATION_GPU_TYPES: Final = "serving.kserve.io/gpu-resource-types"

DEFAULT_SCHEDULER: Final = "default-scheduler"  # what the API server fills in before admission

# Longest model id read: Hugging Face repo ids are at most 96 characters for the name plus the org.
MAX_MODEL_ID_LENGTH: Final = 200
_MODEL_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*", re.ASCII)
_FRACTION: Final = re.compile(r"0?\.[0-9]{1,6}|1(\.0{1,6})?", re.ASCII)


@dataclass(frozen=True, slots=True)
class Options:
    runtime: str = DEFAULT_RUNTIME
    model_format: str = DEFAULT_MODEL_FORMAT
    scheduler_name: str | None = None  # set spec.schedulerName to this when the user named none
    resolve_model: ModelResolver = catalogue_model


@dataclass(frozen=True, slots=True)
class Mutation:
    """What to answer: allowed with ``ops`` and ``warnings``, or denied with ``message``."""

    allowed: bool
    ops: tuple[dict[str, Any], ...] = ()
    warnings: tuple[str, ...] = ()
    message: str = ""


class AnnotationError(RefusedError):
    """An annotation the webhook cannot read: the object is refused with this message."""


def _deny_annotation(key: str, raw: object, problem: str) -> AnnotationError:
    return AnnotationError(f"annotation {key}={shown(raw)}: {problem}")


def _annotation(annotations: Mapping[str, object], key: str) -> str | None:
    """The annotation as decision.pod_demand reads it (the extender reads the same text), or the denial."""
    try:
        return annotation_text(annotations, key, field="annotation")
    except BoundedValueError as error:
        raise _deny_annotation(key, error.raw, error.problem) from None


def _model_id(raw: str) -> str:
    if len(raw) > MAX_MODEL_ID_LENGTH or not _MODEL_ID.fullmatch(raw):
        raise _deny_annotation(ANNOTATION_MODEL, raw, "is not a model id (a Hugging Face id such as"
                                                     " meta-llama/Llama-3.1-8B-Instruct)")
    return raw


@dataclass(frozen=True, slots=True)
class Inputs:
    """The sizing inputs read from the object, with where each came from."""

    model: ModelArch
    precision: Precision
    precision_given: bool  # False: defaulted (then vLLM keeps the checkpoint's own dtype)
    max_model_len: int | None
    memory_bytes: int | None
    partitions: int | None  # the user's amd.com/gpu-partition count (or tensor-parallel size)
    warnings: tuple[str, ...] = ()
    # The flags the serving container has, scanned once (command then args; engine_flags): a Pod
    # at the bounds has 1,024 args, and the writer and the warnings read the same scan.
    flags: Mapping[str, FlagUse] = field(default_factory=dict)


def _resolve(options: Options, model_id: str, key: str) -> ModelArch:
    try:
        return options.resolve_model(model_id)
    except sizing.UnknownModelError as error:
        hint = f"did you mean {' or '.join(error.suggestions)}? " if error.suggestions else ""
        raise AnnotationError(f"annotation {key}={shown(model_id)}: unknown model; {hint}use a catalogue id"
                              " (aim-sizing models) or add it to the models directory (aim-sizing models add)"
                              ) from None
    except sizing.SizingError as error:
        raise AnnotationError(f"annotation {key}={shown(model_id)}: {error}") from None


def _users(uses: Mapping[str, FlagUse], flag: str, record: _Record) -> FlagUse | None:
    """The flag's last use unless it is the webhook's own (recorded) value."""
    use = uses.get(flag)
    if use is None or (use.args_index is not None and record.owns("args:" + flag, use.value)):
        return None
    return use


def _user_count(container: Mapping[str, Any], base: Path, record: _Record) -> tuple[int | None, list[str]]:
    """The user's amd.com/gpu-partition count (limits win over requests, as the API server
    defaults requests from limits), and a warning when they disagree. RefusedError naming the
    field for a value that is not a count: the webhook would otherwise copy it into the patch."""
    resources = container.get("resources")
    resources = resources if isinstance(resources, Mapping) else {}
    counts: dict[str, int] = {}
    warnings: list[str] = []
    for kind in ("limits", "requests"):
        values = resources.get(kind)
        if not isinstance(values, Mapping) or RESOURCE_NAME not in values:
            continue
        if record.owns("resources", _text(values[RESOURCE_NAME])):
            continue  # the webhook's own count: recomputed, not an input
        where = dotted((*base, "resources", kind, RESOURCE_NAME))
        try:
            counts[kind] = parse_count(where, values[RESOURCE_NAME])
        except BoundedValueError as error:
            raise RefusedError(f"{error}; give a whole number of partitions such as \"1\"") from None
    if len(counts) == 2 and counts["limits"] != counts["requests"]:
        warnings.append(f"{dotted(base)}: {RESOURCE_NAME} requests ({counts['requests']}) and limits"
                        f" ({counts['limits']}) differ; extended resources need them equal")
    return counts.get("limits", counts.get("requests")), warnings


def _flag_int(use: FlagUse | None, flag: str, maximum: int, warnings: list[str]) -> int | None:
    if use is None or use.value is None:
        return None
    try:
        return parse_int(flag, use.value, minimum=1, maximum=maximum)
    except BoundedValueError as error:
        warnings.append(f"cannot read the container's {error}; sized without it")
        return None


@dataclass(slots=True)
class _Record:
    """The record annotation: field -> value the webhook set (previous call's and this call's)."""

    previous: dict[str, str]
    now: dict[str, str] = field(default_factory=dict)

    def owns(self, key: str, current: str | None) -> bool:
        return current is not None and self.previous.get(key) == current

    def claim(self, key: str, current: str | None, desired: str) -> bool:
        """True when the webhook should write ``desired`` (unset, or its own value that changed)."""
        if current is None or self.owns(key, current):
            self.now[key] = desired
            return current != desired
        return False


def _read_record(annotations: Mapping[str, object]) -> dict[str, str]:
    raw = annotations.get(ANNOTATION_RECORD)
    if not isinstance(raw, str) or len(raw) > 16384:
        return {}
    try:
        data = orjson.loads(raw)  # depth-limited: a record of 10,000 '[' is a decode error, not a RecursionError
    except orjson.JSONDecodeError:
        return {}
    found = data.get("set") if isinstance(data, dict) else None
    if not isinstance(found, dict):
        return {}
    return {k: v for k, v in found.items() if isinstance(k, str) and isinstance(v, str)}


def read_inputs(workload: Workload, root: Mapping[str, Any], options: Options, record: _Record) -> Inputs:
    """The sizing inputs (the user's: values the record says the webhook set are not inputs);
    AnnotationError when an AIM annotation is garbage."""
    notes = workload.annotations
    warnings: list[str] = []
    profile_id = _annotation(notes, ANNOTATION_PROFILE)
    precision_text = _annotation(notes, ANNOTATION_PRECISION)
    precision: Precision | None = None
    if profile_id is not None:
        try:
            profile = sizing.get_profile(profile_id[:MAX_MODEL_ID_LENGTH])
        except sizing.SizingError as error:
            raise AnnotationError(f"annotation {ANNOTATION_PROFILE}={shown(profile_id)}: {error}") from None
        model = _resolve(options, profile.model_id, ANNOTATION_PROFILE)
        precision = profile.precision
    else:
        model_id = _annotation(notes, ANNOTATION_MODEL)
        if model_id is None:
            raise NotMutableError("no model annotation")
        model = _resolve(options, _model_id(model_id), ANNOTATION_MODEL)
        if precision_text is not None:
            try:
                precision = sizing.parse_precision(precision_text[:32])
            except sizing.SizingError as error:
                raise _deny_annotation(ANNOTATION_PRECISION, precision_text, str(error)) from None
    declared = declared_precision(model)
    if declared is not None and precision is not None and precision != declared:
        # The extender would refuse the pod on every node for the same reason: say it now.
        key = ANNOTATION_PROFILE if profile_id is not None else ANNOTATION_PRECISION
        scheme = model.quantization.scheme.label if model.quantization is not None else declared.value
        raise AnnotationError(f"annotation {key}: precision {precision.value} contradicts {model.id}, a"
                              f" pre-quantized {scheme} checkpoint ({declared.value}); omit"
                              f" {ANNOTATION_PRECISION} or give {declared.value}")
    given = precision is not None or declared is not None
    precision = precision or declared or Precision.FP16

    max_len: int | None = None
    raw_len = _annotation(notes, ANNOTATION_MAX_MODEL_LEN)
    if raw_len is not None and not record.owns("annotation:" + ANNOTATION_MAX_MODEL_LEN, raw_len):
        try:
            max_len = parse_int("annotation " + ANNOTATION_MAX_MODEL_LEN, raw_len,
                                minimum=1, maximum=MAX_CONTEXT_TOKENS)
        except BoundedValueError as error:
            raise AnnotationError(str(error)) from None
    uses = flag_uses(workload.tokens(root, "command"), workload.tokens(root, "args"))
    arg_len = _flag_int(_users(uses, "--max-model-len", record), "--max-model-len", MAX_CONTEXT_TOKENS, warnings)
    if arg_len is not None:
        if max_len is not None and arg_len != max_len:
            warnings.append(f"--max-model-len={arg_len} in the container overrides"
                            f" {ANNOTATION_MAX_MODEL_LEN}={max_len};"
                            f" sized for {arg_len}, the context vLLM will use")
        max_len = arg_len
    if max_len is not None and max_len > model.max_context:
        raise AnnotationError(f"max-model-len {max_len} exceeds the {model.max_context} tokens {model.id}"
                              f" supports ({ANNOTATION_MAX_MODEL_LEN} or --max-model-len)")

    memory: int | None = None
    raw_memory = _annotation(notes, ANNOTATION_MEMORY)
    if raw_memory is not None:
        try:
            memory = parse_memory_bytes("annotation " + ANNOTATION_MEMORY, raw_memory)
        except BoundedValueError as error:
            raise AnnotationError(str(error)) from None

    container = workload.container(root)
    count, count_warnings = _user_count(container, workload.container_path, record)
    warnings.extend(count_warnings)
    tp = _flag_int(_users(uses, "--tensor-parallel-size", record), "--tensor-parallel-size", 1024, warnings)
    if count is not None and tp is not None and tp != count:
        warnings.append(f"--tensor-parallel-size={tp} but the container requests {count} {RESOURCE_NAME}:"
                        " vLLM needs one partition per rank; make them equal")
    partitions = count if count is not None else tp
    if partitions == 0:
        warnings.append(f"the container requests 0 {RESOURCE_NAME}; {model.id} needs at least one")
        partitions = None
    return Inputs(model, precision, given, max_len, memory, partitions, tuple(warnings), uses)


def _text(value: object) -> str | None:
    """A field's value as text, to compare with the recorded value the webhook set (always a short
    string). An object or list is never one the webhook set: it is named by its type, never walked
    or serialized (it may nest 1,000 levels deep or hold a million items)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value) if value.bit_length() <= 64 else f"<int of {value.bit_length()} bits>"
    if isinstance(value, float):
        return repr(value)
    return f"<{type(value).__name__}>"


class _Writer:
    """Applies the choice to one object through the record's ownership rule."""

    def __init__(self, workload: Workload, original: dict[str, Any], record: _Record, options: Options) -> None:
        self.workload = workload
        self.draft = Draft(original)
        self.root = self.draft.root  # the draft: reads see the earlier writes
        self.record = record
        self.options = options
        self.warnings: list[str] = []

    def scalar(self, key: str, path: Path, desired: str) -> None:
        current = _text(lookup(self.root, path))
        if self.record.claim(key, current, desired):
            self.draft.put(path, desired)

    def resources(self, count: int) -> None:
        base = (*self.workload.container_path, "resources")
        desired = str(count)
        values = {kind: _text(lookup(self.root, (*base, kind, RESOURCE_NAME))) for kind in ("limits", "requests")}
        present = [v for v in values.values() if v is not None]
        if present and not all(self.record.owns("resources", v) for v in present):
            # The user's count: only complete the missing half (extended resources need both equal).
            for kind, value in values.items():
                if value is None:
                    self.draft.put((*base, kind, RESOURCE_NAME), present[0])
            return
        self.record.now["resources"] = desired
        for kind, value in values.items():
            if value != desired:
                self.draft.put((*base, kind, RESOURCE_NAME), desired)

    def engine_args(self, desired: Mapping[str, str], uses: Mapping[str, FlagUse]) -> None:
        """``uses``: the scan of the object as it came (Inputs.flags; nothing before this changes
        the args). The webhook's own appends are flags not in the scan, and a replacement keeps
        every index, so the scan stays true for the remaining flags."""
        args_path = (*self.workload.container_path, "args")
        for flag, value in desired.items():
            use = uses.get(flag)
            key = "args:" + flag
            if use is None:
                self.record.now[key] = value
                self.draft.append(args_path, f"{flag}={value}")
            elif use.args_index is not None and self.record.owns(key, use.value):
                self.record.now[key] = value
                if use.value != value:
                    self.draft.replace_item(args_path, use.args_index, f"{flag}={value}")
        # A flag the webhook set earlier that the new sizing does not want (e.g. --quantization after
        # the precision changed to fp16) goes; last, highest index first, so no index shifts.
        stale = sorted((use.args_index for key in self.record.previous if key.startswith("args:")
                        and key[5:] not in desired and (use := uses.get(key[5:])) is not None
                        and use.args_index is not None and self.record.owns(key, use.value)), reverse=True)
        for index in stale:
            self.draft.remove_item(args_path, index)

    def affinity(self, required_mib: int) -> None:
        desired = str(required_mib - 1)
        expression = {"key": LABEL_MEMORY_MIB, "operator": "Gt", "values": [desired]}
        terms_path = (*self.workload.pod_spec_path, "affinity", "nodeAffinity",
                      "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms")
        terms = lookup(self.root, terms_path)
        if not terms:
            self.record.now["affinity"] = desired
            self.draft.put(terms_path, [{"matchExpressions": [expression]}])
            return
        if not isinstance(terms, list):
            raise UnpatchableError(terms_path, "a list")
        # Terms are ORed: every alternative the user wrote must also require the partition size.
        for index, term in enumerate(terms):
            if not isinstance(term, dict):
                raise UnpatchableError((*terms_path, index), "an object")
            expressions_path = (*terms_path, index, "matchExpressions")
            expressions = term.get("matchExpressions")
            if expressions is not None and not isinstance(expressions, list):
                raise UnpatchableError(expressions_path, "a list")
            ours = [i for i, e in enumerate(expressions or [])
                    if isinstance(e, dict) and e.get("key") == LABEL_MEMORY_MIB]
            if not ours:
                self.record.now["affinity"] = desired
                self.draft.append(expressions_path, expression)
                continue
            current = (expressions or [])[ours[-1]]
            values = current.get("values")
            single = current.get("operator") == "Gt" and isinstance(values, list) and len(values) == 1
            value = values[0] if single else None
            if self.record.owns("affinity", _text(value)):
                self.record.now["affinity"] = desired
                if value != desired:
                    self.draft.replace_item(expressions_path, ours[-1], expression)

    def preferred(self, bounds: Sequence[int]) -> None:
        """The preferred node-affinity terms that rank partition sizes (native mode; choice.size_bounds):
        appended after the user's own terms; recomputed only while the record says they are the
        webhook's. Size terms the user wrote (not recorded) are the user's: nothing is added."""
        path = (*self.workload.pod_spec_path, "affinity", "nodeAffinity",
                "preferredDuringSchedulingIgnoredDuringExecution")
        desired = [_size_term(bound) for bound in bounds]
        signature = ",".join(map(_size_signature, bounds))
        current = lookup(self.root, path)
        if current is not None and not isinstance(current, list):
            raise UnpatchableError(path, "a list")
        if len(current or ()) > MAX_PREFERRED_TERMS:
            raise RefusedError(f"{dotted(path)} has {len(current or ())} terms; at most {MAX_PREFERRED_TERMS}"
                               " are read")
        ours = [(i, sig) for i, term in enumerate(current or ()) if (sig := _term_signature(term)) is not None]
        if ours:
            if not self.record.owns("preferred", ",".join(sig for _, sig in ours)):
                return  # the user's own preference for partition sizes
            self.record.now["preferred"] = signature
            if ",".join(sig for _, sig in ours) == signature:
                return
            for index, _ in reversed(ours):
                self.draft.remove_item(path, index)
        elif desired:
            self.record.now["preferred"] = signature
        for term in desired:
            self.draft.append(path, term)

    def context_annotation(self, max_model_len: int) -> None:
        """``aim.amd.com/max-model-len`` = the sized context, so the extender sizes the same pod alike
        (KServe copies the annotation to the predictor pod). Written where the user wrote none."""
        key = "annotation:" + ANNOTATION_MAX_MODEL_LEN
        current = _text(self.workload.annotations.get(ANNOTATION_MAX_MODEL_LEN))
        if current is not None and not self.record.owns(key, current):
            return
        self.scalar(key, ("metadata", "annotations", ANNOTATION_MAX_MODEL_LEN), str(max_model_len))

    def gpu_types(self) -> None:
        path = ("metadata", "annotations", ANNOTATION_GPU_TYPES)
        desired = json.dumps([RESOURCE_NAME])
        current = lookup(self.root, path)
        if current is None or self.record.owns("gpu-resource-types", _text(current)):
            self.scalar("gpu-resource-types", path, desired)
            return
        try:
            listed = orjson.loads(current) if isinstance(current, str) and len(current) < 4096 else None
        except orjson.JSONDecodeError:  # depth-limited, unlike json.loads
            listed = None
        if not isinstance(listed, list) or RESOURCE_NAME not in listed:
            self.warnings.append(f"annotation {ANNOTATION_GPU_TYPES}={shown(current)} does not list {RESOURCE_NAME};"
                                 f" KServe may refuse the partitions: use {desired}")

    def runtime(self) -> None:
        model_path = self.workload.container_path
        runtime = lookup(self.root, (*model_path, "runtime"))
        if runtime is not None and not self.record.owns("runtime", _text(runtime)):
            return
        model_format = lookup(self.root, (*model_path, "modelFormat", "name"))
        if model_format is None or self.record.owns("modelFormat", _text(model_format)):
            self.scalar("modelFormat", (*model_path, "modelFormat", "name"), self.options.model_format)
        elif model_format != self.options.model_format:
            self.warnings.append(
                f"{dotted((*model_path, 'modelFormat', 'name'))}={shown(model_format)} and no runtime: KServe's own"
                f" runtime for it runs on CPU when it sees no nvidia.com/gpu; use modelFormat"
                f" {self.options.model_format} (runtime {self.options.runtime})")
            return
        self.scalar("runtime", (*model_path, "runtime"), self.options.runtime)

    def scheduler(self, name: str) -> None:
        path = (*self.workload.pod_spec_path, "schedulerName")
        current = _text(lookup(self.root, path))
        if current == DEFAULT_SCHEDULER and self.workload.kind is Kind.POD:
            current = None  # the API server's default, not the user's choice
        if self.record.claim("schedulerName", current, name) and current != name:
            self.draft.put(path, name)

    def write_record(self, summary: str, previous_raw: object) -> None:
        document = json.dumps({"sized": summary, "set": dict(sorted(self.record.now.items()))},
                              separators=(",", ":"), sort_keys=True)
        if document != previous_raw:
            self.draft.put(("metadata", "annotations", ANNOTATION_RECORD), document)


# Preferred node-affinity terms read from an object: real pods carry a few; the API server accepts
# any number, so a hostile object is refused here rather than scanned.
MAX_PREFERRED_TERMS: Final = 256


def _size_term(bound_mib: int) -> dict[str, Any]:
    """One preferred term: partitions smaller than ``bound_mib`` MiB (choice.size_bounds)."""
    return {"weight": PREFERRED_TERM_WEIGHT, "preference": {"matchExpressions": [
        {"key": LABEL_MEMORY_MIB, "operator": "Lt", "values": [str(bound_mib)]}]}}


def _size_signature(bound_mib: int) -> str:
    return f"{PREFERRED_TERM_WEIGHT}<{bound_mib}"


def _term_signature(term: object) -> str | None:
    """``weight<bound`` for a preferred term of the webhook's shape (one ``memory-mib Lt`` expression),
    else None; constant work whatever the term holds."""
    if not isinstance(term, dict) or set(term) != {"weight", "preference"}:
        return None
    weight, preference = term["weight"], term["preference"]
    if not isinstance(weight, int) or isinstance(weight, bool) or not isinstance(preference, dict):
        return None
    if set(preference) != {"matchExpressions"} or not isinstance(preference["matchExpressions"], list):
        return None
    expressions = preference["matchExpressions"]
    if len(expressions) != 1 or not isinstance(expressions[0], dict):
        return None
    expression = expressions[0]
    values = expression.get("values")
    if (expression.get("key") != LABEL_MEMORY_MIB or expression.get("operator") != "Lt"
            or not isinstance(values, list) or len(values) != 1 or not isinstance(values[0], str)
            or len(values[0]) > 12):
        return None
    return f"{_text(weight)}<{values[0]}"


def _summary(inputs: Inputs, choice: Choice) -> str:
    noun = "partition" if choice.partitions == 1 else "partitions"
    return (f"{inputs.model.id} {inputs.precision.value} ctx {choice.need.max_model_len}: {choice.partitions}"
            f" {noun} of at least {gib(choice.required_bytes, round_up=True)}")


def _user_value_warnings(uses: Mapping[str, FlagUse], record: _Record, choice: Choice) -> list[str]:
    """Warnings for vLLM arguments the user set that break what was sized (``uses``: the object's
    flags as it came; a flag the webhook sets now is its own, not the user's)."""
    uses = {flag: use for flag, use in uses.items() if "args:" + flag not in record.now}
    out: list[str] = []
    utilization = uses.get("--gpu-memory-utilization")
    if utilization is not None and utilization.value is not None:
        text = utilization.value.strip()
        if not _FRACTION.fullmatch(text):
            out.append(f"--gpu-memory-utilization={shown(text)} is not a fraction between 0 and 1")
        elif float(text) < choice.need.gpu_memory_utilization:
            out.append(f"--gpu-memory-utilization={text} is below the {choice.need.gpu_memory_utilization} the"
                       " partition was sized for: vLLM may not fit the model")
    batched = uses.get("--max-num-batched-tokens")
    if batched is not None and batched.value is not None:
        try:
            tokens = parse_int("--max-num-batched-tokens", batched.value, minimum=1, maximum=MAX_CONTEXT_TOKENS)
        except BoundedValueError as error:
            out.append(str(error))
        else:
            if tokens > choice.need.max_num_batched_tokens:
                out.append(f"--max-num-batched-tokens={tokens} is above the {choice.need.max_num_batched_tokens} the"
                           " activation peak was sized for: vLLM may not fit the model")
    return out


def _carries_model(kind: Kind, obj: Mapping[str, Any]) -> bool:
    notes = [lookup(obj, ("metadata", "annotations"))]
    if kind is Kind.INFERENCE_SERVICE:
        notes.append(lookup(obj, ("spec", "predictor", "annotations")))
    return any(isinstance(n, Mapping) and (ANNOTATION_MODEL in n or ANNOTATION_PROFILE in n) for n in notes)


def mutate(kind: Kind, operation: str, obj: dict[str, Any], offers: Sequence[Offer], options: Options) -> Mutation:
    """The answer for one object (``obj`` is not changed: the patch is the diff to an edited draft)."""
    if operation not in ("CREATE", "UPDATE") or (kind is Kind.POD and operation != "CREATE"):
        return Mutation(True)
    if not _carries_model(kind, obj):
        return Mutation(True)
    labels = lookup(obj, ("metadata", "labels"))
    annotations = lookup(obj, ("metadata", "annotations"))
    if (kind is Kind.POD and isinstance(labels, Mapping) and KSERVE_ISVC_LABEL in labels
            and isinstance(annotations, Mapping) and ANNOTATION_RECORD in annotations):
        return Mutation(True)  # a predictor pod of an InferenceService this webhook already sized
    # DRA mode (docs/dra.md): the pod's claim brings the partitions (webhook.dra sized its template
    # from the same annotations), so the pod gets the vLLM arguments and the context annotation only:
    # extended resources and the partition-label affinity would ask for a second allocation, or for
    # labels a DRA node lacks.
    dra = kind is Kind.POD and bool(lookup(obj, ("spec", "resourceClaims")))
    try:
        workload = read_workload(kind, obj)
        record = _Record(_read_record(_mapping(annotations)))
        inputs = read_inputs(workload, obj, options, record)
    except RefusedError as denied:
        return Mutation(False, message=str(denied))
    except NotMutableError as why:
        return Mutation(True, warnings=(f"not mutated by the aim-gpu-sharing webhook: {why}",))
    # A DRA pod is sized as its claim template is (dra.mutate_claim_template: the count searched,
    # never the container's), so the tensor-parallel size is the template's device count.
    partitions = None if dra else inputs.partitions
    target = Target(inputs.model, inputs.precision, inputs.max_model_len, partitions, inputs.memory_bytes)
    outcome = decide(target, offers)
    warnings = [*inputs.warnings, *outcome.warnings]
    choice = outcome.choice
    if choice is None:
        return Mutation(False, message=outcome.denial)
    if dra and inputs.partitions is not None and inputs.partitions != choice.partitions:
        warnings.append(f"the container runs {inputs.partitions} tensor-parallel ranks but its ResourceClaimTemplate,"
                        f" sized from the same annotations, asks for {choice.partitions} partition(s) (DRA mode);"
                        " vLLM needs one partition per rank: make them equal")
    annotated_len = workload.annotations.get(ANNOTATION_MAX_MODEL_LEN)
    if dra and inputs.max_model_len is not None and annotated_len != str(inputs.max_model_len):
        warnings.append(f"--max-model-len={inputs.max_model_len} in the container: the ResourceClaimTemplate is sized"
                        f" from its annotations only (DRA mode); give it {ANNOTATION_MAX_MODEL_LEN}="
                        f"{inputs.max_model_len} too")
    writer = _Writer(workload, obj, record, options)
    try:
        if not dra:
            writer.resources(choice.partitions)
        if workload.runs_vllm:
            args = choice.engine_args()
            if not inputs.precision_given:
                args.pop("--dtype", None)  # vLLM keeps the checkpoint's own 16-bit dtype
            writer.engine_args(args, inputs.flags)
            warnings.extend(_user_value_warnings(inputs.flags, record, choice))
        if not dra:
            writer.affinity(choice.required_mib)
            writer.preferred(size_bounds(choice.required_mib, offers))
        writer.context_annotation(choice.need.max_model_len)
        if kind is Kind.INFERENCE_SERVICE:
            writer.gpu_types()
            if workload.model_spec:
                writer.runtime()
        if options.scheduler_name and not dra:
            writer.scheduler(options.scheduler_name)
        summary = _summary(inputs, choice) + (" (DRA: the partitions come from spec.resourceClaims)" if dra else "")
        writer.write_record(summary, _mapping(annotations).get(ANNOTATION_RECORD))
    except UnpatchableError as error:
        return Mutation(True, warnings=(*warnings, f"not mutated by the aim-gpu-sharing webhook: {error}"))
    except RefusedError as denied:
        return Mutation(False, message=str(denied))
    return Mutation(True, tuple(writer.draft.patch()), tuple([*warnings, *writer.warnings]))


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
