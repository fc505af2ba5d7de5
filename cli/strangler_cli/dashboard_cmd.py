"""``strangler dashboard``: a login link to the migration cockpit the proxy's admin listener
serves at ``/ui/`` (a ticket that works once, within a minute, as Jupyter's), opened in the
browser unless ``--no-browser``; ``--estate`` sends the dependency graph for its Estate page."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from strangler_common import StranglerError
from strangler_cli.helptext import examples
from strangler_cli.admin_client import add_admin_options, answer, token_for


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("dashboard", help="open the migration cockpit (modules, releases, the estate) in a browser",
                       description="Print, and open, a login link to the dashboard the running proxy serves on its admin "
                                   "listener (/ui/). The link works once, within a minute; the token never goes into it.")
    add_admin_options(p, "the route file (locates the admin token)")
    p.add_argument("--estate", nargs="+", metavar="PATH",
                   help="the estate for the Estate page: Compose files, manifests, units, an inventory (analysed here), "
                        "or one strangler analyze --format json file")
    p.add_argument("--no-browser", action="store_true", help="print the link only")
    examples(p, "strangler dashboard --routes routes.yaml", "strangler dashboard --routes routes.yaml --estate inventory.yaml config/",
             "strangler dashboard --admin 10.0.0.5:9901 --no-browser")
    p.set_defaults(func=run)


def estate_document(paths: list[str]) -> dict[str, Any]:
    """The analysis and every component's blast radius, as the Estate page shows them."""
    from strangler_analyzer import analysis_json, analyze, blast_radius, build_graph, estate_from_json, impact_json, load_estate

    if len(paths) == 1 and paths[0].endswith(".json"):
        try:
            doc = json.loads(Path(paths[0]).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StranglerError(f"{paths[0]}: cannot read an analysis: {exc}") from None
        if not isinstance(doc, dict) or doc.get("schema") != "strangler.analysis/1":
            raise StranglerError(f"{paths[0]}: expected the JSON of strangler analyze --format json (schema strangler.analysis/1)")
        est = estate_from_json(doc, paths[0])
        analysis = doc
    else:
        est = load_estate(paths)
        analysis = analysis_json(analyze(est, extraction=False))
    g = build_graph(est)
    wave_of = {name: i for i, wave in enumerate(analysis["waves"]) for name in wave}
    impact = {c.name: impact_json(blast_radius(g, c.name, wave_of)) for c in est.components}
    return {"analysis": analysis, "impact": impact}


def run(args: argparse.Namespace) -> int:
    import httpx  # here, not at the top: every strangler command would pay for it

    base = f"http://{args.admin}"
    auth = {"authorization": f"Bearer {token_for(args.token, args.routes)}"}
    try:
        if args.estate:
            doc = estate_document(args.estate)
            r = httpx.put(f"{base}/ui/estate", content=json.dumps(doc), headers={**auth, "content-type": "application/json"},
                          timeout=60)
            answer(r, "PUT /ui/estate")
            print(f"estate sent: {len(doc['analysis']['components'])} components")
        r = httpx.post(f"{base}/ui/tickets", headers=auth, timeout=10)
    except httpx.ConnectError:
        raise StranglerError(f"no proxy answers on {args.admin}: start one (strangler proxy --routes FILE), or name its "
                             "admin listener with --admin HOST:PORT") from None
    ticket = answer(r, "POST /ui/tickets")
    url = f"{base}{ticket['path']}"
    print(f"dashboard: {url}\n(the link works once, within {ticket['expires_in']:g} s; run strangler dashboard again for another)")
    if not args.no_browser:
        import webbrowser

        webbrowser.open(url)
    return 0

