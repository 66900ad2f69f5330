"""Which model an annotation names: the sizing catalogue (and, when wired, the models directory).

The webhook asks a ``ModelResolver`` for a model id; it answers with the architecture and what the
checkpoint declares about its own quantization, or raises ``sizing.UnknownModelError``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sizing
from sizing import ModelArch, Precision


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    arch: ModelArch
    declared_precision: Precision | None = None  # the checkpoint's own quantization, when it declares one
    declared_method: str | None = None  # its quantization method (vLLM reads it from config.json)


ModelResolver = Callable[[str], ResolvedModel]


def catalogue_model(model_id: str) -> ResolvedModel:
    """A catalogue model (16-bit checkpoints: nothing declared)."""
    return ResolvedModel(sizing.CATALOGUE.get_model(model_id))


def first_of(*resolvers: ModelResolver) -> ModelResolver:
    """Ask each resolver in turn; the last ``UnknownModelError`` (with its suggestions) wins."""

    def resolve(model_id: str) -> ResolvedModel:
        error: sizing.UnknownModelError | None = None
        for resolver in resolvers:
            try:
                return resolver(model_id)
            except sizing.UnknownModelError as unknown:
                error = unknown
        assert error is not None
        raise error

    return resolve
