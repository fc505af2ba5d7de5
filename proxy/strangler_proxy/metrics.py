"""Prometheus metrics, with label children cached so the hot path does one dict lookup."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]  # public (the CLI's and loadtests' imports are checked against it)

UNCLAIMED = "_unclaimed"  # the module label of traffic no module claims
BREAKER_VALUE = {"closed": 0, "half_open": 1, "open": 2}
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter("strangler_requests", "Requests answered, by module, side and status class",
                                ["module", "side", "code"], registry=r)
        self.latency = Histogram("strangler_request_duration_seconds", "Time to the end of the response, by module and side",
                                 ["module", "side"], buckets=LATENCY_BUCKETS, registry=r)
        self.errors = Counter("strangler_upstream_errors", "Upstream failures by module, side and kind",
                              ["module", "side", "kind"], registry=r)
        self.fallbacks = Counter("strangler_fallbacks", "Requests resent to legacy after the new service failed",
                                 ["module", "reason"], registry=r)
        self.fallback_refused = Counter("strangler_fallbacks_refused", "Failures not resent to legacy, by reason",
                                        ["module", "reason"], registry=r)
        self.breaker = Gauge("strangler_breaker_state", "Circuit breaker: 0 closed, 1 half-open, 2 open", ["module"], registry=r)
        self.breaker_changes = Counter("strangler_breaker_transitions", "Circuit breaker changes by new state",
                                       ["module", "state"], registry=r)
        self.shadow_compared = Counter("strangler_shadow_compared", "Mirrored requests compared", ["module"], registry=r)
        self.shadow_matched = Counter("strangler_shadow_matched", "Mirrored requests that matched legacy", ["module"], registry=r)
        self.shadow_mismatched = Counter("strangler_shadow_mismatched", "Mirrored requests that differed from legacy",
                                         ["module"], registry=r)
        self.shadow_skipped = Counter("strangler_shadow_skipped", "Requests not mirrored or not compared, by reason",
                                      ["module", "reason"], registry=r)
        self.client_closed = Counter("strangler_client_connections_closed",
                                     "Client connections closed or refused by a limit or a malformed request, by reason",
                                     ["reason"], registry=r)
        self.reloads = Counter("strangler_route_reloads", "Route table reloads by result", ["result"], registry=r)
        self.state_store_up = Gauge("strangler_state_store_up", "1 while the state store answered its last poll, else 0",
                                    registry=r)
        self.state_store_up.set(1)
        self._req: dict[tuple[str, str, int], Counter] = {}
        self._lat: dict[tuple[str, str], Histogram] = {}

    def observe(self, module: str, side: str, status: int, seconds: float) -> None:
        key = (module, side, status // 100)
        c = self._req.get(key)
        if c is None:
            c = self._req[key] = self.requests.labels(module, side, f"{status // 100}xx")
        c.inc()
        lk = (module, side)
        h = self._lat.get(lk)
        if h is None:
            h = self._lat[lk] = self.latency.labels(module, side)
        h.observe(seconds)

    def breaker_changed(self, module: str, state: str) -> None:
        self.breaker.labels(module).set(BREAKER_VALUE[state])
        self.breaker_changes.labels(module, state).inc()
