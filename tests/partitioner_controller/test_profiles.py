"""The DCM profiles ConfigMap kept ahead of time (``profiles.ProfileKeeper``): written once when
the wanted profiles are known, no API call while nothing changes, each profile usable
``settle`` seconds after it was written. The ConfigMap is held in memory here with the same
``ProfilesDocument`` the API shell returns; against the API server it is exercised by
test_controlplane_latency.py (written at start-up) and test_controller_controlplane.py."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from partitioner import dcm
from partitioner.controller.kube import Kube, ProfilesDocument
from partitioner.controller.profiles import DcmConfig, ProfileKeeper
from partitioner.modes import Mode

NOW = 1_800_000_000.0
SETTLE = 120.0
SPX = {"spx_nps1_1gpu": dcm.profile(Mode("SPX", "NPS1"), 1)}
CPX = {"cpx_nps4_1gpu": dcm.profile(Mode("CPX", "NPS4"), 1)}


class ConfigMapStore:
    """One ConfigMap in memory with the reads and writes of ``Kube`` that the keeper uses."""

    def __init__(self, document: dict[str, Any] | None = None, updated: float | None = None) -> None:
        self.document, self.updated = document, updated
        self.reads = self.writes = 0

    def read_profiles(self, namespace: str, name: str) -> ProfilesDocument:
        self.reads += 1
        return ProfilesDocument(self.document is not None, self.document, self.updated)

    def write_profiles(self, namespace: str, name: str, document: Mapping[str, Any], now: float,
                       exists: bool) -> bool:
        assert exists == (self.document is not None)
        self.writes += 1
        self.document, self.updated = dict(document), float(int(now))
        return True


def _keeper(store: ConfigMapStore, existing: bool = False) -> ProfileKeeper:
    return ProfileKeeper(cast(Kube, store), DcmConfig("kube-amd-gpu", "config-manager-config", existing), SETTLE,
                         lambda _key: True)


def test_profiles_are_written_once_ahead_of_time_and_usable_after_the_settle() -> None:
    theirs = {"gpu-config-profiles": {"default": dcm.profile(Mode("SPX", "NPS1"), 8)}, "gpuClientSystemdServices": {}}
    store = ConfigMapStore(theirs, updated=None)
    keeper = _keeper(store)
    keeper.keep({**SPX, **CPX}, NOW)
    assert store.writes == 1 and store.document is not None
    assert set(store.document["gpu-config-profiles"]) == {"default", "spx_nps1_1gpu", "cpx_nps4_1gpu"}
    assert "gpuClientSystemdServices" in store.document
    for at in range(1, 60):  # every pass: nothing to do, no API call
        keeper.keep({**SPX, **CPX}, NOW + at)
    assert (store.reads, store.writes) == (1, 1)
    assert set(keeper.usable(NOW + SETTLE - 1)) == {"default"}, "someone else's profile: usable at once"
    assert set(keeper.usable(NOW + SETTLE)) == {"default", "spx_nps1_1gpu", "cpx_nps4_1gpu"}
    assert keeper.usable_from("spx_nps1_1gpu") == NOW + SETTLE


def test_a_new_profile_settles_on_its_own_and_the_old_ones_stay_usable() -> None:
    store = ConfigMapStore()
    keeper = _keeper(store)
    keeper.keep(SPX, NOW)
    qpx = {"qpx_nps1_1gpu": dcm.profile(Mode("QPX", "NPS1"), 1)}
    keeper.keep({**SPX, **qpx}, NOW + 600)  # a new kind of node was opted in
    assert store.writes == 2
    assert set(keeper.usable(NOW + 601)) == {"spx_nps1_1gpu"}
    assert set(keeper.usable(NOW + 600 + SETTLE)) == {"spx_nps1_1gpu", "qpx_nps1_1gpu"}


def test_a_new_leader_counts_from_the_configmap_annotation_and_rewrites_a_deleted_configmap() -> None:
    store = ConfigMapStore()
    _keeper(store).keep(SPX, NOW)
    successor = _keeper(store)  # another replica: nothing in memory
    successor.keep(SPX, NOW + 30)
    assert store.writes == 1, "already there: not written again (which would restart the settle)"
    assert successor.usable(NOW + 30) == {} and set(successor.usable(NOW + SETTLE)) == {"spx_nps1_1gpu"}
    store.document = None  # deleted by someone
    assert successor.usable(NOW + 900) == {}
    successor.keep(SPX, NOW + 901)
    assert store.writes == 2 and successor.usable_from("spx_nps1_1gpu") == NOW + 901 + SETTLE


def test_someone_elses_configmap_is_only_read() -> None:
    store = ConfigMapStore({"gpu-config-profiles": {"cpx_nps4_all": {}}})
    keeper = _keeper(store, existing=True)
    keeper.keep(SPX, NOW)
    assert (store.reads, store.writes) == (0, 0)
    assert set(keeper.usable(NOW)) == {"cpx_nps4_all"}
