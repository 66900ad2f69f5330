"""aim-extender / python -m extender: flags, exit codes, plan output, serve over HTTP and HTTPS."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from extender.cli import main
from tests.extender.hostile_files import fifo, release, run_within
from tests.extender.support import post_declaring

PYTHON = sys.executable


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "extender", *args], capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--bogus"],
        ["serve", "--port", "http"],
        ["serve", "--port", "70000"],
        ["serve", "--port", "١٢"],
        ["serve", "--policy", "worst-fit"],
        ["serve", "--node-cache", "sometimes"],
        ["serve", "--stale-after", "soon"],
        ["serve", "--max-body-bytes", "2_0"],
        ["plan", "--format", "xml"],
        [],
    ],
    ids=[
        "unknown flag",
        "port not a number",
        "port out of range",
        "port in Arabic-Indic digits",
        "unknown policy",
        "unknown cache mode",
        "stale-after not a number",
        "max-body-bytes not a quantity",
        "unknown format",
        "no command",
    ],
)
def test_bad_flags_exit_2_with_usage(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv, environ={})
    assert caught.value.code == 2
    assert "usage: aim-extender" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["serve", "--tls-cert-file", "/etc/hostname"], "--tls-cert-file and --tls-key-file must be given together"),
        (["serve", "--stale-after", "0"], "--stale-after 0: must be more than 0"),
        (["serve", "--kubeconfig", "/nonexistent"], "--kubeconfig /nonexistent: file not found"),
        (["serve", "--max-body-bytes", "100"], "--max-body-bytes 100: must be 1024 to 1073741824 bytes"),
        (["serve", "--max-body-bytes", "2Gi"], "--max-body-bytes 2147483648: must be 1024 to 1073741824 bytes"),
    ],
    ids=["cert without key", "stale-after zero", "missing kubeconfig", "body limit too small", "body limit too large"],
)
def test_bad_values_exit_2_with_one_line(argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv, environ={}) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0]


def test_bad_environment_value_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["serve"], environ={"AIM_EXTENDER_NODE_CACHE": "maybe"})
    assert caught.value.code == 2
    assert "AIM_EXTENDER_NODE_CACHE='maybe'" in capsys.readouterr().err


def run_in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args), environ={})
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_plan_of_the_demo_prints_both_policies_and_the_comparison(capsys: pytest.CaptureFixture[str]) -> None:
    first, second = run_in_process(capsys, "plan"), run_in_process(capsys, "plan")
    assert first[0] == 0, first[2]
    assert first[1] == second[1]
    assert "Policy best-fit" in first[1] and "Policy spread" in first[1]
    assert "workloads placed" in first[1] and "whole GPUs left free" in first[1]


def test_plan_json_has_totals_per_policy() -> None:
    result = run("plan", "--policy", "best-fit", "--format", "json")  # python -m extender, as a user runs it
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    [only] = document["results"]
    assert only["policy"] == "best-fit"
    assert only["totals"]["placed"] == len(only["placements"]) > 0


def test_plan_with_an_invalid_file_exits_2_with_one_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "cluster.yaml"
    bad.write_text("nodes: [{name: a, gpus: [{product: MI300X, compute_mode: XPX}]}]\n")
    code, out, err = run_in_process(capsys, "plan", "--cluster", str(bad))
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "nodes[0].gpus[0]" in lines[0] and "XPX" in lines[0]


def test_plan_with_a_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_in_process(capsys, "plan", "--workloads", str(tmp_path / "absent.yaml"))
    assert code == 2 and "cannot read" in err


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_serving(port: int, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PYTHON, "-m", "extender", "serve", "--host", "127.0.0.1", "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@contextmanager
def serving(*args: str) -> Iterator[int]:
    port = free_port()
    process = start_serving(port, *args)
    try:
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def wait_for(url: str, **client_options: object) -> httpx.Response:
    deadline = time.monotonic() + 20
    while True:
        try:
            return httpx.get(url, timeout=2, **client_options)  # type: ignore[arg-type]
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a test certificate")
def test_serve_with_tls_files_speaks_https(tmp_path: Path) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    with serving("--tls-cert-file", str(cert), "--tls-key-file", str(key)) as port:
        reply = wait_for(f"https://127.0.0.1:{port}/healthz", verify=False)
        assert reply.status_code == 200 and reply.url.scheme == "https"


def test_tls_files_that_are_not_pem_give_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_text("not a certificate\n")
    key.write_text("not a key\n")
    code, _, err = run_in_process(capsys, "serve", "--tls-cert-file", str(cert), "--tls-key-file", str(key))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "not a PEM certificate and matching private key" in lines[0], err
    assert "Traceback" not in err


def test_a_port_in_use_gives_one_line_before_any_startup_claim() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = start_serving(port)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 1
    lines = output.strip().splitlines()
    assert len(lines) == 1 and f"cannot listen on 127.0.0.1:{port}" in lines[0], output
    assert "startup complete" not in output and "Traceback" not in output


def test_serve_answers_health_checks_and_on_sigterm_the_request_in_flight_then_exits_0(
    nodes_request: dict[str, object],
) -> None:
    port = free_port()
    process = start_serving(port)
    try:
        assert wait_for(f"http://127.0.0.1:{port}/healthz").text == "ok"
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
        body = json.dumps(nodes_request).encode()
        head = (
            f"POST /filter HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(head + body[:100])  # the request is in flight: headers read, body under way
            time.sleep(0.3)
            process.terminate()
            time.sleep(0.3)
            conn.sendall(body[100:])
            reply = b""
            while chunk := conn.recv(65536):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
        assert b'"FailedNodes"' in reply
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_fifo_or_dev_zero_as_a_tls_file_or_kubeconfig_exits_2_promptly(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """ssl and the kubernetes client open these files themselves: a FIFO would block them for good and
    /dev/zero never ends, so they are refused before serve starts."""
    pipe = fifo(tmp_path)
    try:
        for path, kind in ((pipe, "a FIFO"), ("/dev/zero", "a device or socket")):
            for argv in (["--kubeconfig", path], ["--tls-cert-file", path, "--tls-key-file", path]):
                code = run_within(5, lambda argv=argv: main(["serve", *argv], environ={}))
                lines = capsys.readouterr().err.strip().splitlines()
                assert code == 2 and len(lines) == 1, lines
                assert f"{argv[0]} {path}: not a regular file ({kind})" in lines[0]
    finally:
        release(pipe)


def test_serve_refuses_a_body_over_max_body_bytes_with_413() -> None:
    with serving("--max-body-bytes", "1Mi") as port:
        url = f"http://127.0.0.1:{port}"
        assert wait_for(f"{url}/healthz").status_code == 200
        refused = post_declaring(url, "/filter", (1 << 20) + 1)
        assert refused.status == 413
        assert "over the limit of 1048576 bytes" in json.loads(refused.body)["Error"]
