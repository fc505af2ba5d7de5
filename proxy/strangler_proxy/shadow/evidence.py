"""Shadow evidence: counts per module and endpoint, noise separation, and the release gate.

Pure: values in, values out. Each compared request adds its *signature* (the sorted field
paths that differed from legacy) and, with noise calibration, the paths where legacy
differed from itself. A field is a real difference only when its mismatch rate against the
new service beats its legacy-vs-legacy noise rate by a relative and an absolute threshold
(as Diffy does); a request matches when none of its differing fields is real.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from strangler_proxy.shadow.compare import Difference

__all__ = ["Thresholds", "module_report"]  # public (the CLI's and loadtests' imports are checked against it)

SKIP_REASONS = ("unsafe", "too_large", "timeout", "queue_full", "error")
MAX_SIGNATURES = 1000  # distinct difference patterns kept per endpoint; more count as "other"
@dataclass
class EndpointStats:
    total: int = 0
    compared: int = 0
    calibrated: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    signatures: Counter[tuple[str, ...]] = field(default_factory=Counter)
    fields: Counter[str] = field(default_factory=Counter)
    noise: Counter[str] = field(default_factory=Counter)

    def add(self, other: EndpointStats) -> None:
        self.total += other.total
        self.compared += other.compared
        self.calibrated += other.calibrated
        self.skipped.update(other.skipped)
        self.signatures.update(other.signatures)
        self.fields.update(other.fields)
        self.noise.update(other.noise)

    def record(self, primary: Iterable[Difference], noise: Iterable[Difference] | None) -> tuple[str, ...]:
        sig = tuple(sorted({d.path for d in primary}))
        self.compared += 1
        if sig in self.signatures or len(self.signatures) < MAX_SIGNATURES:
            self.signatures[sig] += 1
        else:
            self.signatures[("(other)",)] += 1
        self.fields.update(sig)
        if noise is not None:
            self.calibrated += 1
            self.noise.update({d.path for d in noise})
        return sig


@dataclass(frozen=True, slots=True)
class Thresholds:
    relative: float = 0.2  # the raw rate must exceed the noise rate by 20 % of it
    absolute: float = 0.0003  # and by 0.03 percentage points


@dataclass(frozen=True, slots=True)
class FieldReport:
    path: str
    mismatches: int
    noise: int
    rate: float
    noise_rate: float
    real: bool


@dataclass(frozen=True, slots=True)
class EndpointReport:
    endpoint: str
    total: int
    compared: int
    matched: int
    skipped: Mapping[str, int]
    fields: tuple[FieldReport, ...]


@dataclass(frozen=True, slots=True)
class ModuleReport:
    module: str
    total: int
    compared: int
    matched: int
    skipped: Mapping[str, int]
    fields: tuple[FieldReport, ...]
    endpoints: tuple[EndpointReport, ...]
    min_samples: int
    interval: tuple[float, float] | None  # Wilson 95 %, once min_samples are compared

    @property
    def mismatched(self) -> int:
        return self.compared - self.matched

    @property
    def match_rate(self) -> float | None:
        return self.matched / self.compared if self.compared else None

    def passes(self, gate: float) -> bool:
        return self.interval is not None and self.interval[0] >= gate


def wilson(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval for a proportion (95 % by default).

    >>> [round(x, 4) for x in wilson(99, 100)]
    [0.9455, 0.9982]
    """
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, center - half), min(1.0, center + half))


def samples_needed(rate: float, gate: float, most: int = 10_000_000) -> int | None:
    """How many compared requests, matching at ``rate``, put the interval's lower bound at
    ``gate`` or above; None when ``rate`` itself is not above the gate (no amount will do).

    >>> samples_needed(1.0, 0.99), samples_needed(0.999, 0.99), samples_needed(0.98, 0.99)
    (381, 563, None)
    """
    if rate <= gate:
        return None

    def enough(n: int) -> bool:
        return wilson(round(rate * n), n)[0] >= gate

    high = 1
    while not enough(high):
        high *= 2
        if high > most:
            return None
    low = high // 2  # not enough at low (or 0), enough at high
    while high - low > 1:
        mid = (low + high) // 2
        if enough(mid):
            high = mid
        else:
            low = mid
    return high


def real_fields(stats: EndpointStats, t: Thresholds) -> list[FieldReport]:
    out = []
    for path in sorted(set(stats.fields) | set(stats.noise)):
        m, n = stats.fields.get(path, 0), stats.noise.get(path, 0)
        rate = m / stats.compared if stats.compared else 0.0
        noise_rate = n / stats.calibrated if stats.calibrated else 0.0
        if stats.calibrated:
            real = rate > noise_rate * (1 + t.relative) and rate - noise_rate > t.absolute
        else:
            real = m > 0
        if m or n:
            out.append(FieldReport(path, m, n, round(rate, 6), round(noise_rate, 6), real))
    return sorted(out, key=lambda f: (not f.real, -f.mismatches, f.path))


def module_report(module: str, endpoints: Mapping[str, EndpointStats], t: Thresholds = Thresholds(),
                  min_samples: int = 100) -> ModuleReport:
    eps = []
    total = compared = matched = 0
    skipped: Counter[str] = Counter()
    fields: dict[str, list[int]] = {}
    for name in sorted(endpoints):
        s = endpoints[name]
        frs = real_fields(s, t)
        real = {f.path for f in frs if f.real} | {"(other)"}
        ep_matched = sum(c for sig, c in s.signatures.items() if not real.intersection(sig))
        eps.append(EndpointReport(name, s.total, s.compared, ep_matched, dict(s.skipped), tuple(frs)))
        total, compared, matched = total + s.total, compared + s.compared, matched + ep_matched
        skipped.update(s.skipped)
        for f in frs:
            if f.real:
                acc = fields.setdefault(f.path, [0, 0])
                acc[0] += f.mismatches
                acc[1] += f.noise
    field_reports = tuple(
        FieldReport(p, m, n, round(m / compared, 6) if compared else 0.0, 0.0, True)
        for p, (m, n) in sorted(fields.items(), key=lambda kv: (-kv[1][0], kv[0]))
    )
    interval = wilson(matched, compared) if compared >= min_samples else None
    return ModuleReport(module, total, compared, matched, {r: skipped.get(r, 0) for r in SKIP_REASONS} | dict(skipped),
                        field_reports, tuple(eps), min_samples, interval)
