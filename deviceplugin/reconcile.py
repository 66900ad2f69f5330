"""Merge a fresh discovery into the advertised inventory (pure).

Re-discovery cannot by itself tell a partition that vanished because of a fault from one that
vanished because the GPU was repartitioned or replaced. The rule (docs/deviceplugin.md,
"When partitions vanish"):
- the GPU is still there in the same compute and memory mode -> the missing partition is a
  fault: keep advertising it, as Unhealthy ("lost"), until it comes back;
- the GPU is there in a different mode -> repartitioned: its old partitions are dropped and the
  new ones advertised (the kubelet removes dropped IDs from capacity on the next update);
- the GPU vanished completely -> dropped too, like a repartition (a GPU that comes back is
  re-discovered and advertised again at once);
- in every case, a partition a pod still holds stays advertised as Unhealthy until the kubelet
  releases it, so capacity never drops below what is allocated.
Lost partitions never count in the node labels.
"""

from __future__ import annotations

import dataclasses

from deviceplugin.inventory import Inventory, Partition


@dataclasses.dataclass(frozen=True)
class Reconciled:
    """The inventory to advertise and which of its partitions are lost (kept as Unhealthy)."""

    inventory: Inventory
    lost_ids: frozenset[str]
    added_ids: frozenset[str]
    removed_ids: frozenset[str]


def reconcile(
    advertised: Inventory | None, discovered: Inventory, allocated: frozenset[str] = frozenset()
) -> Reconciled:
    if advertised is None:
        ids = frozenset(p.id for p in discovered.partitions)
        return Reconciled(discovered, frozenset(), ids, frozenset())
    found = discovered.by_id
    modes = {g.address: (g.compute_mode, g.memory_mode) for g in discovered.gpus}
    kept: list[Partition] = list(discovered.partitions)
    lost: set[str] = set()
    removed: set[str] = set()
    for old in advertised.partitions:
        if old.id in found:
            continue
        new_mode = modes.get(old.gpu)
        same_gpu_same_mode = new_mode == (old.compute_mode, old.memory_mode)
        if same_gpu_same_mode or old.id in allocated:
            kept.append(old)
            lost.add(old.id)
        else:
            removed.add(old.id)
    previous_ids = {p.id for p in advertised.partitions}
    added = frozenset(i for i in found if i not in previous_ids)
    return Reconciled(
        inventory=discovered.with_partitions(kept),
        lost_ids=frozenset(lost),
        added_ids=added,
        removed_ids=frozenset(removed),
    )
