"""The controller's knobs, validated once at start; every default with its reason."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from partitioner.modes import Trust


class RunMode(str, Enum):
    RECOMMEND = "recommend"  # Events, metrics and a dry-run plan; no change to any node
    APPLY = "apply"  # run the repartitions

    def __str__(self) -> str:
        return self.value


# One node at a time: a repartition drains a node, so the cluster loses at most one node's GPUs.
MAX_IN_FLIGHT = 1
# 30 min between two repartitions of one node: DCM itself retries for up to 30 min, and a node that
# just changed is not changed back for at least that long (hysteresis).
COOLDOWN_SECONDS = 1800.0
# Demand counts as stable after 10 s: the change has been the plan's choice that long, or its pods
# have been pending that long. That is kube-scheduler's longest retry backoff (podMaxBackoffSeconds
# default 10, KubeSchedulerConfiguration v1beta3), so a pod a cluster event lets run on its own has
# been retried by then; a ReplicaSet creates a scale-up's pods within a second (slowStartBatch).
STABLE_SECONDS = 10.0
# Draining: graceful termination defaults to 30 s; 10 min also covers PDB-paced evictions.
DRAIN_TIMEOUT_SECONDS = 600.0
# DCM retries every minute for up to 30 minutes (device-config-manager RetryPartition); 35 min.
DCM_TIMEOUT_SECONDS = 2100.0
# After DCM's success the device plugin restarts and re-advertises within seconds; 5 min covers
# an image pull. Past it: ROCm/gpu-operator#420 (stale allocatable) is the likely cause.
ADVERTISE_TIMEOUT_SECONDS = 300.0
# After a failure the node is left alone for an hour: someone should look at it first.
BACKOFF_SECONDS = 3600.0
# Full re-evaluation even without watch events: catches timeouts and clock-based steps.
RESYNC_SECONDS = 10.0
# kubelet updates a mounted ConfigMap within its sync period (syncFrequency 60 s, jittered) plus
# its cache's propagation delay (Kubernetes docs, ConfigMaps: "Mounted ConfigMaps are updated
# automatically"); DCM fails a profile it cannot find without retrying (device-config-manager
# PartitionGPU: NonExistentProfile), so a new profile is used only 2 min after it was written. The
# controller writes the profiles ahead of time (start-up, a new kind of node), so this wait is
# normally over before any demand.
CONFIGMAP_SETTLE_SECONDS = 120.0
# Shortest time between two evaluations: watch events come in bursts (a drain moves many pods).
MIN_INTERVAL_SECONDS = 1.0
# Most nodes in flight at once: 64 is a large pool drained together; more is a mistake.
MAX_IN_FLIGHT_LIMIT = 64
# Longest time any setting may be: a week (a longer cooldown or timeout is a typo for a shorter one).
MAX_SECONDS = 7 * 86400.0
# Leader election, client-go's defaults (leaderelection.LeaderElectionConfig docs): 15/10/2 s.
LEASE_DURATION_SECONDS = 15
RENEW_DEADLINE_SECONDS = 10
RETRY_PERIOD_SECONDS = 2


@dataclass(frozen=True, slots=True)
class Settings:
    mode: RunMode = RunMode.RECOMMEND
    allow_eviction: bool = False
    max_in_flight: int = MAX_IN_FLIGHT
    cooldown_seconds: float = COOLDOWN_SECONDS
    stable_seconds: float = STABLE_SECONDS
    drain_timeout_seconds: float = DRAIN_TIMEOUT_SECONDS
    dcm_timeout_seconds: float = DCM_TIMEOUT_SECONDS
    advertise_timeout_seconds: float = ADVERTISE_TIMEOUT_SECONDS
    backoff_seconds: float = BACKOFF_SECONDS
    configmap_settle_seconds: float = CONFIGMAP_SETTLE_SECONDS
    trust: Trust = Trust.DRIVER

    def __post_init__(self) -> None:
        # Messages name the command-line flag of each field.
        if not 1 <= self.max_in_flight <= MAX_IN_FLIGHT_LIMIT:
            raise ValueError(f"--max-in-flight={self.max_in_flight}: must be 1..{MAX_IN_FLIGHT_LIMIT}")
        for name in ("cooldown_seconds", "stable_seconds", "drain_timeout_seconds", "dcm_timeout_seconds",
                     "advertise_timeout_seconds", "backoff_seconds", "configmap_settle_seconds"):
            value = getattr(self, name)
            if not 0 <= value <= MAX_SECONDS:  # also refuses NaN
                raise ValueError(f"--{name.replace('_', '-')}={value}: must be 0..{MAX_SECONDS:.0f} seconds")
