"""Talking to a running proxy's admin API from the CLI: the shared options (``--admin``,
``--token``, ``--routes``) and where the token comes from."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from strangler_common import StranglerError

DEFAULT = "127.0.0.1:9901"


def add_admin_options(p: argparse.ArgumentParser, routes_help: str) -> None:
    p.add_argument("--routes", type=Path, help=routes_help)
    p.add_argument("--admin", default=os.environ.get("STRANGLER_ADMIN", DEFAULT), metavar="HOST:PORT",
                   help=f"the proxy's admin API (default $STRANGLER_ADMIN or {DEFAULT})")
    p.add_argument("--token", default=os.environ.get("STRANGLER_ADMIN_TOKEN"),
                   help="the admin token (default $STRANGLER_ADMIN_TOKEN, or the token file beside --routes)")


def error_text(r: Any) -> str:
    """What a refused admin API call says: its JSON ``error``, else its body."""
    try:
        doc = r.json()
    except ValueError:
        return str(r.text)
    return str(doc.get("error", r.text)) if isinstance(doc, dict) else str(r.text)


def check(r: Any, what: str) -> None:
    """A StranglerError naming the call, its status and the API's reason, for a 4xx or 5xx answer."""
    if r.status_code >= 400:
        raise StranglerError(f"{what}: {r.status_code}: {error_text(r)}")


def token_for(token: str | None, routes: Path | None) -> str:
    """The admin token: given, or the proxy's token file beside the route file."""
    from strangler_proxy import default_path, token_path

    if token:
        return str(token)
    if routes is not None:
        path = token_path(default_path(routes))
        if path.exists():
            return path.read_text().strip()
    raise StranglerError("no admin token: pass --token, set STRANGLER_ADMIN_TOKEN, or name --routes")
