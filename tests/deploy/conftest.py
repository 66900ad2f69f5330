"""Session fixtures for tests/deploy; the loading helpers live in deploy_support.py."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from tests.deploy.deploy_support import REPO, Doc, all_docs, cluster_objects


@pytest.fixture(scope="session")
def pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


@pytest.fixture(scope="session")
def docs() -> list[Doc]:
    return all_docs()


@pytest.fixture(scope="session")
def objects() -> list[Doc]:
    return cluster_objects()
