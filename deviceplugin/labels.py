"""Node labels from partitions (pure): each partition maps to a ``sizing.contract.PartitionShape``
(``Partition.shape``) and ``sizing.contract.node_labels`` computes the labels, so the extender reads exactly what is
written here. The caller passes only partitions that exist and are healthy now
(``DeviceState.labelled_partitions``), and the GPUs discovery found (``Inventory.gpus``): the
``gpu-count`` label, from which the partition controller reads a node's GPUs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from deviceplugin.inventory import Partition
from sizing.contract import LABEL_PREFIX, node_labels


def desired_labels(partitions: Iterable[Partition], gpus: Iterable[str]) -> dict[str, str | None]:
    """The value of every contract label key for these partitions (None = remove the key);
    ``gpus``: the PCI addresses of the GPUs discovery found (``Gpu.address``), healthy or not."""
    return node_labels((p.shape for p in partitions), gpus=len(set(gpus)) or None)


def build_label_patch(
    desired: Mapping[str, str | None], current: Mapping[str, str] | None = None
) -> dict[str, object]:
    """JSON merge patch body that sets our keys and removes stale keys under our prefix only.

    ``current`` (the node's labels, when they could be read) lets keys that an older version
    of this plugin set, and that are no longer in the contract, be removed as well.
    """
    labels: dict[str, str | None] = dict(desired)
    for key in current or {}:
        if key.startswith(LABEL_PREFIX) and key not in labels:
            labels[key] = None
    return {"metadata": {"labels": dict(sorted(labels.items()))}}
