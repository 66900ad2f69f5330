"""The webhook beside the extender in one process: flags, its own socket, waiting for its
certificate files, its metrics in the registry it was given, and stopping with the extender's server."""

from __future__ import annotations

import argparse
import json
import signal
import ssl
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
import yaml
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

import sizing
from tests.admission.support import FIXTURES, demo_inventory, free_socket, write_tls
from tests.controlplane.harness import extender_command
from webhook.flags import WebhookConfig, WebhookConfigError, add_serve_flags, webhook_config
from webhook.serving import ServerWithWebhook, Webhook, bind


def parse(argv: list[str], environ: dict[str, str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--host", default="127.0.0.1")
    add_serve_flags(parser, environ or {})
    return parser.parse_args(argv)


def test_the_webhook_is_off_by_default_and_on_with_port_and_certificate() -> None:
    assert webhook_config(parse([])) is None
    config = webhook_config(parse(["--webhook-port=8443", "--webhook-cert-file=c", "--webhook-key-file=k",
                                   "--webhook-scheduler-name=aim-gpu-scheduler"]))
    assert config == WebhookConfig(8443, "c", "k", "127.0.0.1", "aim-gpu-scheduler", "aim-vllm-rocm")
    from_env = webhook_config(parse([], {"AIM_EXTENDER_WEBHOOK_PORT": "9443", "AIM_EXTENDER_WEBHOOK_CERT_FILE": "c",
                                         "AIM_EXTENDER_WEBHOOK_KEY_FILE": "k"}))
    assert from_env is not None and from_env.port == 9443


@pytest.mark.parametrize("argv, problem", [
    (["--webhook-port=8443"], "needs --webhook-cert-file"),
    (["--webhook-port=99999", "--webhook-cert-file=c", "--webhook-key-file=k"], "not a TCP port"),
    (["--webhook-port=８４４３", "--webhook-cert-file=c", "--webhook-key-file=k"], "not a TCP port"),
    (["--webhook-port=8080", "--webhook-cert-file=c", "--webhook-key-file=k"], "the extender's --port"),
    (["--webhook-cert-file=c"], "without --webhook-port"),
    (["--webhook-port=8443", "--webhook-cert-file=c", "--webhook-key-file=k", "--webhook-runtime=Bad_Name"],
     "not a Kubernetes object name"),
])
def test_bad_webhook_flags_are_one_line_errors_naming_the_flag(argv: list[str], problem: str) -> None:
    with pytest.raises(WebhookConfigError, match=problem):
        webhook_config(parse(argv))


def test_a_webhook_port_in_use_fails_before_anything_starts() -> None:
    taken = free_socket()
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        with pytest.raises(OSError):
            bind(WebhookConfig(port, "c", "k", "127.0.0.1"))
    finally:
        taken.close()


def test_the_webhook_serves_once_its_certificate_appears_and_stops_with_the_extender(tmp_path: Path) -> None:
    main_sock, webhook_sock = free_socket(), free_socket()
    port = webhook_sock.getsockname()[1]
    webhook_sock.close()
    cert_dir = tmp_path / "not-yet"
    config = WebhookConfig(port, str(cert_dir / "tls.crt"), str(cert_dir / "tls.key"), "127.0.0.1")
    registry = CollectorRegistry()
    webhook = Webhook(config, bind(config), demo_inventory(), sizing.CATALOGUE.get_model, registry,
                      cert_wait_seconds=0.05)
    extender_app = FastAPI()

    @extender_app.get("/healthz")
    async def healthz() -> str:
        return "ok"

    server = ServerWithWebhook(uvicorn.Config(extender_app, log_config=None, access_log=False), webhook)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [main_sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "the extender's server did not start"
            time.sleep(0.01)
        main = f"http://127.0.0.1:{main_sock.getsockname()[1]}/healthz"
        assert httpx.get(main, timeout=5).text == '"ok"'  # the extender serves without the webhook's certificate
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"https://localhost:{port}/healthz", verify=False, timeout=0.5)
        cert_dir.mkdir()
        tls = write_tls(cert_dir)
        context = ssl.create_default_context(cafile=str(tls.ca))
        deadline = time.monotonic() + 10
        while True:
            try:
                reply = httpx.get(f"https://localhost:{port}/healthz", verify=context, timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the webhook did not start serving after its certificate appeared"
                time.sleep(0.05)
        assert reply.status_code == 200
        pod = json.loads((FIXTURES / "review-pod-catalogue-model.json").read_text())
        assert httpx.post(f"https://localhost:{port}/mutate", json=pod, verify=context, timeout=5).status_code == 200
        garbage = httpx.post(f"https://localhost:{port}/mutate", content=b"{", verify=context, timeout=5)
        assert garbage.status_code == 400
        assert registry.get_sample_value("aim_webhook_reviews_total", {"result": "patched"}) == 1
        assert registry.get_sample_value("aim_webhook_reviews_total", {"result": "bad_request"}) == 1
        assert registry.get_sample_value("aim_webhook_review_duration_seconds_count") == 2
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        main_sock.close()
    assert not thread.is_alive()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"https://localhost:{port}/healthz", verify=False, timeout=0.5)


def test_the_serve_process_with_the_webhook_refuses_a_taken_port_and_exits_0_on_sigterm(tmp_path: Path) -> None:
    """`aim-extender serve --webhook-port ...` as a process: one line and exit 1 when the webhook's
    port is taken; otherwise both ports serve, and SIGTERM ends it with status 0."""
    tls = write_tls(tmp_path)
    kubeconfig = tmp_path / "kubeconfig"  # an API server that is not there: the node watch retries
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    taken, free = free_socket(), free_socket()
    taken.listen(1)
    main_port, webhook_port = free.getsockname()[1], taken.getsockname()[1]
    free.close()
    argv = [*extender_command(), "serve", "--host=127.0.0.1", f"--port={main_port}", f"--kubeconfig={kubeconfig}",
            f"--webhook-cert-file={tls.cert}", f"--webhook-key-file={tls.key}"]
    refused = subprocess.run([*argv, f"--webhook-port={webhook_port}"], capture_output=True, text=True, timeout=60,
                             check=False)
    taken.close()
    assert refused.returncode == 1
    (line,) = [entry for entry in refused.stderr.splitlines() if "ERROR" in entry]
    assert f"cannot listen on 127.0.0.1:{webhook_port} for the admission webhook" in line
    process = subprocess.Popen([*argv, f"--webhook-port={webhook_port}"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        context = ssl.create_default_context(cafile=str(tls.ca))
        deadline = time.monotonic() + 30
        while True:
            try:
                assert httpx.get(f"https://localhost:{webhook_port}/healthz", verify=context, timeout=1).text == "ok"
                assert httpx.get(f"http://127.0.0.1:{main_port}/healthz", timeout=1).status_code == 200
                break
            except httpx.HTTPError:
                assert process.poll() is None and time.monotonic() < deadline, "serve did not come up"
                time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
