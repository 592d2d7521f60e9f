"""Command line: ``mlpipe-exporter [run|check-config|demo] --flag.name=value``."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from exporter import __version__
from exporter.app import COLLECTOR_NAMES, Exporter
from exporter.config import ConfigError, load_config
from exporter.durations import parse_duration
from exporter.logs import setup_logging
from exporter.server import MetricsServer, parse_listen_address
from exporter.sources.tail import raise_fd_limit
from exporter.webconfig import WebConfigError, WebSecurity

log = logging.getLogger("mlpipe_exporter")

SUBCOMMANDS = ("run", "check-config", "profile", "estimate-quota", "demo")
DEFAULT_LISTEN = "127.0.0.1:9847"


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _add_run_flags(p: argparse.ArgumentParser, config_required: bool = True) -> None:
    p.add_argument(
        "--web.listen-address",
        dest="listen",
        default=DEFAULT_LISTEN,
        help=f"address to serve on (default {DEFAULT_LISTEN}; ':9847' for all)",
    )
    p.add_argument("--web.telemetry-path", dest="telemetry_path", default="/metrics")
    p.add_argument(
        "--web.config.file",
        dest="web_config",
        default=None,
        help="TLS and basic auth (exporter-toolkit format); re-read on change",
    )
    p.add_argument(
        "--web.max-requests",
        dest="max_requests",
        type=int,
        default=40,
        help="concurrent HTTP requests served; more get 503 (default 40)",
    )
    p.add_argument(
        "--state.dir",
        dest="state_dir",
        default=None,
        help="where checkpoints and cached profiles live (default: memory only)",
    )
    p.add_argument(
        "--ingest.interval",
        dest="interval",
        type=_duration,
        default=5.0,
        help="time between ingest passes (default 5s)",
    )
    p.add_argument(
        "--stats.interval",
        dest="stats_interval",
        type=_duration,
        default=15.0,
        help="how often skew, drift and quality are recomputed (default 15s)",
    )
    p.add_argument(
        "--log.level", dest="log_level", default="info", choices=["debug", "info", "warn", "error"]
    )
    p.add_argument("--log.format", dest="log_format", default="logfmt", choices=["logfmt", "json"])
    for name in COLLECTOR_NAMES:
        group = p.add_mutually_exclusive_group()
        group.add_argument(
            f"--collector.{name}",
            dest=f"collector_{name}",
            action="store_true",
            default=True,
            help=f"enable the {name} collector (default)",
        )
        group.add_argument(
            f"--no-collector.{name}",
            dest=f"collector_{name}",
            action="store_false",
            help=f"disable the {name} collector",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlpipe-exporter", description=__doc__)
    parser.add_argument("--version", action="version", version=f"mlpipe-exporter {__version__}")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run the exporter (default)")
    run.add_argument("--config.file", dest="config", required=True)
    _add_run_flags(run)
    check = sub.add_parser("check-config", help="validate a config file (exit 1 if invalid)")
    check.add_argument("--config.file", dest="config", required=True)
    prof = sub.add_parser("profile", help="build or refresh the reference profiles")
    prof.add_argument("--config.file", dest="config", required=True)
    prof.add_argument(
        "--state.dir",
        dest="state_dir",
        default=None,
        help="cache the profiles here (what `run --state.dir` reads)",
    )
    prof.add_argument("--force", action="store_true", help="rebuild even if cached")
    est = sub.add_parser("estimate-quota", help="serving replicas needed, from the serving logs")
    est.add_argument("--config.file", dest="config", required=True)
    est.add_argument("--model", default=None, help="one model (default: all)")
    est.add_argument("--output", choices=["table", "json"], default="table")
    est.add_argument(
        "--window",
        type=_duration,
        default=86400.0,
        help="use the last this-long of each model's logs (default 24h)",
    )
    demo = sub.add_parser("demo", help="generate live synthetic data and run the exporter on it")
    demo.add_argument("--dir", default="demo-data", help="where demo data is written")
    demo.add_argument(
        "--duration",
        type=_duration,
        default=None,
        help="stop after this long (default: run until interrupted)",
    )
    demo.add_argument(
        "--drift-after",
        dest="drift_after",
        type=_duration,
        default=180.0,
        help="when the scheduled drift and the bad canary start (default 3m)",
    )
    _add_run_flags(demo)
    return parser


def _serve(args, config, config_path: str | None, stop: threading.Event | None = None) -> int:
    soft, _ = raise_fd_limit()
    log.debug("open files limit %d", soft)
    collectors = tuple(n for n in COLLECTOR_NAMES if getattr(args, f"collector_{n}"))
    host, port = parse_listen_address(args.listen)
    try:
        security = WebSecurity(args.web_config)
    except WebConfigError as exc:
        log.error("%s", exc)
        return 1
    try:
        exporter = Exporter(
            config, config_path, args.state_dir, args.interval, collectors, args.stats_interval
        )
    except ConfigError as exc:
        for line in exc.errors:
            log.error("%s", line)
        return 1
    server = MetricsServer(exporter, host, port, args.telemetry_path, security, args.max_requests)
    stop = stop or threading.Event()

    def on_term(signum, frame):
        log.info("received signal %d, shutting down", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGHUP, lambda s, f: exporter.request_reload())
    exporter.start()
    server.start()
    log.info("listening on %s:%d%s", host, server.port, args.telemetry_path)
    stop.wait()
    server.stop()
    exporter.stop()
    log.info("checkpoints written, bye")
    return 0


def _profile(args) -> int:
    """``profile``: build (or load from the cache) every model's reference profile."""
    import time

    from exporter.state.reference import ReferenceError, load_or_build

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print("\n".join(exc.errors), file=sys.stderr)
        return 1
    failed = 0
    print(
        f"{'model':<20} {'rows':>12} {'files':>6} {'numeric':>8} {'categorical':>12} {'seconds':>8}"
    )
    for model in config.models:
        if model.reference is None:
            print(f"{model.name:<20} (no reference configured)")
            continue
        start = time.perf_counter()
        try:
            ref = load_or_build(model, args.state_dir, force=args.force)
        except ReferenceError as exc:
            print(f"{model.name:<20} error: {exc}", file=sys.stderr)
            failed += 1
            continue
        specs = ref.features.specs
        print(
            f"{model.name:<20} {ref.rows:>12} {len(ref.files):>6} {len(specs.numeric):>8} "
            f"{len(specs.categorical):>12} {time.perf_counter() - start:>8.2f}"
        )
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help", "--version")):
        argv.insert(0, "run")
    args = build_parser().parse_args(argv)
    if args.command == "check-config":
        try:
            load_config(args.config)
        except ConfigError as exc:
            for line in exc.errors:
                print(line, file=sys.stderr)
            return 1
        print(f"{args.config}: ok")
        return 0
    if args.command == "profile":
        return _profile(args)
    if args.command == "estimate-quota":
        from exporter import capacity_cli

        try:
            config = load_config(args.config)
        except ConfigError as exc:
            print("\n".join(exc.errors), file=sys.stderr)
            return 1
        return capacity_cli.run(config, args.model, args.output, args.window)
    setup_logging(args.log_level, args.log_format)
    if args.command == "demo":
        from exporter import demo

        return demo.run(args, _serve)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        for line in exc.errors:
            log.error("%s", line)
        return 1
    return _serve(args, config, args.config)


if __name__ == "__main__":
    sys.exit(main())
