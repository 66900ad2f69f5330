"""Fixtures for the extender tests (helpers live in extender_support.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.extender.support import load_fixture


@pytest.fixture
def nodes_request() -> dict[str, Any]:
    """filter-request-nodes.json: full Nodes, NodeNames null (nodeCacheCapable: false)."""
    return load_fixture("filter-request-nodes.json")


@pytest.fixture
def prioritize_request() -> dict[str, Any]:
    return load_fixture("prioritize-request-nodes.json")


@pytest.fixture
def names_request() -> dict[str, Any]:
    """filter-request-nodenames.json: NodeNames only, Nodes null (nodeCacheCapable: true)."""
    return load_fixture("filter-request-nodenames.json")


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client
