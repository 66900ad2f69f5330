"""The webhook's certificates without cert-manager: decisions and X.509, pure but for key generation.

``plan`` decides from the current Secrets what ``aim-extender certs`` (``certs_command``) writes: a
self-signed CA (its own Secret, never mounted by the server) and a serving certificate for the
webhook Service (a ``kubernetes.io/tls`` Secret: ``tls.crt``, ``tls.key``, ``ca.crt``, cert-manager's
layout) when they are absent, unreadable, naming the wrong DNS names or expiring; nothing otherwise.
``patch_ops_for_ca_bundle`` makes the MutatingWebhookConfiguration's ``caBundle`` trust the CA.

Rotation: the serving certificate is renewed ``renew_days`` before it expires, signed by the
same CA, so the ``caBundle`` does not change and running servers pick the new files up when the
kubelet refreshes the mounted Secret. The CA itself is replaced only when it would expire before a
new serving certificate; the ``caBundle`` then carries the new and the old CA, so servers still on
the old certificate keep working until they reload.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from webhook.flags import CA_DAYS, CERT_DAYS, RENEW_DAYS
from webhook.patching import Draft

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
    draft = Draft(configuration)
    for index, hook in enumerate(configuration.get("webhooks") or []):
        client = hook.get("clientConfig") or {}
        raw = client.get("caBundle")
        try:
            trusted = _certificates(base64.b64decode(raw)) if isinstance(raw, str) and raw else []
        except ValueError:
            trusted = []
        if current_ca in trusted:
            continue
        draft.put(("webhooks", index, "clientConfig", "caBundle"), encoded)
    return draft.patch()
