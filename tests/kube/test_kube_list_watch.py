"""kube.list_watch against the real API server (tests/controlplane; skipped without its binaries):
a paged list with a label selector returns every matching object as a dict, and a watch from the
list's resourceVersion reports exactly the later changes, remembers the last resourceVersion and
ends on the next event once asked to stop."""

from __future__ import annotations

import functools
import threading
from typing import Any

from kubernetes import client

from kube.list_watch import WatchCall, list_objects
from tests.controlplane.harness import ControlPlane
from tests.controlplane.processes import wait_until

LABELS = {"aim.amd.com/test": "list-watch"}
SELECTOR = "aim.amd.com/test=list-watch"
# A watch event reaches the client within milliseconds; generous for a loaded machine.
EVENT_TIMEOUT_SECONDS = 20.0


def config_map(name: str, *, labelled: bool = True) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=LABELS if labelled else None),
                              data={"v": "1"})


def test_list_objects_reads_every_page_with_the_selector(control_plane: ControlPlane, namespace: str) -> None:
    core = control_plane.core
    for index in range(5):
        core.create_namespaced_config_map(namespace, config_map(f"cm-{index}"))
    core.create_namespaced_config_map(namespace, config_map("unlabelled", labelled=False))
    tokens: list[object] = []

    def lister(**kwargs: Any) -> Any:
        tokens.append(kwargs.get("_continue"))
        return core.list_namespaced_config_map(namespace, **kwargs)

    items, version = list_objects(lister, page_size=2, label_selector=SELECTOR)

    assert sorted(item["metadata"]["name"] for item in items) == [f"cm-{index}" for index in range(5)]
    assert all(isinstance(item, dict) for item in items)
    assert len(tokens) == 3 and tokens[0] is None and all(isinstance(t, str) and t for t in tokens[1:])
    assert version


def test_watch_call_reports_later_changes_and_stops(control_plane: ControlPlane, namespace: str) -> None:
    core = control_plane.core
    core.create_namespaced_config_map(namespace, config_map("before"))
    lister = functools.partial(core.list_namespaced_config_map, namespace)
    items, version = list_objects(lister, label_selector=SELECTOR)
    assert [item["metadata"]["name"] for item in items] == ["before"]

    stopping = threading.Event()
    call = WatchCall(lister, version, stopping=stopping, timeout_seconds=60, label_selector=SELECTOR)
    seen: list[tuple[str, str, str]] = []

    def follow() -> None:
        for event_type, obj in call:
            seen.append((event_type, obj["metadata"]["name"], obj["metadata"]["resourceVersion"]))

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    core.create_namespaced_config_map(namespace, config_map("unlabelled", labelled=False))
    core.create_namespaced_config_map(namespace, config_map("during"))
    core.patch_namespaced_config_map("during", namespace, {"data": {"v": "2"}})
    core.delete_namespaced_config_map("during", namespace)
    wait_until(lambda: len(seen) >= 3, EVENT_TIMEOUT_SECONDS, "three watch events")

    stopping.set()
    core.create_namespaced_config_map(namespace, config_map("after-stop"))
    thread.join(timeout=EVENT_TIMEOUT_SECONDS)

    assert not thread.is_alive(), "the watch did not end on the first event after stopping was set"
    assert [(event_type, name) for event_type, name, _ in seen] == [
        ("ADDED", "during"), ("MODIFIED", "during"), ("DELETED", "during")]
    assert call.resource_version == seen[-1][2]
