"""Errors the partition advisor raises on purpose."""

from __future__ import annotations


class AdvisorInputError(ValueError):
    """A node, mode or input file is invalid; the message names the field and the valid choices."""
