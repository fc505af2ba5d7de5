"""Who calls the admin API: one bearer token per named operator.

The ledger's actor is the name of the token that authenticated the call, never a field the
caller sends. Tokens come from the proxy's own token (named ``admin``) and, optionally, a
tokens file (``--admin-tokens``)::

    alice: "kX9...32 characters or more..."      # the token itself
    ci-pipeline: "sha256:5e88...64 hex digits"    # or its SHA-256, so the file holds no secret

Only SHA-256 digests are kept in memory, and a presented token is compared with every one of
them in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path

from strangler_common import ConfigError, Location, Node, load_yaml_file

__all__ = ["DEFAULT_OPERATOR", "MIN_TOKEN_LENGTH", "Operators"]

DEFAULT_OPERATOR = "admin"
MIN_TOKEN_LENGTH = 16
_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
_DIGEST = re.compile(r"sha256:([0-9a-f]{64})")


def _digest(token: str | bytes) -> bytes:
    return hashlib.sha256(token.encode() if isinstance(token, str) else token).digest()


class Operators:
    """Token digests by operator name."""

    def __init__(self) -> None:
        self.digests: dict[str, bytes] = {}

    @classmethod
    def single(cls, token: str, name: str = DEFAULT_OPERATOR) -> Operators:
        ops = cls()
        ops.digests[name] = _digest(token)
        return ops

    def load(self, path: str | Path) -> Operators:
        """Add the operators of a tokens file; errors name the file, line and operator."""
        docs = load_yaml_file(path)
        if len(docs) != 1:
            raise ConfigError(Location(str(path), 1), "expected one mapping of operator name to token")
        for name, node in Node.root(docs[0], str(path)).mapping(what="a mapping of operator name to token").items():
            if not _NAME.fullmatch(name):
                node.fail(f"expected an operator name (letters, digits, _.@-), found {name!r}")
            if name in self.digests:
                node.fail(f"operator {name!r} is already defined (the proxy's own token is {DEFAULT_OPERATOR!r})")
            text = node.string("a token, or sha256: and its 64 hex digits")
            m = _DIGEST.fullmatch(text)
            if m:
                self.digests[name] = bytes.fromhex(m[1])
            elif len(text) < MIN_TOKEN_LENGTH:
                node.fail(f"a token of {len(text)} characters is too easy to guess; use {MIN_TOKEN_LENGTH} or more")
            else:
                self.digests[name] = _digest(text)
        return self

    def identify(self, authorization: bytes) -> str | None:
        """The operator an ``Authorization`` header authenticates, or ``None``."""
        if not authorization.startswith(b"Bearer "):
            return None
        given = _digest(authorization[7:])
        found = None
        for name, digest in self.digests.items():  # no early exit: the time says nothing
            if hmac.compare_digest(given, digest):
                found = name
        return found
