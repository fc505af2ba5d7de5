"""The grammars route-file values are checked against when they are read, so that nothing a
route file says can become syntax in another language (an nginx or HAProxy configuration,
Kubernetes YAML, a header) when it is written out. Pure predicates; ``config`` turns a
failure into an error at the value's file:line.

>>> is_token("X-Api-Version"), is_token('a" $x {}'), is_host("intranet.corp"), is_host("127.0.0.1;server 10.6.6.6")
(True, False, True, False)
"""

from __future__ import annotations

import ipaddress
import re

__all__ = ["TOKEN_TEXT", "is_dns_label", "is_dns_subdomain", "is_field_value", "is_file_path", "is_host", "is_host_pattern", "is_path", "is_token"]

# RFC 9110 5.6.2: token = 1*tchar; tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
# "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA (header and cookie names)
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
TOKEN_TEXT = "an HTTP token (letters, digits and !#$%&'*+-.^_`|~)"
# RFC 9110 5.5: a field value holds visible characters, spaces and tabs, no leading or trailing whitespace
_FIELD_VALUE = re.compile(r"(?:[\x21-\x7e\x80-\xff](?:[\x20\x09\x21-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?")
# a DNS name as hosts are written (RFC 1123 labels; '_' tolerated, as resolvers do)
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Kubernetes object and namespace names (RFC 1123): lowercase, no '_'
_K8S_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"


def is_token(text: str) -> bool:
    return _TOKEN.fullmatch(text) is not None


def is_field_value(text: str) -> bool:
    return _FIELD_VALUE.fullmatch(text) is not None


def is_host(text: str) -> bool:
    """A host name or an IP address (IPv6 with or without brackets), nothing else."""
    if len(text) > 253:
        return False
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        ipaddress.ip_address(bare)
        return True
    except ValueError:
        return bare == text and _NAME.fullmatch(text) is not None


def is_host_pattern(text: str) -> bool:
    """A host, or ``*.suffix``: what ``hosts:`` and ``server_names:`` hold."""
    return is_host(text[2:] if text.startswith("*.") else text)


def is_path(text: str) -> bool:
    """A URL path as a route matches it: starts with ``/``, no control characters."""
    return text.startswith("/") and _CONTROL.search(text) is None


def is_file_path(text: str) -> bool:
    """A file path written into another tool's configuration: no control characters, no
    quotes, no ``;``, ``{``, ``}``, ``#`` or ``$`` (they are syntax there)."""
    return bool(text) and re.search(r"[\x00-\x1f\x7f\"';{}#$\\]", text) is None


def is_dns_label(text: str) -> bool:
    """An RFC 1123 label, as Kubernetes names namespaces: ``[a-z0-9]([-a-z0-9]*[a-z0-9])?``, 63 at most."""
    return re.fullmatch(_K8S_LABEL, text) is not None


def is_dns_subdomain(text: str) -> bool:
    """An RFC 1123 subdomain, as Kubernetes names most objects: labels joined by '.', 253 at most."""
    return len(text) <= 253 and re.fullmatch(rf"{_K8S_LABEL}(?:\.{_K8S_LABEL})*", text) is not None
