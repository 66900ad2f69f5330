"""kube-scheduler extender for AMD Instinct GPU partitions, and the placement planner.

The extender answers kube-scheduler's ``filter`` and ``prioritize`` calls for pods that request
``amd.com/gpu-partition``: it sizes the pod's model (``sizing``) and keeps only nodes whose
partitions can hold it, then scores the survivors best-fit. ``aim-extender plan`` runs the same
verdict and score functions over a described cluster, offline.

Modules, one job each:
    nodefacts     node labels + allocatable -> NodeFacts (pure)
    demand        pod annotations + resources -> SizingRequest (pure)
    requirements  SizingRequest -> Requirement; the only module that calls ``sizing``
    filtering     Requirement x node -> verdict, with categorical reasons (pure)
    scoring       best-fit / spread scores 0..10 (pure)
    decisions     one filter / prioritize call over many nodes (pure; shared by service and planner)
    wire          kube-scheduler extender wire types (pydantic) and request reading
    cache         in-memory node + pod usage store (thread-safe)
    watching      list+watch of nodes and pods into the cache (kubernetes client)
    metrics       Prometheus collectors, one registry per app
    app           FastAPI application (thin HTTP shell)
    config        ExtenderConfig
    planning/     the offline placement planner (public API in planning/__init__.py)
    cli           ``aim-extender serve|plan``

Errors::

    ExtenderError
    ├── ConfigError        bad flag / env value (cli exits 2)
    └── PlanInputError     invalid cluster or workload file (cli exits 2)
"""

from extender.errors import ConfigError, ExtenderError, PlanInputError

__all__ = ["ConfigError", "ExtenderError", "PlanInputError"]
