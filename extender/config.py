"""ExtenderConfig: the one typed configuration of ``aim-extender serve``, built in ``cli``."""

from __future__ import annotations

import json
import ssl
from dataclasses import asdict, dataclass
from enum import Enum

from decision.verdict import Policy
from extender.cache import DEFAULT_STALE_AFTER_SECONDS
from extender.errors import ConfigError
from extender.wire import default_max_body_bytes
from kube.regular_file import file_problem

CONFIG_VERSION = "v1"

# Listen on every interface: in a pod the Service, not the bind address, limits who connects.
DEFAULT_HOST = "0.0.0.0"  # noqa: S104
# The port of the registration example in extender-anchors.md section 2 (urlPrefix ...:8080).
DEFAULT_PORT = 8080
# Bounds of --max-body-bytes: a kube-scheduler call is never under 1 KiB of Pod, and 1 GiB is ten
# times the largest legitimate Nodes body (extender.wire.MAX_BODY_BYTES_NODES).
MIN_BODY_BYTES = 1 << 10
MAX_BODY_BYTES = 1 << 30


class NodeCacheMode(str, Enum):
    OFF = "off"  # nodeCacheCapable: false - kube-scheduler sends full Node objects
    WATCH = "watch"  # nodeCacheCapable: true - names only; nodes and pods watched from the API server

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ExtenderConfig:
    version: str = CONFIG_VERSION
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    node_cache: NodeCacheMode = NodeCacheMode.OFF
    policy: Policy = Policy.BEST_FIT
    kubeconfig: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    log_level: str = "info"
    log_format: str = "text"
    stale_after_seconds: float = DEFAULT_STALE_AFTER_SECONDS
    models_dir: str | None = None  # a models directory (ConfigMap mount) adding catalogue entries
    max_body_bytes: int | None = None  # None: the default for the node cache mode (body_limit)

    def validate(self) -> None:
        if self.version != CONFIG_VERSION:
            raise ConfigError(f"config version {self.version!r} is not {CONFIG_VERSION!r}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port {self.port} is not a TCP port (0..65535)")
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ConfigError("--tls-cert-file and --tls-key-file must be given together")
        for flag, path in (("--tls-cert-file", self.tls_cert_file), ("--tls-key-file", self.tls_key_file),
                           ("--kubeconfig", self.kubeconfig)):
            problem = file_problem(path) if path else None  # a FIFO would block ssl or the client for good
            if problem:
                raise ConfigError(f"{flag} {path}: {problem}")
        if not 0 < self.stale_after_seconds <= 86400:
            raise ConfigError(f"--stale-after {self.stale_after_seconds:g}: must be more than 0 and at most 86400 s")
        if self.max_body_bytes is not None and not MIN_BODY_BYTES <= self.max_body_bytes <= MAX_BODY_BYTES:
            raise ConfigError(f"--max-body-bytes {self.max_body_bytes}: must be {MIN_BODY_BYTES} to {MAX_BODY_BYTES}"
                              " bytes (1Ki to 1Gi)")
        if self.tls_cert_file and self.tls_key_file:
            check_tls_files(self.tls_cert_file, self.tls_key_file)

    @property
    def body_limit(self) -> int:
        """Largest request body read: --max-body-bytes, else the default for the node cache mode."""
        if self.max_body_bytes is not None:
            return self.max_body_bytes
        return default_max_body_bytes(node_cache_capable=self.node_cache is NodeCacheMode.WATCH)

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert_file)

    def to_json(self) -> str:
        return json.dumps({k: str(v) if isinstance(v, Enum) else v for k, v in asdict(self).items()}, sort_keys=True)


def _no_password() -> str:
    """An encrypted key is refused (uvicorn is given no password), instead of OpenSSL prompting."""
    return ""


def check_tls_files(cert_file: str, key_file: str) -> None:
    """Load the certificate and key as uvicorn will; ConfigError with a one-line reason otherwise."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert_file, key_file, password=_no_password)
    except ssl.SSLError as error:
        reason = error.reason or error.strerror or str(error)
        raise ConfigError(f"--tls-cert-file {cert_file} / --tls-key-file {key_file}: not a PEM certificate and"
                          f" matching private key ({reason})") from None
    except OSError as error:
        problem = error.strerror or error
        raise ConfigError(f"--tls-cert-file {cert_file} / --tls-key-file {key_file}: {problem}") from None
