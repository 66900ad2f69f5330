"""Errors raised by the sizing library. Every message is one readable line."""

from __future__ import annotations


class SizingError(ValueError):
    """Bad input to the sizing library (unknown precision, malformed config, ...)."""


class UnknownModelError(SizingError):
    """A model id that is not in the catalogue; carries the closest catalogue ids."""

    def __init__(self, model_id: str, suggestions: tuple[str, ...]) -> None:
        self.model_id = model_id
        self.suggestions = suggestions
        hint = f"; closest: {', '.join(suggestions)}" if suggestions else ""
        super().__init__(f"unknown model {model_id!r}: not in the sizing catalogue{hint}")


class DataFileError(SizingError):
    """A packaged data file (models.json, gpus.json) failed validation at import."""
