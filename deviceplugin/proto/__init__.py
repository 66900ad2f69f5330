"""Generated gRPC/protobuf code for the kubelet device plugin API v1beta1.

`api.proto` mirrors k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1/api.proto; `api_pb2*.py` are
generated from it and committed. Regenerate with ``python -m deviceplugin.proto.regenerate``.
"""
