"""Names the controller reads and writes on Kubernetes objects: the opt-in label, AMD's DCM labels
and taint, and the ``aim.amd.com/repartition-*`` annotations that hold a node's state.

DCM facts (ROCm/device-config-manager pkg/config_manager/globals/constants.go; ROCm/gpu-operator
docs/dcm/applying-partition-profiles.rst): the profile label selects a profile of the DCM
ConfigMap, DCM answers on the state label with ``success`` or ``failure`` only, and the caller
drains the node first with the taint ``amd-dcm=up:NoExecute``.
"""

from __future__ import annotations

from typing import Final

from partitioner.dcm import PROFILE_LABEL, PROFILE_STATE_LABEL

# Opt-in: the controller touches only nodes labelled aim.amd.com/repartition=allowed.
OPT_IN_LABEL: Final = "aim.amd.com/repartition"
OPT_IN_VALUE: Final = "allowed"

DCM_PROFILE_LABEL: Final = PROFILE_LABEL
DCM_STATE_LABEL: Final = PROFILE_STATE_LABEL
DCM_SUCCESS: Final = "success"
DCM_FAILURE: Final = "failure"
DCM_TAINT_KEY: Final = "amd-dcm"
DCM_TAINT_VALUE: Final = "up"
DCM_TAINT_EFFECT: Final = "NoExecute"

# The node's repartition state (all values short text, times RFC 3339 UTC to the second).
_PREFIX: Final = "aim.amd.com/repartition-"
STATE: Final = _PREFIX + "state"  # phase while a repartition runs; absent when idle
TARGET_PROFILE: Final = _PREFIX + "profile"  # DCM profile name being applied
TARGET_MODE: Final = _PREFIX + "target"  # e.g. SPX/NPS1
FROM_MODE: Final = _PREFIX + "from"  # the mode before, e.g. CPX/NPS4 (for messages)
EXPECTED_PARTITIONS: Final = _PREFIX + "partitions"  # partitions the device plugin must advertise after
STARTED: Final = _PREFIX + "started"  # when this repartition began
SINCE: Final = _PREFIX + "since"  # when the current phase began (timeouts count from here)
WAS_CORDONED: Final = _PREFIX + "was-cordoned"  # "true": someone else had cordoned it; leave it so
LAST_CHANGE: Final = _PREFIX + "last-change"  # when the last repartition succeeded (cooldown counts from here)
BACKOFF_UNTIL: Final = _PREFIX + "backoff-until"  # after a failure: no new attempt before this
CONDITION: Final = _PREFIX + "condition"  # JSON, like a status condition: type, status, reason, message, time

STATE_KEYS: Final = (STATE, TARGET_PROFILE, TARGET_MODE, FROM_MODE, EXPECTED_PARTITIONS, STARTED, SINCE,
                     WAS_CORDONED)

# The ConfigMap annotation telling when the controller last changed the DCM profiles.
CONFIGMAP_UPDATED: Final = "aim.amd.com/profiles-updated"

EVENT_COMPONENT: Final = "aim-partitioner-controller"
