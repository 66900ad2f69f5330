"""``aim-sizing``: the sizing library on the command line (the shell around the pure core)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import yaml

import sizing
import sizing.models_dir
from sizing import GIB, ModelArch, SizingError, UnknownModelError, json_text
from sizing.estimator import declared_precision
from sizing.input_files import list_files, open_regular, read_regular
from sizing.models_dir import (
    MAX_ENTRY_BYTES,
    entry_document,
    entry_file_name,
    entry_names,
    extend_catalogue,
    parse_entry,
)
from sizing.profiles import validate_document
from sizing.rocm_support import support_line
from sizing.safetensors_header import (
    HEADER_LENGTH_BYTES,
    MAX_INDEX_BYTES,
    WeightsSummary,
    header_length,
    parse_header,
    parse_index,
)

EXPECTED_PROFILES = len(sizing.CATALOGUE) * len(sizing.PROFILE_PRECISIONS)


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 with usage on bad flags; we also route our own input errors through it."""


def _fail(message: str) -> NoReturn:
    print(f"aim-sizing: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _gib(n: int | float) -> str:
    return f"{n / GIB:.2f} GiB"


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [list(map(str, headers))] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _read_json(path: Path) -> Any:
    """A config.json: a regular file of at most MAX_ENTRY_BYTES (a FIFO or /dev/zero is refused, not
    read), parsed by sizing.json_text (an over-long integer is named by its field)."""
    return json_text.loads(read_regular(path, MAX_ENTRY_BYTES), str(path))


def _catalogue(args: argparse.Namespace) -> sizing.Catalogue:
    """The built-in catalogue plus the entries of --models-dir (each file read here, parsed in sizing)."""
    directory = getattr(args, "models_dir", None)
    if not directory:
        return sizing.CATALOGUE
    root = Path(directory)
    if not root.is_dir():
        _fail(f"--models-dir {root} is not a directory")
    try:
        with os.scandir(root) as listing:
            names = entry_names((entry.name for entry in listing), root)
    except OSError as exc:
        _fail(f"cannot list --models-dir {root}: {exc.strerror}")
    models = [parse_entry(read_regular(root / name, MAX_ENTRY_BYTES), name) for name in names]
    return extend_catalogue(sizing.CATALOGUE, models)


def _load_model(args: argparse.Namespace) -> ModelArch:
    if args.config:
        path = Path(args.config)
        config = _read_json(path)
        return sizing.model_from_hf_config(config, model_id=args.model or path.parent.name or "custom")
    if not args.model:
        _fail("give a MODEL (catalogue id; see `aim-sizing models`) or --config PATH")
    return _catalogue(args).get_model(args.model)


def _precision_for(args: argparse.Namespace, model: ModelArch) -> str:
    """--precision, or the checkpoint's declared quantization when it is omitted."""
    if args.precision:
        return str(args.precision)
    declared = declared_precision(model)
    if declared is None:
        _fail(f"{model.id} is a 16-bit checkpoint: give --precision (fp16, bf16, fp8, int8 or int4)")
    return declared.value


def cmd_models(args: argparse.Namespace) -> None:
    if getattr(args, "models_command", None) == "add":
        cmd_models_add(args)
        return
    catalogue = _catalogue(args)
    models = [catalogue[m] for m in catalogue]
    if args.format == "json":
        print(json.dumps([{
            "id": m.id, "family": m.family, "params_total": m.params_total, "params_active": m.params_active,
            "num_layers": m.num_layers, "num_kv_heads": m.num_kv_heads, "head_dim": m.head_dim,
            "max_context": m.max_context, "attention": m.attention, "moe": m.is_moe,
            "quantization": m.quantization.scheme.label if m.quantization else None, "source": m.source,
        } for m in models], indent=2))
        return
    rows = [(m.id, f"{m.params_total / 1e9:.2f}B" + (f" ({m.params_active / 1e9:.1f}B active)" if m.is_moe else ""),
             m.num_layers, f"{m.num_attention_heads}/{m.num_kv_heads}", m.head_dim, m.max_context, m.attention)
            for m in models]
    print(_table(("model", "params", "layers", "heads/kv", "head_dim", "max_context", "attention"), rows))
    print(f"\n{len(models)} models, catalogue {catalogue.data_version}")


INDEX_FILE = "model.safetensors.index.json"
MAX_SHARDS = 4096  # checkpoints ship at most a few hundred shards (DeepSeek-V3: 163)
# Entries of a checkpoint directory listed for its shards: the shards plus a dozen config, tokenizer and
# licence files (DeepSeek-V3: 163 + 11); more is not a checkpoint directory.
MAX_CHECKPOINT_ENTRIES = 2 * MAX_SHARDS


def _read_safetensors_header(path: Path) -> WeightsSummary:
    """Read only the 8-byte length and the JSON header of one .safetensors file, never its tensors."""
    with open_regular(path) as (handle, size):
        length = header_length(handle.read(HEADER_LENGTH_BYTES), size, path.name)
        raw = handle.read(length)
    return parse_header(raw, path.name, size - HEADER_LENGTH_BYTES - length)


def _read_index(path: Path) -> WeightsSummary:
    return parse_index(read_regular(path, MAX_INDEX_BYTES), path.name)


def read_checkpoint_weights(path: Path) -> WeightsSummary:
    """Exact weight bytes of a checkpoint: its model.safetensors.index.json (metadata.total_size), or
    the headers of its .safetensors files; ``path`` is one of those files or the checkpoint directory."""
    if path.is_dir():
        if (path / INDEX_FILE).exists():
            return _read_index(path / INDEX_FILE)
        shards = list_files(path, (".safetensors",), max_depth=0, max_entries=MAX_CHECKPOINT_ENTRIES)
        if not shards:
            _fail(f"--weights {path} holds neither {INDEX_FILE} nor .safetensors files")
        if len(shards) > MAX_SHARDS:
            _fail(f"--weights {path} holds {len(shards)} .safetensors files, more than {MAX_SHARDS}")
        total = _read_safetensors_header(shards[0])
        for shard in shards[1:]:
            total = total + _read_safetensors_header(shard)
        return total
    if path.name.endswith(".index.json"):
        return _read_index(path)
    if path.suffix == ".safetensors":
        return _read_safetensors_header(path)
    _fail(f"--weights {path} is not a .safetensors file, a {INDEX_FILE} or a checkpoint directory")


def cmd_models_add(args: argparse.Namespace) -> None:
    """Write a models-directory entry for a config.json (validated by sizing it) into --out, with the
    checkpoint's exact weight bytes when --weights names its safetensors."""
    config = _read_json(Path(args.config))
    if not isinstance(config, dict):
        _fail(f"{args.config} must hold a JSON object")
    weights = read_checkpoint_weights(Path(args.weights)) if args.weights else None
    doc = entry_document(config, args.id, args.source, args.max_context, weights=weights)
    model = sizing.models_dir.model_from_document(doc, entry_file_name(args.id))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    target = out / entry_file_name(args.id)
    if target.exists() and not args.force:
        _fail(f"{target} exists; use --force to replace it")
    staging = target.with_name(f".{target.name}.tmp")
    staging.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(staging, target)
    quant = f", {model.quantization.scheme.label}" if model.quantization else ""
    exact = (f", weights {weights.total_bytes} bytes from {weights.source} ({weights.files} file(s))"
             if weights is not None else "")
    print(f"wrote {target}: {model.id}, {model.params_total / 1e9:.2f}B params{quant}{exact}, "
          f"max context {model.max_context}")


def _estimate(args: argparse.Namespace, model: ModelArch) -> sizing.MemoryEstimate:
    return sizing.estimate(model, _precision_for(args, model), tensor_parallel=args.tp,
                           max_model_len=args.max_model_len,
                           concurrency=args.concurrency, kv_cache_dtype=args.kv_cache_dtype)


def _fits(args: argparse.Namespace, model: ModelArch) -> tuple[sizing.FitResult, ...]:
    return sizing.fit_table(model, _precision_for(args, model), tensor_parallel=args.tp,
                            max_model_len=args.max_model_len,
                            concurrency=args.concurrency, kv_cache_dtype=args.kv_cache_dtype)


def cmd_estimate(args: argparse.Namespace) -> None:
    model = _load_model(args)
    need = _estimate(args, model)
    fits = _fits(args, model)
    if args.format == "json":
        out: dict[str, Any] = need.to_dict()
        out["fits"] = [f.to_dict() for f in fits]
        if model.quantization is not None:
            out["quantization"] = {**model.quantization.to_dict(),
                                   "rocm": support_line(model.quantization.scheme.method)}
        print(json.dumps(out, indent=2))
        return
    print(f"{model.id} at {need.precision.value}, tensor parallel {need.tensor_parallel}, "
          f"{need.concurrency} x {need.max_model_len} tokens, kv-cache {need.kv_cache_dtype}")
    print(f"  weights     {_gib(need.weights_bytes):>12}"
          + ("   (exact, from the checkpoint's safetensors)" if need.weights_source == "checkpoint" else ""))
    if model.quantization is not None:
        q, tp = model.quantization, need.tensor_parallel
        print(f"    checkpoint quantization: {q.scheme.label} (declared in config.json)")
        print(f"    quantized weights  {_gib(q.quantized_bytes / tp):>12}   ({q.quantized_params:,} params)")
        print(f"    scales + zeros     {_gib(q.scale_bytes / tp):>12}")
        print(f"    16-bit modules     {_gib(q.unquantized_bytes / tp):>12}   ({q.unquantized_params:,} params: "
              "embeddings, norms, biases, routers, ignored modules)")
        print(f"    {support_line(q.scheme.method)}")
    print(f"  kv cache    {_gib(need.kv_cache_bytes):>12}   ({need.kv_bytes_per_token} B/token)")
    if need.state_cache_bytes:
        print(f"  state       {_gib(need.state_cache_bytes):>12}   ({need.state_bytes_per_sequence} B/sequence: "
              "Mamba / gated-delta-net / short-conv layers, fixed per sequence)")
    print(f"  activation  {_gib(need.activation_bytes):>12}   "
          f"(at max-num-batched-tokens {need.max_num_batched_tokens})")
    print(f"  overhead    {_gib(need.overhead_bytes):>12}   (HIP runtime + graphs)")
    print(f"  total       {_gib(need.total_bytes):>12}   per partition; needs a partition of >= "
          f"{_gib(need.required_partition_bytes)} at gpu-memory-utilization {need.gpu_memory_utilization}")
    print()
    _print_fit_rows(fits)


def _print_fit_rows(fits: Sequence[sizing.FitResult]) -> None:
    rows = [(f.mode.product, f.mode.compute_mode, f.mode.memory_mode, f.mode.partitions,
             f"{f.mode.memory_bytes / GIB:.1f} GiB", "yes" if f.fits else "no",
             f.max_context if f.max_context else "-", f"{f.headroom_bytes / GIB:+.1f} GiB", f.mode.status)
            for f in fits]
    headers = ("product", "compute", "memory", "parts/gpu", "partition", "fits", "max_context", "headroom", "status")
    print(_table(headers, rows))


def cmd_fit(args: argparse.Namespace) -> None:
    model = _load_model(args)
    need = _estimate(args, model)
    print(f"{model.id} at {need.precision.value} needs {_gib(need.total_bytes)} per partition "
          f"({need.concurrency} x {need.max_model_len} tokens, tensor parallel {need.tensor_parallel})\n")
    fits = _fits(args, model)
    _print_fit_rows(fits)
    print(f"\nfits {sum(f.fits for f in fits)} of {len(fits)} product/mode combinations")


# libyaml's emitter when pyyaml was built with it (10x faster), the pure-Python one otherwise
_YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _yaml(document: Any) -> str:
    return yaml.dump(document, Dumper=_YAML_DUMPER, sort_keys=True, default_flow_style=False)


def _dump(document: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(document, indent=2, sort_keys=True) + "\n"
    return _yaml(document)


def cmd_profiles_generate(args: argparse.Namespace) -> None:
    profiles = sizing.generate_profiles()
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.force:
        _fail(f"{out} exists and is not empty; use --force to replace it")
    ext = args.format
    parent = out.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".aim-profiles-", dir=parent))
    try:  # write everything to a staging dir, then swap it in: nothing is half-written on failure
        index = []
        for profile in profiles:
            doc = profile.to_dict()
            errors = validate_document(doc, "profile")
            if errors:
                raise SizingError(f"profile {profile.id} fails its schema: {errors[0]}")
            (staging / "profiles").mkdir(exist_ok=True)
            (staging / "profiles" / f"{profile.id}.{ext}").write_text(_dump(doc, ext), encoding="utf-8")
            aim_files = []
            for rel, aim_doc in profile.aim_profiles():
                target = staging / "aim" / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(_yaml(aim_doc), encoding="utf-8")
                aim_files.append(f"aim/{rel}")
            index.append({"id": profile.id, "model_id": profile.model_id, "precision": profile.precision.value,
                          "file": f"profiles/{profile.id}.{ext}", "aim_profiles": aim_files})
        (staging / f"index.{ext}").write_text(_dump({"schema": "aim-gpu-sharing/profile-index/v1",
                                                     "catalogue_version": sizing.CATALOGUE.data_version,
                                                     "geometry_version": sizing.GEOMETRY.data_version,
                                                     "count": len(index), "profiles": index}, ext), encoding="utf-8")
        if out.is_dir() and not out.is_symlink():
            shutil.rmtree(out)
        elif out.exists() or out.is_symlink():  # --force on a file (or a link) replaces it too
            out.unlink()
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes 0700; the output is an ordinary directory
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    aim_count = sum(len(p.aim_profiles()) for p in profiles)
    print(f"wrote {len(profiles)} profiles and {aim_count} AIM runtime profiles to {out}")


# Bounds on a profile directory given to `profiles validate`. The catalogue generates 114 profiles and
# 683 AIM runtime profiles (aim/ORG/MODEL/NAME.yaml, two directories deep) of at most 4.9 kB each
# (deepseek-r1-distill-llama-70b int8); the bounds leave 10x room or more and keep a walk of a hostile
# tree (a symlink loop, thousands of levels, /dev/zero linked in) well under a second.
MAX_PROFILE_ENTRIES = 10_000  # files and directories under profiles/, and again under aim/
MAX_AIM_DEPTH = 8  # directories below aim/
MAX_PROFILE_BYTES = 64 << 10  # one profile file
MAX_PROFILE_NESTING = 32  # mappings and sequences inside one another; a profile nests 5 deep
MAX_PROFILE_SCALAR = 4096  # characters of one YAML value (a 5,000-digit "number" would fail int())


def _yaml_problem(events: Any) -> str | None:
    """What makes a YAML profile unfit to load, from libyaml's events (nothing built yet): an alias
    (generated profiles hold none; an alias bomb expands to gigabytes in the schema check), nesting
    deeper than MAX_PROFILE_NESTING, or a value longer than MAX_PROFILE_SCALAR characters."""
    depth = 0
    for event in events:
        if isinstance(event, yaml.AliasEvent):
            return f"holds a YAML alias (*{event.anchor}); generated profiles hold none"
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_PROFILE_NESTING:
                return f"nested more than {MAX_PROFILE_NESTING} levels deep"
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        elif isinstance(event, yaml.ScalarEvent) and len(event.value) > MAX_PROFILE_SCALAR:
            return f"holds a value longer than {MAX_PROFILE_SCALAR} characters"
    return None


def _read_doc(path: Path) -> tuple[Any, str | None]:
    """A profile file's document, or the problem that makes it unparseable. The file must be regular and
    at most MAX_PROFILE_BYTES (SizingError naming it otherwise: aim-sizing exits 2 on the first)."""
    raw = read_regular(path, MAX_PROFILE_BYTES)
    try:
        if path.suffix == ".json":
            return json_text.loads(raw, str(path)), None
        text = raw.decode("utf-8")
        problem = _yaml_problem(yaml.parse(text, Loader=_YAML_LOADER))
        return (None, problem) if problem else (yaml.load(text, Loader=_YAML_LOADER), None)
    except SizingError as exc:  # json_text names the file itself
        return None, str(exc).removeprefix(f"{path}: ")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text (byte {exc.start})"
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        return None, f"{getattr(exc, 'problem', None) or str(exc).splitlines()[0]}{where}"


def _document_problems(path: Path, schema: str) -> tuple[Any, list[str]]:
    """The document at ``path`` (None when it does not parse) and its problems against ``schema``."""
    doc, problem = _read_doc(path)
    if problem is not None:
        return None, [f"{path}: not parseable: {problem}"]
    return doc, [f"{path}: {e}" for e in validate_document(doc, schema)]


def validate_profile_dir(root: Path) -> list[str]:
    """Every problem found in a generated profile directory (empty list when it is valid); SizingError
    naming the path for a tree or file outside the bounds above."""
    problems: list[str] = []
    files = list_files(root / "profiles", (".json", ".yaml"), max_depth=0, max_entries=MAX_PROFILE_ENTRIES) \
        if (root / "profiles").is_dir() else []
    files.sort(key=lambda path: (path.suffix != ".json", path))  # JSON first, as the index lists them
    if len(files) != EXPECTED_PROFILES:
        problems.append(f"expected {EXPECTED_PROFILES} profiles in {root / 'profiles'}, found {len(files)}")
    seen: set[tuple[str, str]] = set()
    for path in files:
        doc, found = _document_problems(path, "profile")
        problems += found
        if isinstance(doc, dict):
            seen.add((str(doc.get("model_id")), str(doc.get("precision"))))
            if path.stem != doc.get("id"):
                problems.append(f"{path}: file name does not match id {doc.get('id')!r}")
    missing = {(m, p.value) for m in sizing.CATALOGUE for p in sizing.PROFILE_PRECISIONS} - seen
    if files and missing:
        problems.append(f"missing profiles for {len(missing)} model/precision pairs, e.g. {sorted(missing)[0]}")
    aim_files = list_files(root / "aim", (".yaml",), max_depth=MAX_AIM_DEPTH, max_entries=MAX_PROFILE_ENTRIES) \
        if (root / "aim").is_dir() else []
    for path in aim_files:
        problems += _document_problems(path, "aim-profile")[1]
    return problems


def cmd_profiles_validate(args: argparse.Namespace) -> None:
    root = Path(args.dir)
    if not root.is_dir():
        _fail(f"{root} is not a directory")
    problems = validate_profile_dir(root)
    if problems:
        for p in problems:
            print(p, file=sys.stderr)
        print(f"aim-sizing: {len(problems)} problem(s) in {root}", file=sys.stderr)
        raise SystemExit(1)
    print(f"{root}: {EXPECTED_PROFILES} profiles valid")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _precision(text: str) -> str:
    try:
        return sizing.parse_precision(text).value
    except SizingError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="aim-sizing", description="Memory sizing of LLMs on AMD MI300-class GPU partitions.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list the model catalogue, or add an entry to a models directory")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--models-dir", metavar="DIR", help="a models directory adding entries to the catalogue")
    p.set_defaults(func=cmd_models)
    msub = p.add_subparsers(dest="models_command")
    a = msub.add_parser("add", help="write a models-directory entry from a config.json (validated)")
    a.add_argument("--config", required=True, metavar="PATH", help="the checkpoint's config.json")
    a.add_argument("--id", required=True, metavar="ORG/NAME", help="the id pods name in aim.amd.com/model")
    a.add_argument("--source", required=True, metavar="URL", help="where the config.json came from")
    a.add_argument("--max-context", type=_positive, default=None, help="cap the model's context (tokens)")
    a.add_argument("--weights", metavar="PATH", default=None,
                   help="the checkpoint's model.safetensors.index.json, a .safetensors file or the checkpoint "
                        "directory: records the exact weight bytes (only headers are read)")
    a.add_argument("--out", required=True, metavar="DIR", help="the models directory to write into")
    a.add_argument("--force", action="store_true", help="replace an existing entry")

    for name, func, help_ in (("estimate", cmd_estimate, "memory one partition needs, and where it fits"),
                              ("fit", cmd_fit, "every product/mode: fits or not")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("model", nargs="?", metavar="MODEL", help="catalogue id (see `aim-sizing models`)")
        p.add_argument("--config", metavar="PATH", help="a Hugging Face config.json instead of a catalogue id")
        p.add_argument("--precision", type=_precision, default=None,
                       help="fp16, bf16, fp8, int8 or int4 (default: the checkpoint's declared quantization)")
        p.add_argument("--models-dir", metavar="DIR", help="a models directory adding entries to the catalogue")
        p.add_argument("--max-model-len", type=_positive, default=None,
                       help=f"context to size for (default: min(model max, {sizing.DEFAULT_CONTEXT_CAP}))")
        p.add_argument("--concurrency", type=_positive, default=1, help="concurrent full-length sequences (default 1)")
        p.add_argument("--kv-cache-dtype", choices=("auto", "fp8"), default="auto")
        p.add_argument("--tp", type=_positive, default=1, help="tensor-parallel size = partitions per replica")
        if name == "estimate":
            p.add_argument("--format", choices=("table", "json"), default="table")
        p.set_defaults(func=func)

    p = sub.add_parser("profiles", help="generate or validate the AIM profiles")
    psub = p.add_subparsers(dest="profiles_command", required=True)
    g = psub.add_parser("generate", help=f"write the {EXPECTED_PROFILES} profiles")
    g.add_argument("--out", required=True, metavar="DIR")
    g.add_argument("--format", choices=("json", "yaml"), default="json")
    g.add_argument("--force", action="store_true", help="replace a non-empty DIR")
    g.set_defaults(func=cmd_profiles_generate)
    v = psub.add_parser("validate", help="check a generated profile directory against the schemas")
    v.add_argument("dir", metavar="DIR")
    v.set_defaults(func=cmd_profiles_validate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except UnknownModelError as exc:
        hint = f" (did you mean: {', '.join(exc.suggestions)}?)" if exc.suggestions else " (see `aim-sizing models`)"
        _fail(f"unknown model {exc.model_id!r}{hint}")
    except SizingError as exc:
        _fail(str(exc))
    except BrokenPipeError:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
