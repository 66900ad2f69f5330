"""Reading vLLM flags a user already wrote in a container's ``command`` and ``args``.

vLLM's parser accepts ``--name value`` and ``--name=value``, ``_`` for ``-`` in names, a few short
aliases, and keeps the last value of a repeated flag. A flag inside one shell string
(``sh -c "vllm serve m --max-model-len 4096"``) counts as written, too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

# Short forms vLLM's argument parser accepts for the flags the webhook sets (vllm engine/arg_utils.py).
ALIASES: Final = {"-tp": "--tensor-parallel-size", "-q": "--quantization"}

# Longest token inspected; an argument longer than this is not a flag we could set.
MAX_TOKEN_LENGTH: Final = 4096

_SHELL_FLAG: Final = re.compile(r"(?:^|\s)(--?[A-Za-z][A-Za-z0-9_-]*)(?:=(\S*)|\s+([^-\s]\S*)|\s|$)", re.ASCII)


def canonical(flag: str) -> str:
    """``--max_model_len`` -> ``--max-model-len``; ``-tp`` -> ``--tensor-parallel-size``."""
    if flag in ALIASES:
        return ALIASES[flag]
    return "--" + flag[2:].replace("_", "-") if flag.startswith("--") else flag


@dataclass(frozen=True, slots=True)
class FlagUse:
    """The last place a flag is written: its value (None if it has none) and, when it is one
    ``--name=value`` token in ``args``, that token's index (so the webhook can replace its own)."""

    value: str | None
    args_index: int | None


def _split(token: str) -> tuple[str, str | None]:
    name, sep, value = token.partition("=")
    return canonical(name), (value if sep else None)


_SPACE: Final = re.compile(r"\s")


def _scan(tokens: Sequence[object], in_args: bool, found: dict[str, FlagUse]) -> None:
    count = len(tokens)
    for index, token in enumerate(tokens):
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or "-" not in token:
            continue
        if token.startswith("-") and not _SPACE.search(token):
            name, value = _split(token)
            if value is not None:
                found[name] = FlagUse(value, index if in_args else None)
            else:
                nxt = tokens[index + 1] if index + 1 < count else None
                found[name] = FlagUse(nxt if isinstance(nxt, str) and not nxt.startswith("--") else None, None)
            continue
        for match in _SHELL_FLAG.finditer(token):  # a shell command line in one string
            found[canonical(match[1])] = FlagUse(match[2] if match[2] is not None else match[3], None)


def flag_uses(command: Sequence[object], args: Sequence[object]) -> dict[str, FlagUse]:
    """Every flag written in ``command`` then ``args`` (canonical name -> its last use)."""
    found: dict[str, FlagUse] = {}
    _scan(command, False, found)
    _scan(args, True, found)
    return found


def last_use(command: Sequence[object], args: Sequence[object], flag: str) -> FlagUse | None:
    """Where ``flag`` (canonical ``--name``) is last written in ``command`` then ``args``."""
    return flag_uses(command, args).get(flag)


def runs_vllm(image: object, command: Sequence[object], args: Sequence[object]) -> bool:
    """True when the container visibly runs vLLM (its image, command or args say so)."""
    texts = [image, *command[:8], *args[:8]]
    return any(isinstance(t, str) and "vllm" in t[:MAX_TOKEN_LENGTH].lower() for t in texts)
