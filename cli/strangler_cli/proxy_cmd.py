"""``strangler proxy``: serve the routing proxy in front of the monolith."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

from strangler_common import StranglerError, UsageError
from strangler_proxy import default_path, token_path
from strangler_cli.helptext import examples


DEFAULT_LISTEN = "127.0.0.1:8000"
DEFAULT_ADMIN = "127.0.0.1:9901"


def hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, found {text!r}")
    return (host.strip("[]") or "127.0.0.1", int(port))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("proxy", help="serve the routing proxy")
    p.add_argument("--routes", required=True, type=Path, metavar="FILE", help="route table (YAML)")
    p.add_argument("--listen", type=hostport, default=hostport(DEFAULT_LISTEN), metavar="HOST:PORT",
                   help=f"where the proxy serves traffic (default {DEFAULT_LISTEN})")
    p.add_argument("--admin", default=DEFAULT_ADMIN, metavar="HOST:PORT|off",
                   help="admin API listener (loopback only unless --admin-allow-remote; 'off' to disable)")
    p.add_argument("--admin-allow-remote", action="store_true",
                   help="let the admin API listen on a non-loopback address (it still needs the token)")
    p.add_argument("--admin-token", default=None, metavar="TOKEN",
                   help="bearer token for the admin API (default: $STRANGLER_ADMIN_TOKEN, else generated into the state folder)")
    p.add_argument("--admin-tokens", type=Path, default=None, metavar="FILE",
                   help="one token per named operator (YAML: name: token or sha256:HEX); the ledger records who did what")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="worker processes sharing the port (SO_REUSEPORT)")
    p.add_argument("--state", default=None, metavar="PATH|URL",
                   help="state store: a SQLite file (default: .strangler/state.sqlite3 beside the route file), or a "
                        "postgresql:// URL shared by several proxy replicas")
    p.add_argument("--local-state", type=Path, default=None, metavar="PATH",
                   help="with a postgresql:// --state: the SQLite file for this replica's shadow evidence and activity "
                        "(default: .strangler/state.sqlite3 beside the route file)")
    p.add_argument("--access-log", action="store_true", help="one JSON line per request on stdout (off by default)")
    p.add_argument("--health-path", default="/_strangler", metavar="PREFIX|off",
                   help="probes on the listener: PREFIX/healthz and PREFIX/readyz, never forwarded (default /_strangler)")
    p.add_argument("--drain-timeout", type=float, default=30.0, metavar="SECONDS",
                   help="on SIGTERM, how long in-flight requests and streams may take to finish (default 30)")
    p.add_argument("--tls-cert", type=Path, metavar="FILE", help="serve TLS on the listener: certificate chain (PEM)")
    p.add_argument("--tls-key", type=Path, metavar="FILE", help="the certificate's private key (PEM), unless in --tls-cert")
    examples(p, "strangler proxy --routes routes/portal.yaml", "strangler proxy --routes routes.yaml --listen 0.0.0.0:8080 --workers 4 --access-log",
             "strangler proxy --routes routes.yaml --state postgresql://strangler@db/strangler --admin off")
    p.set_defaults(func=run)


def _token(given: str | None, state: Path) -> tuple[str, Callable[[], None] | None]:
    """The admin token, and what stores a new one: called only once the proxy listens, so a
    start refused for its inputs (a missing route file, a port in use) leaves no file."""
    token = given or os.environ.get("STRANGLER_ADMIN_TOKEN")
    if token:
        return token, None
    path = token_path(state)
    try:
        if path.exists():
            return path.read_text().strip(), None
    except OSError as exc:
        raise StranglerError(f"{path}: cannot read the admin token: {exc.strerror}") from None
    token = secrets.token_urlsafe(24)

    def store() -> None:
        try:
            state.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(token + "\n")
        except OSError as exc:
            raise StranglerError(f"{path}: cannot store the admin token: {exc.strerror}") from None
        print(f"strangler proxy: admin token written to {path}", file=sys.stderr)

    return token, store


def run(args: argparse.Namespace) -> int:
    from strangler_proxy import ServeOptions
    from strangler_proxy import run_proxy

    if args.workers < 1:
        raise UsageError(f"--workers: expected at least 1, found {args.workers}")
    if not args.drain_timeout >= 0:
        raise UsageError(f"--drain-timeout: expected seconds >= 0, found {args.drain_timeout}")
    health = None if args.health_path == "off" else args.health_path
    if health is not None and (not health.startswith("/") or len(health.rstrip("/")) < 2):
        raise UsageError(f"--health-path: expected a path prefix such as /_strangler (or 'off'), found {health!r}")
    try:
        admin = None if args.admin == "off" else hostport(args.admin)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"--admin: {exc}") from None
    from strangler_proxy import is_loopback

    if admin is not None and not is_loopback(admin[0]):
        if not args.admin_allow_remote:
            raise StranglerError(f"--admin {args.admin}: the admin API listens on loopback only; pass --admin-allow-remote "
                                 "to expose it on another address (the token is then all that protects it)")
        print(f"strangler proxy: warning: the admin API listens on {admin[0]}, not loopback", file=sys.stderr)
    shared = args.state if args.state and args.state.startswith(("postgresql://", "postgres://")) else None
    if args.local_state is not None and not shared:
        raise StranglerError("--local-state applies with a postgresql:// --state only (else --state is the local file)")
    local = args.local_state or default_path(args.routes)
    state = Path(args.state) if args.state and not shared else local
    token, store_token = _token(args.admin_token, state) if admin is not None else ("", None)
    return run_proxy(ServeOptions(routes=args.routes, listen=args.listen, admin=admin, workers=args.workers,
                              state=state, token=token, access_log=args.access_log, shared_state=shared,
                              health_prefix=health, drain_timeout=args.drain_timeout, tls_cert=args.tls_cert,
                              tls_key=args.tls_key, tokens_file=args.admin_tokens, ready=store_token))
