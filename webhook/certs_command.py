"""``aim-extender certs``: the flags and the Kubernetes side of the webhook's certificates.

The decisions (what to create, keep or renew) are ``certs.plan``; this module reads the two Secrets
and the MutatingWebhookConfiguration, writes what the plan says, and exits 0, or 1 with one line
when an API call fails (the Job then retries). The certificate code (``cryptography``) and the
kubernetes client are imported only when the command runs, so the CLI starts fast.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import logging
from typing import Any

from webhook.flags import CA_DAYS, CERT_DAYS, RENEW_DAYS

logger = logging.getLogger("webhook.certs")



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
    parser.add_argument("--webhook", required=True, action="append", metavar="NAME",
                        help="MutatingWebhookConfiguration whose caBundle to set (repeatable: the Pod webhook's and"
                             " DRA mode's)")
    parser.add_argument("--extra-san", action="append", default=[], metavar="NAME",
                        help="another DNS name or IP address for the certificate (repeatable)")
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig (default: in-cluster, then ~/.kube/config)")
    parser.add_argument("--cert-days", type=int, default=CERT_DAYS,
                        help=f"serving certificate validity in days (default {CERT_DAYS})")
    parser.add_argument("--renew-days", type=int, default=RENEW_DAYS,
                        help=f"renew this many days before expiry (default {RENEW_DAYS})")
    return parser


def run(args: argparse.Namespace) -> int:
    """Make the Secrets and the caBundle right; exit 0 when they are, 1 with one line when not."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    from kube.client import KubeConfigError, load_api_client
    from webhook.certs import patch_ops_for_ca_bundle, plan, service_names

    if not 1 <= args.renew_days < args.cert_days <= CA_DAYS:
        logger.error("need 1 <= --renew-days < --cert-days <= %d; got %d and %d",
                     CA_DAYS, args.renew_days, args.cert_days)
        return 2
    try:
        load_api_client(args.kubeconfig)  # the process default, which the API objects below use
    except KubeConfigError as error:
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
        serializer: Any = client.ApiClient()
        for name in args.webhook:
            hook = admission.read_mutating_webhook_configuration(name)
            ops = patch_ops_for_ca_bundle(serializer.sanitize_for_serialization(hook), decision.ca_bundle)
            if ops:
                admission.patch_mutating_webhook_configuration(name, ops)
                logger.info("set the caBundle of MutatingWebhookConfiguration %s (%d webhooks)", name, len(ops))
            else:
                logger.info("MutatingWebhookConfiguration %s already trusts the CA", name)
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
