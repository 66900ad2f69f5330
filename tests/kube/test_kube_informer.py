"""kube.informer.Informer against the real API server (tests/controlplane; skipped without its binaries):
two subscribers of one informer get the same list and the same later changes over ONE watch connection
(the API server's own count of open watches, apiserver_longrunning_requests, rises by one), and the
loop runs until its last user stops."""

from __future__ import annotations

import functools
from typing import Any

from kubernetes import client

from kube.informer import Informer
from tests.controlplane.harness import ControlPlane, prometheus_samples
from tests.controlplane.processes import wait_until

# The ConfigMap kube-controller-manager puts in every namespace (maybe after the test's list): not counted.
ROOT_CA = "kube-root-ca.crt"
# A watch event reaches the client within milliseconds; generous for a loaded machine.
EVENT_TIMEOUT_SECONDS = 20.0


def open_watches(plane: ControlPlane, resource: str) -> float:
    """Watch requests of ``resource`` the API server is serving now (all clients, all namespaces)."""
    samples = prometheus_samples(plane.kubectl("get", "--raw", "/metrics").stdout)
    return sum(value for name, value in samples.items()
               if name.startswith("apiserver_longrunning_requests{") and 'verb="WATCH"' in name
               and f'resource="{resource}"' in name)


class Recorder:
    def __init__(self) -> None:
        self.listed: list[list[str]] = []
        self.events: list[tuple[str, str]] = []
        self.failures = 0

    def replace(self, items: list[dict[str, Any]]) -> None:
        self.listed.append(sorted(item["metadata"]["name"] for item in items if item["metadata"]["name"] != ROOT_CA))

    def apply(self, event: str, obj: dict[str, Any]) -> None:
        if obj["metadata"]["name"] != ROOT_CA:
            self.events.append((event, obj["metadata"]["name"]))

    def broken(self) -> None:
        self.failures += 1


def config_map(name: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data={"v": "1"})


def test_two_subscribers_share_one_watch_until_the_last_user_stops(control_plane: ControlPlane,
                                                                   namespace: str) -> None:
    core = control_plane.core
    core.create_namespaced_config_map(namespace, config_map("before"))
    informer = Informer("configmaps", functools.partial(core.list_namespaced_config_map, namespace),
                        watch_timeout_seconds=60)
    cache, webhook = Recorder(), Recorder()
    informer.subscribe(cache)
    informer.subscribe(webhook)
    before = open_watches(control_plane, "configmaps")
    informer.start()
    informer.start()  # a second user: no second loop, no second connection
    try:
        assert informer.synced.wait(EVENT_TIMEOUT_SECONDS)
        wait_until(lambda: open_watches(control_plane, "configmaps") >= before + 1, EVENT_TIMEOUT_SECONDS,
                   "the informer's watch to open")
        core.create_namespaced_config_map(namespace, config_map("during"))
        core.delete_namespaced_config_map("during", namespace)
        wait_until(lambda: len(cache.events) >= 2 and len(webhook.events) >= 2, EVENT_TIMEOUT_SECONDS,
                   "both subscribers to see the changes")
        assert open_watches(control_plane, "configmaps") == before + 1
        informer.stop()  # one user left: the watch goes on
        core.create_namespaced_config_map(namespace, config_map("after-one-stop"))
        wait_until(lambda: len(webhook.events) >= 3, EVENT_TIMEOUT_SECONDS, "the change after one user stopped")
    finally:
        informer.stop()
    wait_until(lambda: open_watches(control_plane, "configmaps") == before, EVENT_TIMEOUT_SECONDS,
               "the watch to close after the last user stopped")
    for recorder in (cache, webhook):
        assert recorder.listed == [["before"]]
        assert recorder.events == [("ADDED", "during"), ("DELETED", "during"), ("ADDED", "after-one-stop")]
        assert recorder.failures == 0


def test_a_subscriber_after_start_is_refused(control_plane: ControlPlane, namespace: str) -> None:
    informer = Informer("configmaps", functools.partial(control_plane.core.list_namespaced_config_map, namespace))
    informer.start()
    try:
        try:
            informer.subscribe(Recorder())
        except RuntimeError as error:
            assert "subscribe before start()" in str(error)
        else:
            raise AssertionError("a late subscriber would miss the list")
    finally:
        informer.stop()
