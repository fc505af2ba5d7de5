"""Signed pins: a tester's choice of side that a random client cannot forge.

A pin (``X-Strangler-Side`` header or ``strangler_side`` cookie) sends a request to the
side it names, even a service at weight 0 and past an open breaker, so pins are off unless
the route file turns them on, and then their values are signed with a shared secret::

    cases=new.1767225600.3f1c9a...      SPEC.EXPIRES.SIGNATURE

``SIGNATURE`` is the first 32 hex digits of HMAC-SHA256(secret, ``SPEC.EXPIRES``), and
``EXPIRES`` a Unix time after which the pin is ignored. ``strangler routes pin`` makes one.

>>> v = sign_pin("cases=new", b"k", 2_000_000_000)
>>> verify_pin(v, b"k", 1_900_000_000)
'cases=new'
>>> verify_pin(v, b"other", 1_900_000_000) is None, verify_pin(v, b"k", 2_000_000_001) is None
(True, True)
"""

from __future__ import annotations

import hashlib
import hmac
import re

__all__ = ["sign_pin"]  # public (the CLI's and loadtests' imports are checked against it)


def _signature(spec_and_expiry: str, secret: bytes) -> str:
    return hmac.new(secret, spec_and_expiry.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()[:32]


def sign_pin(spec: str, secret: bytes, expires: int) -> str:
    """A pin value for ``spec`` (``new``, ``legacy`` or ``cases=new,kb=legacy``)."""
    body = f"{spec}.{int(expires)}"
    return f"{body}.{_signature(body, secret)}"


def verify_pin(value: str, secret: bytes, now: float) -> str | None:
    """The spec of a correctly signed, unexpired pin value, else ``None``: a malformed pin
    (any bytes a client sends) is no pin, never an error.

    >>> verify_pin("new.9999999999.\xe9", b"k", 0), verify_pin("new.\xb2.x", b"k", 0), verify_pin("n." + "9" * 5000 + ".x", b"k", 0)
    (None, None, None)
    """
    body, sep, signature = value.rpartition(".")
    spec, sep2, expires = body.rpartition(".")
    if not sep or not sep2 or _SIGNATURE.fullmatch(signature) is None or _EXPIRES.fullmatch(expires) is None:
        return None
    if int(expires) < now or not hmac.compare_digest(signature.lower(), _signature(body, secret)):
        return None
    return spec


_SIGNATURE = re.compile(r"[0-9a-fA-F]{32}")
_EXPIRES = re.compile(r"[0-9]{1,12}")  # ASCII digits only (str.isdigit takes '²'), a Unix time, not 5,000 digits
