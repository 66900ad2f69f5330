"""Leader election on a coordination.k8s.io Lease with the kubernetes client's own
``leaderelection`` (LeaseLock): only the holder of the Lease runs the control loop, so two
replicas are safe. A replica that loses the Lease stops (and is restarted as a follower)."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.leaderelection import electionconfig, leaderelection
from kubernetes.leaderelection.resourcelock import leaselock

logger = logging.getLogger(__name__)


LeaderElection: Any = leaderelection.LeaderElection  # the client has no type hints
ElectionConfig: Any = electionconfig.Config
LeaseLock: Any = leaselock.LeaseLock


@dataclass(frozen=True, slots=True)
class LeaseSettings:
    name: str
    namespace: str
    duration_seconds: int
    renew_deadline_seconds: int
    retry_period_seconds: int

    def problem(self) -> str | None:
        """What the client's leader election would refuse (it calls sys.exit), as a message."""
        if self.retry_period_seconds < 1:
            return "--retry-period-seconds must be at least 1"
        if self.renew_deadline_seconds <= 1.2 * self.retry_period_seconds:
            return "--renew-deadline-seconds must be more than 1.2 x --retry-period-seconds"
        if self.duration_seconds <= self.renew_deadline_seconds:
            return "--lease-duration-seconds must be more than --renew-deadline-seconds"
        return None


def identity() -> str:
    """This replica's name in the Lease: the pod name (hostname) and a random suffix."""
    return f"{os.environ.get('POD_NAME') or socket.gethostname()}_{uuid.uuid4().hex[:8]}"


@dataclass
class Campaign:
    """This replica's candidacy: its name in the Lease and whether it leads."""

    me: str
    leading: threading.Event
    thread: threading.Thread


def release(lease: LeaseSettings, campaign: Campaign) -> None:
    """On a clean stop: empty the Lease's holder if it is still us, so that the other replica
    takes over at once instead of after the lease duration (client-go's ReleaseOnCancel)."""
    if not campaign.leading.is_set():
        return
    api = client.CoordinationV1Api()
    try:
        found = api.read_namespaced_lease(lease.name, lease.namespace, _request_timeout=(5, 10))
        if found.spec is None or found.spec.holder_identity != campaign.me:
            return
        found.spec.holder_identity = None
        api.replace_namespaced_lease(lease.name, lease.namespace, found, _request_timeout=(5, 10))
        logger.info("released Lease %s/%s", lease.namespace, lease.name)
    except Exception as error:  # noqa: BLE001 - best effort: the Lease expires anyway
        logger.info("could not release Lease %s/%s (%s); it expires in %d s", lease.namespace, lease.name,
                    type(error).__name__, lease.duration_seconds)


def run_elected(lease: LeaseSettings, lead: Callable[[], None], lost: Callable[[], None]) -> Campaign:
    """Start campaigning in a daemon thread: ``lead`` runs (in its own thread) once this replica
    holds the Lease; ``lost`` is called when it cannot renew it."""
    # The client's leader election logs every retry at INFO ("yet to finish lease_duration"); its
    # warnings are enough for a person on call.
    logging.getLogger("leaderelection").setLevel(logging.WARNING)
    me = identity()
    leading = threading.Event()

    def leader() -> None:
        leading.set()
        lead()

    def campaign() -> None:
        logger.info("%s waits for Lease %s/%s before acting", me, lease.namespace, lease.name)
        while True:
            lock = LeaseLock(lease.name, lease.namespace, me)
            config = ElectionConfig(lock, lease.duration_seconds, lease.renew_deadline_seconds,
                                    lease.retry_period_seconds, onstarted_leading=leader, onstopped_leading=lost)
            try:
                LeaderElection(config).run()  # returns once the Lease is lost, after calling ``lost``
                return
            except Exception as error:  # noqa: BLE001 - the client raises transport errors as they come
                if leading.is_set():  # renewal broke: stop rather than act without the Lease
                    logger.error("renewing Lease %s/%s failed (%s: %s)", lease.namespace, lease.name,
                                 type(error).__name__, str(error)[:200])
                    lost()
                    return
                logger.warning("reading Lease %s/%s failed (%s); will retry in %d s", lease.namespace, lease.name,
                               type(error).__name__, lease.retry_period_seconds)
                time.sleep(lease.retry_period_seconds)

    thread = threading.Thread(target=campaign, name="leader-election", daemon=True)
    thread.start()
    return Campaign(me, leading, thread)
