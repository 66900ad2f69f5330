"""What the terminal the commands write to can show."""

from __future__ import annotations

import codecs
import sys


def stdout_supports_unicode() -> bool:
    """Whether sys.stdout encodes Unicode (box-drawing characters in the plan and advice tables)."""
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        return codecs.lookup(encoding).name in ("utf-8", "utf-16", "utf-32")
    except LookupError:
        return False
