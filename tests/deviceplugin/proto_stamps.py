"""Comparing committed gRPC/protobuf stubs with freshly generated ones, version stamps aside.

protoc writes the grpcio-tools and protobuf versions into the stubs; they change with every
grpcio-tools release, so a freshness check ignores them (CI installs the newest grpcio-tools: 1.85.4
once changed only GRPC_GENERATED_VERSION). What the stamps demand of the runtime is checked
separately (tests/deviceplugin/test_deviceplugin_proto.py).
"""

from __future__ import annotations

import re
from typing import Final

VERSION_STAMPS: Final = (
    re.compile(r"^# Protobuf Python Version: .*$", re.MULTILINE),
    re.compile(r"_runtime_version\.Domain\.PUBLIC,\s*\d+,\s*\d+,\s*\d+,", re.MULTILINE),
    re.compile(r"^GRPC_GENERATED_VERSION = .*$", re.MULTILINE),
)


def without_version_stamps(text: str) -> str:
    """``text`` with every version stamp replaced by ``<version>``."""
    for pattern in VERSION_STAMPS:
        text = pattern.sub("<version>", text)
    return text
