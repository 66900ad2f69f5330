"""Leader election on a coordination.k8s.io Lease with the kubernetes client's own
``leaderelection`` (LeaseLock): only the holder of the Lease runs the control loop, so two
replicas are safe. A replica that loses the Lease stops (and is restarted as a follower)."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes.leaderelection import electionconfig, leaderelection
from kubernetes.leaderelection.resourcelock import leaselock

logger = logging.getLogger(__name__)

# The client's leader election logs every retry at INFO ("yet to finish lease_duration"); its
# warnings are enough for a person on call.
logging.getLogger("leaderelection").setLevel(logging.WARNING)

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


def run_elected(lease: LeaseSettings, lead: Callable[[], None], lost: Callable[[], None]) -> threading.Thread:
    """Start campaigning in a daemon thread: ``lead`` runs (in its own thread) once this replica
    holds the Lease; ``lost`` is called when it cannot renew it."""
    me = identity()
    lock = LeaseLock(lease.name, lease.namespace, me)
    config = ElectionConfig(lock, lease.duration_seconds, lease.renew_deadline_seconds, lease.retry_period_seconds,
                            onstarted_leading=lead, onstopped_leading=lost)

    def campaign() -> None:
        logger.info("%s waits for Lease %s/%s before acting", me, lease.namespace, lease.name)
        LeaderElection(config).run()

    thread = threading.Thread(target=campaign, name="leader-election", daemon=True)
    thread.start()
    return thread
