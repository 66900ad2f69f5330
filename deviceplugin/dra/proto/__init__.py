"""Generated gRPC stubs of the kubelet's DRA v1 and plugin registration v1 APIs (see the .proto files)."""
