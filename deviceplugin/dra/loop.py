"""Keep the node's ResourceSlices equal to its partitions: discover, publish, wait; retry with the
device plugin's backoff when the API server refuses or is away."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from deviceplugin import discovery
from deviceplugin.config import LABEL_BACKOFF_INITIAL_S, LABEL_BACKOFF_MAX_S
from deviceplugin.dra.publish import Published, SlicePublishError
from deviceplugin.inventory import Inventory
from kube.backoff import Backoff

logger = logging.getLogger(__name__)


class Publisher(Protocol):
    node_name: str

    def publish(self, inventory: Inventory) -> Published: ...


def publish_once(publisher: Publisher, sysfs_root: Path,
                 on_inventory: Callable[[Inventory], None] | None = None) -> Published:
    """One discovery and one publish; SlicePublishError when the API server refused it.
    ``on_inventory`` sees the inventory first (the kubelet plugin's CDI spec and device set)."""
    inventory = discovery.discover(sysfs_root)
    for problem in inventory.problems:
        logger.warning("discovery: %s", problem)
    if on_inventory is not None:
        on_inventory(inventory)
    result = publisher.publish(inventory)
    for skipped in result.skipped:
        logger.warning("%s", skipped)
    return result


def run(publisher: Publisher, sysfs_root: Path, interval_s: float, stop: threading.Event,
        on_inventory: Callable[[Inventory], None] | None = None) -> None:
    """Publish every ``interval_s`` until ``stop`` is set; failures are retried after a backoff
    (2 s doubling to 5 min, as the label sync: the API server may be restarting)."""
    backoff = Backoff(LABEL_BACKOFF_INITIAL_S, LABEL_BACKOFF_MAX_S)
    while not stop.is_set():
        try:
            publish_once(publisher, sysfs_root, on_inventory)
        except SlicePublishError as exc:
            delay = backoff.next()
            logger.warning("ResourceSlices of node %s not published: %s; will retry in %.0f s",
                           publisher.node_name, exc, delay)
            stop.wait(delay)
            continue
        backoff.reset()
        stop.wait(interval_s)
