"""Errors raised by the extender package (tree in ``extender/__init__.py``)."""

from __future__ import annotations


class ExtenderError(Exception):
    """Base of every error the extender raises on purpose."""


class ConfigError(ExtenderError):
    """A flag, environment variable or config value is invalid; the message names it."""
