"""Regenerate the committed protobuf/gRPC stubs from ``api.proto``.

Usage: ``python -m deviceplugin.proto.regenerate [OUTPUT_ROOT]``.

Without an argument the stubs are written next to ``api.proto`` (the committed copies). With an
argument they are written under ``OUTPUT_ROOT/deviceplugin/proto/`` so a test can compare a fresh
generation with the committed files. Needs ``grpcio-tools`` (a test/dev dependency only).
"""

from __future__ import annotations

import sys
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent
# The include root is the directory holding the ``deviceplugin`` package, so the generated
# ``api_pb2_grpc.py`` imports ``deviceplugin.proto.api_pb2`` (an absolute, installable import).
INCLUDE_ROOT = PROTO_DIR.parent.parent
PROTO_FILE = PROTO_DIR / "api.proto"
GENERATED_FILES = ("api_pb2.py", "api_pb2.pyi", "api_pb2_grpc.py")


def regenerate(output_root: Path = INCLUDE_ROOT) -> tuple[Path, ...]:
    """Run protoc (from grpcio-tools) and return the paths of the generated files."""
    from grpc_tools import protoc  # imported lazily: grpcio-tools is not a runtime dependency

    relative_proto = PROTO_FILE.relative_to(INCLUDE_ROOT)
    output_root.mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"-I{INCLUDE_ROOT}",
        f"--python_out={output_root}",
        f"--pyi_out={output_root}",
        f"--grpc_python_out={output_root}",
        str(relative_proto),
    ]
    status = protoc.main(args)
    if status != 0:
        raise RuntimeError(f"protoc failed with exit status {status}: {' '.join(args)}")
    out_dir = output_root / relative_proto.parent
    return tuple(out_dir / name for name in GENERATED_FILES)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    output_root = Path(args[0]) if args else INCLUDE_ROOT
    for path in regenerate(output_root):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
