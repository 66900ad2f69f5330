"""Flags and defaults of the webhook and its certificates, kept free of heavy imports: the CLI builds
its parser from them before it binds a socket (``aim-extender serve``/``certs``)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

# The project's ROCm vLLM ClusterServingRuntime and its model format (manifests/kserve/).
DEFAULT_RUNTIME: Final = "aim-vllm-rocm"
DEFAULT_MODEL_FORMAT: Final = "vllm-rocm"

# Certificate validity: the CA for 10 years (replacing it touches the webhook configuration), the
# serving certificate for 1 year, renewed 30 days before it ends (cert-manager's default renewBefore
# is 1/3 of the duration; 30 days leaves a month of weekly CronJob runs to notice a failure).
CA_DAYS: Final = 3650
CERT_DAYS: Final = 365
RENEW_DAYS: Final = 30

ENV_PREFIX: Final = "AIM_EXTENDER_WEBHOOK_"
# The port of the webhook in manifests/webhook (its Service maps 443 to it); 0 = no webhook.
MANIFEST_PORT: Final = 8443
# A DNS-1123 subdomain (apimachinery IsDNS1123Subdomain): what scheduler and runtime names are.
MAX_NAME_LENGTH: Final = 253
_NAME: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*", re.ASCII)


class WebhookConfigError(ValueError):
    """A webhook flag is invalid; the message names it."""


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    port: int
    cert_file: str
    key_file: str
    host: str = "0.0.0.0"  # noqa: S104 - in a pod the Service, not the bind address, limits who connects
    scheduler_name: str | None = None
    runtime: str = DEFAULT_RUNTIME

    def to_log(self) -> dict[str, Any]:
        return {"port": self.port, "cert_file": self.cert_file, "key_file": self.key_file,
                "scheduler_name": self.scheduler_name, "runtime": self.runtime}


def add_serve_flags(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """The webhook's flags on ``aim-extender serve`` (each also from AIM_EXTENDER_WEBHOOK_*)."""
    group = parser.add_argument_group("admission webhook (docs/webhook.md)")
    group.add_argument("--webhook-port", default=environ.get(ENV_PREFIX + "PORT", "0"),
                       help=f"serve the mutating admission webhook over HTTPS on this port (0 = off; the manifests"
                            f" use {MANIFEST_PORT}; env {ENV_PREFIX}PORT)")
    group.add_argument("--webhook-cert-file", default=environ.get(ENV_PREFIX + "CERT_FILE"),
                       help=f"PEM certificate of the webhook (env {ENV_PREFIX}CERT_FILE)")
    group.add_argument("--webhook-key-file", default=environ.get(ENV_PREFIX + "KEY_FILE"),
                       help=f"PEM key of the webhook (env {ENV_PREFIX}KEY_FILE)")
    group.add_argument("--webhook-scheduler-name", default=environ.get(ENV_PREFIX + "SCHEDULER_NAME"),
                       help="set spec.schedulerName to this where the user named no scheduler (default: leave it;"
                            f" env {ENV_PREFIX}SCHEDULER_NAME)")
    group.add_argument("--webhook-runtime", default=environ.get(ENV_PREFIX + "RUNTIME", DEFAULT_RUNTIME),
                       help=f"ClusterServingRuntime for InferenceServices that name none (default {DEFAULT_RUNTIME};"
                            f" env {ENV_PREFIX}RUNTIME)")


def webhook_config(args: argparse.Namespace) -> WebhookConfig | None:
    """The webhook's config from parsed flags; None when it is off. WebhookConfigError when invalid."""
    raw = str(args.webhook_port).strip()
    if not raw.isascii() or not raw.isdigit() or len(raw) > 5 or int(raw) > 65535:
        raise WebhookConfigError(f"--webhook-port {raw!r} is not a TCP port (0..65535)")
    port = int(raw)
    if port == 0:
        if args.webhook_cert_file or args.webhook_key_file:
            raise WebhookConfigError("--webhook-cert-file/--webhook-key-file given without --webhook-port")
        return None
    if not args.webhook_cert_file or not args.webhook_key_file:
        raise WebhookConfigError("--webhook-port needs --webhook-cert-file and --webhook-key-file (HTTPS always:"
                                 " the API server calls webhooks over TLS only)")
    if port == getattr(args, "port", None):
        raise WebhookConfigError(f"--webhook-port {port} is the extender's --port; give the webhook its own")
    for flag, value in (("--webhook-scheduler-name", args.webhook_scheduler_name),
                        ("--webhook-runtime", args.webhook_runtime)):
        if value is not None and not (len(value) <= MAX_NAME_LENGTH and _NAME.fullmatch(value)):
            raise WebhookConfigError(f"{flag} {value!r} is not a Kubernetes object name")
    host = getattr(args, "host", None) or "0.0.0.0"  # noqa: S104 - same interface as the extender
    return WebhookConfig(port, args.webhook_cert_file, args.webhook_key_file, host,
                         args.webhook_scheduler_name, args.webhook_runtime)


