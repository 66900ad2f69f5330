"""Kubelet device plugin advertising AMD Instinct GPU compute partitions (deviceplugin API v1beta1).

Layers: ``cli`` -> ``runner`` (threads, sockets, signals) -> ``server`` / ``registration`` /
``labelsync`` + ``k8s`` -> ``state`` -> pure modules (``discovery``, ``reconcile``, ``health``,
``allocation``, ``allocate``, ``labels``, ``checkpoint``). Depends on ``sizing`` only.
See docs/deviceplugin.md.
"""
