"""``aim-partitioner controller`` refuses bad flags with one line naming the flag (exit 2) before
it connects to anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from partitioner.cli import main
from tests.extender.hostile_files import fifo, release, run_within


@pytest.mark.parametrize(("argv", "named"), [
    (["--max-in-flight=0"], "--max-in-flight=0"),
    (["--cooldown-seconds=-1"], "--cooldown-seconds=-1"),
    (["--dcm-timeout-seconds=nan"], "--dcm-timeout-seconds=nan"),
    (["--stable-seconds=1e9"], "--stable-seconds"),
    (["--metrics-port=70000"], "--metrics-port=70000"),
    (["--resync-seconds=0"], "--resync-seconds"),
    (["--lease-duration-seconds=2"], "--lease-duration-seconds"),
    (["--retry-period-seconds=0"], "--retry-period-seconds"),
    (["--once", "--mode=apply"], "--once only plans"),
    (["--kubeconfig=/nonexistent/kubeconfig"], "cannot load the Kubernetes configuration"),
])
def test_bad_flags_exit_2_naming_the_flag(argv: list[str], named: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["controller", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and named in err and "Traceback" not in err, err


def test_unknown_mode_is_argparses_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["controller", "--mode=yolo"])
    assert exited.value.code == 2 and "invalid choice: 'yolo'" in capsys.readouterr().err


def test_a_fifo_or_dev_zero_as_kubeconfig_exits_2_promptly(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """A FIFO would block the kubernetes client's open() for good and /dev/zero read until MemoryError."""
    pipe = fifo(tmp_path)
    try:
        for path, kind in ((pipe, "a FIFO"), ("/dev/zero", "a device or socket"), (str(tmp_path), "a directory")):
            assert run_within(5, lambda path=path: main(["controller", f"--kubeconfig={path}"])) == 2
            err = capsys.readouterr().err.strip()
            assert len(err.splitlines()) == 1 and "Traceback" not in err, err
            assert f"--kubeconfig {path}: not a regular file ({kind})" in err, err
    finally:
        release(pipe)
