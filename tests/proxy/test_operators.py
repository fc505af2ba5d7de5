"""Audit you can trust: the ledger's actor is the operator whose token made the call, and
release webhooks are signed and may gate a step. Against the real proxy process."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from strangler_common import ConfigError
from strangler_proxy.control.identity import Operators
from tests.proxy.harness import TOKEN, Receiver, routes_file
from tests.proxy.test_release import PLAN, Traffic, status, wait_for
from tests.proxy.upstreams import Upstream

pytestmark = pytest.mark.slow  # starts servers or processes: not in the fast loop (pytest -m 'not slow')


ALICE, BOB = "alice-token-0123456789abcdef", "bob-token-0123456789abcdef"


def test_the_tokens_file(tmp_path: Path) -> None:
    f = tmp_path / "tokens.yaml"
    f.write_text(f"alice: {ALICE}\nci: 'sha256:{hashlib.sha256(BOB.encode()).hexdigest()}'\n")
    ops = Operators.single(TOKEN).load(f)
    assert ops.identify(f"Bearer {ALICE}".encode()) == "alice"
    assert ops.identify(f"Bearer {BOB}".encode()) == "ci"  # the file held only the digest
    assert ops.identify(f"Bearer {TOKEN}".encode()) == "admin"
    assert ops.identify(b"Bearer nope") is None and ops.identify(ALICE.encode()) is None
    for text, line, message in (("alice: short\n", 1, "too easy to guess"),
                                (f"ok: {ALICE}\n'bad name': {BOB}\n", 2, "expected an operator name"),
                                (f"admin: {ALICE}\n", 1, "already defined")):
        f.write_text(text)
        with pytest.raises(ConfigError) as exc:
            Operators.single(TOKEN).load(f)
        assert exc.value.location.line == line and message in str(exc.value)


def test_the_ledger_names_the_operator_not_what_the_caller_claims(tmp_path: Path, legacy: Upstream, service: Upstream,
                                                                  start_proxy: Any) -> None:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(f"alice: {ALICE}\nbob: {BOB}\n")
    p = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": service.url}, PLAN),
                    args=("--admin-tokens", str(tokens)))

    def call(token: str, method: str, path: str, **kw: Any) -> httpx.Response:
        return httpx.request(method, p.admin + path, headers={"authorization": f"Bearer {token}"}, timeout=5, **kw)

    assert call(ALICE, "PATCH", "/modules/cases", json={"stage": "canary", "weight": 5}).status_code == 200
    assert call(BOB, "POST", "/releases/cases", json={"action": "start"}).status_code == 200
    assert call(TOKEN, "DELETE", "/modules/cases/override").status_code == 200
    spoof = call(BOB, "PATCH", "/modules/cases", json={"weight": 50, "actor": "alice"})
    assert spoof.status_code == 400 and "drop 'actor'" in spoof.json()["error"]
    assert call(BOB, "POST", "/releases/cases", json={"action": "pause", "actor": "alice"}).status_code == 400
    assert call("wrong-token-0123456789", "GET", "/ledger").status_code == 401
    ledger = call(ALICE, "GET", "/ledger").json()
    assert [(e["actor"], e["action"]) for e in ledger][:3] == [("admin", "clear"), ("bob", "release.start"), ("alice", "set")]


def test_webhooks_are_signed_and_a_gate_holds_each_step_until_it_says_yes(tmp_path: Path, legacy: Upstream,
                                                                          service: Upstream, start_proxy: Any,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    hook = Receiver(b"hook-secret-0123456789")
    hook.gate_answer = 403
    monkeypatch.setenv("STRANGLER_HOOK_SECRET", "hook-secret-0123456789")  # the proxy inherits it
    try:
        plan = PLAN.replace("      failure_limit: 2\n", "      failure_limit: 2\n      webhooks:\n"
                            f"        - {{url: '{hook.url}', gate: true, secret_env: STRANGLER_HOOK_SECRET}}\n")
        p = start_proxy(routes_file(tmp_path / "r.yaml", {"legacy": legacy.url, "service": service.url}, plan))
        p.admin_call("POST", "/releases/cases", json={"action": "start"})
        with Traffic(p):
            wait_for(lambda: any(e["action"] == "release.gate" for e in hook.events), 20)
            wait_for(lambda: "waiting for approval" in ((status(p)["last_check"] or {}).get("reason") or ""), 10)
            s = status(p)
            assert s["step"] == 0 and s["weight"] == 10  # the analysis passed; the gate said no: it waits
            assert "gate " + hook.url + " answered 403" in s["last_check"]["reason"]
            hook.gate_answer = 200
            wait_for(lambda: status(p)["status"] == "released", 60)
        # webhooks are fire and forget: the last step's event may land just after the status
        wait_for(lambda: sum(e["action"] == "release.step" for e in hook.events) >= 3, 10)
        gates = [e for e in hook.events if e["action"] == "release.gate"]
        assert {e["next_weight"] for e in gates} >= {25.0, 50.0, 100.0}  # asked before every step
        assert [e["action"] for e in hook.events if e["action"] not in ("release.gate", "release.check_failed")] == [
            "release.start", "release.step", "release.step", "release.step"]
        assert hook.bad_signatures == 0 and len(hook.events) >= 5
    finally:
        hook.close()
