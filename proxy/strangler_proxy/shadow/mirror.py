"""Mirroring: requests copied to the new service in the background, then compared.

The client already has legacy's answer when a mirror starts. Each module has a bounded
queue and a fixed number of mirror tasks; a full queue drops the mirror (skipped:
queue_full), so a hanging new service costs bounded memory and nothing on the user's path.
Mirrored requests carry ``X-Strangler-Shadow: 1`` so a service can run them dry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from strangler_proxy.model import Module
from strangler_proxy.errors import UpstreamError, UpstreamTimeout
from strangler_proxy.shadow.compare import Difference, Response, TooLarge, compare
from strangler_proxy.shadow.evidence import EndpointStats, Thresholds, real_fields
from strangler_proxy.upstream import Pool

REDACTED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"})
SAMPLE_BODY = 4096


@dataclass(slots=True)
class Job:
    module: Module
    endpoint: str
    method: str
    path: str
    head: bytes  # the request line and headers, ending in the blank line
    body: bytes
    legacy: Response


Count = Callable[[str, str, str], None]  # (counter, module, reason): compared, matched, mismatched, skipped, error


class Mirror:
    """Mirror queues and tasks for every shadowed module (run in the mirror helper process)."""

    def __init__(self, pools: Callable[[], Mapping[str, Pool]], count: Count) -> None:
        self.pools = pools
        self.count = count
        self.queues: dict[str, asyncio.Queue[Job]] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self.pending: dict[tuple[str, str], EndpointStats] = {}  # drained to the store
        self.lifetime: dict[tuple[str, str], EndpointStats] = {}  # decides matched/mismatched for metrics
        self.samples: list[tuple[str, dict[str, Any]]] = []
        self.busy = 0  # mirrors taken off a queue and not finished

    # -- counting ------------------------------------------------------------------------
    def _stats(self, module: str, endpoint: str) -> tuple[EndpointStats, EndpointStats]:
        key = (module, endpoint)
        p = self.pending.get(key) or self.pending.setdefault(key, EndpointStats())
        life = self.lifetime.get(key) or self.lifetime.setdefault(key, EndpointStats())
        return p, life

    def skip(self, module: str, endpoint: str, reason: str, counted: bool = False) -> None:
        """Record a request that was not mirrored or not compared (``counted``: the proxy
        has already counted it in its metrics)."""
        p, life = self._stats(module, endpoint)
        for s in (p, life):
            s.total += 1
            s.skipped[reason] += 1
        if not counted:
            self.count("skipped", module, reason)

    def drain(self) -> tuple[dict[tuple[str, str], EndpointStats], list[tuple[str, dict[str, Any]]]]:
        pending, samples = self.pending, self.samples
        self.pending, self.samples = {}, []
        return pending, samples

    # -- queueing ------------------------------------------------------------------------
    def offer(self, job: Job) -> None:
        cfg = job.module.shadow
        assert cfg is not None
        q = self.queues.get(job.module.name)
        if q is None:
            q = self.queues[job.module.name] = asyncio.Queue(cfg.queue)
            self.tasks += [asyncio.get_running_loop().create_task(self._worker(q)) for _ in range(cfg.concurrency)]
        try:
            q.put_nowait(job)
        except asyncio.QueueFull:
            self.skip(job.module.name, job.endpoint, "queue_full")

    async def _worker(self, q: asyncio.Queue[Job]) -> None:
        while True:
            job = await q.get()
            self.busy += 1
            try:
                await self.run(job)
            except Exception as exc:  # a mirror must never take the helper down
                self.skip(job.module.name, job.endpoint, "error")
                self.count("error", job.module.name, type(exc).__name__)
            finally:
                self.busy -= 1

    def idle(self) -> bool:
        return self.busy == 0 and all(q.empty() for q in self.queues.values())

    def close(self) -> None:
        for t in self.tasks:
            t.cancel()

    # -- one mirror ----------------------------------------------------------------------
    async def run(self, job: Job) -> None:
        cfg = job.module.shadow
        assert cfg is not None
        pools = self.pools()
        if cfg.noise is None:
            results = [await self._fetch(pools[job.module.service], job, cfg.timeout, cfg.max_response)]
        else:
            second = job.module.legacy if cfg.noise == "twice" else cfg.noise
            results = list(await asyncio.gather(
                self._fetch(pools[job.module.service], job, cfg.timeout, cfg.max_response),
                self._fetch(pools[second], job, cfg.timeout, cfg.max_response)))
        candidate = results[0]
        if candidate.error == "timeout":
            self.skip(job.module.name, job.endpoint, "timeout")
            return
        if candidate.error is not None and candidate.status == 0:
            self.skip(job.module.name, job.endpoint, "error")
            return
        noise: tuple[Difference, ...] | None = None
        try:
            primary = compare(job.legacy, candidate, cfg.rules, cfg.max_response)
            if len(results) > 1 and results[1].error is None:
                noise = compare(job.legacy, results[1], cfg.rules, cfg.max_response)
        except TooLarge:
            self.skip(job.module.name, job.endpoint, "too_large")
            return
        p, life = self._stats(job.module.name, job.endpoint)
        for s in (p, life):
            s.total += 1
            sig = s.record(primary, noise)
        name = job.module.name
        self.count("compared", name, "")
        if sig and {f.path for f in real_fields(life, Thresholds(cfg.relative, cfg.absolute)) if f.real}.intersection(sig):
            self.count("mismatched", name, "")
            if cfg.samples:
                self.samples.append((name, _sample(job, candidate, primary, cfg.redact)))
        else:
            self.count("matched", name, "")

    async def _fetch(self, pool: Pool, job: Job, timeout: float, cap: int) -> Response:
        """Send the mirrored request; the answer, or a Response whose ``error`` says why not."""
        try:
            return await self._exchange(pool, job, timeout, cap)
        except UpstreamTimeout:
            return Response(0, (), b"", False, "timeout")
        except UpstreamError as exc:
            return Response(0, (), b"", False, str(exc))

    async def _exchange(self, pool: Pool, job: Job, timeout: float, cap: int) -> Response:
        deadline = time.monotonic() + timeout
        conn, _ = await pool.acquire()
        # one timer bounds the whole exchange, body included (no task per mirror)
        timer = pool.loop.call_at(pool.loop.time() + max(0.001, deadline - time.monotonic()), conn.timed_out, timeout)
        try:
            conn.write(job.head + job.body)
            conn.sent_all = True  # head and body in one write: the whole request
            await conn.response_head(timeout)
            chunks: list[bytes] = []
            size = 0
            complete = True
            broken: str | None = None
            while True:
                try:
                    chunk = await conn.next_chunk()
                except UpstreamTimeout:
                    raise
                except UpstreamError as exc:  # the answer began, then broke off: a truncated answer
                    complete, broken = False, str(exc)
                    break
                if chunk is None:
                    break
                size += len(chunk)
                if size > cap:
                    complete = False
                    break
                chunks.append(chunk)
        except BaseException:
            pool.discard(conn)
            raise
        finally:
            timer.cancel()
        headers = tuple((n.decode("latin-1").lower(), v.decode("latin-1")) for n, v in conn.headers)
        if broken is not None:
            pool.discard(conn)
            return Response(conn.status, headers, b"".join(chunks), False, None)
        if complete:
            pool.release(conn)
        else:
            pool.discard(conn)
        return Response(conn.status, headers, b"".join(chunks), complete)


def _redact_json(value: Any, names: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        return {k: "[redacted]" if k in names else _redact_json(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_json(v, names) for v in value]
    return value


def _side(r: Response, redact: tuple[str, ...]) -> dict[str, Any]:
    import json

    body: Any = r.body[:SAMPLE_BODY].decode("utf-8", "replace")
    if redact:
        try:
            body = _redact_json(json.loads(r.body), redact)
        except ValueError:
            pass
    return {
        "status": r.status,
        "headers": [[n, "[redacted]" if n in REDACTED_HEADERS else v] for n, v in r.headers],
        "body": body,
        "error": r.error,
    }


def _sample(job: Job, candidate: Response, diffs: tuple[Difference, ...], redact: tuple[str, ...]) -> dict[str, Any]:
    lines = job.head.decode("latin-1").split("\r\n")[1:]
    headers = []
    for line in lines:
        if ": " in line:
            n, v = line.split(": ", 1)
            headers.append([n, "[redacted]" if n.lower() in REDACTED_HEADERS else v])
    return {
        "endpoint": job.endpoint, "method": job.method, "path": job.path, "request_headers": headers,
        "legacy": _side(job.legacy, redact), "candidate": _side(candidate, redact),
        "differences": [{"path": d.path, "kind": d.kind} for d in diffs],
    }
