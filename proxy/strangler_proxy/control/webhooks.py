"""Release events to webhooks: signed, and optionally a gate a step must pass.

Every event is a JSON object POSTed to each of the plan's hooks. A hook with a secret gets
``X-Strangler-Signature: sha256=<hex HMAC-SHA256 of the body>`` (the scheme GitHub uses), so
a receiver can tell the proxy's events from anyone's; the body carries ``ts`` for replay
checks. Notifications are fire and forget: a slow or broken hook never holds a release.
A hook with ``gate: true`` is asked before each step advances (``release.gate``): the step
goes ahead only when every gate answers 2xx, else the release waits and asks again (as
Flagger's confirm-promotion).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence

import httpx

from strangler_proxy.model import Webhook

__all__ = ["GATE_TIMEOUT", "body_and_headers", "confirm", "notify", "signature"]

GATE_TIMEOUT = 3.0  # on the control thread: a hanging gate must not hold state polling long


def signature(body: bytes, secret: bytes) -> str:
    """``sha256=`` and the hex HMAC-SHA256 of ``body``.

    >>> signature(b"{}", b"s3cret")
    'sha256=adbde1ce40c89c14215687d5d762a47df6dfaefcfad61e2e86718ffc8498571b'
    """
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def body_and_headers(hook: Webhook, event: dict[str, object]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(event, separators=(",", ":"), sort_keys=True).encode()
    headers = {"content-type": "application/json", "user-agent": "strangler-release"}
    if hook.secret is not None:
        headers["x-strangler-signature"] = signature(body, hook.secret)
    return body, headers


async def notify(hook: Webhook, event: dict[str, object]) -> str | None:
    """POST one event; the failure in words, or ``None``."""
    body, headers = body_and_headers(hook, event)
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            r = await client.post(hook.url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if r.is_success else f"answered {r.status_code}"


def confirm(hooks: Sequence[Webhook], event: dict[str, object]) -> str | None:
    """Ask every gate hook (on the control thread, never the event loop); ``None`` when all
    answer 2xx, else why the step waits."""
    for hook in hooks:
        if not hook.gate:
            continue
        body, headers = body_and_headers(hook, {**event, "action": "release.gate"})
        try:
            r = httpx.post(hook.url, content=body, headers=headers, timeout=GATE_TIMEOUT)
        except httpx.HTTPError as exc:
            return f"gate {hook.url} did not answer: {type(exc).__name__}"
        if not r.is_success:
            return f"gate {hook.url} answered {r.status_code}"
    return None
