"""Command line: ``mlpipe-exporter [run|check-config|demo] --flag.name=value``."""

from __future__ import annotations

import signal
import threading

# Before the slow imports below (numpy, pyarrow: about a second): a SIGHUP or SIGTERM in
# that second must be a request, not the default action, which ends the process.
_EARLY: list[int] = []
if threading.current_thread() is threading.main_thread():
    for _sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
        signal.signal(_sig, lambda signum, frame: _EARLY.append(signum))

import argparse  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402

from exporter import __version__  # noqa: E402
from exporter.app import COLLECTOR_NAMES, Exporter  # noqa: E402
from exporter.config import ConfigError, load_config  # noqa: E402
from exporter.durations import parse_duration  # noqa: E402
from exporter.logs import setup_logging  # noqa: E402
from exporter.server import MetricsServer, parse_listen_address  # noqa: E402
from exporter.sharding import parse_shard  # noqa: E402
from exporter.sources.tail import raise_fd_limit  # noqa: E402
from exporter.webconfig import WebConfigError, WebSecurity  # noqa: E402

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
        action="append",
        default=None,
        help=f"address to serve on, repeatable (default {DEFAULT_LISTEN}; ':9847' for all, "
        "'[::1]:9847' for IPv6)",
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
        "--models.shard",
        dest="shard",
        default=None,
        help="INDEX/COUNT: export only the models whose name hashes to INDEX, with "
        "Prometheus' hashmod (docs/fleet.md); pipelines and quotas go to shard 0",
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
    prof.add_argument("--model", default=None, help="only this model")
    prof.add_argument(
        "--output",
        default=None,
        help="write the model's portable profile file here, for `reference: {profile: FILE}` "
        "(needs --model when several models have a reference)",
    )
    est = sub.add_parser(
        "estimate-quota", help="serving replicas (serving logs) and pipeline quota plans (run logs)"
    )
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


class Signals:
    """SIGTERM/SIGINT and SIGHUP handlers installed first thing, before any slow start-up
    work, so an early signal is a request, not the default action (SIGHUP would kill)."""

    def __init__(self):
        self.stop = threading.Event()
        self.reload = threading.Event()
        self.exporter = None

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)
        signal.signal(signal.SIGHUP, self._on_hup)
        for signum in _EARLY:  # what arrived while the modules were loading
            (self._on_hup if signum == signal.SIGHUP else self._on_term)(signum, None)
        _EARLY.clear()

    def _on_term(self, signum, frame):
        log.info("received signal %d, shutting down", signum)
        self.stop.set()

    def _on_hup(self, signum, frame):
        if self.exporter is not None:
            self.exporter.request_reload()
        else:
            self.reload.set()  # handed over once the exporter exists


SIGNALS = Signals()


def _serve(args, config, config_path: str | None, stop: threading.Event | None = None) -> int:
    soft, _ = raise_fd_limit()
    # Scrapes only send rendered bytes, but the HTTP threads need the GIL to do it while the
    # ingest thread renders tens of thousands of series: hand it over every 1 ms instead
    # of Python's 5 ms (bench/soak.py: answer p99 191 -> 126 ms at 20 models x 50 features).
    sys.setswitchinterval(0.001)
    log.debug("open files limit %d", soft)
    collectors = tuple(n for n in COLLECTOR_NAMES if getattr(args, f"collector_{n}"))
    try:
        addresses = [parse_listen_address(a) for a in args.listen or [DEFAULT_LISTEN]]
    except ValueError as exc:
        log.error("%s", exc)
        return 1
    try:
        security = WebSecurity(args.web_config)
    except WebConfigError as exc:
        log.error("%s", exc)
        return 1
    try:
        shard = parse_shard(args.shard) if args.shard else None
    except ValueError as exc:
        log.error("%s", exc)
        return 1
    try:
        exporter = Exporter(
            config,
            config_path,
            args.state_dir,
            args.interval,
            collectors,
            args.stats_interval,
            background_references=True,
            shard=shard,
        )
    except ConfigError as exc:
        for line in exc.errors:
            log.error("%s", line)
        return 1
    # Listen before anything slow: reference profiles build in the background, and
    # /-/healthy answers from the first moment.
    servers = []
    for host, port in addresses:
        try:
            servers.append(
                MetricsServer(
                    exporter, host, port, args.telemetry_path, security, args.max_requests
                )
            )
        except OSError as exc:
            log.error("cannot listen on %s: %s", _address(host, port), exc.strerror or exc)
            for server in servers:
                server.stop()
            return 1
    for server in servers:
        server.start()
        log.info("listening on %s%s", _address(server.host, server.port), args.telemetry_path)
    SIGNALS.exporter = exporter
    if SIGNALS.reload.is_set():
        exporter.request_reload()
    stop = stop or SIGNALS.stop
    exporter.start()
    while not stop.wait(0.5):
        if SIGNALS.stop.is_set():
            break
    for server in servers:
        server.stop()
    exporter.stop()
    log.info("checkpoints written, bye")
    return 0


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _profile(args) -> int:
    """``profile``: build (or load from the cache) every model's reference profile."""
    import time

    from exporter.sources.reference import ReferenceError, load_or_build, save_cache

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print("\n".join(exc.errors), file=sys.stderr)
        return 1
    models = [m for m in config.models if args.model in (None, m.name)]
    if args.model is not None and not models:
        print(f"no model named {args.model!r} in {args.config}", file=sys.stderr)
        return 1
    if args.output is not None:
        with_ref = [m for m in models if m.reference is not None]
        if len(with_ref) != 1:
            print(
                f"--output writes one model's profile: {len(with_ref)} models with a "
                "reference match (name one with --model)",
                file=sys.stderr,
            )
            return 1
        models = with_ref
    failed = 0
    print(
        f"{'model':<20} {'rows':>12} {'files':>6} {'numeric':>8} {'categorical':>12} {'seconds':>8}"
    )
    for model in models:
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
        if args.output is not None:
            try:
                save_cache(args.output, ref)
            except OSError as exc:
                print(f"cannot write {args.output}: {exc}", file=sys.stderr)
                return 1
            print(f"wrote {args.output} (hash {ref.hash})")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    if threading.current_thread() is threading.main_thread():
        SIGNALS.install()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help", "--version")):
        argv.insert(0, "run")
    args = build_parser().parse_args(argv)
    if args.command == "check-config":
        from exporter.sources.reference import check_references

        try:
            config = load_config(args.config)
        except ConfigError as exc:
            for line in exc.errors:
                print(line, file=sys.stderr)
            return 1
        problems = check_references(config.models)
        for line in problems:
            print(f"{args.config}: {line}", file=sys.stderr)
        if problems:
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
