"""Which module names a checkpoint's ignore list names, in time bounded by the list and the names.

Loaders read an ignore entry three ways: ``re:REGEX`` (compressed-tensors and GPTQModel's ``dynamic``
rules: Python's ``re.match``, anchored at the start), a glob with ``*`` (``fnmatch``), and a plain
name (compressed-tensors: the module or one of its parents; AWQ, GPTQ, bitsandbytes and fp8: any
substring of the module path). Python's backtracking ``re`` is the danger: ``(a+)+$`` is exponential,
``.*.*.*…x`` polynomial of high degree (25 s for one hostile entry), ``a{4294967296}`` raises
OverflowError. So a regex entry is first compiled by Python (it must be one the real loader accepts:
``check_entry``), then matched by RE2 (google-re2), whose time is linear in the name and in the
regex's program, never exponential. What RE2 cannot run in linear time (look-around,
back-references, repetition counts above 1,000) is refused naming the entry, and the whole list's
work is bounded before any matching (``ignore_matcher``).

Multimodal checkpoints name the text model's modules ``model.language_model.layers.N`` (transformers
>= 4.52) or ``language_model.model.layers.N`` (earlier, and Llama 4), its head ``lm_head`` or
``language_model.lm_head``, and the vision modules ``model.visual.X`` or ``visual.X`` (likewise
``vision_tower``, ``multi_modal_projector``); the layout says ``model.layers.N``, ``lm_head`` and one
of the vision spellings, so each name is tried in every spelling (``name_forms``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import re2

from sizing.bounded import shown

MAX_PATTERN_CHARS = 512  # longest entry: real ones are module paths (< 120 characters) or short regexes
# Regex and glob entries in one list: llm-compressor writes a handful ("re:.*lm_head", "re:visual.*"),
# GPTQModel's dynamic rules a few dozen; 256 leaves room and bounds the compile work.
MAX_REGEX_ENTRIES = 256
# RE2 program size (instructions) of one entry and of a whole list: real entries compile to 15-60
# (".*lm_head" is 19, "model\.layers\.\d+\.mlp\.gate" 28); "[^x]{1000}" alone would be 7,000.
# Compiling costs about 1 s per million instructions here, so the list's programs compile in < 0.1 s.
MAX_ENTRY_PROGRAM = 2_000
MAX_LIST_PROGRAM = 50_000
# Repetition operators in one regex and the largest {m,n} count. Real entries have one to three
# (".*", "\d+"); RE2's compile time grows with both ("(?:.*){250}x" alone takes 7 ms, "a{1000}" up to
# 60 ms here), and Python's parser raises OverflowError above 4,294,967,294.
MAX_QUANTIFIERS = 16
MAX_REPEAT = 64
# Program instructions x module-name characters one breakdown may scan. Measured on this machine with
# hostile entries (".*a[^x]{900}", "(?:.*[a-z].{30}){30}") over DeepSeek-V3.2's 2,700 name spellings:
# about 0.02 ns per step (RE2's DFA), so the worst list takes ~0.2 s; real lists need < 1 % of it.
MAX_REGEX_STEPS = 10_000_000_000
# Plain-name x module-name substring tests (Python's ``in``, ~0.13 µs each with the loop here): ~0.25 s at most.
MAX_SUBSTRING_CHECKS = 2_000_000
# RE2 programs are combined into alternations of at most this many instructions: one RE2 call per
# name and alternation instead of per entry, each alternation's DFA well inside RE2's 8 MiB default.
PROGRAM_CHUNK = 10_000

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # RE2 logs refusals to stderr itself; the caller gets the message instead
_TEXT_LAYERS = ("model.layers.", "model.embed_tokens", "model.norm")  # the layout's text-model names
_COUNT = re.compile(r"\{(?P<low>[0-9]*)(?:,(?P<high>[0-9]*))?\}")  # Python's {m}, {m,}, {,n}, {m,n}


class PatternError(ValueError):
    """An ignore-list entry that cannot be matched safely; the message says why (without the entry)."""


def entry_program(pattern: object) -> int:
    """The RE2 program size of one ignore-list entry (0 for a plain name, matched without RE2), or
    PatternError saying why the entry cannot be used."""
    if not isinstance(pattern, str):
        raise PatternError(f"must be a module name or \"re:\" regex, got {shown(pattern)}")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise PatternError(f"is longer than {MAX_PATTERN_CHARS} characters")
    if pattern.startswith("re:"):
        return _regex_program(pattern[3:])
    if "*" in pattern:
        wildcards = pattern.count("*") + pattern.count("?")
        if wildcards > MAX_QUANTIFIERS:
            raise PatternError(f"has {wildcards} wildcards (limit {MAX_QUANTIFIERS})")
        return _program(_glob_regex(pattern))
    return 0


def _regex_program(regex: str) -> int:
    scan = _scan(regex)
    if scan.quantifiers > MAX_QUANTIFIERS:
        raise PatternError(f"has {scan.quantifiers} repetition operators (limit {MAX_QUANTIFIERS})")
    if scan.largest_count > MAX_REPEAT:
        raise PatternError(f"has a repetition count above {MAX_REPEAT}")
    try:
        re.compile(regex)  # the loaders' own engine: an entry it refuses is a broken checkpoint
    except (re.error, OverflowError, RecursionError, ValueError) as exc:
        raise PatternError(f"is not a regex Python accepts ({str(exc)[:80]})") from None
    return _program(f"(?:{scan.re2})")


def _program(regex: str) -> int:
    try:
        program = re2.compile(regex, _RE2_OPTIONS).programsize
    except re2.error as exc:
        reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise PatternError(f"cannot be matched in linear time ({reason[:80]}); look-around and back-references "
                           "are refused") from None
    if program > MAX_ENTRY_PROGRAM:
        raise PatternError(f"compiles to {program:,} RE2 instructions (limit {MAX_ENTRY_PROGRAM:,}); "
                           "write it without large repeats")
    return program


@dataclass(frozen=True)
class _Scan:
    re2: str  # the regex in RE2's spelling
    quantifiers: int  # *, +, ?, {m,n} outside classes (a lazy "*?" counts twice: a bound, not a parse)
    largest_count: int  # the largest number inside {m,n} (MAX_REPEAT + 1 stands for any longer than 6 digits)


def _scan(regex: str) -> _Scan:
    """One pass over a Python regex: its RE2 spelling (``\\Z`` is ``\\z``, ``{,n}`` is ``{0,n}``) and the
    counts the bounds above need. Escapes and character classes are skipped as Python's parser does."""
    out: list[str] = []
    quantifiers = largest = 0
    i, n, in_class, group_start = 0, len(regex), False, False
    while i < n:
        c = regex[i]
        after_open, group_start = group_start, False
        if c == "\\" and i + 1 < n:
            pair = regex[i:i + 2]
            out.append("\\z" if pair == "\\Z" and not in_class else pair)
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            out.append(c)
            i += 1
            if i < n and regex[i] == "^":
                out.append("^")
                i += 1
            if i < n and regex[i] == "]":  # a leading ] is a member, not the end
                out.append("\\]")
                i += 1
            in_class = True
            continue
        elif c == "(":
            group_start = True
        elif c in "*+" or (c == "?" and not after_open):  # "(?" opens an extension, not a repetition
            quantifiers += 1
        elif c == "{" and (count := _COUNT.match(regex, i)) is not None and (count["low"] or count["high"] is not None):
            quantifiers += 1
            for number in (count["low"], count["high"]):
                if number:
                    largest = max(largest, MAX_REPEAT + 1 if len(number) > 6 else int(number))
            out.append("{0" if not count["low"] else "{")
            i += 1
            continue
        out.append(c)
        i += 1
    return _Scan("".join(out), quantifiers, largest)


def _glob_regex(glob: str) -> str:
    """An RE2 regex for fnmatch's ``glob`` or ``glob + ".*"`` (a child module), matched from the start."""
    return f"(?:{_glob_to_re2(glob)}(?:\\..*)?\\z)"


def _glob_to_re2(glob: str) -> str:
    """fnmatch's glob as an RE2 regex matching the whole name (``*`` any text, ``?`` one character)."""
    out: list[str] = []
    i, n = 0, len(glob)
    while i < n:
        c = glob[i]
        i += 1
        if c == "*":
            if not out or out[-1] != ".*":
                out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            j = i + (1 if i < n and glob[i] == "!" else 0)
            j += 1 if j < n and glob[j] == "]" else 0
            while j < n and glob[j] != "]":
                j += 1
            if j >= n:
                out.append("\\[")
                continue
            body = glob[i:j]
            i = j + 1
            negate = body.startswith("!")
            members = "".join(ch if ch.isalnum() or ch == "-" else "\\" + ch for ch in body[1 if negate else 0:])
            out.append(f"[{'^' if negate else ''}{members}]")
        else:
            out.append(re.escape(c))
    return "".join(out)


def name_forms(name: str, multimodal: bool) -> tuple[str, ...]:
    """Every spelling a checkpoint may use for the layout's module ``name`` (see the module doc)."""
    if not multimodal:
        return (name,)
    if name.startswith(_TEXT_LAYERS):
        rest = name[len("model."):]
        return name, f"model.language_model.{rest}", f"language_model.model.{rest}"
    if name == "lm_head":
        return name, "language_model.lm_head"
    base = name[len("model."):] if name.startswith("model.") else name  # vision tower / projector
    return base, f"model.{base}"


@dataclass(frozen=True)
class IgnoreMatcher:
    """An ignore list ready to test module names (built by ``ignore_matcher``)."""

    parents: frozenset[str]  # compressed-tensors plain names: the module or a parent
    substrings: tuple[str, ...]  # other methods' plain names: any substring
    programs: tuple[re2._Regexp[str], ...]  # regex and glob entries, combined
    multimodal: bool

    def matches(self, name: str) -> bool:
        for form in name_forms(name, self.multimodal):
            if self.parents and (form in self.parents or any(
                    form[:i] in self.parents for i, ch in enumerate(form) if ch == ".")):
                return True
            if any(s in form for s in self.substrings):
                return True
            if any(p.match(form) is not None for p in self.programs):
                return True
        return False


class MatchBudgetError(ValueError):
    """The list would take more matching work than the bounds above allow (the message says how much)."""


def ignore_matcher(patterns: Sequence[str], method: str, multimodal: bool, names: Iterable[str]) -> IgnoreMatcher:
    """The matcher for ``patterns`` over the layout's module ``names``: PatternError naming the first
    bad entry, MatchBudgetError when the list is too much work for these names."""
    forms = [form for name in names for form in name_forms(name, multimodal)]
    parents: set[str] = set()
    substrings: list[str] = []
    compiled: list[tuple[str, int]] = []
    program = 0
    for i, pattern in enumerate(patterns):
        try:
            size = entry_program(pattern)
        except PatternError as exc:
            raise PatternError(f"entry {i} {shown(pattern)} {exc}") from None
        if size:
            if len(compiled) >= MAX_REGEX_ENTRIES:
                raise MatchBudgetError(f"has more than {MAX_REGEX_ENTRIES} regex and glob entries")
            program += size
            if program > MAX_LIST_PROGRAM:
                raise MatchBudgetError(f"has regex entries of more than {MAX_LIST_PROGRAM:,} RE2 instructions in all")
            regex = f"(?:{_scan(pattern[3:]).re2})" if pattern.startswith("re:") else _glob_regex(pattern)
            compiled.append((regex, size))
        elif method == "compressed-tensors":
            parents.add(pattern)
        else:
            substrings.append(pattern)
    steps = program * sum(len(f) for f in forms)
    if steps > MAX_REGEX_STEPS:
        raise MatchBudgetError(f"has regex entries too costly to match against {len(forms)} module names "
                               f"({steps:,} steps, limit {MAX_REGEX_STEPS:,})")
    if len(substrings) * len(forms) > MAX_SUBSTRING_CHECKS:
        raise MatchBudgetError(f"has {len(substrings)} module names, too many to look for in {len(forms)} "
                               f"module names (limit {MAX_SUBSTRING_CHECKS:,} checks)")
    programs: list[re2._Regexp[str]] = []
    chunk: list[str] = []
    size = 0
    for regex, entry_size in compiled:
        if chunk and size + entry_size > PROGRAM_CHUNK:
            programs.append(re2.compile("|".join(chunk), _RE2_OPTIONS))
            chunk, size = [], 0
        chunk.append(regex)
        size += entry_size
    if chunk:
        programs.append(re2.compile("|".join(chunk), _RE2_OPTIONS))
    return IgnoreMatcher(frozenset(parents), tuple(substrings), tuple(programs), multimodal)
