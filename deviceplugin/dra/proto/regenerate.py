"""Regenerate the committed protobuf/gRPC stubs from the .proto files next to this module.

Usage: ``python -m deviceplugin.dra.proto.regenerate [OUTPUT_ROOT]`` (as deviceplugin.proto.regenerate).
Needs ``grpcio-tools`` (a test/dev dependency only).
"""

from __future__ import annotations

import sys
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent
INCLUDE_ROOT = PROTO_DIR.parents[2]  # the directory holding the deviceplugin package
PROTO_FILES = ("dra_v1.proto", "pluginregistration.proto", "dra_health_v1alpha1.proto")


def generated_files(stem: str) -> tuple[str, ...]:
    return (f"{stem}_pb2.py", f"{stem}_pb2.pyi", f"{stem}_pb2_grpc.py")


def regenerate(output_root: Path = INCLUDE_ROOT) -> tuple[Path, ...]:
    from grpc_tools import protoc  # imported lazily: grpcio-tools is not a runtime dependency

    written: list[Path] = []
    output_root.mkdir(parents=True, exist_ok=True)
    for name in PROTO_FILES:
        relative = (PROTO_DIR / name).relative_to(INCLUDE_ROOT)
        args = ["grpc_tools.protoc", f"-I{INCLUDE_ROOT}", f"--python_out={output_root}", f"--pyi_out={output_root}",
                f"--grpc_python_out={output_root}", str(relative)]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed: {' '.join(args)}")
        written += [output_root / relative.parent / f for f in generated_files(relative.stem)]
    return tuple(written)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    for path in regenerate(Path(args[0]) if args else INCLUDE_ROOT):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
