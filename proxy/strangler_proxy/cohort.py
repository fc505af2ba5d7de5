"""Sticky cohorts: which side of a canary a user is on, decided by a stable position.

Every user has a **cohort id** of 32 hex digits: the proxy's cohort cookie when the route
file sets ``cohort.cookie``, else one derived one way (BLAKE2b) from the first ``key:``
source the request carries (a cookie, a header such as a user id, the client IP). Its first
four hex digits place the user on a circle of ``buckets`` positions; each module turns the
circle by a fixed offset (a hash of its name), and the new side takes the positions below
``weight`` percent. So:

- the same key gets the same side on every request, proxy restart and replica;
- raising the weight only moves users from legacy to new, lowering it only moves them back;
- every path of a module (page, assets, API) shares the decision: the path is not hashed;
- modules are turned apart, so one module's early cohort is not every module's;
- a data plane that reads the cookie computes the same side without hashing anything: the
  new side of a module is one or two ranges of the id's first four hex digits, which nginx,
  HAProxy, Gateway API and Istio match with a regular expression (``new_side_ranges``, used
  by ``strangler routes export``).

Present and well formed, the cohort cookie is the key, before every ``key:`` source: a user
keeps its side when a servlet container rotates ``JSESSIONID`` at login, and behind any
proxy that honours the same cookie. Absent, the id is derived from the first ``key:`` source
present (the session id itself never goes into another cookie), or drawn at random without
one, and the response sets the cookie. A derived id gives the side the key gives without the
cookie, so turning the cookie on moves nobody.
"""

from __future__ import annotations

import re
import secrets
from functools import lru_cache
from hashlib import blake2b

COHORT_ID = re.compile(r"[0-9a-f]{32}")


POSITIONS = 1 << 16  # the values of a cohort id's first four hex digits


@lru_cache(maxsize=65536)
def offset(module: str, buckets: int) -> int:
    """How far a module turns the circle of positions (a hash of its name)."""
    return int.from_bytes(blake2b(module.encode("utf-8", "surrogateescape"), digest_size=8).digest(), "big") % buckets


def position(cohort_id: str, buckets: int) -> int:
    """A cohort id's place on the circle of ``buckets`` positions: its first four hex digits, scaled.

    >>> position("8000" + "0" * 28, 10_000)
    5000
    """
    return int(cohort_id[:4], 16) * buckets // POSITIONS


def bucket(module: str, key: str, buckets: int) -> int:
    """The key's bucket for this module, in ``range(buckets)``: ``id:<cohort id>`` or any
    other key (``cookie:...``, ``header:...``, ``client_ip:...``), through its derived id.

    >>> bucket("cases", "user-42", 10_000) == bucket("cases", "id:" + derived_id("user-42"), 10_000)
    True
    """
    cid = key[3:] if key.startswith("id:") else derived_id(key)
    return (position(cid, buckets) + offset(module, buckets)) % buckets


def on_new_side(bucket_: int, weight: float, buckets: int) -> bool:
    """Whether a bucket is inside the new side's share (``weight`` percent)."""
    return bucket_ < weight * buckets / 100


def new_side_ranges(module: str, weight: float, buckets: int) -> list[tuple[int, int]]:
    """The values of a cohort id's first four hex digits (``0 <= v < POSITIONS``) on the
    new side of a module at ``weight``, as inclusive ranges (none, one, or two when the
    turned share wraps around): what an exported data plane matches.

    >>> new_side_ranges("cases", 0, 10_000), new_side_ranges("cases", 100, 10_000)
    ([], [(0, 65535)])
    """
    share = _share(weight, buckets)
    if share <= 0:
        return []
    if share >= buckets:
        return [(0, POSITIONS - 1)]
    start = (-offset(module, buckets)) % buckets  # the positions p with (p + offset) % buckets < share
    spans = [(start, start + share)] if start + share <= buckets else [(start, buckets), (0, start + share - buckets)]
    out = []
    for lo, hi in sorted(spans):  # positions [lo, hi) -> hex values v with lo <= v * buckets // POSITIONS < hi
        vlo, vhi = -(-lo * POSITIONS // buckets), -(-hi * POSITIONS // buckets) - 1
        if vlo <= vhi:
            out.append((vlo, vhi))
    return out


def _share(weight: float, buckets: int) -> int:
    """How many buckets ``b`` satisfy ``b < weight * buckets / 100``."""
    limit = weight * buckets / 100
    n = int(limit)
    return n if n == limit else n + 1


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


def random_id() -> str:
    """A new cohort id, from the operating system's CSPRNG: ``random`` (Mersenne Twister)
    can be predicted from a few of its outputs, and an id decides a user's side."""
    return secrets.token_hex(16)


def set_cookie(name: str, cohort_id: str, max_age: int, path: str, same_site: str, secure: bool) -> bytes:
    """The ``Set-Cookie`` value for a cohort id (HttpOnly: scripts never need it).

    >>> set_cookie("strangler_cohort", "0" * 32, 60, "/", "Lax", True)
    b'strangler_cohort=00000000000000000000000000000000; Path=/; Max-Age=60; SameSite=Lax; HttpOnly; Secure'
    """
    text = f"{name}={cohort_id}; Path={path}; Max-Age={max_age}; SameSite={same_site}; HttpOnly"
    return (text + "; Secure" if secure else text).encode("latin-1")
