"""The partition controller: reshapes opted-in nodes' GPUs to the pending demand through AMD's
Device Config Manager, safely (``aim-partitioner controller``; docs/partitioner-controller.md).

Pure parts: ``observe`` (API objects to views), ``machine`` (per-node state machine, state in
annotations), ``plan`` (which changes pay, hysteresis). Shell: ``kube`` (API calls), ``watch`` and
``cache`` (watches), ``loop`` (the control loop), ``leader`` (Lease election), ``cli``.
"""
