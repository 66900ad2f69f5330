"""``aim-extender serve`` (the scheduler extender) and ``aim-extender plan`` (the placement planner).

Every ``serve`` flag can also come from an environment variable (flag wins): ``--port`` is
``AIM_EXTENDER_PORT`` and so on. Bad flags or values exit 2 with the usage line.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

from decision.verdict import Policy
from extender.cache import DEFAULT_STALE_AFTER_SECONDS
from extender.config import DEFAULT_HOST, DEFAULT_PORT, ExtenderConfig, NodeCacheMode
from extender.errors import ConfigError
from sizing import Catalogue, ModelArch, SizingError
from sizing.bounded import BoundedValueError, parse_int, parse_memory_bytes, shown
from webhook.certs_command import add_parser as add_certs_parser
from webhook.flags import (
    WebhookConfig,
    WebhookConfigError,
    add_serve_flags as add_webhook_flags,
    webhook_config,
)

logger = logging.getLogger("extender")

ENV_PREFIX = "AIM_EXTENDER_"
LOG_LEVELS = ("debug", "info", "warning", "error")


def _env(environ: Mapping[str, str], name: str, default: str | None) -> str | None:
    return environ.get(ENV_PREFIX + name, default)


def _port(text: str) -> int:
    """A TCP port in ASCII digits (``int()`` would take "١٢" as 12)."""
    try:
        return parse_int("port", text, minimum=0, maximum=65535)
    except BoundedValueError as error:
        raise argparse.ArgumentTypeError(f"not a port number 0..65535: {error.problem} ({shown(text)})") from None


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aim-extender",
        description="kube-scheduler extender for AMD Instinct GPU partitions, and an offline placement planner.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{serve,plan,scheduler-config,certs}")

    serve = sub.add_parser("serve", help="run the extender HTTP service (filter, prioritize, health, metrics)")
    serve.add_argument("--host", default=_env(environ, "HOST", DEFAULT_HOST),
                       help=f"listen address (env {ENV_PREFIX}HOST, default {DEFAULT_HOST})")
    serve.add_argument("--port", type=_port, default=_env(environ, "PORT", str(DEFAULT_PORT)),
                       help=f"listen port (env {ENV_PREFIX}PORT, default {DEFAULT_PORT})")
    serve.add_argument("--node-cache", choices=[m.value for m in NodeCacheMode],
                       default=_env(environ, "NODE_CACHE", NodeCacheMode.OFF.value),
                       help="off: nodeCacheCapable false, full Nodes in each request; watch: nodeCacheCapable"
                            f" true, nodes and pods watched from the API server (env {ENV_PREFIX}NODE_CACHE,"
                            " default off)")
    serve.add_argument("--policy", choices=[p.value for p in Policy], default=_env(environ, "POLICY", "best-fit"),
                       help=f"prioritize policy (env {ENV_PREFIX}POLICY, default best-fit)")
    serve.add_argument("--kubeconfig", default=_env(environ, "KUBECONFIG", None),
                       help="kubeconfig for --node-cache watch (default: in-cluster service account,"
                            f" then ~/.kube/config; env {ENV_PREFIX}KUBECONFIG)")
    serve.add_argument("--tls-cert-file", default=_env(environ, "TLS_CERT_FILE", None),
                       help=f"serve HTTPS with this PEM certificate (env {ENV_PREFIX}TLS_CERT_FILE)")
    serve.add_argument("--tls-key-file", default=_env(environ, "TLS_KEY_FILE", None),
                       help=f"PEM private key for --tls-cert-file (env {ENV_PREFIX}TLS_KEY_FILE)")
    serve.add_argument("--stale-after", type=float, metavar="SECONDS",
                       default=_env(environ, "STALE_AFTER", str(DEFAULT_STALE_AFTER_SECONDS)),
                       help="with --node-cache watch, /readyz answers 503 once the watch has been broken this long"
                            f" (env {ENV_PREFIX}STALE_AFTER, default {DEFAULT_STALE_AFTER_SECONDS:g})")
    serve.add_argument("--models-dir", metavar="DIR", default=_env(environ, "MODELS_DIR", None),
                       help=f"models directory (a mounted ConfigMap of `aim-sizing models add` entries), re-read when"
                            f" its files change (env {ENV_PREFIX}MODELS_DIR)")
    serve.add_argument("--max-body-bytes", metavar="BYTES", default=_env(environ, "MAX_BODY_BYTES", None),
                       help="refuse a request body larger than this with HTTP 413, a quantity such as 16Mi (env"
                            f" {ENV_PREFIX}MAX_BODY_BYTES; default 128Mi with --node-cache off, full Node objects of"
                            " up to 5,000 nodes; 8Mi with --node-cache watch, node names only)")
    serve.add_argument("--log-level", choices=LOG_LEVELS, default=_env(environ, "LOG_LEVEL", "info"),
                       help=f"(env {ENV_PREFIX}LOG_LEVEL, default info)")
    serve.add_argument("--log-format", choices=("text", "json"), default=_env(environ, "LOG_FORMAT", "text"),
                       help=f"(env {ENV_PREFIX}LOG_FORMAT, default text)")
    add_webhook_flags(serve, environ)  # the admission webhook served beside the extender (docs/webhook.md)

    sched = sub.add_parser("scheduler-config", help="print the KubeSchedulerConfiguration that registers the extender"
                           " (what manifests/scheduler ships, or v1beta3 for Kubernetes 1.23/1.24)")
    sched.add_argument("--api-version", choices=["v1", "v1beta3"], default="v1",
                       help="kubescheduler.config.k8s.io version: v1 (Kubernetes 1.25+, default)"
                            " or v1beta3 (1.23-1.28)")
    sched.add_argument("--variant", choices=["second-scheduler", "default-scheduler", "native"],
                       default="second-scheduler",
                       help="second scheduler aim-gpu-scheduler with the extender (default), the default scheduler"
                            " with an extra profile, or native: the second scheduler without the extender, ranking"
                            " the webhook's node affinity (docs/extender.md \"Native mode\")")
    sched.add_argument("--tls", action="store_true",
                       help="HTTPS to the extender, verified with the CA the TLS component mounts")
    sched.add_argument("--node-cache", choices=["watch", "off"], default="watch",
                       help="watch: nodeCacheCapable true (default); off: full Node objects in each call")
    plan = sub.add_parser("plan", help="place workloads on a described cluster with the extender's own verdicts")
    plan.add_argument("--cluster", metavar="FILE", help="cluster YAML (default: built-in demo cluster)")
    plan.add_argument("--workloads", metavar="FILE", help="workloads YAML (default: built-in demo workloads)")
    plan.add_argument("--policy", choices=["best-fit", "spread", "both"], default="both",
                      help="scoring policy; both compares best-fit with spread (default both)")
    plan.add_argument("--format", choices=["table", "json"], default="table", help="output format (default table)")
    plan.add_argument("--models-dir", metavar="DIR", help="models directory adding entries to the catalogue")
    add_certs_parser(sub)
    return parser


def _check_env_choices(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """argparse does not check defaults taken from the environment; do it here."""
    if args.command != "serve":
        return
    checks = {"node_cache": [m.value for m in NodeCacheMode], "policy": [p.value for p in Policy],
              "log_level": list(LOG_LEVELS), "log_format": ["text", "json"]}
    for field, choices in checks.items():
        if getattr(args, field) not in choices:
            parser.error(f"{ENV_PREFIX}{field.upper()}={getattr(args, field)!r}: expected one of {', '.join(choices)}")
    if isinstance(args.port, str):
        try:
            args.port = _port(args.port)
        except argparse.ArgumentTypeError as error:
            parser.error(f"{ENV_PREFIX}PORT: {error}")
    if args.max_body_bytes is not None:
        try:
            args.max_body_bytes = parse_memory_bytes("--max-body-bytes", args.max_body_bytes)
        except BoundedValueError as error:
            parser.error(str(error))
    if isinstance(args.stale_after, str):
        try:
            args.stale_after = float(args.stale_after)
        except ValueError:
            parser.error(f"{ENV_PREFIX}STALE_AFTER={args.stale_after!r}: not a number of seconds")


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"time": self.formatTime(record), "level": record.levelname,
                           "logger": record.name, "message": record.getMessage()})


def _configure_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def _exit_cleanly(signum: int, _frame: FrameType | None) -> None:
    """SIGTERM before the server runs, or re-raised by uvicorn after its graceful shutdown
    (uvicorn restores this handler and raises the signal again once in-flight requests are
    answered): end with status 0, not 143."""
    raise SystemExit(0)


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything claims startup; OSError when it cannot be."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)  # uvicorn's default backlog
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def serve(config: ExtenderConfig, webhook: WebhookConfig | None = None) -> int:
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        sock = _bind(config.host, config.port)  # first: a port in use fails before any slow import
    except OSError as error:
        logger.error("cannot listen on %s:%d: %s; exiting", config.host, config.port, error.strerror or error)
        return 1
    webhook_sock = None
    if webhook is not None:
        try:
            webhook_sock = _bind(webhook.host, webhook.port)
        except OSError as error:
            logger.error("cannot listen on %s:%d for the admission webhook: %s; exiting", webhook.host, webhook.port,
                         error.strerror or error)
            sock.close()
            return 1

    import uvicorn

    from decision.requirement import Sizer
    from extender.app import create_app
    from extender.cache import ClusterCache
    from extender.metrics import ExtenderMetrics

    cache = watcher = api = nodes = pods = None
    if config.node_cache is NodeCacheMode.WATCH or webhook is not None:
        from extender.watch import (  # the kubernetes client: watch / webhook
            ClusterWatcher,
            core_api,
            node_informer,
            pod_informer,
        )

        try:
            api = core_api(config.kubeconfig)
        except Exception as error:  # noqa: BLE001 - kubernetes raises several types for bad configs
            needs = "--node-cache watch" if config.node_cache is NodeCacheMode.WATCH else "the webhook's node watch"
            logger.error("cannot configure the Kubernetes client for %s: %s; exiting"
                         " (run in a pod with a service account, or pass --kubeconfig)", needs, str(error)[:300])
            sock.close()
            if webhook_sock is not None:
                webhook_sock.close()
            return 1
    if api is not None:
        # ONE watch of the Nodes (the node cache, the webhook and the pending explainer subscribe to
        # it) and ONE of the Pods (the node cache's bound pods and the explainer's waiting ones).
        nodes = node_informer(api)
        pods = pod_informer(api, pending=webhook is not None)
    if config.node_cache is NodeCacheMode.WATCH and api is not None:
        cache = ClusterCache()
        watcher = ClusterWatcher(api, cache, nodes=nodes, pods=pods)
    sizer = Sizer()
    if config.models_dir:
        from extender.models_source import ModelsSource

        def use(catalogue: Catalogue) -> None:
            sizer.catalogue = catalogue

        ModelsSource(Path(config.models_dir), on_change=use).start()
    metrics = ExtenderMetrics()
    app = create_app(policy=config.policy, cache=cache, background=watcher, sizer=sizer, metrics=metrics,
                     stale_after_seconds=config.stale_after_seconds, max_body_bytes=config.body_limit)
    logger.info("aim-extender listening on %s:%d with config %s%s", config.host, sock.getsockname()[1],
                config.to_json(), f"; admission webhook on {json.dumps(webhook.to_log())}" if webhook else "")
    # Move the start-up objects (modules, sizing catalogue, the kubernetes client's thousands of
    # model classes) to the collector's permanent generation: full collections then scan only
    # what requests allocate. Halves prioritize time for 1 MiB Nodes bodies in bench_extender.py.
    gc.freeze()
    server_config = uvicorn.Config(
        app,
        ssl_certfile=config.tls_cert_file,
        ssl_keyfile=config.tls_key_file,
        log_config=None,  # keep our logging setup
        access_log=False,  # one line per scheduling call would drown the useful logs; metrics count them
    )
    if webhook is not None and webhook_sock is not None:
        from webhook.serving import ServerWithWebhook, webhook_beside_extender

        def model(model_id: str) -> ModelArch:  # the sizer's catalogue: built-in + models directory
            return sizer.catalogue.get_model(model_id)

        beside = webhook_beside_extender(webhook, webhook_sock, api, model, metrics.registry, nodes=nodes)
        server: uvicorn.Server = ServerWithWebhook(server_config, beside)
        # Pending opted-in pods explain themselves (docs/extender.md "Native mode"): the process's
        # node watch gives where pods may run and the partitions, the sizer the pod's need.
        from extender.pending_events import PendingExplainer

        assert nodes is not None and pods is not None  # the webhook needs the client: api is set
        explainer = PendingExplainer(api, sizer, nodes=nodes, pods=pods, scheduler_name=webhook.scheduler_name)
        explainer.start()
    else:
        server = uvicorn.Server(server_config)
        explainer = None
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        if explainer is not None:
            explainer.stop()
    return 0


def plan(args: argparse.Namespace) -> int:
    from decision import planning
    from extender import plan_files
    from extender.terminal import stdout_supports_unicode

    try:
        cluster = plan_files.load_cluster(args.cluster)
        workloads = plan_files.load_workloads(args.workloads)
        plan_files.check_plan_size(cluster, workloads, args.workloads)  # each file is bounded; so is their product
    except planning.PlanInputError as error:
        print(f"aim-extender plan: error: {error}", file=sys.stderr)
        return 2
    sizer = None
    if args.models_dir:
        from decision.requirement import Sizer
        from extender.models_source import read_catalogue

        try:
            sizer = Sizer(read_catalogue(Path(args.models_dir)))
        except SizingError as error:
            print(f"aim-extender plan: error: {error}", file=sys.stderr)
            return 2
    policies = [Policy.BEST_FIT, Policy.SPREAD] if args.policy == "both" else [Policy(args.policy)]
    results = [planning.place_all(cluster, workloads, policy=policy, sizer=sizer) for policy in policies]
    if args.format == "json":
        text = json.dumps(planning.as_json(results), indent=2) + "\n"
    else:
        text = planning.render_tables(results, unicode=stdout_supports_unicode())
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `aim-extender plan | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def scheduler_config(args: argparse.Namespace) -> int:
    """Print a KubeSchedulerConfiguration from extender.scheduler_config (the shipped files' source)."""
    from extender import scheduler_config as generator

    endpoint = generator.ExtenderEndpoint(node_cache_capable=args.node_cache == "watch",
                                          tls=generator.ExtenderTLS() if args.tls else None)
    api_version = {"v1": generator.API_V1, "v1beta3": generator.API_V1BETA3}[args.api_version]
    try:
        if args.variant == "native":
            if args.tls or args.node_cache != "watch":
                raise ValueError("--tls and --node-cache configure the extender, which --variant native does not call")
            config = generator.native_scheduler_config(api_version)
        elif args.variant == "default-scheduler":
            config = generator.default_scheduler_config(api_version, endpoint=endpoint)
        else:
            config = generator.second_scheduler_config(api_version, endpoint=endpoint)
    except ValueError as error:
        print(f"aim-extender scheduler-config: error: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(generator.to_yaml(config))
    return 0


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    parser = build_parser(environ)
    args = parser.parse_args(argv)
    _check_env_choices(parser, args)
    if args.command == "plan":
        return plan(args)
    if args.command == "scheduler-config":
        return scheduler_config(args)
    if args.command == "certs":
        from webhook.certs_command import run as run_certs

        _configure_logging("info", "text")
        return run_certs(args)
    config = ExtenderConfig(
        host=args.host, port=args.port, node_cache=NodeCacheMode(args.node_cache), policy=Policy(args.policy),
        kubeconfig=args.kubeconfig, tls_cert_file=args.tls_cert_file, tls_key_file=args.tls_key_file,
        log_level=args.log_level, log_format=args.log_format, stale_after_seconds=args.stale_after,
        models_dir=args.models_dir, max_body_bytes=args.max_body_bytes,
    )
    try:
        config.validate()
        webhook = webhook_config(args)
    except (ConfigError, WebhookConfigError) as error:
        print(f"aim-extender serve: error: {error}", file=sys.stderr)
        return 2
    _configure_logging(config.log_level, config.log_format)
    return serve(config, webhook)
