"""Fixtures for the webhook tests (helpers live in support.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.admission.support import RunningWebhook, demo_inventory, serve_webhook


@pytest.fixture(scope="module")
def webhook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWebhook]:
    """The webhook over HTTPS with the demo cluster's partitions (24 GiB x 64, 48 GiB x 32 nodes)."""
    with serve_webhook(tmp_path_factory.mktemp("webhook-tls"), demo_inventory()) as running:
        yield running
