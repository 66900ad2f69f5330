"""Discover AMD GPU compute partitions from a sysfs tree (pure over an injectable root).

Sources, in order of trust:
- KFD topology ``class/kfd/kfd/topology/nodes/<n>/properties``: one node per partition; CPU
  nodes (``simd_count 0``) are skipped. This is the only required source.
- The parent PCI device (``bus/pci/devices/<bdf>`` or ``module/amdgpu/drivers/pci:amdgpu/<bdf>``):
  ``current_{compute,memory}_partition``, ``available_*``, ``numa_node``, ``drm/{card,renderD}*``.
- ``devices/platform/amdgpu_xcp_<n>`` and ``amdgpu_xcp.<n>`` (both kernel spellings,
  ROCm/k8s-device-plugin#157): card nodes of partitions 1..7.
- KFD ``mem_banks/0/properties`` ``size_in_bytes``: partition memory (ROCm/k8s-device-plugin#108).
- ``class/drm/renderD<n>/device`` and ``<pci>/drm/renderD<n>``: which GPU a render node belongs
  to, to cross-check the identity KFD claims (two nodes may not claim one partition).

``sysfs_root`` may also be a bare capture of the KFD topology (``kfd_topology_dir``).
Every number read goes through ``sizing.bounded.parse_int`` with the bounds below; a value out of
bounds is a problem naming the file and the key, and the node (or the fact) is skipped.

Partitions are grouped into GPUs by ``domain`` + ``location_id`` with the PCI function bits
masked, never by ``unique_id`` (per-partition on newer drivers, ROCm/k8s-gpu-dra-driver#21).
Render minors no KFD node uses are ignored: amdgpu pre-creates 8 DRM nodes per GPU.

Nothing here raises on bad input: a missing or garbled file becomes a ``problem`` string and
whatever depends on it is skipped or derived (from the partition count and the ``sizing``
geometry), and the derivation is recorded in ``notes`` and the ``*_source`` fields.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from deviceplugin import sysfs
from deviceplugin.inventory import (
    SOURCE_DERIVED,
    SOURCE_GEOMETRY,
    SOURCE_KFD,
    SOURCE_NONE,
    SOURCE_SYSFS,
    Gpu,
    Inventory,
    Partition,
    partition_id,
)
from sizing import GEOMETRY
from sizing.bounded import MAX_MEMORY_BYTES, BoundedValueError
from sizing.contract import MAX_CU_COUNT

if TYPE_CHECKING:
    from sizing import GpuProduct

KFD_NODES = Path("class/kfd/kfd/topology/nodes")
PCI_DEVICE_DIRS = (Path("bus/pci/devices"), Path("module/amdgpu/drivers/pci:amdgpu"))
PLATFORM_DIR = Path("devices/platform")
# Both spellings exist depending on the kernel (ROCm/k8s-device-plugin#157).
XCP_DEVICE_RE = re.compile(r"^amdgpu_xcp[._](\d+)$", re.ASCII)
DRM_CLASS = Path("class/drm")
PCI_ADDRESS_RE = re.compile(r"[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]", re.ASCII)

# Modes the amdgpu driver accepts (amdgpu_gfx.c / aqua_vanjaram.c); anything else is garbage.
COMPUTE_MODES = frozenset({"SPX", "DPX", "TPX", "QPX", "CPX"})
MEMORY_MODES = frozenset({"NPS1", "NPS2", "NPS3", "NPS4", "NPS8"})

# KFD io_link type 2 = PCIe (kfd_crat.h CRAT_IOLINK_TYPE_PCIEXPRESS): the GPU's link to its CPU.
IOLINK_TYPE_PCIE = 2

# Products outside the `sizing` geometry because they cannot be partitioned; named so the
# output is readable. Source: PCI ID 0x740f = Instinct MI210 (pci.ids; ROCm/k8s-device-plugin
# testdata topo-mi210-xgmi-pcie, tests/fixtures/sysfs/README.md).
UNPARTITIONABLE_PRODUCTS = {0x740F: "MI210"}

REQUIRED_GPU_KEYS = ("simd_count", "simd_per_cu", "drm_render_minor", "location_id", "domain")

# Bounds of the KFD node fields discovery uses (kfd_topology.c prints them; limits from their C
# types or from what any product can have). Anything outside is a garbled file, never a value.
MAX_SIMD_COUNT = 1 << 20  # an MI300X SPX partition has 1,216 SIMDs
MAX_SIMD_PER_CU = 64  # 4 on every CDNA product
MAX_RENDER_MINOR = (1 << 20) - 1  # Linux minor numbers are 20 bits (include/linux/kdev_t.h MINORBITS)
MAX_LOCATION_ID = 0xFFFF  # (bus << 8) | (device << 3) | function
MAX_DOMAIN = 0xFFFFFFFF  # PCI domain, 32 bits at most (VMD domains start at 0x10000)
MAX_DEVICE_ID = 0xFFFF  # PCI device id
MAX_U64 = (1 << 64) - 1  # hive_id, unique_id
MAX_NUM_XCC = 64  # 8 XCDs on MI300X
MAX_NODE_NUMBER = 4096  # KFD node directories; a node holds a few dozen
MAX_NUMA_NODE = 4095  # CONFIG_NODES_SHIFT is at most 10 on x86_64
MAX_IOLINK_TYPE = 255
# The CU count of one partition: above zero and at most contract.MAX_CU_COUNT (the label bound).
MAX_COMPUTE_UNITS = MAX_CU_COUNT


@dataclass(frozen=True)
class _KfdGpuNode:
    node: int
    domain: int
    location_id: int
    render_minor: int
    compute_units: int
    device_id: int
    hive_id: int | None
    num_xcc: int | None
    path: Path

    @property
    def gpu_address(self) -> str:
        bus = (self.location_id >> 8) & 0xFF
        device = (self.location_id >> 3) & 0x1F
        return f"{self.domain:04x}:{bus:02x}:{device:02x}.0"

    @property
    def index(self) -> int:
        return self.location_id & 0x7

    @property
    def claim(self) -> str:
        return f"KFD node {self.node} (GPU {self.gpu_address} partition {self.index}, renderD{self.render_minor})"


@dataclass(frozen=True)
class _PciFacts:
    compute_mode: str | None
    memory_mode: str | None
    available_compute: tuple[str, ...] | None
    available_memory: tuple[str, ...] | None
    numa_node: int | None
    numa_known: bool


def kfd_topology_dir(sysfs_root: Path) -> Path:
    """The KFD topology directory under ``sysfs_root``.

    ``sysfs_root`` is a sysfs mount (``class/kfd/kfd/topology`` inside) or a bare capture of
    the topology (``topology/nodes`` or ``nodes`` directly, as ROCm's testdata holds them). Both
    ``serve`` and ``discover`` read through here, so they accept the same roots.
    """
    mounted = sysfs_root / KFD_NODES.parent
    if (mounted / "nodes").is_dir():
        return mounted
    for candidate in (sysfs_root / "topology", sysfs_root):
        if (candidate / "nodes").is_dir():
            return candidate
    return mounted


def kfd_nodes_dir(sysfs_root: Path) -> Path:
    return kfd_topology_dir(sysfs_root) / "nodes"


def topology_fingerprint(sysfs_root: Path) -> tuple[str | None, tuple[str, ...]]:
    """Cheap change detector: KFD ``generation_id`` (bumped by the driver on every topology
    change, kfd_topology.c) plus the node directory names. Two reads instead of a discovery."""
    topology = kfd_topology_dir(sysfs_root)
    generation = sysfs.read_word(topology / "generation_id")
    try:
        names = tuple(sorted(os.listdir(topology / "nodes")))
    except OSError:
        names = ()
    return generation, names


def discover(sysfs_root: Path = Path("/sys")) -> Inventory:
    """Return every GPU partition found under ``sysfs_root``; never raises on bad sysfs data."""
    problems: list[str] = []
    notes: list[str] = []
    nodes_dir = kfd_nodes_dir(sysfs_root)
    if not nodes_dir.is_dir():
        problems.append(
            f"KFD topology not found at {sysfs_root / KFD_NODES} (amdgpu not loaded or /sys not "
            "mounted); advertising no partitions"
        )
        return Inventory(problems=tuple(problems))
    if nodes_dir != sysfs_root / KFD_NODES:
        notes.append(f"{sysfs_root} is a bare KFD topology capture; read {nodes_dir}")

    gpu_nodes, cpu_nodes = _read_kfd_nodes(nodes_dir, problems)
    render_owner = _render_owners(sysfs_root, {n.gpu_address for n in gpu_nodes})
    accepted = _cross_check(gpu_nodes, render_owner, problems)
    by_gpu: dict[str, list[_KfdGpuNode]] = defaultdict(list)
    for kfd in accepted:
        by_gpu[kfd.gpu_address].append(kfd)

    pci_dirs = {address: _pci_dir(sysfs_root, address) for address in by_gpu}
    card_by_render = _card_minors_by_render_minor(sysfs_root, pci_dirs.values())
    partitions: list[Partition] = []
    gpus: list[Gpu] = []
    for address in sorted(by_gpu):
        members = _one_product(sorted(by_gpu[address], key=lambda n: n.index), problems)
        gpu, gpu_partitions = _build_gpu(
            pci_dirs[address], address, members, cpu_nodes, card_by_render, problems, notes
        )
        gpus.append(gpu)
        partitions.extend(gpu_partitions)

    shapes = {p.shape.kind for p in partitions}
    if len(shapes) > 1:
        notes.append(
            "GPUs are not all in the same partition mode ("
            + "; ".join(sorted(_describe_shape(s) for s in shapes))
            + "); advertising every partition and labelling the smallest"
        )
    return Inventory(
        partitions=tuple(partitions), gpus=tuple(gpus), problems=tuple(problems), notes=tuple(notes)
    )


def _describe_shape(shape: tuple[str, str | None, str | None, int, int | None]) -> str:
    product, compute, memory, cus, gib = shape
    memory_text = f"{gib} GiB" if gib is not None else "unknown memory"
    return f"{product} {compute or '-'}/{memory or '-'} {cus} CUs {memory_text}"


def _cross_check(
    nodes: list[_KfdGpuNode], render_owner: dict[int, str], problems: list[str]
) -> list[_KfdGpuNode]:
    """Drop KFD nodes whose identity sysfs contradicts or that clash with another node.

    A node whose render node belongs (in sysfs) to another GPU is dropped: its ID would come with
    that GPU's render node. Two nodes claiming the same GPU + partition, or the same render
    minor, are a clash: the one whose render node sysfs places on the claimed GPU is kept; when
    sysfs confirms neither (or both), both are dropped, and the warning names both.
    """
    consistent: list[_KfdGpuNode] = []
    for kfd in nodes:
        owner = render_owner.get(kfd.render_minor)
        if owner is not None and owner != kfd.gpu_address:
            problems.append(
                f"{kfd.claim}: sysfs places renderD{kfd.render_minor} on GPU {owner}, not on "
                f"{kfd.gpu_address} (location_id {kfd.location_id} wrong?); node skipped"
            )
            continue
        consistent.append(kfd)

    def confirmed(kfd: _KfdGpuNode) -> bool:
        return render_owner.get(kfd.render_minor) == kfd.gpu_address

    rejected: set[int] = set()
    for key in (lambda n: (n.gpu_address, n.index), lambda n: n.render_minor):
        groups: dict[object, list[_KfdGpuNode]] = defaultdict(list)
        for kfd in consistent:
            if kfd.node not in rejected:
                groups[key(kfd)].append(kfd)
        for group in groups.values():
            if len(group) < 2:
                continue
            sure = [n for n in group if confirmed(n)]
            keep = sure[0] if len(sure) == 1 else None
            names = " and ".join(n.claim for n in group)
            if keep is not None:
                problems.append(
                    f"{names} claim the same partition; sysfs confirms node {keep.node} "
                    f"(renderD{keep.render_minor} belongs to GPU {keep.gpu_address}); the others skipped"
                )
            else:
                problems.append(
                    f"{names} claim the same partition and sysfs confirms none of them; all skipped"
                )
            rejected.update(n.node for n in group if n is not keep)
    return [n for n in consistent if n.node not in rejected]


def _one_product(members: list[_KfdGpuNode], problems: list[str]) -> list[_KfdGpuNode]:
    """Partitions of one GPU share its device id; a node with another one is garbled: skipped.

    The most common id wins (ties: the lower one), so one bad node cannot rename the GPU.
    """
    counts: dict[int, int] = defaultdict(int)
    for kfd in members:
        counts[kfd.device_id] += 1
    device_id = min(counts, key=lambda d: (-counts[d], d))
    kept = []
    for kfd in members:
        if kfd.device_id != device_id:
            problems.append(
                f"{kfd.claim}: device_id 0x{kfd.device_id:04x} differs from the GPU's other "
                f"partitions (0x{device_id:04x}); node skipped"
            )
            continue
        kept.append(kfd)
    return kept


def _read_kfd_nodes(nodes_dir: Path, problems: list[str]) -> tuple[list[_KfdGpuNode], set[int]]:
    gpu_nodes: list[_KfdGpuNode] = []
    cpu_nodes: set[int] = set()
    try:
        entries = list(nodes_dir.iterdir())
    except OSError as exc:
        problems.append(f"cannot list {nodes_dir}: {exc}; advertising no partitions")
        return gpu_nodes, cpu_nodes
    for entry in sorted(entries, key=lambda p: (len(p.name), p.name)):
        if not (entry.name.isascii() and entry.name.isdigit()) or len(entry.name) > 4:
            continue
        node = int(entry.name)
        if node > MAX_NODE_NUMBER:
            continue
        props = sysfs.read_properties(entry / "properties")
        if props is None:
            problems.append(f"KFD node {node}: {entry / 'properties'} missing or unreadable; skipped")
            continue
        try:
            kfd = _gpu_node(node, entry, props, cpu_nodes, problems)
        except BoundedValueError as exc:
            problems.append(f"KFD node {node}: {exc}; node skipped")
            continue
        if kfd is not None:
            gpu_nodes.append(kfd)
    return gpu_nodes, cpu_nodes


def _gpu_node(
    node: int, entry: Path, props: sysfs.Properties, cpu_nodes: set[int], problems: list[str]
) -> _KfdGpuNode | None:
    """The GPU node described by ``props``; None for a CPU node or a node lacking keys.
    Raises BoundedValueError (naming file and key) for a value out of bounds."""
    simd_count = props.number("simd_count", minimum=0, maximum=MAX_SIMD_COUNT) if "simd_count" in props else None
    cpu_cores = props.optional("cpu_cores_count", minimum=0, maximum=MAX_U64, problems=problems)
    if simd_count == 0 or ("simd_count" not in props and (cpu_cores or 0) > 0):
        cpu_nodes.add(node)
        return None
    missing = [key for key in REQUIRED_GPU_KEYS if key not in props]
    if missing:
        detail = f"; {len(props.bad_lines)} unparsable line(s)" if props.bad_lines else ""
        problems.append(
            f"KFD node {node}: properties lack {', '.join(missing)}{detail} "
            "(truncated or garbled file); node skipped"
        )
        return None
    if props.bad_lines:
        problems.append(
            f"KFD node {node}: ignored {len(props.bad_lines)} unparsable line(s) in properties, "
            f"first {props.bad_lines[0]!r}"
        )
    simds = props.number("simd_count", minimum=1, maximum=MAX_SIMD_COUNT)
    per_cu = props.number("simd_per_cu", minimum=1, maximum=MAX_SIMD_PER_CU)
    compute_units = simds // per_cu
    if not 0 < compute_units <= MAX_COMPUTE_UNITS:
        raise BoundedValueError(
            f"{props.path} simd_count/simd_per_cu", f"{simds}/{per_cu}", "gives no whole compute unit"
        )
    hive = props.optional("hive_id", minimum=0, maximum=MAX_U64, problems=problems)
    return _KfdGpuNode(
        node=node,
        domain=props.number("domain", minimum=0, maximum=MAX_DOMAIN),
        location_id=props.number("location_id", minimum=0, maximum=MAX_LOCATION_ID),
        render_minor=props.number("drm_render_minor", minimum=1, maximum=MAX_RENDER_MINOR),
        compute_units=compute_units,
        device_id=props.optional("device_id", minimum=0, maximum=MAX_DEVICE_ID, problems=problems) or 0,
        hive_id=hive or None,
        num_xcc=props.optional("num_xcc", minimum=0, maximum=MAX_NUM_XCC, problems=problems),
        path=entry,
    )


def _render_owners(sysfs_root: Path, addresses: Iterable[str]) -> dict[int, str]:
    """Render minor -> PCI address of its GPU, as far as sysfs says: ``class/drm/renderD<n>/device``
    links to a PCI device, and ``<pci device>/drm/renderD<n>`` is a render node of that device.
    Render nodes of ``amdgpu_xcp`` platform devices (partitions 1..7) name no PCI device."""
    owners: dict[int, str] = {}
    with contextlib.suppress(OSError):
        for entry in (sysfs_root / DRM_CLASS).iterdir():
            minor = _render_minor(entry.name)
            if minor is None:
                continue
            with contextlib.suppress(OSError, RuntimeError):
                target = (entry / "device").resolve(strict=True).name
                if PCI_ADDRESS_RE.fullmatch(target):
                    owners[minor] = _function_zero(target)
    for address in addresses:
        pci = _pci_dir(sysfs_root, address)
        if pci is None:
            continue
        _card, render = _drm_minors(pci / "drm")
        if render is not None:
            owners.setdefault(render, address)
    return owners


def _render_minor(name: str) -> int | None:
    digits = name[len("renderD") :] if name.startswith("renderD") else ""
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 7:
        return None
    return int(digits)


def _function_zero(address: str) -> str:
    return address[:-1] + "0"


def _pci_dir(sysfs_root: Path, address: str) -> Path | None:
    for base in PCI_DEVICE_DIRS:
        candidate = sysfs_root / base / address
        if candidate.is_dir():
            return candidate
    return None


def _drm_minors(drm_dir: Path) -> tuple[int | None, int | None]:
    """(card minor, render minor) from a device's ``drm/`` directory."""
    card: int | None = None
    render: int | None = None
    try:
        names = [p.name for p in drm_dir.iterdir()]
    except OSError:
        return None, None
    for name in names:
        minor = _render_minor(name)
        if minor is not None:
            render = minor
        elif name.startswith("card") and name[4:].isascii() and name[4:].isdigit() and len(name) < 12:
            card = int(name[4:])
    return card, render


def _card_minors_by_render_minor(sysfs_root: Path, pci_dirs: Iterable[Path | None]) -> dict[int, int]:
    """Map render minor -> card minor from PCI devices and amdgpu_xcp platform devices."""
    mapping: dict[int, int] = {}
    drm_dirs = [pci / "drm" for pci in pci_dirs if pci is not None]
    platform = sysfs_root / PLATFORM_DIR
    # No platform devices: partitions 1..7 then simply have no card node.
    with contextlib.suppress(OSError):
        drm_dirs.extend(p / "drm" for p in platform.iterdir() if XCP_DEVICE_RE.match(p.name))
    for drm_dir in drm_dirs:
        card, render = _drm_minors(drm_dir)
        if card is not None and render is not None:
            mapping[render] = card
    return mapping


def _read_pci_facts(pci: Path | None, address: str, problems: list[str]) -> _PciFacts:
    if pci is None:
        return _PciFacts(None, None, None, None, None, numa_known=False)

    def mode(name: str, valid: frozenset[str]) -> str | None:
        path = pci / name
        word = sysfs.read_word(path)
        if word is None:
            return None
        if word.upper() not in valid:
            problems.append(f"GPU {address}: {path} holds {word[:20]!r}, not a known mode; ignored")
            return None
        return word.upper()

    def available(name: str, valid: frozenset[str]) -> tuple[str, ...] | None:
        words = sysfs.read_list(pci / name)
        if words is None:
            return None
        modes = tuple(w.upper() for w in words if w.upper() in valid)
        return modes or None

    numa_path = pci / "numa_node"
    try:
        numa = sysfs.read_int(numa_path, minimum=-1, maximum=MAX_NUMA_NODE)
    except BoundedValueError as exc:
        problems.append(f"GPU {address}: {exc}; NUMA node unknown")
        numa = None
    return _PciFacts(
        compute_mode=mode("current_compute_partition", COMPUTE_MODES),
        memory_mode=mode("current_memory_partition", MEMORY_MODES),
        available_compute=available("available_compute_partition", COMPUTE_MODES),
        available_memory=available("available_memory_partition", MEMORY_MODES),
        # -1 means "no NUMA affinity" (drivers/pci/pci-sysfs.c numa_node_show).
        numa_node=numa if numa is not None and numa >= 0 else None,
        numa_known=numa is not None,
    )


def _numa_from_io_links(kfd: _KfdGpuNode, cpu_nodes: set[int]) -> int | None:
    """NUMA node of the CPU the partition hangs off, from its KFD io_links (PCIe link to a CPU).

    KFD numbers CPU nodes in ACPI proximity-domain order, so CPU node i is NUMA node i on the
    systems the captures come from (kfd_crat.c kfd_parse_subtype_cu).
    """
    links = kfd.path / "io_links"
    try:
        names = sorted((n for n in os.listdir(links) if n.isascii() and n.isdigit() and len(n) < 6), key=int)
    except OSError:
        return None
    for name in names:
        props = sysfs.read_properties(links / name / "properties")
        if props is None:
            continue
        ignored: list[str] = []  # a garbled link is skipped; the next readable one answers
        target = props.optional("node_to", minimum=0, maximum=MAX_NODE_NUMBER, problems=ignored)
        kind = props.optional("type", minimum=0, maximum=MAX_IOLINK_TYPE, problems=ignored)
        if target in cpu_nodes and kind == IOLINK_TYPE_PCIE and target <= MAX_NUMA_NODE:
            return target
    return None


def _build_gpu(
    pci: Path | None,
    address: str,
    members: list[_KfdGpuNode],
    cpu_nodes: set[int],
    card_by_render: dict[int, int],
    problems: list[str],
    notes: list[str],
) -> tuple[Gpu, list[Partition]]:
    facts = _read_pci_facts(pci, address, problems)
    device_id = members[0].device_id
    product = GEOMETRY.product_by_device_id(device_id) if device_id else None
    product_name = product.name if product is not None else UNPARTITIONABLE_PRODUCTS.get(device_id, "unknown")
    count = len(members)

    compute_mode, compute_source = facts.compute_mode, SOURCE_SYSFS
    if compute_mode is None:
        compute_mode, compute_source = _derive_compute_mode(product, members), SOURCE_DERIVED
        if compute_mode is not None:
            notes.append(
                f"GPU {address}: compute mode {compute_mode} derived from {count} partition(s) "
                f"of {members[0].compute_units} CUs (no current_compute_partition)"
            )
        else:
            compute_source = SOURCE_NONE
    partitionable = product is not None and bool(product.modes)
    if product is None:
        notes.append(
            f"GPU {address}: device id 0x{device_id:04x} ({product_name}) is not in the sizing "
            f"geometry; advertised as {count} unpartitionable device(s)"
        )

    memory_mode, memory_source = facts.memory_mode, SOURCE_SYSFS
    if memory_mode is None:
        memory_mode, memory_source = _derive_memory_mode(product, compute_mode), SOURCE_GEOMETRY
        if memory_mode is None:
            memory_source = SOURCE_NONE
            if compute_mode is not None:
                notes.append(
                    f"GPU {address}: memory mode unknown (no current_memory_partition and "
                    f"{compute_mode} allows several)"
                )

    numa_node, numa_source = facts.numa_node, SOURCE_SYSFS if facts.numa_known else SOURCE_NONE
    if not facts.numa_known:
        # All partitions of a GPU hang off the same CPU; the first readable io_link answers.
        numa_node = next(
            (n for n in (_numa_from_io_links(m, cpu_nodes) for m in members) if n is not None), None
        )
        numa_source = SOURCE_KFD if numa_node is not None else SOURCE_NONE
    geometry_bytes = _geometry_memory(product, compute_mode, memory_mode)
    partitions: list[Partition] = []
    for kfd in members:
        memory_bytes, mem_source = _partition_memory(kfd, geometry_bytes, problems)
        partitions.append(
            Partition(
                id=partition_id(address, kfd.index),
                gpu=address,
                index=kfd.index,
                kfd_node=kfd.node,
                render_minor=kfd.render_minor,
                card_minor=card_by_render.get(kfd.render_minor),
                memory_bytes=memory_bytes,
                memory_source=mem_source,
                compute_units=kfd.compute_units,
                numa_node=numa_node,
                numa_source=numa_source,
                hive_id=kfd.hive_id,
                compute_mode=compute_mode,
                compute_mode_source=compute_source,
                memory_mode=memory_mode,
                memory_mode_source=memory_source,
                product=product_name,
                device_id=device_id,
                partitionable=partitionable,
            )
        )
    if any(p.memory_source == SOURCE_GEOMETRY for p in partitions):
        notes.append(
            f"GPU {address}: partition memory {geometry_bytes} bytes taken from the {product_name} "
            "geometry (no KFD mem_banks)"
        )
    gpu = Gpu(
        address=address,
        product=product_name,
        device_id=device_id,
        compute_mode=compute_mode,
        memory_mode=memory_mode,
        available_compute_modes=facts.available_compute,
        available_memory_modes=facts.available_memory,
        numa_node=partitions[0].numa_node if partitions else None,
        hive_id=members[0].hive_id,
        partition_ids=tuple(p.id for p in partitions),
    )
    return gpu, partitions


def _derive_compute_mode(product: GpuProduct | None, members: list[_KfdGpuNode]) -> str | None:
    """Compute mode from the partition count, else from the CU share of one partition.

    The CU share covers a GPU missing a partition (63 of 64 CPX partitions when the kernel runs
    out of DRM minors, ROCm/k8s-device-plugin#167).
    """
    if product is None:
        return None
    mode = product.compute_mode_for_partitions(len(members))
    if mode is not None:
        return mode
    cus = members[0].compute_units
    if cus > 0 and product.total_cus % cus == 0:
        return product.compute_mode_for_partitions(product.total_cus // cus)
    return None


def _derive_memory_mode(product: GpuProduct | None, compute_mode: str | None) -> str | None:
    """The memory mode when the product allows exactly one with this compute mode."""
    if product is None or compute_mode is None:
        return None
    candidates = {m.memory_mode for m in product.modes if m.compute_mode == compute_mode}
    return candidates.pop() if len(candidates) == 1 else None


def _geometry_memory(
    product: GpuProduct | None, compute_mode: str | None, memory_mode: str | None
) -> int | None:
    if product is None or compute_mode is None:
        return None
    mode = product.mode(compute_mode, memory_mode) or product.mode(compute_mode)
    return mode.memory_bytes if mode is not None else None


def _partition_memory(
    kfd: _KfdGpuNode, geometry_bytes: int | None, problems: list[str]
) -> tuple[int | None, str]:
    bank = kfd.path / "mem_banks" / "0" / "properties"
    props = sysfs.read_properties(bank)
    if props is not None:
        size = props.optional("size_in_bytes", minimum=1, maximum=MAX_MEMORY_BYTES, problems=problems)
        if size is not None:
            return size, SOURCE_KFD
        if "size_in_bytes" not in props:
            problems.append(f"KFD node {kfd.node}: {bank} has no size_in_bytes; ignored")
    if geometry_bytes is not None:
        return geometry_bytes, SOURCE_GEOMETRY
    return None, SOURCE_NONE
