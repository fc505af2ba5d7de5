"""Sticky cohorts: which side of a canary a user is on, decided by a stable hash.

A user's key (a cookie, a header such as a user id, or the client IP) hashes, salted with
the module's name, into one of ``buckets`` fixed buckets. The new side takes the buckets
below ``weight`` percent. So:

- the same key gets the same side on every request, proxy restart and replica (the hash
  is BLAKE2b, not Python's per-process ``hash``);
- raising the weight only moves users from legacy to new, lowering it only moves them back;
- every path of a module (page, assets, API) shares the decision: the path is not hashed.
"""

from __future__ import annotations

from hashlib import blake2b


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
