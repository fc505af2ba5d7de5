"""The route table's values: immutable, built once by ``config`` from the route file.

Everything here is data: the parser (``config``) builds it with precise errors, the
decision core (``dispatch``) and the planes read it.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from strangler_proxy.clientip import Network
from strangler_proxy.external import DataPlane
from strangler_proxy.limits import Limits
from strangler_proxy.shadow.compare import Rules

__all__ = ["Breaker", "Cohort", "CohortCookie", "CohortSource", "HTTP_METHODS", "Match", "Module", "Override", "Pin", "RELEASE_ACTIONS", "ReleasePlan", "ReleaseThresholds", "RouteTable", "SAFE_METHODS", "STAGES", "Shadow", "Stage", "Upstream", "UpstreamTLS", "Webhook", "effective_modules", "with_overrides"]

Stage = Literal["legacy", "shadow", "canary", "released", "retired"]
STAGES: tuple[Stage, ...] = ("legacy", "shadow", "canary", "released", "retired")
CohortSource = Literal["cookie", "header", "client_ip"]
RELEASE_ACTIONS = ("start", "pause", "resume", "promote", "abort", "undo", "retire")  # admin API and CLI
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
HTTP_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE", "TRACE", "CONNECT"})


@dataclass(frozen=True, slots=True)
class UpstreamTLS:
    """TLS to an ``https://`` upstream: verified against the system store or ``ca``, the
    name checked (``server_name`` overrides the URL's host, for SNI and the check), and an
    optional client certificate (mTLS). ``context`` is built once from these at load."""

    ca: str | None = None
    verify: bool = True
    server_name: str | None = None
    cert: str | None = None
    key: str | None = None
    context: ssl.SSLContext | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Upstream:
    name: str
    scheme: Literal["http", "https"]
    host: str
    port: int
    connect_timeout: float = 3.0
    timeout: float = 30.0  # for the response head
    max_idle: int = 128
    read_timeout: float = 60.0  # between two reads of the response body (nginx proxy_read_timeout)
    send_timeout: float = 60.0  # between two writes of the request body (nginx proxy_send_timeout)
    line: int | None = field(default=None, compare=False)
    tls: UpstreamTLS | None = None  # set exactly for https

    @property
    def server_hostname(self) -> str | None:
        """The name sent in SNI and checked in the certificate (https only)."""
        if self.tls is None:
            return None
        return self.tls.server_name or self.host

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Match:
    """One match block: every condition given must hold."""

    path: tuple[str, ...] = ()
    path_prefix: tuple[str, ...] = ()
    path_regex: tuple[re.Pattern[str], ...] = ()
    methods: frozenset[str] = frozenset()
    hosts: tuple[str, ...] = ()  # exact or "*.suffix", lower case, no port
    headers: tuple[tuple[str, str], ...] = ()  # (lower-case name, exact value)
    case_insensitive: bool = False  # paths and regexes compared ignoring case (IIS, Windows-hosted legacy)
    line: int | None = None

    @property
    def conditions(self) -> int:
        return bool(self.methods) + bool(self.hosts) + len(self.headers)


@dataclass(frozen=True, slots=True)
class Shadow:
    """Mirroring and comparison for a module (the shadow stage, or canary's legacy share)."""

    percent: float = 100.0  # share of the module's requests mirrored
    methods: frozenset[str] = SAFE_METHODS  # unsafe methods only when ``writes: true``
    max_body: int = 64 * 1024  # larger request bodies are not mirrored (skipped: too_large)
    max_response: int = 1 << 20  # larger legacy responses are not compared (skipped: too_large)
    timeout: float = 5.0
    queue: int = 1000  # mirrors waiting; more are dropped (skipped: queue_full)
    concurrency: int = 32
    in_canary: bool = False  # in canary, also mirror the requests legacy served
    noise: str | None = None  # "twice" (legacy again) or an upstream name: a second legacy copy
    relative: float = 0.2
    absolute: float = 0.0003
    rules: Rules = field(default_factory=Rules)
    samples: int = 20
    redact: tuple[str, ...] = ()
    min_samples: int = 100


@dataclass(frozen=True, slots=True)
class ReleaseThresholds:
    """What a release step must show before it is passed (Flagger/Argo-style, legacy as baseline)."""

    error_rate_margin: float = 0.01  # new side's error rate <= legacy's + this
    p99_factor: float = 1.5  # new side's p99 <= legacy's x this ...
    p99_floor_ms: float = 5.0  # ... unless it is within this many ms of legacy's (loopback noise is not a regression)
    shadow_gate: float = 0.99  # the shadow step: Wilson lower bound of the match rate
    min_requests: int = 50  # on the new side within the step; fewer means wait, never pass or fail


@dataclass(frozen=True, slots=True)
class Webhook:
    """Where release events go. ``secret`` signs each body (``X-Strangler-Signature:
    sha256=HMAC``); a ``gate`` must answer 2xx before a step advances (Flagger's
    confirm-promotion)."""

    url: str
    gate: bool = False
    secret: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class ReleasePlan:
    steps: tuple[float | Literal["shadow"], ...]  # "shadow" first if at all, then increasing weights
    interval: float = 30.0
    analysis: ReleaseThresholds = field(default_factory=ReleaseThresholds)
    failure_limit: int = 2  # failed analyses in one step before rolling back
    rollback: Literal["legacy", "last_safe"] = "last_safe"
    webhooks: tuple[Webhook, ...] = ()  # POSTed a JSON event on every step, promotion and rollback


@dataclass(frozen=True, slots=True)
class Module:
    name: str
    matches: tuple[Match, ...]
    service: str
    stage: Stage
    weight: float  # 0-100, used in canary
    legacy: str = "legacy"
    idempotent: frozenset[str] = SAFE_METHODS
    idempotency_key: str | None = None  # lower-case header name that makes a POST retryable
    timeout: float | None = None  # for the new service's response head; else its upstream's
    shadow: Shadow | None = None
    release: ReleasePlan | None = None
    retire_window: float = 3600.0  # legacy must have served none of it for this long before "retired"
    line: int | None = None


@dataclass(frozen=True, slots=True)
class CohortCookie:
    """The proxy's own cohort cookie: a cohort id that outlives session rotation at login."""

    name: str = "strangler_cohort"
    max_age: int = 30 * 24 * 3600
    secure: bool | None = None  # None: Secure when the request came over https
    same_site: Literal["Lax", "Strict", "None"] = "Lax"
    path: str = "/"


@dataclass(frozen=True, slots=True)
class Cohort:
    """Where the cohort key comes from, tried in order; no key means a per-request choice.
    With ``cookie``, the proxy's cohort cookie comes before all of them (see ``cohort``)."""

    sources: tuple[tuple[CohortSource, str], ...] = (("cookie", "JSESSIONID"), ("header", "x-user-id"))
    buckets: int = 10_000
    cookie: CohortCookie | None = None


@dataclass(frozen=True, slots=True)
class Pin:
    """Explicit pins: ``X-Strangler-Side: new`` or ``cases=new,kb=legacy``. Off unless the
    route file has ``pin:``; then values must be signed (``strangler_proxy.pins``) unless
    ``unsigned: true`` says this is a test environment."""

    header: str | None = None
    cookie: str | None = None
    secret: bytes | None = field(default=None, repr=False)
    unsigned: bool = False


@dataclass(frozen=True, slots=True)
class Breaker:
    failures: int = 5  # consecutive failures that open the breaker
    cooldown: float = 30.0  # seconds before one trial request is let through


@dataclass(frozen=True, slots=True)
class RouteTable:
    source: str
    upstreams: Mapping[str, Upstream]
    modules: tuple[Module, ...]
    cohort: Cohort = field(default_factory=Cohort)
    pin: Pin = field(default_factory=Pin)
    breaker: Breaker = field(default_factory=Breaker)
    fallback_body_limit: int = 1 << 20
    limits: Limits = field(default_factory=Limits)
    server_names: tuple[str, ...] = ()  # hosts this proxy serves: redirects are rewritten to these only
    trusted_proxies: tuple[Network, ...] = ()  # peers whose X-Forwarded-For names the client
    data_plane: DataPlane = field(default_factory=DataPlane)  # where traffic flows when not through strangler

    def module(self, name: str) -> Module | None:
        for m in self.modules:
            if m.name == name:
                return m
        return None


@dataclass(frozen=True, slots=True)
class Override:
    """A runtime change to a module's stage or weight (admin API, release controller)."""

    stage: Stage | None = None
    weight: float | None = None


def effective_modules(table: RouteTable, overrides: Mapping[str, Override]) -> tuple[Module, ...]:
    """The table's modules with the runtime overrides (state store) applied."""
    out = []
    for m in table.modules:
        o = overrides.get(m.name)
        if o is not None:
            m = replace(m, stage=o.stage or m.stage, weight=m.weight if o.weight is None else o.weight)
            if m.stage == "shadow" and m.shadow is None:
                # shadow set at runtime on a module whose file says nothing about it: the
                # documented defaults, as the file's 'stage: shadow' alone would give
                m = replace(m, shadow=Shadow())
        out.append(m)
    return tuple(out)


def with_overrides(table: RouteTable, overrides: Mapping[str, Override]) -> RouteTable:
    """The table as the proxy runs it: the file's values with the store's overrides."""
    return replace(table, modules=effective_modules(table, overrides)) if overrides else table
