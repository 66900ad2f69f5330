"""Times in annotations: RFC 3339 UTC to the second ("2026-11-30T07:42:49Z"), which a person on
call can read, parsed back with bounds. Pure."""

from __future__ import annotations

import datetime
from typing import Final

from sizing.bounded import BoundedValueError

_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"
# Longest accepted text: the format is 20 characters; a little slack for the checks below.
_MAX_LENGTH: Final = 32
# Times before 2000 or after 2200 are not ones this controller wrote.
_EARLIEST: Final = 946684800  # 2000-01-01T00:00:00Z
_LATEST: Final = 7258118400  # 2200-01-01T00:00:00Z


def format_time(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(int(epoch), datetime.UTC).strftime(_FORMAT)


def parse_time(field: str, raw: object) -> float:
    """Seconds since the epoch from an RFC 3339 UTC time; BoundedValueError naming ``field``."""
    if not isinstance(raw, str):
        raise BoundedValueError(field, raw, f"must be a string, not {type(raw).__name__}")
    if len(raw) > _MAX_LENGTH:
        raise BoundedValueError(field, raw, f"is longer than {_MAX_LENGTH} characters")
    try:
        parsed = datetime.datetime.strptime(raw.strip(), _FORMAT).replace(tzinfo=datetime.UTC)
    except ValueError:
        raise BoundedValueError(field, raw, "is not a time like 2026-11-30T07:42:49Z") from None
    epoch = parsed.timestamp()
    if not _EARLIEST <= epoch <= _LATEST:
        raise BoundedValueError(field, raw, "is outside the years 2000..2200")
    return epoch
