"""Partition layout advisor: which mode each node's GPUs should be in for the models you serve.

Public API (docs/partitioner.md): ``advise(nodes, workloads, options) -> Advice`` with the frozen
dataclasses ``AdvisorNode``, ``Mode``, ``AdvisorOptions``, ``Trust``, ``Advice``, ``NodeAdvice``,
``Totals``, ``Unplaceable``; ``AdvisorInputError``; the DCM helpers in ``partitioner.dcm``.
Imports ``sizing`` and ``extender``, never ``deviceplugin``.
"""

from partitioner.advisor import (
    Advice,
    AdvisorNode,
    AdvisorOptions,
    NodeAdvice,
    Totals,
    Unplaceable,
    advise,
)
from partitioner.errors import AdvisorInputError
from partitioner.modes import Mode, Trust

__all__ = [
    "Advice",
    "AdvisorInputError",
    "AdvisorNode",
    "AdvisorOptions",
    "Mode",
    "NodeAdvice",
    "Totals",
    "Trust",
    "Unplaceable",
    "advise",
]
