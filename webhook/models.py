"""Which model an annotation names: the sizing catalogue (and, when wired, the models directory).

The webhook asks a ``ModelResolver`` for a model id; it answers with the architecture (a
pre-quantized checkpoint carries its declared format in ``ModelArch.quantization``) or raises
``sizing.UnknownModelError``.
"""

from __future__ import annotations

from collections.abc import Callable

import sizing
from sizing import ModelArch

ModelResolver = Callable[[str], ModelArch]


def catalogue_model(model_id: str) -> ModelArch:
    return sizing.CATALOGUE.get_model(model_id)


def first_of(*resolvers: ModelResolver) -> ModelResolver:
    """Ask each resolver in turn; the last ``UnknownModelError`` (with its suggestions) wins."""

    def resolve(model_id: str) -> ModelArch:
        error: sizing.UnknownModelError | None = None
        for resolver in resolvers:
            try:
                return resolver(model_id)
            except sizing.UnknownModelError as unknown:
                error = unknown
        assert error is not None
        raise error

    return resolve
