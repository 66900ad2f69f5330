"""``aim-extender certs`` decisions: create, keep, renew, replace the CA; the caBundle patch; the
server's certificate reload. (The command against a real API server: test_admission_controlplane.)"""

from __future__ import annotations

import base64
import datetime as dt
import os
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography import x509

from webhook.certs import make_ca, make_serving, patch_ops_for_ca_bundle, plan, service_names
from webhook.server import CertificateReloader, TLSFilesError

NOW = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)
NAMES = service_names("aim-gpu-webhook", "aim-gpu-sharing")


def as_api(data: dict[str, bytes] | None) -> dict[str, str] | None:
    """Secret data as the API returns it (base64 strings)."""
    return None if data is None else {k: base64.b64encode(v).decode() for k, v in data.items()}


def sans(pem: bytes) -> list[str]:
    cert = x509.load_pem_x509_certificate(pem)
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)


def test_first_run_makes_a_ca_and_a_serving_certificate_for_the_service() -> None:
    first = plan(None, None, NAMES, NOW)
    assert first.ca_data is not None and first.serving_data is not None
    assert sans(first.serving_data["tls.crt"]) == list(NAMES)
    assert "aim-gpu-webhook.aim-gpu-sharing.svc" in NAMES
    assert first.ca_bundle == first.ca_data["ca.crt"] == first.serving_data["ca.crt"]
    assert "ca.key" not in first.serving_data  # the server never holds the CA key
    cert = x509.load_pem_x509_certificate(first.serving_data["tls.crt"])
    assert cert.issuer == x509.load_pem_x509_certificate(first.ca_bundle).subject


def test_a_second_run_changes_nothing_until_renewal_is_due() -> None:
    first = plan(None, None, NAMES, NOW)
    again = plan(as_api(first.serving_data), as_api(first.ca_data), NAMES, NOW + dt.timedelta(days=300))
    assert again.serving_data is None and again.ca_data is None and again.reason is None
    assert again.ca_bundle == first.ca_bundle


def test_renewal_reissues_the_serving_certificate_under_the_same_ca() -> None:
    first = plan(None, None, NAMES, NOW)
    later = NOW + dt.timedelta(days=340)  # 25 days before the one-year certificate ends
    renewed = plan(as_api(first.serving_data), as_api(first.ca_data), NAMES, later)
    assert renewed.serving_data is not None and renewed.ca_data is None
    assert "expires" in (renewed.reason or "")
    assert renewed.ca_bundle == first.ca_bundle  # the webhook configuration need not change
    assert renewed.serving_data["tls.crt"] != first.serving_data["tls.crt"]  # type: ignore[index]


def test_an_expiring_ca_is_replaced_and_the_bundle_keeps_the_old_one_for_the_switch() -> None:
    old_ca = make_ca("old", NOW - dt.timedelta(days=3500), days=3650)  # ends in 150 days
    serving = make_serving(old_ca, NAMES, NOW - dt.timedelta(days=400))
    rotated = plan(as_api({"tls.crt": serving.cert_pem, "tls.key": serving.key_pem, "ca.crt": old_ca.cert_pem}),
                   as_api({"ca.crt": old_ca.cert_pem, "ca.key": old_ca.key_pem}), NAMES, NOW)
    assert rotated.ca_data is not None and rotated.ca_data["ca.crt"] != old_ca.cert_pem
    bundle = x509.load_pem_x509_certificates(rotated.ca_bundle)
    assert [c.subject for c in bundle] == [x509.load_pem_x509_certificate(rotated.ca_data["ca.crt"]).subject,
                                           old_ca.cert.subject]


@pytest.mark.parametrize("damage", ["tls.crt", "tls.key", "names"])
def test_an_unreadable_or_wrong_certificate_is_reissued(damage: str) -> None:
    first = plan(None, None, NAMES, NOW)
    serving = dict(first.serving_data or {})
    names = NAMES
    if damage == "names":
        names = (*NAMES, "webhook.example.com")
    else:
        serving[damage] = b"-----BEGIN GARBAGE-----\n"
    fixed = plan(as_api(serving), as_api(first.ca_data), names, NOW)
    assert fixed.serving_data is not None and fixed.ca_data is None
    assert fixed.reason


def test_ca_bundle_patch_only_where_the_ca_is_not_trusted_yet() -> None:
    first = plan(None, None, NAMES, NOW)
    encoded = base64.b64encode(first.ca_bundle).decode()
    configuration = {"webhooks": [{"name": "a", "clientConfig": {"caBundle": encoded}},
                                  {"name": "b", "clientConfig": {}},
                                  {"name": "c", "clientConfig": {"caBundle": "bm90IGEgY2VydA=="}}]}
    ops = patch_ops_for_ca_bundle(configuration, first.ca_bundle)
    assert ops == [{"op": "add", "path": "/webhooks/1/clientConfig/caBundle", "value": encoded},
                   {"op": "replace", "path": "/webhooks/2/clientConfig/caBundle", "value": encoded}]


def test_the_server_reloads_a_rotated_certificate_and_keeps_the_old_one_on_garbage(tmp_path: Path) -> None:
    first = plan(None, None, ("localhost",), NOW)
    assert first.serving_data is not None
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_bytes(first.serving_data["tls.crt"])
    key.write_bytes(first.serving_data["tls.key"])
    reloader = CertificateReloader(str(cert), str(key))
    assert reloader.check() is False  # unchanged files: nothing to do
    second = plan(None, None, ("localhost",), NOW)
    assert second.serving_data is not None
    cert.write_bytes(second.serving_data["tls.crt"])
    key.write_bytes(second.serving_data["tls.key"])
    assert reloader.check() is True
    cert.write_bytes(b"not a certificate")
    assert reloader.check() is False  # logged; the context keeps serving the last good pair
    assert isinstance(reloader.context, ssl.SSLContext)


def test_unusable_tls_files_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.crt").write_text("hello")
    with pytest.raises(TLSFilesError, match="not a PEM certificate"):
        CertificateReloader(str(tmp_path / "bad.crt"), str(tmp_path / "bad.crt"))
    with pytest.raises(TLSFilesError, match="file not found"):
        CertificateReloader(str(tmp_path / "missing.crt"), str(tmp_path / "missing.key"))


def _within(seconds: float, call: Callable[[], object]) -> object:
    """``call()`` on a thread; a failure (not a hung suite) when it blocks longer than ``seconds``."""
    pool = ThreadPoolExecutor(1)
    try:
        return pool.submit(call).result(timeout=seconds)
    except TimeoutError:
        pytest.fail(f"blocked for more than {seconds} s")
    finally:
        pool.shutdown(wait=False)


def test_a_fifo_or_device_as_certificate_is_refused_at_start_and_on_reload(tmp_path: Path) -> None:
    good = plan(None, None, ("localhost",), NOW)
    assert good.serving_data is not None
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_bytes(good.serving_data["tls.crt"])
    key.write_bytes(good.serving_data["tls.key"])
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(TLSFilesError, match=r"--webhook-cert-file .*fifo: not a regular file \(a FIFO\)"):
        _within(5, lambda: CertificateReloader(str(fifo), str(key)))
    with pytest.raises(TLSFilesError, match=r"--webhook-key-file /dev/zero: not a regular file"):
        _within(5, lambda: CertificateReloader(str(cert), "/dev/zero"))
    reloader = CertificateReloader(str(cert), str(key))
    cert.unlink()
    os.mkfifo(cert)  # the mounted Secret swapped for a FIFO: the reload must not block the event loop
    assert _within(5, reloader.check) is False  # logged; the last good pair keeps serving
