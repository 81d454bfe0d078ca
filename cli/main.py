"""`inkwell` command line: developer and operator tools."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from libs.runtime.settings import BaseServiceSettings, ConfigError, load


def _token(args: argparse.Namespace) -> int:
    """Sign a development session token with the dev issuer key that the auth service (started by
    `make run`, in development) keeps in the data directory. Every process defaults to production,
    so with INKWELL_ENV unset this only signs with an existing key and never creates one."""
    import os

    from services.auth.dev_issuer import DEV_NAMESPACE, KEY_FILE, DevIssuer

    settings = load(BaseServiceSettings)
    if settings.is_production and os.environ.get("INKWELL_ENV"):
        print(
            "inkwell token: the development issuer is refused in production (INKWELL_ENV=production)", file=sys.stderr
        )
        return 2
    data_dir = Path(args.data_dir) if args.data_dir else settings.data_dir
    if settings.is_production and not (data_dir / KEY_FILE).exists():
        print(
            f"inkwell token: no development issuer key in {data_dir / KEY_FILE}. Start the stack with `make run` "
            "(it runs in development and creates it), or pass --data-dir",
            file=sys.stderr,
        )
        return 2
    subject = args.user.removeprefix(f"{DEV_NAMESPACE}:")  # --user dev:alice names the same user as alice
    issuer = DevIssuer(data_dir)
    print(issuer.mint(subject, ttl_s=args.ttl, azp=args.azp, org_id=args.org))
    return 0


def _models(args: argparse.Namespace) -> int:
    from libs.model_registry import cli as models_cli
    from libs.model_registry.registry import ModelRegistry
    from libs.model_registry.settings import ModelRegistrySettings

    logging.getLogger("inkwell").setLevel(logging.ERROR)  # the table or progress line says it all
    registry = ModelRegistry(load(ModelRegistrySettings))
    try:
        if args.action == "pull":
            if not args.name:
                print(
                    "inkwell models pull: name the model, e.g. inkwell models pull qwen2.5-0.5b-instruct",
                    file=sys.stderr,
                )
                return 2
            return models_cli.pull(registry, args.name)
        return models_cli.list_models(registry)
    finally:
        registry.close()


def _doctor(args: argparse.Namespace) -> int:

    from cli.doctor import run_doctor
    from libs.doctor.report import render_json, render_text

    logging.getLogger().setLevel(logging.CRITICAL)  # the report says everything; no stray log lines
    checks = run_doctor(args.only or None, args.token)
    print(render_json(checks) if args.json else render_text(checks))
    return 1 if any(c.status == "FAIL" for c in checks) else 0


def _rca(args: argparse.Namespace) -> int:
    from libs.rca import analyse
    from libs.rca.records import parse_since, read_sources
    from libs.rca.render import to_json, to_markdown

    try:
        since = parse_since(args.since) if args.since else None
        until = parse_since(args.until) if args.until else None
    except ValueError as exc:
        print(f"inkwell rca: {exc}", file=sys.stderr)
        return 2
    missing = [p for p in args.paths if p != "-" and not Path(p).exists()]
    if missing:
        print(f"inkwell rca: no such file or directory: {', '.join(missing)}", file=sys.stderr)
        return 2
    tracker = analyse(read_sources(args.paths or ["-"]), since=since, until=until)
    try:
        print(to_json(tracker) if args.json else to_markdown(tracker))
    except BrokenPipeError:  # `inkwell rca ... | head`
        sys.stdout = open(os.devnull, "w")  # stdout is gone; keep the exit quiet
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inkwell", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    token = sub.add_parser("token", help="print a development session token (verified like a Clerk token)")
    token.add_argument("--user", default="alice", help="the sub, default alice (acts as user dev:alice)")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds, default 3600")
    token.add_argument("--azp", default=None, help="authorized party (frontend origin), e.g. http://localhost:3000")
    token.add_argument("--org", default=None, help="organization id")
    token.add_argument("--data-dir", default=None, help="data directory holding the dev key (INKWELL_DATA_DIR)")
    token.set_defaults(handler=_token)
    models = sub.add_parser("models", help="show every model's state; `inkwell models pull NAME` downloads one")
    models.add_argument("action", nargs="?", choices=["list", "pull"], default="list")
    models.add_argument("name", nargs="?", help="registry name or repo id (for pull)")
    models.set_defaults(handler=_models)
    doctor = sub.add_parser(
        "doctor", help="gather every service's own checks (Diagnose) and reachability; exit 1 on any FAIL"
    )
    doctor.add_argument(
        "--token",
        default=None,
        help="an operator's session token for Diagnose (default INKWELL_SESSION_TOKEN; a dev token in development)",
    )
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.add_argument(
        "--only",
        action="append",
        choices=["clerk", "llm", "models", "index", "services"],
        help="run only these areas (repeatable)",
    )
    doctor.set_defaults(handler=_doctor)
    rca = sub.add_parser(
        "rca",
        help="write the RCA tracker (one issue per root cause) from JSON or legacy plain-text logs",
        description="Reads log lines from files, directories (every *.log and *.jsonl, recursively) or stdin"
        " ('-', the default) and writes the RCA tracker: one issue per root cause, downstream effects"
        " attached by trace and request id, configuration problems told apart from defects.",
    )
    rca.add_argument("paths", nargs="*", help="log files or directories; '-' or nothing reads stdin")
    rca.add_argument("--since", help="window start: an ISO time (2026-03-10T14:00:00Z) or a duration back (1h, 15m)")
    rca.add_argument("--until", help="window end, same forms as --since (default: no end)")
    rca.add_argument("--json", action="store_true", help="machine-readable output")
    rca.set_defaults(handler=_rca)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        raise SystemExit(args.handler(args))
    except ConfigError as exc:
        print(f"inkwell: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
