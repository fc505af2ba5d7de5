"""Sticky cohorts: which side of a canary a user is on, decided by a stable hash.

A user's key (a cookie, a header such as a user id, or the client IP) hashes, salted with
the module's name, into one of ``buckets`` fixed buckets. The new side takes the buckets
below ``weight`` percent. So:

- the same key gets the same side on every request, proxy restart and replica (the hash
  is BLAKE2b, not Python's per-process ``hash``);
- raising the weight only moves users from legacy to new, lowering it only moves them back;
- every path of a module (page, assets, API) shares the decision: the path is not hashed.

The proxy's own cohort cookie (``cohort.cookie`` in the route file) holds a cohort id of 32
hex digits. Present and well formed, it is the key, before every ``key:`` source: a user
keeps its side when a servlet container rotates ``JSESSIONID`` at login, and behind any
proxy that honours the same cookie. Absent, the id is derived from the first ``key:`` source
present (a one-way hash: the session id itself never goes into another cookie), or drawn at
random without one, and the response sets the cookie.
"""

from __future__ import annotations

import re
from hashlib import blake2b

COHORT_ID = re.compile(r"[0-9a-f]{32}")


def bucket(module: str, key: str, buckets: int) -> int:
    """The key's bucket for this module, in ``range(buckets)``.

    >>> bucket("cases", "user-42", 10_000) == bucket("cases", "user-42", 10_000)
    True
    """
    digest = blake2b(f"{module}\x00{key}".encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % buckets


def on_new_side(bucket_: int, weight: float, buckets: int) -> bool:
    """Whether a bucket is inside the new side's share (``weight`` percent)."""
    return bucket_ < weight * buckets / 100


def cookie_value(cookie_header: str, name: str) -> str | None:
    """One cookie's value from a ``Cookie`` header, without parsing the others."""
    start = 0
    n = len(name)
    while True:
        i = cookie_header.find(name, start)
        if i < 0:
            return None
        before = cookie_header[i - 1] if i > 0 else ";"
        if before in "; " and cookie_header[i + n: i + n + 1] == "=":
            end = cookie_header.find(";", i + n + 1)
            value = cookie_header[i + n + 1: end if end >= 0 else None].strip()
            return value.strip('"')
        start = i + n


def derived_id(key: str) -> str:
    """The cohort id for a user known by ``key`` (``cookie:JSESSIONID=...`` form), one way.

    >>> len(derived_id("cookie:abc")), derived_id("cookie:abc") == derived_id("cookie:abc")
    (32, True)
    """
    return blake2b(f"cohort-id\x00{key}".encode("utf-8", "surrogateescape"), digest_size=16).hexdigest()


def random_id(draw: float, draw2: float) -> str:
    """A cohort id from two draws in [0, 1) (the caller's source of randomness)."""
    return f"{int(draw * (1 << 64)):016x}{int(draw2 * (1 << 64)):016x}"


def set_cookie(name: str, cohort_id: str, max_age: int, path: str, same_site: str, secure: bool) -> bytes:
    """The ``Set-Cookie`` value for a cohort id (HttpOnly: scripts never need it).

    >>> set_cookie("strangler_cohort", "0" * 32, 60, "/", "Lax", True)
    b'strangler_cohort=00000000000000000000000000000000; Path=/; Max-Age=60; SameSite=Lax; HttpOnly; Secure'
    """
    text = f"{name}={cohort_id}; Path={path}; Max-Age={max_age}; SameSite={same_site}; HttpOnly"
    return (text + "; Secure" if secure else text).encode("latin-1")
