"""``strangler status``: every module of the migration in one table: stage, release, the
last minute's traffic per side, errors, p99, fallbacks, breaker, shadow match, last change.
From a running proxy's admin API, or from the state store with the proxy down."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from strangler_common import StranglerError
from strangler_cli.helptext import examples
from strangler_cli.admin_client import add_admin_options, answer, token_for

if TYPE_CHECKING:
    from strangler_proxy import RouteTable


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("status", help="every module: stage, release, traffic and errors per side, breaker, shadow, last change",
                       description="Where the migration stands, one row per module. Asks the proxy's admin API; with the "
                                   "proxy down, reads the state store beside --routes (traffic as last published).")
    add_admin_options(p, "the route file (locates the token and, with the proxy down, the state store)")
    p.add_argument("--state", help="with the proxy down: the state store (a path or postgresql:// URL; default beside --routes)")
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    p.add_argument("--watch", action="store_true", help="refresh every 2 seconds until Ctrl-C")
    examples(p, "strangler status --routes routes.yaml", "strangler status --admin 127.0.0.1:9901 --format json",
             "strangler status --routes routes.yaml --watch")
    p.set_defaults(func=run)


def fetch(args: argparse.Namespace) -> dict[str, Any]:
    """The status document: from the admin API, or offline from the store when no proxy answers."""
    import httpx  # here, not at the top: every strangler command would pay for it

    url = f"http://{args.admin}/status"
    try:
        r = httpx.get(url, headers={"authorization": f"Bearer {token_for(args.token, args.routes)}"}, timeout=10)
    except httpx.ConnectError:
        return _offline(args)
    except StranglerError:
        if args.routes is None:
            raise
        return _offline(args)  # no token file: the proxy never ran with this route file
    except httpx.HTTPError as exc:
        raise StranglerError(f"GET {url}: {exc}") from None
    doc: dict[str, Any] = answer(r, f"GET {url}")
    return doc


def _offline(args: argparse.Namespace) -> dict[str, Any]:
    if args.routes is None:
        raise StranglerError(f"no proxy answers on {args.admin}; with it down, name the route file with --routes "
                             "(and the state store with --state if it is not the default)")
    return offline_status(args.routes, args.state, f"no proxy answers on {args.admin} and ")[0]


def offline_status(routes: Path, state: str | None, why: str = "") -> tuple[dict[str, Any], RouteTable]:
    """The status document read from the state store of ``routes`` (or ``state``), and the
    table it is of (overrides applied)."""
    from strangler_proxy import collect_status, default_path, load_routes, open_store, with_overrides

    location = state or default_path(routes)
    if not str(location).startswith(("postgresql://", "postgres://")) and not Path(location).exists():
        raise StranglerError(f"{why}no state store at {location}: start the proxy (strangler proxy --routes {routes}) or "
                             "name its store with --state")
    store = open_store(location)
    try:
        table = with_overrides(load_routes(routes), store.overrides())
        shadow = default_path(routes) if state is None or str(state).startswith("postgres") else state
        return collect_status(table.modules, store, shadow, {}, "store"), table
    finally:
        store.close()


def run(args: argparse.Namespace) -> int:
    from strangler_proxy import render_status

    while True:
        doc = fetch(args)
        if args.format == "json":
            print(json.dumps(doc, indent=2), flush=True)
        else:
            if args.watch and sys.stdout.isatty():  # a pipe gets no screen control codes
                sys.stdout.write("\x1b[2J\x1b[H")
            import shutil

            print(render_status(doc, width=max(shutil.get_terminal_size().columns, 120)), end="", flush=True)
        if not args.watch:
            return 0
        time.sleep(2)
