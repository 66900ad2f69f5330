"""``aim-extender certs``: the webhook's certificates without cert-manager (run as a Job).

Creates a self-signed CA and a serving certificate for the webhook Service into a
``kubernetes.io/tls`` Secret (``tls.crt``, ``tls.key``, ``ca.crt``: cert-manager's layout) when the
Secret is absent, unreadable or expiring, and makes the MutatingWebhookConfiguration's
``caBundle`` trust that CA. Idempotent: run it again and nothing changes until renewal is due.

Rotation: the serving certificate is renewed ``--renew-days`` before it expires, signed by the
same CA, so the ``caBundle`` does not change and running servers pick the new files up when the
kubelet refreshes the mounted Secret. The CA itself is replaced only when it would expire before a
new serving certificate; the ``caBundle`` then carries the new and the old CA, so servers still on
the old certificate keep working until they reload.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

logger = logging.getLogger("extender.admission.certs")

# Validity: the CA for 10 years (replacing it touches the webhook configuration), the serving
# certificate for 1 year, renewed 30 days before it ends (cert-manager's default renewBefore is 1/3
# of the duration; 30 days leaves a month of weekly CronJob runs to notice a failure).
CA_DAYS = 3650
CERT_DAYS = 365
RENEW_DAYS = 30
CLOCK_SKEW = dt.timedelta(minutes=5)  # notBefore in the past: nodes' clocks differ a little


@dataclass(frozen=True, slots=True)
class KeyPair:
    key_pem: bytes
    cert_pem: bytes

    @property
    def cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)


def service_names(service: str, namespace: str) -> tuple[str, ...]:
    """The DNS names the API server may use for ``service`` in ``namespace``."""
    return (service, f"{service}.{namespace}", f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.cluster.local")


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())  # fast to make and to use; Go's TLS accepts it


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_ca(common_name: str, now: dt.datetime, days: int = CA_DAYS) -> KeyPair:
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(_pem(key), cert.public_bytes(serialization.Encoding.PEM))


def make_serving(ca: KeyPair, names: Sequence[str], now: dt.datetime, days: int = CERT_DAYS) -> KeyPair:
    """A server certificate for ``names`` (DNS names or IP addresses) signed by ``ca``."""
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the CA key is not an EC key")
    key = _key()
    sans: list[x509.GeneralName] = []
    for name in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca.cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(min(now + dt.timedelta(days=days), ca.cert.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return KeyPair(_pem(key), cert.public_bytes(serialization.Encoding.PEM))


def renewal_reason(ca: KeyPair | None, serving: KeyPair | None, names: Sequence[str], now: dt.datetime,
                   renew_before: dt.timedelta) -> str | None:
    """Why the serving certificate must be (re)issued, or None when it is good."""
    if ca is None or serving is None:
        return "no certificate yet"
    try:
        cert, ca_cert = serving.cert, ca.cert
        serialization.load_pem_private_key(serving.key_pem, password=None)
    except ValueError as error:
        return f"the stored certificate or key cannot be read ({error})"
    if cert.not_valid_after_utc - renew_before <= now:
        return f"the certificate expires on {cert.not_valid_after_utc:%Y-%m-%d}"
    if cert.issuer != ca_cert.subject:
        return "the certificate was not issued by the stored CA"
    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        have = set(extension.value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        have = set()
    missing = [n for n in names if n not in have and not _is_ip(n)]
    if missing:
        return f"the certificate does not name {', '.join(missing)}"
    return None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def ca_usable(ca: KeyPair | None, now: dt.datetime, cert_days: int) -> bool:
    """The stored CA can sign a full-length serving certificate."""
    if ca is None:
        return False
    try:
        cert = ca.cert
        serialization.load_pem_private_key(ca.key_pem, password=None)
    except ValueError:
        return False
    return cert.not_valid_after_utc > now + dt.timedelta(days=cert_days)


def _decode(data: dict[str, str] | None, key: str) -> bytes | None:
    raw = (data or {}).get(key)
    if not raw:
        return None
    try:
        return base64.b64decode(raw, validate=True)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Plan:
    """What one run writes: each Secret's new data (None: unchanged) and the caBundle to trust."""

    ca_data: dict[str, bytes] | None  # the CA Secret: ca.crt, ca.key (never mounted by the server)
    serving_data: dict[str, bytes] | None  # the serving Secret: tls.crt, tls.key, ca.crt
    ca_bundle: bytes
    reason: str | None


def plan(serving_data: dict[str, str] | None, ca_data: dict[str, str] | None, names: Sequence[str],
         now: dt.datetime, *, cert_days: int = CERT_DAYS, ca_days: int = CA_DAYS, renew_days: int = RENEW_DAYS) -> Plan:
    """Decide from the Secrets' current data (base64 values, as the API returns them); the only
    effect is key generation."""
    ca_pem, ca_key = _decode(ca_data, "ca.crt"), _decode(ca_data, "ca.key")
    cert_pem, key_pem = _decode(serving_data, "tls.crt"), _decode(serving_data, "tls.key")
    ca = KeyPair(ca_key, ca_pem) if ca_pem and ca_key else None
    serving = KeyPair(key_pem, cert_pem) if cert_pem and key_pem else None
    reason = renewal_reason(ca, serving, names, now, dt.timedelta(days=renew_days))
    if ca is not None and reason is None and _decode(serving_data, "ca.crt") == ca.cert_pem:
        return Plan(None, None, ca.cert_pem, None)
    reason = reason or "the serving Secret's ca.crt is not the CA's"
    new_ca: dict[str, bytes] | None = None
    bundle_old = b""
    if ca is None or not ca_usable(ca, now, cert_days):
        if ca is not None:
            bundle_old = ca.cert_pem  # servers still on the old certificate keep working until they reload
            reason += "; the CA expires too soon"
        ca = make_ca(f"aim-gpu-sharing webhook CA {now:%Y-%m-%d}", now, ca_days)
        new_ca = {"ca.crt": ca.cert_pem, "ca.key": ca.key_pem}
    serving = make_serving(ca, names, now, cert_days)
    return Plan(new_ca, {"tls.crt": serving.cert_pem, "tls.key": serving.key_pem, "ca.crt": ca.cert_pem},
                ca.cert_pem + bundle_old, reason)


def _certificates(pem: bytes) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError:
        return []


def patch_ops_for_ca_bundle(configuration: dict[str, Any], bundle: bytes) -> list[dict[str, Any]]:
    """JSONPatch ops giving every webhook of the configuration ``bundle``; none for a webhook whose
    caBundle already trusts the bundle's first (current) CA."""
    current_ca = _certificates(bundle)[0]
    encoded = base64.b64encode(bundle).decode("ascii")
    ops = []
    for index, hook in enumerate(configuration.get("webhooks") or []):
        client = hook.get("clientConfig") or {}
        raw = client.get("caBundle")
        try:
            trusted = _certificates(base64.b64decode(raw)) if isinstance(raw, str) and raw else []
        except ValueError:
            trusted = []
        if current_ca in trusted:
            continue
        ops.append({"op": "add", "path": f"/webhooks/{index}/clientConfig/caBundle", "value": encoded})
    return ops


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``certs`` on the ``aim-extender`` command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "certs", help="create/renew the webhook's CA and serving certificate (Secret) and patch the webhook's caBundle")
    parser.add_argument("--namespace", required=True, help="namespace of the webhook Service and Secret")
    parser.add_argument("--service", required=True, help="the webhook Service name (the certificate names it)")
    parser.add_argument("--secret", required=True,
                        help="serving Secret to write (kubernetes.io/tls: tls.crt, tls.key, ca.crt)")
    parser.add_argument("--ca-secret", default=None,
                        help="Secret with the CA certificate and key (default: SECRET-ca; not mounted by the server)")
    parser.add_argument("--webhook", required=True, help="MutatingWebhookConfiguration whose caBundle to set")
    parser.add_argument("--extra-san", action="append", default=[], metavar="NAME",
                        help="another DNS name or IP address for the certificate (repeatable)")
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig (default: in-cluster, then ~/.kube/config)")
    parser.add_argument("--cert-days", type=int, default=CERT_DAYS,
                        help=f"serving certificate validity in days (default {CERT_DAYS})")
    parser.add_argument("--renew-days", type=int, default=RENEW_DAYS,
                        help=f"renew this many days before expiry (default {RENEW_DAYS})")
    return parser


def run(args: argparse.Namespace) -> int:
    """Make the Secret and the caBundle right; exit 0 when they are, 1 with one line when not."""
    from kubernetes import client, config as config_module
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException

    config: Any = config_module  # the kubernetes client's loaders are unannotated

    if not 1 <= args.renew_days < args.cert_days <= CA_DAYS:
        logger.error("need 1 <= --renew-days < --cert-days <= %d; got %d and %d",
                     CA_DAYS, args.renew_days, args.cert_days)
        return 2
    try:
        if args.kubeconfig:
            config.load_kube_config(args.kubeconfig)
        else:
            try:
                config.load_incluster_config()
            except ConfigException:
                config.load_kube_config()
    except (ConfigException, OSError) as error:
        logger.error("cannot configure the Kubernetes client: %s", error)
        return 1
    core, admission = client.CoreV1Api(), client.AdmissionregistrationV1Api()
    names = (*service_names(args.service, args.namespace), *args.extra_san)
    ca_secret = args.ca_secret or f"{args.secret}-ca"
    try:
        serving = _read_secret(core, args.namespace, args.secret)
        ca = _read_secret(core, args.namespace, ca_secret)
        decision = plan(None if serving is None else serving.data, None if ca is None else ca.data, names,
                        dt.datetime.now(dt.UTC), cert_days=args.cert_days, renew_days=args.renew_days)
        if decision.ca_data is not None:
            _write_secret(core, args.namespace, ca_secret, "Opaque", decision.ca_data, ca)
            logger.info("wrote a new CA into Secret %s/%s", args.namespace, ca_secret)
        if decision.serving_data is not None:
            _write_secret(core, args.namespace, args.secret, "kubernetes.io/tls", decision.serving_data, serving)
            logger.info("wrote Secret %s/%s: %s", args.namespace, args.secret, decision.reason)
        else:
            logger.info("Secret %s/%s holds a valid certificate; nothing to renew", args.namespace, args.secret)
        hook = admission.read_mutating_webhook_configuration(args.webhook)
        serializer: Any = client.ApiClient()
        ops = patch_ops_for_ca_bundle(serializer.sanitize_for_serialization(hook), decision.ca_bundle)
        if ops:
            admission.patch_mutating_webhook_configuration(args.webhook, ops)
            logger.info("set the caBundle of MutatingWebhookConfiguration %s (%d webhooks)", args.webhook, len(ops))
        else:
            logger.info("MutatingWebhookConfiguration %s already trusts the CA", args.webhook)
    except ApiException as error:
        logger.error("Kubernetes API call failed: HTTP %s %s; the Job will retry", error.status, error.reason)
        return 1
    return 0


def _read_secret(core: Any, namespace: str, name: str) -> Any:
    from kubernetes.client.exceptions import ApiException

    try:
        return core.read_namespaced_secret(name, namespace)
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def _write_secret(core: Any, namespace: str, name: str, kind: str, data: dict[str, bytes], existing: Any) -> None:
    from kubernetes import client

    body = client.V1Secret(
        metadata=client.V1ObjectMeta(name=name, namespace=namespace,
                                     labels={"app.kubernetes.io/part-of": "aim-gpu-sharing"}),
        type=kind, data={k: base64.b64encode(v).decode("ascii") for k, v in data.items()})
    if existing is None:
        core.create_namespaced_secret(namespace, body)
    else:  # replace with the version read: a concurrent writer makes this fail (409) instead of being lost
        body.metadata.resource_version = existing.metadata.resource_version  # type: ignore[union-attr]
        core.replace_namespaced_secret(name, namespace, body)
