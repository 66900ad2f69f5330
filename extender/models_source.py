"""The models directory the extender sizes pods from: built-in catalogue + entries mounted from a ConfigMap.

A ConfigMap volume is a directory of symlinks ``NAME -> ..data/NAME`` where ``..data`` points at a
timestamped directory that kubelet swaps atomically on every update. ``ModelsSource`` therefore
watches the *resolved* files: ``refresh()`` stats every entry through its links (device, inode,
mtime, size) and re-reads the directory only when that signature changed. ``start()`` runs
``refresh()`` every ``poll_seconds`` in a daemon thread, so a ConfigMap edit reaches scheduling
decisions without a restart. A bad entry is logged naming the file and the field and skipped; the
last good version of that file (if any) stays in the catalogue, and a directory that cannot be read,
or holds more than ``sizing.models_dir.MAX_ENTRIES`` entries, keeps the previous catalogue whole
(logged once, not on every poll): never a part of the models a workload may be using.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kube.regular_file import read_regular_file
from sizing import CATALOGUE, Catalogue, ModelArch, SizingError
from sizing.models_dir import MAX_ENTRY_BYTES, entry_names, extend_catalogue, parse_entry

log = logging.getLogger(__name__)

# How often the mounted directory is checked. kubelet refreshes ConfigMap volumes about once a
# minute (its sync period plus cache TTL); polling every 3 s adds little delay for one stat per file.
DEFAULT_POLL_SECONDS = 3.0

Signature = tuple[tuple[str, int, int, int, int], ...]


def _signature(directory: Path) -> Signature:
    """(name, device, inode, mtime_ns, size) of every entry file, following ConfigMap symlinks; OSError
    when the directory cannot be listed, SizingError when it holds more than MAX_ENTRIES entries."""
    with os.scandir(directory) as listing:  # ..data, ..2026_11_30_... and other kubelet internals left out
        names = entry_names((entry.name for entry in listing), directory)
    rows = []
    for name in names:
        try:
            st = os.stat(directory / name)  # follows NAME -> ..data/NAME -> the current timestamped file
        except FileNotFoundError:
            continue  # a link caught mid-swap; the next poll sees the new one
        except OSError:
            rows.append((name, -1, -1, -1, -1))  # a link loop or the like: reading it reports why
            continue
        rows.append((name, st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(rows)


def _why(error: OSError) -> str:
    """What went wrong, for a person: the system's words, or NotRegularFileError's ("not a regular file (a FIFO)")."""
    return error.strerror or str(error)


def read_catalogue(directory: Path, base: Catalogue = CATALOGUE) -> Catalogue:
    """``base`` plus every entry of ``directory``, strictly: the first unreadable or bad entry raises
    SizingError naming the file (for one-shot commands such as ``aim-extender plan``)."""
    models = []
    try:
        names = [name for name, *_ in _signature(directory)]
    except OSError as exc:
        raise SizingError(f"models directory {directory} cannot be listed: {exc.strerror}") from None
    for name in names:
        try:
            data = read_regular_file(directory / name, MAX_ENTRY_BYTES)  # parse_entry names one too large
        except OSError as exc:
            raise SizingError(f"models directory entry {name} cannot be read: {_why(exc)}") from None
        models.append(parse_entry(data, name))
    return extend_catalogue(base, models)


@dataclass
class ModelsSource:
    """The current catalogue for a models directory (thread-safe reads, polling refresh)."""

    directory: Path
    base: Catalogue = field(default_factory=lambda: CATALOGUE)
    poll_seconds: float = DEFAULT_POLL_SECONDS
    on_change: Callable[[Catalogue], None] | None = None
    _catalogue: Catalogue = field(init=False)
    _signature: Signature | None = field(default=None, init=False)
    _refused: str | None = field(default=None, init=False)  # the last whole-directory refusal, logged once
    _good: dict[str, ModelArch] = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)

    def __post_init__(self) -> None:
        self._catalogue = self.base

    @property
    def catalogue(self) -> Catalogue:
        with self._lock:
            return self._catalogue

    def refresh(self) -> bool:
        """Re-read the directory if its files changed; True when the catalogue was replaced."""
        try:
            signature = _signature(self.directory)
        except OSError as exc:
            log.warning("models directory %s cannot be listed (%s); keeping the %d models already loaded, "
                        "will retry in %.0f s", self.directory, exc.strerror, len(self.catalogue), self.poll_seconds)
            return False
        except SizingError as exc:  # too many entries: the whole update is refused, the loaded set kept
            if str(exc) != self._refused:
                log.warning("%s; keeping the %d models already loaded, will check again every %.0f s",
                            exc, len(self.catalogue), self.poll_seconds)
                self._refused = str(exc)
            return False
        self._refused = None
        if signature == self._signature:
            return False
        models: dict[str, ModelArch] = {}
        for name, *_ in signature:
            model = self._read(name)
            if model is not None:
                models[name] = model
        by_id: dict[str, ModelArch] = {}
        for name, model in sorted(models.items()):
            if model.id in by_id or model.id in self.base:
                log.warning("models directory entry %s: id %r is already defined; skipped", name, model.id)
                continue
            by_id[model.id] = model
        catalogue = extend_catalogue(self.base, by_id.values())
        with self._lock:
            self._catalogue = catalogue
            self._signature = signature
            self._good = models
        log.info("models directory %s: %d entries loaded (%s)", self.directory, len(by_id),
                 ", ".join(sorted(by_id)) or "none")
        if self.on_change is not None:
            self.on_change(catalogue)
        return True

    def _read(self, name: str) -> ModelArch | None:
        path = self.directory / name
        try:
            return parse_entry(read_regular_file(path, MAX_ENTRY_BYTES), name)  # a FIFO is an OSError, not a wait
        except (OSError, SizingError) as exc:
            previous = self._good.get(name)
            what = _why(exc) if isinstance(exc, OSError) else str(exc)
            log.warning("models directory entry %s skipped: %s; %s", name, what,
                        f"keeping its previous version ({previous.id})" if previous else "it is not served")
            return previous

    def start(self) -> threading.Thread:
        """Load now, then poll every ``poll_seconds`` in a daemon thread until ``stop()``."""
        self._refresh_surviving()
        thread = threading.Thread(target=self._loop, name="models-source", daemon=True)
        thread.start()
        return thread

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self._refresh_surviving()

    def _refresh_surviving(self) -> None:
        try:
            self.refresh()
        except Exception:  # serving, and the poller, must survive anything one refresh meets
            log.exception("models directory %s: refresh failed; keeping the %d models already loaded, "
                          "will retry in %.0f s", self.directory, len(self.catalogue), self.poll_seconds)

    def stop(self) -> None:
        self._stop.set()
