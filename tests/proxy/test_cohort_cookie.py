"""The proxy's own cohort cookie, in-process against real upstreams: a user keeps its side
when the session id rotates at login, the cookie is set once, on canary decisions only."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from strangler_proxy.cohort import bucket, derived_id, on_new_side
from strangler_proxy.config import load_routes
from strangler_proxy.dataplane.app import ProxyApp
from strangler_proxy.dataplane.runtime import Runtime
from strangler_proxy.errors import RouteConfigError
from strangler_proxy.metrics import Metrics
from strangler_proxy.model import Cohort, CohortCookie, RouteTable, Stage

from tests.proxy.test_app_inprocess import table
from tests.proxy.upstreams import Upstream


def with_cookie(t: RouteTable, stage: Stage = "canary", weight: float = 50, cookie: CohortCookie | None = CohortCookie()) -> RouteTable:
    t = replace(t, cohort=replace(Cohort(), cookie=cookie))
    return replace(t, modules=(replace(t.modules[0], stage=stage, weight=weight),))


async def get(app: ProxyApp, cookie: str | None, scheme: str = "http") -> tuple[str, list[bytes]]:
    scope: dict[str, Any] = {
        "type": "http", "http_version": "1.1", "method": "GET", "scheme": scheme, "path": "/echo/cases/1",
        "raw_path": b"/echo/cases/1", "query_string": b"", "client": ("10.0.0.9", 40000),
        "headers": [(b"host", b"portal")] + ([(b"cookie", cookie.encode())] if cookie else []),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    headers = sent[0]["headers"]
    upstream = dict(headers).get(b"x-upstream", b"?").decode()
    return upstream, [v for n, v in headers if n == b"set-cookie"]


def run(t: RouteTable, scenario: Any) -> Any:
    async def main() -> Any:
        runtime = Runtime(t, Metrics(), loop=asyncio.get_running_loop())
        try:
            return await scenario(ProxyApp(runtime))
        finally:
            runtime.close()

    return asyncio.run(main())


def cohort_of(set_cookies: list[bytes]) -> str:
    (value,) = set_cookies
    return value.decode().split(";")[0].split("=", 1)[1]


def test_users_keep_their_side_across_login(legacy: Upstream, service: Upstream) -> None:
    async def scenario(app: ProxyApp) -> None:
        flips_with_cookie = flips_without = 0
        for user in range(300):
            before, cookies = await get(app, f"JSESSIONID=anon-{user}")  # first visit, no cohort cookie yet
            cid = cohort_of(cookies)
            assert cid == derived_id(f"cookie:anon-{user}")  # derived from the key: one way, stable
            expected = "service" if on_new_side(bucket("cases", f"id:{cid}", 10_000), 50, 10_000) else "legacy"
            assert before == expected
            # login: the servlet container rotates JSESSIONID; the cohort cookie comes back
            after, again = await get(app, f"JSESSIONID=auth-{user}; strangler_cohort={cid}")
            assert again == []  # set once
            flips_with_cookie += after != before
            # without the proxy's cookie the rotated session id is a new key: a coin toss
            alone, _ = await get(app, f"JSESSIONID=auth-{user}")
            flips_without += alone != before
        assert flips_with_cookie == 0
        assert 90 < flips_without < 210  # about half: what the cookie prevents

    run(with_cookie(table(legacy.port, service.port, "canary")), scenario)


def test_without_any_key_an_id_is_drawn_and_kept(legacy: Upstream, service: Upstream) -> None:
    async def scenario(app: ProxyApp) -> None:
        ids = set()
        for _ in range(20):
            side, cookies = await get(app, None)
            cid = cohort_of(cookies)
            ids.add(cid)
            for _ in range(5):  # the same browser, cookie returned: the same side every time
                assert (await get(app, f"strangler_cohort={cid}"))[0] == side
        assert len(ids) == 20
        # a malformed id is not trusted: a fresh one is set
        _, cookies = await get(app, "strangler_cohort=../../etc")
        assert len(cohort_of(cookies)) == 32

    run(with_cookie(table(legacy.port, service.port, "canary")), scenario)


@pytest.mark.parametrize("stage", ["legacy", "shadow", "released"])
def test_no_cookie_outside_canary(legacy: Upstream, service: Upstream, stage: Stage) -> None:
    async def scenario(app: ProxyApp) -> None:
        assert (await get(app, "JSESSIONID=u1"))[1] == []

    run(with_cookie(table(legacy.port, service.port, "canary"), stage=stage), scenario)


def test_cookie_attributes(legacy: Upstream, service: Upstream) -> None:
    async def scenario(app: ProxyApp) -> tuple[list[bytes], list[bytes]]:
        return (await get(app, "JSESSIONID=u1"))[1], (await get(app, "JSESSIONID=u1", scheme="https"))[1]

    plain, tls = run(with_cookie(table(legacy.port, service.port, "canary")), scenario)
    assert plain[0].endswith(b"; Path=/; Max-Age=2592000; SameSite=Lax; HttpOnly")  # no Secure over http (auto)
    assert tls[0].endswith(b"; HttpOnly; Secure")
    custom = CohortCookie(name="cohort", max_age=60, secure=True, same_site="Strict", path="/portal")
    (value,) = run(with_cookie(table(legacy.port, service.port, "canary"), cookie=custom),
                   lambda app: get(app, "JSESSIONID=u1"))[1]
    assert value.startswith(b"cohort=") and value.endswith(b"; Path=/portal; Max-Age=60; SameSite=Strict; HttpOnly; Secure")


def test_the_route_file_section(tmp_path: Path) -> None:
    base = "upstreams:\n  legacy: http://127.0.0.1:1\ncohort:\n"
    f = tmp_path / "r.yaml"
    f.write_text(base + "  cookie: true\n")
    assert load_routes(f).cohort.cookie == CohortCookie()
    f.write_text(base + "  cookie: {name: cohort, max_age: 600, secure: auto, same_site: Strict}\n")
    assert load_routes(f).cohort.cookie == CohortCookie("cohort", 600, None, "Strict")
    for bad, message in (("  cookie: {name: 'a b'}\n", "cohort.cookie.name: expected a cookie name"),
                         ("  cookie: {same_site: None, secure: false}\n", "SameSite=None needs secure"),
                         ("  cookie: {max_age: 0}\n", "cohort.cookie.max_age: expected a number")):
        f.write_text(base + bad)
        with pytest.raises(RouteConfigError, match=message):
            load_routes(f)


def test_routes_explain_reads_the_cookie_as_the_proxy_does(legacy: Upstream, service: Upstream, tmp_path: Path) -> None:
    import json

    from tests.cli.helpers import strangler

    f = tmp_path / "r.yaml"
    f.write_text(f"upstreams: {{legacy: '{legacy.url}', svc: '{service.url}'}}\ncohort: {{cookie: true}}\nmodules:\n"
                 "  cases: {match: {path_prefix: /echo/cases}, service: svc, stage: canary, weight: 50}\n")
    t = load_routes(f)
    ids = [derived_id(f"cookie:u{i}") for i in range(12)]
    sides = run(t, lambda app: asyncio.gather(*(get(app, f"JSESSIONID=rotated; strangler_cohort={c}") for c in ids)))
    for cid, (side, _) in zip(ids, sides):
        r = strangler("routes", "explain", str(f), "GET", "/echo/cases/1", "-H", f"Cookie: JSESSIONID=rotated; strangler_cohort={cid}",
                      "--format", "json")
        out = json.loads(r.stdout)
        assert out["cohort"] == cid and not out["sets_cohort_cookie"]
        assert out["upstream"] == side.replace("service", "svc")
    assert {s for s, _ in sides} == {"service", "legacy"}  # both sides seen: the comparison means something
