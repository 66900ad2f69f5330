"""What a node's GPUs offer, as the extender reads it: the labels the device plugin would publish for
their partitionings and the allocatable, parsed with the extender's own parser. It depends only on the
GPUs' geometries, so alike nodes share one (memoised: a cluster has a handful of node shapes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from decision.node_offer import decision_fields
from decision.planning.geometry import PartitionGeometry
from sizing.contract import LABEL_MEMORY_MIB, PartitionShape, node_labels

# Distinct GPU sets remembered by ``partitioning_of``: a cluster has a handful of node shapes; the
# advisor's bound allows a few hundred (272 kinds with gpus.json's products, 1-16 GPUs each).
PARTITIONING_CACHE_SIZE: Final = 1024


@dataclass(frozen=True, slots=True)
class Partitioning:
    """What a node with these GPUs offers, as the extender reads it (shared by alike nodes)."""

    labels: Mapping[str, str]  # the device plugin's partition labels (sizing.contract.node_labels)
    partitions: int  # of all the GPUs
    allocatable: int  # amd.com/gpu-partition, parsed
    partition_bytes: int | None  # the smallest partition, parsed from its label
    defect: str | None  # an unreadable label or count (never, for geometries from gpus.json)


@lru_cache(maxsize=PARTITIONING_CACHE_SIZE)
def partitioning_of(gpus: tuple[PartitionGeometry, ...]) -> Partitioning:
    """The labels the device plugin would publish for these GPUs and their allocatable, read back
    with the extender's own parser (``decision.node_offer.decision_fields``)."""
    shapes = [PartitionShape(g.product, g.compute_mode, g.memory_mode, g.compute_units, g.memory_bytes)
              for g in gpus for _ in range(g.partitions)]
    labels = {label: value for label, value in node_labels(shapes).items() if value is not None}
    count = str(len(shapes)) if gpus else None
    allocatable, partition_bytes, defect = decision_fields(labels.get(LABEL_MEMORY_MIB), count)
    return Partitioning(labels, len(shapes), allocatable, partition_bytes, defect)
