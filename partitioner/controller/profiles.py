"""The DCM profiles ConfigMap, written ahead of time.

DCM reads its profiles from a file kubelet projects from the ConfigMap, up to about two minutes
after a write (``--configmap-settle-seconds``), and fails a profile it cannot find without
retrying. So the profiles every opted-in node may be given are written as soon as they are known
(the first pass after start-up, a new kind of node), not when a change is due: by the time a
repartition starts its profile has normally long been there, and applying it is only the node
label. Each profile is usable ``settle`` seconds after it was last written; profiles already in
the ConfigMap count from its ``aim.amd.com/profiles-updated`` annotation (none: from the start).

With ``existing`` (``--dcm-configmap-existing``) the ConfigMap is someone else's: it is only read,
and its profiles are used as they are.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from partitioner.controller.clock import format_time
from partitioner.controller.kube import Kube, ProfilesDocument

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DcmConfig:
    namespace: str
    name: str
    existing: bool  # read an existing ConfigMap, never write it


def _body(value: object) -> str:
    return json.dumps(value, sort_keys=True)


class ProfileKeeper:
    """The profiles in the ConfigMap as last read or written, and from when DCM may use each."""

    def __init__(self, kube: Kube, config: DcmConfig, settle_seconds: float,
                 first: Callable[[tuple[str, str, str]], bool]) -> None:
        self._kube = kube
        self._config = config
        self._settle = settle_seconds
        self._first = first  # True the first time a log key is seen: say it once
        self._known: dict[str, tuple[str, float]] = {}  # profile -> (its body as JSON, usable from)

    @property
    def _where(self) -> str:
        return f"ConfigMap {self._config.namespace}/{self._config.name}"

    def keep(self, wanted: Mapping[str, Any], now: float) -> None:
        """Make the ConfigMap hold ``wanted`` (profile name -> body), merged into what is there.
        No API call while the profiles as last read or written already include them."""
        if self._config.existing or all(self._known.get(n, ("",))[0] == _body(b) for n, b in wanted.items()):
            return
        found = self._read(now)
        if found is None:
            return
        current = dict(found.profiles())
        missing = {name: body for name, body in wanted.items() if _body(current.get(name)) != _body(body)}
        if not missing and found.exists:
            return
        document = dict(found.document or {})
        document["gpu-config-profiles"] = dict(sorted({**current, **missing}.items()))
        if self._kube.write_profiles(self._config.namespace, self._config.name, document, now, found.exists):
            for name, body in missing.items():
                self._known[name] = (_body(body), now + self._settle)
            logger.info("wrote DCM profiles %s to %s ahead of any change; DCM may use them from %s (%.0f s)",
                        ", ".join(sorted(missing)) or "(none)", self._where, format_time(now + self._settle),
                        self._settle)

    def usable(self, now: float) -> dict[str, Any]:
        """The profiles in the ConfigMap now (read afresh) that DCM has had time to see."""
        found = self._read(now)
        if found is None:
            return {}
        current = dict(found.profiles())
        if self._config.existing:
            if not found.exists and self._first(("configmap", "missing", self._where)):
                logger.warning("%s does not exist (--dcm-configmap-existing); no repartition starts", self._where)
            return current
        return {name: body for name, body in current.items()
                if name in self._known and self._known[name][1] <= now}

    def usable_from(self, profile: str) -> float | None:
        """When ``profile`` becomes usable, as last read or written (None: not in the ConfigMap)."""
        entry = self._known.get(profile)
        return entry[1] if entry is not None else None

    def _read(self, now: float) -> ProfilesDocument | None:
        found = self._kube.read_profiles(self._config.namespace, self._config.name)
        if found.problem is not None:
            if self._first(("configmap", "problem", found.problem)):
                logger.warning("%s; no repartition starts until it is fixed", found.problem)
            self._known = {}
            return None
        since = found.updated + self._settle if found.updated is not None else now
        known: dict[str, tuple[str, float]] = {}
        for name, body in found.profiles().items():
            if not isinstance(name, str):
                continue
            text = _body(body)
            before = self._known.get(name)
            known[name] = before if before is not None and before[0] == text else (text, since)
        self._known = known
        return found

