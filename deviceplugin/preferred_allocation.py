"""Preferred-allocation policy (pure): which partitions a multi-partition request should get.

Rules, in order:
1. Every must-include ID is in the answer (the kubelet passes IDs it already decided on).
2. The rest comes from the smallest scope that can hold it: one physical GPU, else one NUMA
   node of one XGMI hive, else one hive, else anywhere. Partitions of one GPU talk over the
   GPU's own fabric; XGMI links between GPUs are slower and PCIe slower still (KFD io_link
   weights 13 / 41 / 20+ in the MI300X capture, tests/fixtures/sysfs/README.md).
3. Among scopes of the same kind, pack: take the one with the fewest free partitions, and
   inside it fill the GPUs with the fewest free partitions first, so whole GPUs stay free for
   requests that need a whole GPU (the AMD best-effort policy does the same,
   ROCm/k8s-device-plugin internal/pkg/allocator).
4. Ties break on PCI address then partition index, so answers are deterministic.

The policy never fails: IDs it does not know are used last, and a request larger than what is
available gets everything available (the kubelet falls back to its own choice when the answer
is short, kubernetes/kubernetes pkg/kubelet/cm/devicemanager/manager.go).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Mapping, Sequence

from deviceplugin.inventory import Partition

# Sort key for a GPU: PCI address; unknown IDs get a key that sorts after every address.
_UNKNOWN_GPU = "~unknown"

# Rule 2's scopes, smallest first: one GPU, one NUMA node of one hive, one hive.
_SCOPES: tuple[Callable[[Partition], Hashable], ...] = (
    lambda part: part.gpu,
    lambda part: (part.hive_id, part.numa_node),
    lambda part: part.hive_id,
)


def _dedupe(ids: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def preferred_device_ids(
    *,
    available: Sequence[str],
    must_include: Sequence[str],
    size: int,
    partitions: Mapping[str, Partition],
) -> list[str]:
    """Return ``size`` IDs from ``available`` (plus ``must_include``), following the rules above."""
    must = _dedupe(must_include)
    if len(must) >= size:
        return must
    must_set = set(must)
    free = [i for i in _dedupe(available) if i not in must_set]
    need = size - len(must)
    if need >= len(free):
        return must + _order_within_scope(free, must, partitions)

    for scope_of in _SCOPES:
        chosen = _pick_in_scopes(free, must, need, partitions, _scope_key(scope_of, partitions))
        if chosen is not None:
            return must + chosen
    return must + _order_within_scope(free, must, partitions)[:need]


def _scope_key(
    scope_of: Callable[[Partition], Hashable], partitions: Mapping[str, Partition]
) -> Callable[[str], Hashable]:
    """Device ID -> its scope; an unknown ID is a scope of its own, never joining a known one."""

    def key(device_id: str) -> Hashable:
        part = partitions.get(device_id)
        return scope_of(part) if part is not None else (_UNKNOWN_GPU, device_id)

    return key


def _pick_in_scopes(
    free: list[str],
    must: list[str],
    need: int,
    partitions: Mapping[str, Partition],
    scope_key: Callable[[str], Hashable],
) -> list[str] | None:
    """Best scope (by ``scope_key``) holding ``need`` free partitions and all of ``must``."""
    must_scopes = {scope_key(i) for i in must}
    if len(must_scopes) > 1:
        return None  # must-include IDs already span several scopes of this kind
    groups: dict[Hashable, list[str]] = defaultdict(list)
    for device_id in free:
        groups[scope_key(device_id)].append(device_id)
    candidates = [
        (len(ids), _first_address(ids, partitions), key)
        for key, ids in groups.items()
        if len(ids) >= need and (not must_scopes or key in must_scopes)
    ]
    if not candidates:
        return None
    _, _, best = min(candidates, key=lambda c: (c[0], c[1]))
    return _order_within_scope(groups[best], must, partitions)[:need]


def _first_address(ids: list[str], partitions: Mapping[str, Partition]) -> str:
    return min(_partition_key(i, partitions)[0] for i in ids)


def _partition_key(device_id: str, partitions: Mapping[str, Partition]) -> tuple[str, int, str]:
    part = partitions.get(device_id)
    if part is None:
        return (_UNKNOWN_GPU, 0, device_id)
    return (part.gpu, part.index, device_id)


def _order_within_scope(ids: list[str], must: list[str], partitions: Mapping[str, Partition]) -> list[str]:
    """GPUs holding must-include IDs first, then GPUs with fewest free partitions, then address."""
    by_gpu: dict[str, list[str]] = defaultdict(list)
    for device_id in ids:
        by_gpu[_partition_key(device_id, partitions)[0]].append(device_id)
    must_gpus = {_partition_key(i, partitions)[0] for i in must}
    # Unknown IDs each count as their own GPU and go last.
    ordered_gpus = sorted(
        by_gpu,
        key=lambda gpu: (gpu == _UNKNOWN_GPU, gpu not in must_gpus, len(by_gpu[gpu]), gpu),
    )
    result: list[str] = []
    for gpu in ordered_gpus:
        result.extend(sorted(by_gpu[gpu], key=lambda i: _partition_key(i, partitions)))
    return result
