"""Fixtures for the webhook tests (helpers live in support.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.admission.support import RunningWebhook, demo_inventory, models_directory_catalogue, serve_webhook
from webhook.mutation import Options


@pytest.fixture(scope="module")
def webhook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWebhook]:
    """The webhook over HTTPS with the demo cluster's partitions (24 GiB x 64, 48 GiB x 32 nodes),
    sizing from the catalogue plus a models directory (support.models_directory_catalogue)."""
    options = Options(resolve_model=models_directory_catalogue().get_model)
    with serve_webhook(tmp_path_factory.mktemp("webhook-tls"), demo_inventory(), options) as running:
        yield running
